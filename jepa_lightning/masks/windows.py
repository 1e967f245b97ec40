"""Local-window masking (SAR-JEPA, after LoMaR): targets drawn inside a few small windows of the token grid."""

from __future__ import annotations

import torch
from torch import Tensor

from jepa_lightning.masks.base import MaskSampler, check_count, check_ratio, to_device
from jepa_lightning.tokens import TokenLayout


class LocalWindowMaskSampler(MaskSampler):
    """``num_windows`` windows of ``window_size x window_size`` tokens; in each, ``int(window_size^2 * target_ratio)``
    random tokens are one target group; the context is the windows' other tokens.

    As in SAR-JEPA's official code (``Pretraining/models_lomar.py``, ``forward_encoder``): the windows' top rows and
    left columns are distinct draws (``randperm``) shared by the whole batch, the masked tokens are drawn per sample
    and window, and nothing outside the windows is seen or predicted. Defaults: 4 windows of 7 x 7 patches, 80%
    masked (the official 224-pixel, 16-pixel-patch recipe). One difference forced by the library's one context per
    sample: the official encoder processes each window as its own sample, while here the context is the union of
    the windows' visible tokens, shared by the window groups. Windows may overlap; a token that is a target of any
    window is never context, so contexts can differ in length: every sample keeps a random subset of the batch's
    shortest context. Indices are in ascending order.
    """

    def __init__(self, window_size: int = 7, num_windows: int = 4, target_ratio: float = 0.8) -> None:
        check_count("window_size", window_size)
        check_count("num_windows", num_windows)
        check_ratio("target_ratio", target_ratio)
        count = int(window_size * window_size * target_ratio)
        if not 1 <= count < window_size * window_size:
            raise ValueError(
                f"target_ratio={target_ratio} masks {count} of the {window_size * window_size} tokens of a window: "
                "it must mask at least one and leave at least one"
            )
        self.window_size = window_size
        self.num_windows = num_windows
        self.target_ratio = target_ratio
        self.targets_per_window = count

    def __call__(
        self,
        layout: TokenLayout,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str,
        progress: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        if len(layout.shape) != 2:
            raise ValueError(f"LocalWindowMaskSampler needs a 2-D token grid, got layout shape {layout.shape}")
        rows, cols = layout.shape
        size, windows = self.window_size, self.num_windows
        if size > min(rows, cols) or windows > min(rows, cols) - size + 1:
            raise ValueError(
                f"{windows} windows of {size} x {size} tokens with distinct rows and columns do not fit a "
                f"{rows} x {cols} grid"
            )
        host = generator.device
        tops = torch.randperm(rows - size + 1, generator=generator, device=host)[:windows]
        lefts = torch.randperm(cols - size + 1, generator=generator, device=host)[:windows]
        offsets = torch.arange(size, device=host)
        window_tokens = ((tops[:, None, None] + offsets[:, None]) * cols + lefts[:, None, None] + offsets).flatten(1)
        scores = torch.rand(batch_size, windows, size * size, generator=generator, device=host)
        picked = scores.argsort(dim=-1)[..., : self.targets_per_window]
        target_idx = window_tokens.expand(batch_size, -1, -1).gather(-1, picked).sort(dim=-1).values
        in_windows = torch.zeros(rows * cols, dtype=torch.bool, device=host)
        in_windows[window_tokens.flatten()] = True
        is_target = torch.zeros(batch_size, rows * cols, dtype=torch.bool, device=host)
        is_target.scatter_(1, target_idx.flatten(1), True)
        context = in_windows & ~is_target
        shortest = int(context.sum(dim=1).min())
        if shortest == 0:
            raise ValueError(
                "the windows' targets covered every visible token of a sample: use fewer windows or a lower "
                "target_ratio"
            )
        keys = (~context).to(torch.float32) * 2 + torch.rand(context.shape, generator=generator, device=host)
        context_idx = keys.argsort(dim=-1)[:, :shortest].sort(dim=-1).values
        return to_device((context_idx, target_idx), device)
