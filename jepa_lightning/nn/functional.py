"""Token bookkeeping shared by encoders, predictors and methods."""

from __future__ import annotations

import torch
from torch import Tensor


def gather_tokens(x: Tensor, index: Tensor) -> Tensor:
    """Pick tokens ``x[b, index[b, k]]``: ``x`` is ``(B or 1, N, D)``, ``index`` ``(B, K)`` -> ``(B, K, D)``."""
    x = x.expand(index.shape[0], -1, -1)
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def gather_mask_major(x: Tensor, target_idx: Tensor) -> Tensor:
    """Target tokens in mask-major order: ``(B or 1, N, D)`` and ``(B, M, Nt)`` -> ``(M * B, Nt, D)``.

    Row ``m * B + b`` holds target group ``m`` of sample ``b``, the order in which the predictor repeats
    the context, so predictions and targets line up.
    """
    batch, groups, per_group = target_idx.shape
    picked = gather_tokens(x, target_idx.reshape(batch, groups * per_group))
    return picked.view(batch, groups, per_group, -1).transpose(0, 1).reshape(groups * batch, per_group, -1)


def pool_rows(tokens: Tensor, rows: int) -> Tensor:
    """Tokens ``(B, rows * columns, D)`` of a row-major grid averaged along each row, the rows concatenated:
    ``(B, rows * D)``. A readout that keeps which row (a frequency band, a channel group) a feature comes from."""
    return tokens.unflatten(1, (rows, -1)).mean(dim=2).flatten(1)
