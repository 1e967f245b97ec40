"""Time-frequency masks on a (frequency, time) token grid (A-JEPA), and samplers that mix or anneal others.

The grid is the layout of :class:`~jepa_lightning.tokenizers.audio.LogMelPatchTokenizer`: ``layout.shape``
is ``(F, T)`` with frequency as the first (row) axis and tokens in row-major order.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from jepa_lightning.masks.base import MaskSampler, first_true_indices
from jepa_lightning.tokenizers.base import TokenLayout


class _AxisBandMaskSampler(MaskSampler):
    """Targets: ``num_targets`` bands spanning the whole grid along one axis; context: every other token.

    Per batch one width ratio ``r ~ U(width_ratio)`` sets the band width ``w = max(1, round(r * L))`` (``L``
    the grid length along the banded axis), so all targets in a batch have the same size; per sample the
    ``num_targets`` bands start at independent uniform positions (they may overlap each other). The context
    is every token covered by no band, truncated to the batch's shortest (keeping the first tokens in
    raster order) so contexts stack. ``num_targets * w_max < L`` must hold so a context always remains.
    """

    axis: int
    name: str

    def __init__(self, num_targets: int = 2, width_ratio: tuple[float, float] = (0.1, 0.2)) -> None:
        if not 0 < width_ratio[0] <= width_ratio[1] <= 1:
            raise ValueError(f"width_ratio must be a range 0 < low <= high <= 1, got {width_ratio}")
        if num_targets < 1:
            raise ValueError(f"num_targets must be >= 1, got {num_targets}")
        self.num_targets = num_targets
        self.width_ratio = width_ratio

    @staticmethod
    def band_width(length: int, ratio: float) -> int:
        """Band width along an axis of ``length`` tokens at width ratio ``ratio``."""
        return max(1, round(ratio * length))

    def __call__(
        self,
        layout: TokenLayout,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str,
        progress: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        if len(layout.shape) != 2:
            raise ValueError(f"{self.name} needs a 2-D (frequency, time) token grid, got layout shape {layout.shape}")
        grid = tuple(layout.shape)
        length, other = grid[self.axis], grid[1 - self.axis]
        widest = self.band_width(length, self.width_ratio[1])
        if self.num_targets * widest >= length:
            raise ValueError(
                f"{self.name}: {length} tokens along the banded axis of a {grid} grid is too few for "
                f"{self.num_targets} bands of up to {widest} tokens plus a context; lower num_targets or width_ratio."
            )
        sample_device = generator.device
        r = float(torch.rand(1, generator=generator, device=sample_device))
        width = self.band_width(length, self.width_ratio[0] + r * (self.width_ratio[1] - self.width_ratio[0]))
        starts = torch.randint(
            0, length - width + 1, (batch_size, self.num_targets, 1), generator=generator, device=sample_device
        )
        positions = torch.arange(length, device=sample_device)
        band = (positions >= starts) & (positions < starts + width)  # (B, M, L)
        shape = (batch_size, self.num_targets, *grid)
        targets = (band.unsqueeze(-1) if self.axis == 0 else band.unsqueeze(-2)).expand(shape).flatten(2)
        context = ~targets.any(dim=1)  # (B, N)

        num_context = int(context.sum(1).min())
        context_idx = first_true_indices(context, num_context)
        target_idx = first_true_indices(targets, width * other)
        return context_idx.to(device, non_blocking=True), target_idx.to(device, non_blocking=True)


class TimeSpanMaskSampler(_AxisBandMaskSampler):
    """Targets are time spans: contiguous runs of time columns covering every frequency row."""

    axis = 1
    name = "TimeSpanMaskSampler"


class FrequencyBandMaskSampler(_AxisBandMaskSampler):
    """Targets are frequency bands: contiguous runs of frequency rows covering every time column."""

    axis = 0
    name = "FrequencyBandMaskSampler"


def _choose(generator: torch.Generator, probabilities: Tensor) -> int:
    """One categorical draw (per batch) from ``generator``."""
    u = torch.rand(1, generator=generator, device=generator.device).cpu()
    return min(int((probabilities.cumsum(0) <= u).sum()), probabilities.numel() - 1)


class RandomChoiceMaskSampler(MaskSampler):
    """Per batch, one of ``samplers`` (chosen with ``weights``, uniform by default) masks the whole batch.

    E.g. ``RandomChoiceMaskSampler([TimeSpanMaskSampler(), FrequencyBandMaskSampler()])`` alternates time
    spans and frequency bands at random. One choice per batch keeps target sizes equal within the batch.
    """

    def __init__(self, samplers: Sequence[MaskSampler], weights: Sequence[float] | None = None) -> None:
        if not samplers:
            raise ValueError("RandomChoiceMaskSampler needs at least one sampler")
        weights = [1.0] * len(samplers) if weights is None else list(weights)
        if len(weights) != len(samplers) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"weights must be {len(samplers)} non-negative numbers with a positive sum, got {weights}")
        self.samplers = list(samplers)
        self.probabilities = torch.tensor(weights, dtype=torch.float64) / sum(weights)

    def __call__(
        self,
        layout: TokenLayout,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str,
        progress: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        sampler = self.samplers[_choose(generator, self.probabilities)]
        return sampler(layout, batch_size, generator, device, progress)


class CurriculumMaskSampler(MaskSampler):
    """Anneals from ``early`` masks to ``late`` masks over training (A-JEPA's curriculum masking).

    At progress ``p`` the whole batch is masked by ``late`` with probability
    ``clamp((p - start) / (end - start), 0, 1)`` and by ``early`` otherwise: one uniform draw per batch
    from the generator (always made, so the random stream does not depend on ``p``). So ``early`` alone
    is used up to ``start``, ``late`` alone from ``end``. ``late`` may be a list of samplers, then one of
    them is picked uniformly per batch (see :class:`RandomChoiceMaskSampler`), e.g. time spans and
    frequency bands. ``progress`` is passed on to the chosen sampler.
    """

    def __init__(
        self,
        early: MaskSampler,
        late: MaskSampler | Sequence[MaskSampler],
        start: float = 0.0,
        end: float = 1.0,
    ) -> None:
        if not 0 <= start < end:
            raise ValueError(f"CurriculumMaskSampler needs 0 <= start < end, got start={start}, end={end}")
        self.early = early
        self.late = late if isinstance(late, MaskSampler) else RandomChoiceMaskSampler(late)
        self.start = start
        self.end = end

    def late_probability(self, progress: float) -> float:
        """Probability of using ``late`` at training progress ``progress``."""
        return min(1.0, max(0.0, (progress - self.start) / (self.end - self.start)))

    def __call__(
        self,
        layout: TokenLayout,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str,
        progress: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        u = float(torch.rand(1, generator=generator, device=generator.device))
        sampler = self.late if u < self.late_probability(progress) else self.early
        return sampler(layout, batch_size, generator, device, progress)
