"""Causal masks on a grid whose first axis is time (video tubelets ``(T, H, W)``): the past is the context, the
future the target."""

from __future__ import annotations

import torch
from torch import Tensor

from jepa_lightning.masks.base import MaskSampler, check_range, to_device
from jepa_lightning.tokens import TokenLayout


class FutureFrameMaskSampler(MaskSampler):
    """Context: every token of the first ``c`` time steps (frames of tubelets); target: every token of the steps
    after them, one group, so the predictor forecasts the future from the past.

    Per batch one share ``r ~ U(context_ratio)`` of the ``T`` time steps gives ``c = round(r * T)``, clipped to
    ``[1, T - 1]`` so both the past and the future hold at least one step. Identical for every sample of a batch
    (a video clip has no padding), so nothing is truncated; on a ``(T, H, W)`` grid a context is ``c * H * W``
    tokens in raster order.
    """

    def __init__(self, context_ratio: tuple[float, float] = (0.5, 0.5)) -> None:
        check_range("context_ratio", context_ratio, limit="< 1")
        self.context_ratio = context_ratio

    def split(self, steps: int, r: float) -> int:
        """Context time steps of a grid of ``steps`` time steps for the uniform draw ``r``."""
        low, high = self.context_ratio
        return min(steps - 1, max(1, round((low + r * (high - low)) * steps)))

    def __call__(
        self,
        layout: TokenLayout,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str,
        progress: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        steps = layout.shape[0]
        if len(layout.shape) < 2 or steps < 2:
            raise ValueError(
                f"FutureFrameMaskSampler needs a grid whose first axis is time with at least 2 steps, got layout "
                f"shape {layout.shape}"
            )
        r = float(torch.rand(1, generator=generator, device=generator.device))
        per_step = layout.num_tokens // steps
        boundary = self.split(steps, r) * per_step
        order = torch.arange(layout.num_tokens, device=generator.device)
        context_idx = order[:boundary].expand(batch_size, -1)
        target_idx = order[boundary:].expand(batch_size, 1, -1)
        return to_device((context_idx.contiguous(), target_idx.contiguous()), device)
