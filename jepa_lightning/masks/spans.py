"""Contiguous-span masking on a 1-D token sequence (Point-JEPA, ECG/time-series patches), vectorised."""

from __future__ import annotations

import torch
from torch import Tensor

from jepa_lightning.masks.base import MaskSampler, check_count, check_range, first_true_indices, to_device
from jepa_lightning.tokens import TokenLayout


class ContiguousSpanMaskSampler(MaskSampler):
    """Point-JEPA's span masks: ``num_targets`` contiguous target spans and one contiguous context run.

    Per batch one target ratio ``r ~ U(target_ratio)`` sets the span length ``L = max(1, floor(r * N))``;
    per sample ``num_targets`` spans of ``L`` tokens start at independent uniform positions (they may
    overlap each other). The context is "a contiguous run of the remaining tokens": the tokens covered by no
    target, taken in sequence order, form the remaining list of ``R`` tokens; the context is a window of
    ``max(1, floor(c * R))`` consecutive entries of that list (``c ~ U(context_ratio)``, one draw per batch)
    at a uniform position. It is therefore disjoint from the targets and contiguous in the sequence except
    where it skips over target tokens. Contexts are truncated to the batch's shortest (keeping their first
    tokens, so they stay contiguous) so they stack. Lengths are floored as in the official code
    (Ayumu-J-S/Point-JEPA, ``pointjepa/modules/target_sampler.py`` and ``context_sampler.py``).

    ``batch_shared=True`` draws the span starts and the context window once for the whole batch, as the official
    code does (every sample of a batch then has the same target and context indices); the default draws them per
    sample.

    ``N`` must leave at least one remaining token however the targets fall: ``num_targets * L_max < N`` with
    ``L_max`` the longest possible span, else a ``ValueError`` is raised.
    """

    def __init__(
        self,
        num_targets: int = 4,
        target_ratio: tuple[float, float] = (0.15, 0.2),
        context_ratio: tuple[float, float] = (0.4, 0.75),
        batch_shared: bool = False,
    ) -> None:
        for name, bounds in {"target_ratio": target_ratio, "context_ratio": context_ratio}.items():
            check_range(name, bounds)
        check_count("num_targets", num_targets)
        self.num_targets = num_targets
        self.target_ratio = target_ratio
        self.context_ratio = context_ratio
        self.batch_shared = batch_shared

    def span_length(self, num_tokens: int, ratio: float) -> int:
        """Target span length for a sequence of ``num_tokens`` tokens at target ratio ``ratio``."""
        return max(1, int(ratio * num_tokens))

    def __call__(
        self,
        layout: TokenLayout,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str,
        progress: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        if len(layout.shape) != 1:
            raise ValueError(f"ContiguousSpanMaskSampler needs a 1-D token sequence, got layout shape {layout.shape}")
        num_tokens = layout.shape[0]
        longest = self.span_length(num_tokens, self.target_ratio[1])
        if self.num_targets * longest >= num_tokens:
            raise ValueError(
                f"ContiguousSpanMaskSampler: a sequence of {num_tokens} tokens is too short for {self.num_targets} "
                f"target spans of up to {longest} tokens plus one context token; lower num_targets or target_ratio."
            )
        sample_device = generator.device
        r = torch.rand(2, generator=generator, device=sample_device).tolist()
        length = self.span_length(
            num_tokens, self.target_ratio[0] + r[0] * (self.target_ratio[1] - self.target_ratio[0])
        )
        context_ratio = self.context_ratio[0] + r[1] * (self.context_ratio[1] - self.context_ratio[0])

        rows = 1 if self.batch_shared else batch_size
        starts = torch.randint(
            0, num_tokens - length + 1, (rows, self.num_targets), generator=generator, device=sample_device
        )
        target_idx = starts.unsqueeze(-1) + torch.arange(length, device=sample_device)  # (B, M, L)

        positions = torch.arange(num_tokens, device=sample_device)
        starts = starts.unsqueeze(-1)
        covered = ((positions >= starts) & (positions < starts + length)).any(dim=1)  # (B, N)
        remaining = ~covered
        rank = remaining.cumsum(dim=1) - 1  # position of each remaining token in the remaining list
        num_remaining = remaining.sum(dim=1)  # (B,), >= 1 by the length check
        context_len = (context_ratio * num_remaining.double()).long().clamp(min=1)
        free = num_remaining - context_len + 1  # number of possible window starts
        u = torch.rand(rows, generator=generator, device=sample_device)
        first = torch.minimum((u * free).long(), free - 1).unsqueeze(-1)
        context = remaining & (rank >= first) & (rank < first + context_len.unsqueeze(-1))

        context_idx = first_true_indices(context, int(context_len.min()))
        if self.batch_shared:
            context_idx = context_idx.expand(batch_size, -1).contiguous()
            target_idx = target_idx.expand(batch_size, -1, -1).contiguous()
        return to_device((context_idx, target_idx), device)
