"""Masks ranked by a per-token saliency score: groups of tokens in rank order, each predicted from the groups before
it (DSeq-JEPA's discriminative sequence)."""

from __future__ import annotations

import torch
from torch import Tensor

from jepa_lightning.masks.base import MaskSampler, to_device
from jepa_lightning.tokens import TokenLayout


def saliency_groups(scores: Tensor, num_groups: int) -> Tensor:
    """Token indices ``(B, num_groups, N // num_groups)`` of ``scores`` ``(B, N)`` in rank order: group ``g`` holds the
    tokens ranked ``g s .. (g + 1) s - 1`` by descending score (``s = N // num_groups``; ties: the lower index
    first), each group in rank order; the ``N mod num_groups`` least salient tokens belong to none."""
    size = scores.shape[1] // num_groups
    if size < 1:
        raise ValueError(f"num_groups={num_groups} is more than the {scores.shape[1]} tokens")
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    return order[:, : num_groups * size].reshape(scores.shape[0], num_groups, size)


def sequential_masks(groups: Tensor) -> list[tuple[Tensor, Tensor]]:
    """The configurations of ranked ``groups`` ``(B, G, s)``: for ``k = 1 .. G - 1``, the groups ranked before ``k``
    as context ``(B, k s)`` (ascending token order) and group ``k`` as the one target group ``(B, 1, s)``."""
    return [
        (torch.sort(groups[:, :k].flatten(1), dim=1).values, groups[:, k : k + 1]) for k in range(1, groups.shape[1])
    ]


class SaliencyRankedMaskSampler(MaskSampler):
    """Groups of tokens ranked by saliency, predicted one after another, each from the groups before it (DSeq-JEPA).

    The method passes per-token ``scores`` ``(B, N)`` (higher: more salient; see ``needs_scores`` and
    :meth:`~jepa_lightning.methods.JEPA.token_scores`) to :meth:`configurations`. The tokens are split into
    ``num_groups`` equal groups by rank (:func:`saliency_groups`), and the step has ``num_groups - 1`` mask
    configurations in rank order (:func:`sequential_masks`): configuration ``k`` sees the groups ranked before ``k``
    as its context and predicts group ``k``. The most salient group is never a target; nothing of a group or of
    the groups after it reaches its prediction. Works on any layout (the ranking ignores geometry).

    ``fallback`` (e.g. I-JEPA's :class:`~jepa_lightning.masks.MultiBlockMaskSampler`) mixes in another sampler: a step
    uses the ranked groups with a probability that moves linearly from ``ranked_probability[0]`` at the start of
    training to ``ranked_probability[1]`` at its end (DSeq-JEPA's lambda, 0 -> 1, so that the teacher's saliency is
    used once it means something), drawn from the step's generator, and the fallback's masks otherwise. Without a
    fallback every step is ranked. The scores are ranked on the host (one copy from the accelerator per step).
    """

    needs_scores = True

    def __init__(
        self,
        num_groups: int = 5,
        fallback: MaskSampler | None = None,
        ranked_probability: tuple[float, float] = (0.0, 1.0),
    ) -> None:
        if num_groups < 2:
            raise ValueError(f"num_groups must be >= 2 (a context group and a target group), got {num_groups}")
        low, high = ranked_probability
        if not (0 <= low <= 1 and 0 <= high <= 1):
            raise ValueError(f"ranked_probability must be two probabilities in [0, 1], got {ranked_probability}")
        if fallback is not None and fallback.needs_scores:
            raise ValueError("the fallback sampler must not need scores itself")
        self.num_groups = num_groups
        self.fallback = fallback
        self.ranked_probability = (float(low), float(high))

    @property
    def num_configurations(self) -> int:  # type: ignore[override]
        return max(self.num_groups - 1, 1 if self.fallback is None else self.fallback.num_configurations)

    @property
    def relative_to_end(self) -> bool:  # type: ignore[override]
        return self.fallback is not None and self.fallback.relative_to_end

    def ranked_probability_at(self, progress: float) -> float:
        """The probability that a step at ``progress`` in [0, 1] uses the ranked groups (1 without a fallback)."""
        if self.fallback is None:
            return 1.0
        low, high = self.ranked_probability
        return low + (high - low) * progress

    def configurations(
        self,
        layout: TokenLayout,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str,
        progress: float = 0.0,
        scores: Tensor | None = None,
    ) -> list[tuple[Tensor, Tensor]]:
        if scores is None:
            raise ValueError("SaliencyRankedMaskSampler ranks tokens by their scores: pass scores (B, N)")
        if scores.shape != (batch_size, layout.num_tokens):
            raise ValueError(f"scores must be (B, N) = ({batch_size}, {layout.num_tokens}), got {tuple(scores.shape)}")
        if self.fallback is not None:
            draw = torch.rand((), generator=generator, device=generator.device).item()
            if draw >= self.ranked_probability_at(progress):
                return self.fallback.configurations(layout, batch_size, generator, device, progress)
        groups = saliency_groups(scores.detach().float().cpu(), self.num_groups)
        return [to_device(masks, device) for masks in sequential_masks(groups)]

    def __call__(
        self,
        layout: TokenLayout,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str,
        progress: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        raise TypeError(
            "SaliencyRankedMaskSampler draws several configurations from per-token scores: call configurations(..., "
            "scores=...) (JEPA does, for a sampler whose needs_scores is True)"
        )
