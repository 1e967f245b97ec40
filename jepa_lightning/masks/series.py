"""Masks for patched time series on a ``(C, P)`` (channel x time) or ``(P,)`` token layout, vectorised.

Token ``c * P + p`` is channel ``c``'s patch ``p`` (the channel-major order of :class:`ChannelPatchTokenizer`).
Samplers choose time patches and expand them over every channel (a masked time patch is masked in all
channels), except :class:`RandomPatchMaskSampler` with ``share_channels=False``, which draws per (sample,
channel) as TS-JEPA does.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from jepa_lightning.masks.base import MaskSampler, first_true_indices
from jepa_lightning.tokenizers.base import TokenLayout


def series_shape(layout: TokenLayout, name: str) -> tuple[int, int]:
    """``(channels, patches)`` of a ``(C, P)`` or ``(P,)`` layout (``channels = 1`` for the latter)."""
    if len(layout.shape) not in (1, 2) or layout.num_tokens != math.prod(layout.shape):
        raise ValueError(f"{name} needs a (C, P) or (P,) token layout, got shape {layout.shape}")
    return (layout.shape[0], layout.shape[1]) if len(layout.shape) == 2 else (1, layout.shape[0])


def expand_over_channels(time_idx: Tensor, num_channels: int, num_patches: int) -> Tensor:
    """Time-patch indices ``(..., K)`` -> token indices ``(..., C * K)`` of those patches in every channel."""
    offsets = torch.arange(num_channels, device=time_idx.device) * num_patches
    return (offsets[:, None] + time_idx.unsqueeze(-2)).flatten(-2)


def check_ratio(name: str, ratio: float) -> None:
    if not 0 < ratio < 1:
        raise ValueError(f"{name} must be in (0, 1), got {ratio}")


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
            target_idx = expand_over_channels(target_t[:, 0], channels, patches)
            context_idx = expand_over_channels(context_t[:, 0], channels, patches)
        else:
            offsets = (torch.arange(channels, device=order.device) * patches)[:, None]
            target_idx, context_idx = (target_t + offsets).flatten(1), (context_t + offsets).flatten(1)
        return context_idx.to(device, non_blocking=True), target_idx.unsqueeze(1).to(device, non_blocking=True)


class ForecastMaskSampler(MaskSampler):
    """TS-JEPA's forecast-like masking: the first ``P - K`` time patches are the context and the last
    ``K = round(target_ratio * P)`` one target group, in every channel and every sample (no randomness)."""

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
        context_idx = expand_over_channels(steps[: patches - count], channels, patches)
        target_idx = expand_over_channels(steps[patches - count :], channels, patches)
        return context_idx.repeat(batch_size, 1), target_idx.repeat(batch_size, 1, 1)


class SharedTimeSpanMaskSampler(MaskSampler):
    """ECG-JEPA (Kim): ``num_targets`` contiguous time spans shared by all channels, each a target group.

    One span ratio ``r ~ U(span_ratio)`` per batch sets the span length ``L = max(1, round(r * P))``; per sample
    the spans start at independent uniform positions (they may overlap each other). The context is every
    time patch no span covers, in all channels; contexts are truncated to the batch's shortest in time (its
    first patches), so every channel keeps the same context patches. ``num_targets * L_max < P`` is required.
    """

    def __init__(self, num_targets: int = 4, span_ratio: tuple[float, float] = (0.175, 0.225)) -> None:
        low, high = span_ratio
        if not 0 < low <= high < 1:
            raise ValueError(f"span_ratio must be a range 0 < low <= high < 1, got {span_ratio}")
        if num_targets < 1:
            raise ValueError(f"num_targets must be >= 1, got {num_targets}")
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
        channels, patches = series_shape(layout, type(self).__name__)
        longest = max(1, round(self.span_ratio[1] * patches))
        if self.num_targets * longest >= patches:
            raise ValueError(
                f"SharedTimeSpanMaskSampler: {patches} time patches are too few for {self.num_targets} spans of up "
                f"to {longest} patches plus one context patch; lower num_targets or span_ratio."
            )
        sample_device = generator.device
        r = torch.rand(1, generator=generator, device=sample_device).item()
        length = max(1, round((self.span_ratio[0] + r * (self.span_ratio[1] - self.span_ratio[0])) * patches))
        starts = torch.randint(
            0, patches - length + 1, (batch_size, self.num_targets), generator=generator, device=sample_device
        )
        spans = starts.unsqueeze(-1) + torch.arange(length, device=sample_device)  # (B, M, L) time patches
        steps = torch.arange(patches, device=sample_device)
        covered = ((steps >= starts.unsqueeze(-1)) & (steps < starts.unsqueeze(-1) + length)).any(dim=1)  # (B, P)
        context_t = first_true_indices(~covered, int((~covered).sum(dim=1).min()))
        context_idx = expand_over_channels(context_t, channels, patches)
        target_idx = expand_over_channels(spans, channels, patches)  # (B, M, C * L)
        return context_idx.to(device, non_blocking=True), target_idx.to(device, non_blocking=True)
