"""Masks for patched time series on a ``(C, P)`` (channel x time) or ``(P,)`` token layout, vectorised.

Token ``c * P + p`` is channel ``c``'s patch ``p`` (the channel-major order of :class:`ChannelPatchTokenizer`); a
``(P,)`` layout is treated as one channel. Most samplers choose time patches and expand them over every channel (a
masked time patch is masked in all channels); :class:`RandomPatchMaskSampler` with ``share_channels=False`` draws
per (sample, channel) (TS-JEPA's per-sample draw applied to each channel), and :class:`TubeMaskSampler` masks time
spans in a subset of channels.

:class:`AxisSpanMaskSampler` is the span mechanism of the project's grids: time spans shared by all leads
(:class:`SharedTimeSpanMaskSampler`) and A-JEPA's time spans and frequency bands
(:mod:`~jepa_lightning.masks.time_frequency`) are its presets. :class:`TimeSpanUnionMaskSampler` is ECG-JEPA
(Kim)'s official mask: one union of time spans per batch.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from jepa_lightning.masks.base import MaskSampler, check_count, check_range, check_ratio, first_true_indices, to_device
from jepa_lightning.tokens import TokenLayout


def series_shape(layout: TokenLayout, name: str) -> tuple[int, int]:
    """``(channels, patches)`` of a ``(C, P)`` or ``(P,)`` layout (``channels = 1`` for the latter)."""
    if len(layout.shape) not in (1, 2) or layout.num_tokens != math.prod(layout.shape):
        raise ValueError(f"{name} needs a (C, P) or (P,) token layout, got shape {layout.shape}")
    return (layout.shape[0], layout.shape[1]) if len(layout.shape) == 2 else (1, layout.shape[0])


def expand_across(positions: Tensor, axis: int, grid: tuple[int, int]) -> Tensor:
    """Positions ``(..., K)`` along ``axis`` of a row-major ``(rows, cols)`` grid -> token indices ``(..., K * other)``
    of those columns (``axis=1``: time patches in every channel) or rows (``axis=0``) across the other axis, in
    ascending token order when the positions ascend."""
    rows, cols = grid
    if axis == 1:
        return (torch.arange(rows, device=positions.device)[:, None] * cols + positions.unsqueeze(-2)).flatten(-2)
    return (positions.unsqueeze(-1) * cols + torch.arange(cols, device=positions.device)).flatten(-2)


def span_length(length: int, ratio: float) -> int:
    """The span-length rule of every span sampler here: ``max(1, round(ratio * length))`` of ``length`` positions."""
    return max(1, round(ratio * length))


def uniform_in(bounds: tuple[float, float], draw: float) -> float:
    """The point ``draw`` in [0, 1) of the way from ``low`` to ``high``."""
    return bounds[0] + draw * (bounds[1] - bounds[0])


def split_count(num_patches: int, ratio: float, name: str) -> int:
    """Number of target patches ``max(1, round(ratio * P))``; at least one patch must remain as context."""
    count = max(1, round(ratio * num_patches))
    if count >= num_patches:
        raise ValueError(f"{name}: {num_patches} patches leave no context at target_ratio={ratio}; lower it")
    return count


class RandomPatchMaskSampler(MaskSampler):
    """TS-JEPA's random masking: per sample a random ``round(target_ratio * P)`` of the time patches is one
    target group, the rest is the context (same sizes in every sample, so nothing is truncated).

    With ``share_channels`` (default) the same patches are masked in every channel (whole time columns of a
    ``(C, P)`` grid); otherwise each (sample, channel) draws its own patches. Indices are in ascending order.
    """

    def __init__(self, target_ratio: float = 0.5, share_channels: bool = True) -> None:
        check_ratio("target_ratio", target_ratio)
        self.target_ratio = target_ratio
        self.share_channels = share_channels

    def __call__(
        self,
        layout: TokenLayout,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str,
        progress: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        channels, patches = series_shape(layout, type(self).__name__)
        count = split_count(patches, self.target_ratio, type(self).__name__)
        draws = 1 if self.share_channels else channels
        scores = torch.rand(batch_size, draws, patches, generator=generator, device=generator.device)
        order = scores.argsort(dim=-1)
        target_t = order[..., :count].sort(dim=-1).values  # (B, draws, K)
        context_t = order[..., count:].sort(dim=-1).values
        if self.share_channels:
            target_idx = expand_across(target_t[:, 0], 1, (channels, patches))
            context_idx = expand_across(context_t[:, 0], 1, (channels, patches))
        else:
            offsets = (torch.arange(channels, device=order.device) * patches)[:, None]
            target_idx, context_idx = (target_t + offsets).flatten(1), (context_t + offsets).flatten(1)
        return to_device((context_idx, target_idx.unsqueeze(1)), device)


class ForecastMaskSampler(MaskSampler):
    """TS-JEPA's forecast-like masking: the first ``P - K`` time patches are the context and the last
    ``K = round(target_ratio * P)`` one target group, in every channel and every sample (no randomness)."""

    relative_to_end = True

    def __init__(self, target_ratio: float = 0.5) -> None:
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
        channels, patches = series_shape(layout, type(self).__name__)
        count = split_count(patches, self.target_ratio, type(self).__name__)
        steps = torch.arange(patches, device=device)
        context_idx = expand_across(steps[: patches - count], 1, (channels, patches))
        target_idx = expand_across(steps[patches - count :], 1, (channels, patches))
        return context_idx.repeat(batch_size, 1), target_idx.repeat(batch_size, 1, 1)


class AxisSpanMaskSampler(MaskSampler):
    """Targets: ``num_targets`` contiguous spans along one axis of a ``(rows, cols)`` grid, each covering the
    whole other axis (``axis=1``: time spans through every channel or frequency row; ``axis=0``: bands of rows
    through all time); the context is every row/column no span covers. A ``(P,)`` layout is one row.

    Per batch one ratio ``r ~ U(span_ratio)`` sets the span length ``L = max(1, round(r * length))`` (``length``
    the grid size along ``axis``), so all targets in a batch have the same size; per sample the spans start at
    independent uniform positions (they may overlap each other). Contexts are truncated per column (per row for
    ``axis=0``) to the batch's fewest uncovered ones, keeping the first, so each context is still whole columns.
    ``num_targets * L_max < length`` is required so a context always remains.
    """

    def __init__(self, axis: int = 1, num_targets: int = 4, span_ratio: tuple[float, float] = (0.175, 0.225)) -> None:
        if axis not in (0, 1):
            raise ValueError(f"axis must be 0 (rows) or 1 (columns / time), got {axis}")
        check_range("span_ratio", span_ratio)
        check_count("num_targets", num_targets)
        self.axis = axis
        self.num_targets = num_targets
        self.span_ratio = span_ratio

    def __call__(
        self,
        layout: TokenLayout,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str,
        progress: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        name = type(self).__name__
        grid = series_shape(layout, name)
        if len(layout.shape) == 1 and self.axis == 0:
            raise ValueError(f"{name} spans the rows of a 2-D grid, got a 1-D layout of shape {layout.shape}")
        length = grid[self.axis]
        longest = span_length(length, self.span_ratio[1])
        if self.num_targets * longest >= length:
            raise ValueError(
                f"{name}: {length} positions along axis {self.axis} of a {grid} grid are too few for "
                f"{self.num_targets} spans of up to {longest} plus a context; lower num_targets or the span ratio."
            )
        sample_device = generator.device
        r = float(torch.rand(1, generator=generator, device=sample_device))
        width = span_length(length, uniform_in(self.span_ratio, r))
        starts = torch.randint(
            0, length - width + 1, (batch_size, self.num_targets, 1), generator=generator, device=sample_device
        )
        positions = torch.arange(length, device=sample_device)
        spans = starts + positions[:width]  # (B, M, L)
        uncovered = ~((positions >= starts) & (positions < starts + width)).any(dim=1)  # (B, length)
        kept = first_true_indices(uncovered, int(uncovered.sum(dim=1).min()))
        return to_device((expand_across(kept, self.axis, grid), expand_across(spans, self.axis, grid)), device)


class SharedTimeSpanMaskSampler(AxisSpanMaskSampler):
    """``num_targets`` contiguous time spans shared by all channels (leads), each a target group, drawn per sample;
    span ratio ``U(0.175, 0.225)`` of the time patches (ECG-JEPA Kim's spans as I-JEPA-style target groups; Kim's
    official mask is :class:`TimeSpanUnionMaskSampler`). :class:`AxisSpanMaskSampler` along time."""

    def __init__(self, num_targets: int = 4, span_ratio: tuple[float, float] = (0.175, 0.225)) -> None:
        super().__init__(axis=1, num_targets=num_targets, span_ratio=span_ratio)


class TimeSpanUnionMaskSampler(MaskSampler):
    """ECG-JEPA (Kim)'s official block mask: one mask for the whole batch, the union of ``num_spans`` time spans,
    shared by all channels (leads), is one target group; the other time patches are the context.

    Span ``i`` has its own ratio ``r_i ~ U(span_ratio)`` and ``L_i = max(1, floor(r_i * P))`` patches and starts
    uniformly in ``[0, P - L_i - 1]`` (the official ``randperm(P - L_i)[0]``: the last patch is never masked, so a
    context always remains); spans may overlap. Draws are made in the official order (per span: the ratio, then the
    start's permutation), so a generator seeded like the official global one gives the official mask.
    """

    def __init__(self, num_spans: int = 4, span_ratio: tuple[float, float] = (0.175, 0.225)) -> None:
        check_count("num_spans", num_spans)
        check_range("span_ratio", span_ratio, limit="< 1")
        self.num_spans = num_spans
        self.span_ratio = span_ratio

    def __call__(
        self,
        layout: TokenLayout,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str,
        progress: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        grid = series_shape(layout, type(self).__name__)
        patches = grid[1]
        if patches < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 time patches, got {patches}")
        sample_device = generator.device
        masked = torch.zeros(patches, dtype=torch.bool, device=sample_device)
        for _ in range(self.num_spans):
            ratio = uniform_in(self.span_ratio, float(torch.rand(1, generator=generator, device=sample_device)))
            length = max(1, int(patches * ratio))  # < patches, as ratio < 1
            start = int(torch.randperm(patches - length, generator=generator, device=sample_device)[0])
            masked[start : start + length] = True
        steps = torch.arange(patches, device=sample_device)
        context_idx = expand_across(steps[~masked], 1, grid).expand(batch_size, -1)
        target_idx = expand_across(steps[masked], 1, grid).expand(batch_size, 1, -1)
        return to_device((context_idx.contiguous(), target_idx.contiguous()), device)


class TubeMaskSampler(MaskSampler):
    """Tubes on a ``(C, P)`` channel x time grid (V-JEPA's tubes with channels in place of space): each of
    ``num_targets`` target groups is a contiguous time span of ``L_t`` patches in a set of ``K_c`` channels.

    Per batch ``L_t = max(1, round(U(time_ratio) * P))`` and ``K_c = max(1, round(U(channel_ratio) * C))``; per
    sample and target the span starts uniformly and the channels are a uniform random subset (sorted), or with
    ``contiguous_channels`` a run of neighbouring channels (for montages whose order is spatial). Targets may
    overlap. The context is every token no tube covers, truncated to the batch's fewest by dropping a uniform
    random subset of each sample's extra context tokens (so no channel or time range is favoured). A context
    must always remain: ``num_targets * L_t_max < P`` or ``num_targets * K_c_max < C``. A ``(P,)`` layout is one
    channel: tubes are then time spans.
    """

    def __init__(
        self,
        num_targets: int = 4,
        time_ratio: tuple[float, float] = (0.15, 0.2),
        channel_ratio: tuple[float, float] = (0.25, 0.5),
        contiguous_channels: bool = False,
    ) -> None:
        check_range("time_ratio", time_ratio)
        check_range("channel_ratio", channel_ratio)
        check_count("num_targets", num_targets)
        self.num_targets = num_targets
        self.time_ratio = time_ratio
        self.channel_ratio = channel_ratio
        self.contiguous_channels = contiguous_channels

    def __call__(
        self,
        layout: TokenLayout,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str,
        progress: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        channels, patches = series_shape(layout, type(self).__name__)
        longest, widest = span_length(patches, self.time_ratio[1]), span_length(channels, self.channel_ratio[1])
        if self.num_targets * longest >= patches and self.num_targets * widest >= channels:
            raise ValueError(
                f"TubeMaskSampler: a ({channels}, {patches}) grid is too few for {self.num_targets} tubes of up to "
                f"{widest} channels x {longest} patches with a context guaranteed; lower num_targets or the ratios."
            )
        sample_device = generator.device
        r = torch.rand(2, generator=generator, device=sample_device).tolist()
        length = span_length(patches, uniform_in(self.time_ratio, r[0]))
        width = span_length(channels, uniform_in(self.channel_ratio, r[1]))
        shape = (batch_size, self.num_targets, 1)
        times = torch.randint(0, patches - length + 1, shape, generator=generator, device=sample_device)
        times = times + torch.arange(length, device=sample_device)  # (B, M, L_t)
        if self.contiguous_channels:
            lanes = torch.randint(0, channels - width + 1, shape, generator=generator, device=sample_device)
            lanes = lanes + torch.arange(width, device=sample_device)
        else:
            scores = torch.rand(batch_size, self.num_targets, channels, generator=generator, device=sample_device)
            lanes = scores.argsort(dim=-1)[..., :width].sort(dim=-1).values  # (B, M, K_c)
        target_idx = (lanes.unsqueeze(-1) * patches + times.unsqueeze(-2)).flatten(-2)  # (B, M, K_c * L_t)
        covered = torch.zeros(batch_size, channels * patches, dtype=torch.bool, device=sample_device)
        covered.scatter_(1, target_idx.flatten(1), True)
        count = int((~covered).sum(dim=1).min())
        scores = torch.rand(covered.shape, generator=generator, device=sample_device).masked_fill(covered, 2.0)
        context_idx = scores.argsort(dim=-1)[:, :count].sort(dim=-1).values
        return to_device((context_idx, target_idx), device)


class TimeBlockMaskSampler(MaskSampler):
    """ECG-JEPA (Weimann & Conrad): keep ``ceil(k * P)`` time patches as the context, ``k ~ U(keep_ratio)`` per
    batch, and mask the rest as blocks of at least ``min_block_length`` consecutive patches; all masked patches
    are one target group. On a ``(C, P)`` grid the time patches are shared by all channels.

    Per sample the number of masked blocks ``n`` is uniform in ``[1, n_max]`` (``n_max`` as many as fit); block
    lengths are ``min_block_length`` plus a random split of the remaining masked patches, and the kept patches are
    split randomly into the ``n + 1`` gaps around the blocks (inner gaps at least one patch, so blocks never
    touch). Context and target sizes are the same in every sample (nothing is truncated).
    """

    def __init__(self, keep_ratio: tuple[float, float] = (0.15, 0.25), min_block_length: int = 10) -> None:
        check_range("keep_ratio", keep_ratio, limit="< 1")  # some patches must be left to mask
        check_count("min_block_length", min_block_length)
        self.keep_ratio = keep_ratio
        self.min_block_length = min_block_length

    def __call__(
        self,
        layout: TokenLayout,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str,
        progress: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        channels, patches = series_shape(layout, type(self).__name__)
        fewest_masked = patches - math.ceil(self.keep_ratio[1] * patches)
        if fewest_masked < self.min_block_length:
            raise ValueError(
                f"TimeBlockMaskSampler: {patches} time patches are too few for a masked block of "
                f"min_block_length={self.min_block_length} at keep_ratio={self.keep_ratio}; use longer series."
            )
        sample_device = generator.device
        draw = float(torch.rand(1, generator=generator, device=sample_device))
        keep = math.ceil(uniform_in(self.keep_ratio, draw) * patches)
        masked = patches - keep
        most_blocks = min(masked // self.min_block_length, keep + 1)
        blocks = torch.randint(1, most_blocks + 1, (batch_size, 1), generator=generator, device=sample_device)
        slots = torch.arange(most_blocks + 1, device=sample_device)
        extra = random_split(masked - blocks * self.min_block_length, blocks, most_blocks, generator)
        block_lengths = torch.where(slots[:most_blocks] < blocks, extra + self.min_block_length, 0)
        gaps = random_split(keep - (blocks - 1), blocks + 1, most_blocks + 1, generator)
        gaps = gaps + ((slots >= 1) & (slots < blocks)).long()  # inner gaps keep at least one patch
        segments = torch.stack([gaps[:, :-1], block_lengths], dim=-1).flatten(1)  # gap, block, gap, ..., block
        ends = torch.cat([segments, gaps[:, -1:]], dim=1).cumsum(dim=1)
        steps = torch.arange(patches, device=sample_device).expand(batch_size, -1).contiguous()
        is_masked = torch.searchsorted(ends, steps, right=True) % 2 == 1  # odd segments are blocks
        context_t = first_true_indices(~is_masked, keep)
        target_t = first_true_indices(is_masked, masked)
        grid = (channels, patches)
        return to_device((expand_across(context_t, 1, grid), expand_across(target_t, 1, grid).unsqueeze(1)), device)


def random_split(total: Tensor, parts: Tensor, slots: int, generator: torch.Generator) -> Tensor:
    """Split each row's ``total`` ``(B, 1)`` into ``parts`` ``(B, 1)`` random non-negative integers summing to it,
    returned in ``slots`` columns (``(B, slots)``, the columns from ``parts`` on are 0): the gaps between sorted
    uniform cut points, floored to integers."""
    batch = total.shape[0]
    cuts = torch.rand(batch, slots - 1, generator=generator, device=generator.device)
    cuts = torch.where(torch.arange(slots - 1, device=cuts.device) < parts - 1, cuts, 1.0).sort(dim=-1).values
    bounds = torch.cat([torch.zeros_like(total), (cuts * total).floor().long(), total], dim=1)
    return bounds.diff(dim=1)
