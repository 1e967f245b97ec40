"""Token bookkeeping shared by encoders, predictors and methods."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from jepa_lightning.tokens import TokenLayout

#: How a method turns its encoded tokens ``(B, N, D)`` into one vector per sample (what probes read):
#: ``"mean"`` averages every token, ``(B, D)``; ``"rows"`` averages along the last axis of a 2-D token grid within
#: each row of its first axis and concatenates the rows, ``(B, rows * D)``: it keeps which frequency band (a
#: spectrogram's (frequency, time) grid) or which channel group (a series' (channel, time) grid) a feature comes
#: from; ``"row_quarters"`` averages each of ``ROW_SEGMENTS`` (4) consecutive, near-equal stretches of the last axis
#: within each row and concatenates them all, ``(B, rows * 4 * D)``: it also keeps when in a trial a channel's
#: feature occurs (early or late), at a fixed size for any trial length; ``"flatten"`` concatenates every token,
#: ``(B, N * D)`` (T-JEPA's linear probe); ``"max_mean"``
#: concatenates the per-feature maximum and the mean over tokens, ``(B, 2 * D)`` (Point-JEPA's evaluation);
#: ``"sum"`` adds every token, ``(B, D)`` (TS-JEPA's evaluation).
Readout = Literal["mean", "rows", "row_quarters", "flatten", "max_mean", "sum"]
READOUTS = ("mean", "rows", "row_quarters", "flatten", "max_mean", "sum")
#: How many stretches of a row ``"row_quarters"`` averages separately.
ROW_SEGMENTS = 4


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


def check_readout(readout: str) -> None:
    """Raise a clear error for an unknown :data:`Readout`."""
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")


def masked_mean(tokens: Tensor, valid: Tensor | None, dim: int = 1) -> Tensor:
    """Mean of ``tokens`` over ``dim``, counting only the tokens that ``valid`` (same shape without the feature
    axis) marks True; the plain mean when ``valid`` is None."""
    if valid is None:
        return tokens.mean(dim=dim)
    weight = valid.unsqueeze(-1).to(tokens.dtype)
    return (tokens * weight).sum(dim=dim) / weight.sum(dim=dim).clamp_min(1)


def masked_max(tokens: Tensor, valid: Tensor | None, dim: int = 1) -> Tensor:
    """Maximum of ``tokens`` over ``dim`` among the tokens that ``valid`` marks True (0 where none is); the plain
    maximum when ``valid`` is None."""
    if valid is None:
        return tokens.amax(dim=dim)
    keep = valid.unsqueeze(-1)
    largest = tokens.masked_fill(~keep, float("-inf")).amax(dim=dim)
    return torch.where(keep.any(dim=dim), largest, 0.0)


def read_out(tokens: Tensor, layout: TokenLayout, readout: Readout, valid: Tensor | None = None) -> Tensor:
    """One vector per sample from encoded ``tokens`` ``(B, N, D)`` laid out as ``layout`` (see :data:`Readout`).

    ``valid`` ``(B, N)`` (padding tokens False) keeps padding out: means and maxima count only valid tokens, and
    ``"flatten"`` and ``"sum"`` set the features of padding tokens to 0."""
    check_readout(readout)
    if readout == "mean":
        return masked_mean(tokens, valid)
    if readout == "max_mean":
        return torch.cat([masked_max(tokens, valid), masked_mean(tokens, valid)], dim=-1)
    if readout in ("flatten", "sum"):
        kept = tokens if valid is None else tokens * valid.unsqueeze(-1)
        return kept.flatten(1) if readout == "flatten" else kept.sum(dim=1)
    if len(layout.shape) != 2 or layout.num_tokens != tokens.shape[1]:
        raise ValueError(
            f"readout={readout!r} needs every token of a 2-D token grid, got layout {layout.kind!r} of shape "
            f"{layout.shape} for {tokens.shape[1]} tokens"
        )
    rows, columns = layout.shape  # row-major grid: average each row's tokens, concatenate the rows
    grid = tokens.unflatten(1, (rows, columns))
    grid_valid = None if valid is None else valid.unflatten(1, (rows, columns))
    if readout == "rows":
        return masked_mean(grid, grid_valid, dim=2).flatten(1)
    if columns < ROW_SEGMENTS:
        raise ValueError(f"readout='row_quarters' needs at least {ROW_SEGMENTS} tokens per row, got {layout.shape}")
    parts = torch.tensor_split(grid, ROW_SEGMENTS, dim=2)
    valid_parts = [None] * ROW_SEGMENTS if grid_valid is None else torch.tensor_split(grid_valid, ROW_SEGMENTS, dim=2)
    means = [masked_mean(part, part_valid, dim=2) for part, part_valid in zip(parts, valid_parts, strict=True)]
    return torch.stack(means, dim=2).flatten(1)  # (B, rows, segments, D): each row's stretches in time order
