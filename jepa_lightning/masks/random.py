"""Random masking of any token layout (MAE-style): a random subset of the tokens is the context, the rest the
target."""

from __future__ import annotations

import torch
from torch import Tensor

from jepa_lightning.masks.base import MaskSampler, check_ratio, to_device
from jepa_lightning.tokens import TokenLayout


class RandomMaskSampler(MaskSampler):
    """Per sample, ``round(N * (1 - target_ratio))`` tokens drawn uniformly are the context and the other tokens one
    target group, on any layout of ``N`` tokens (same sizes in every sample, so nothing is truncated).

    As CNN-JEPA's random masks (kaland313/CNN-JEPA@f1b813548b56619b65311dbc1cd015c55cd0557b
    ``pretrain/train_ijepacnn.py::IJEPA_CNN.mask``): one uniform score per token, the ``len_keep`` lowest in each
    sample are kept (the same draw gives the same masks). Indices are in ascending order.
    """

    def __init__(self, target_ratio: float = 0.6) -> None:
        check_ratio("target_ratio", target_ratio)
        self.target_ratio = target_ratio

    def __call__(
        self,
        layout: TokenLayout,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str,
        progress: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        tokens = layout.num_tokens
        keep = round(tokens * (1 - self.target_ratio))
        if not 0 < keep < tokens:
            raise ValueError(
                f"RandomMaskSampler: target_ratio={self.target_ratio} of {tokens} tokens leaves {keep} context tokens "
                "and needs at least one context and one target token"
            )
        order = torch.rand(batch_size, tokens, generator=generator, device=generator.device).argsort(dim=1)
        context_idx = order[:, :keep].sort(dim=1).values
        target_idx = order[:, keep:].sort(dim=1).values.unsqueeze(1)
        return to_device((context_idx, target_idx), device)
