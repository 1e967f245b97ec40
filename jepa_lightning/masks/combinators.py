"""Samplers made of other samplers: one chosen at random per batch, an annealing curriculum from one family to
another over training (A-JEPA), or several configurations on every sample (V-JEPA's multi-mask)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from jepa_lightning.masks.base import MaskSampler
from jepa_lightning.tokens import TokenLayout


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

    @property
    def relative_to_end(self) -> bool:  # type: ignore[override]
        return any(sampler.relative_to_end for sampler in self.samplers)

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

    @property
    def relative_to_end(self) -> bool:  # type: ignore[override]
        return self.early.relative_to_end or self.late.relative_to_end

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


class MultiMaskSampler(MaskSampler):
    """Every one of ``samplers`` masks every sample at each step, each with its own context: V-JEPA's multi-mask
    training (facebookresearch/jepa@51c59d518fc63c08464af6de585f78ac0c7ed4d5 app/vjepa/train.py: the collator draws
    one (context, target) pair per mask configuration, the encoder and predictor run once per pair
    (``MultiMaskWrapper``, ``PredictorMultiMaskWrapper`` with a mask token per configuration), and the loss is the
    mean over the configurations of each one's mean L1).

    :class:`~jepa_lightning.methods.JEPA` draws them with :meth:`configurations`, in the order of ``samplers``, and
    averages the loss; a single ``(context_idx, target_idx)`` pair (``__call__``) does not exist for it.
    """

    def __init__(self, samplers: Sequence[MaskSampler]) -> None:
        if not samplers:
            raise ValueError("MultiMaskSampler needs at least one sampler")
        if any(sampler.num_configurations != 1 for sampler in samplers):
            raise ValueError("MultiMaskSampler takes samplers of one configuration each (no nested MultiMaskSampler)")
        self.samplers = list(samplers)

    @property
    def num_configurations(self) -> int:  # type: ignore[override]
        return len(self.samplers)

    @property
    def relative_to_end(self) -> bool:  # type: ignore[override]
        return any(sampler.relative_to_end for sampler in self.samplers)

    def configurations(
        self,
        layout: TokenLayout,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str,
        progress: float = 0.0,
    ) -> list[tuple[Tensor, Tensor]]:
        return [sampler(layout, batch_size, generator, device, progress) for sampler in self.samplers]

    def __call__(
        self,
        layout: TokenLayout,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str,
        progress: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        raise TypeError(
            f"MultiMaskSampler draws {len(self.samplers)} (context, target) pairs per step, one per configuration: "
            "call .configurations(...) (JEPA does), or use RandomChoiceMaskSampler for one pair per batch"
        )
