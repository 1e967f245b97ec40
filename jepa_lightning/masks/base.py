"""The mask sampler contract and the seeding that makes masks reproducible across resumes and ranks."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

from jepa_lightning.tokens import TokenLayout


def mask_generator(seed: int, step: int, rank: int, device: torch.device | str, stream: int = 0) -> torch.Generator:
    """A generator seeded from (seed, step, rank, stream): a resumed run draws the same masks, ranks and
    streams (e.g. training vs validation) draw different ones."""
    state = np.random.SeedSequence([seed, step, rank, stream]).generate_state(1, dtype=np.uint64)[0]
    generator = torch.Generator(device=device)
    generator.manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)
    return generator


class MaskSampler:
    """Chooses, per sample, which tokens the student sees (context) and which it predicts (targets).

    ``__call__`` returns ``context_idx`` of shape ``(B, Nc)`` and ``target_idx`` of shape ``(B, M, Nt)``:
    token indices into the layout's row-major order, for ``M`` target groups per sample. Sampling is
    vectorised over the batch and runs where ``generator`` lives; results are moved to ``device`` (with
    :func:`to_device`). Methods sample on the host (a CPU generator): the few scalar decisions a sampler makes
    (block sizes, the shortest context) then never synchronise the host with an accelerator.
    ``progress`` in [0, 1] is the training progress, for samplers that anneal. ``relative_to_end``: the targets are
    placed from the end of the grid (a forecast), which padded series (shorter than the grid) cannot honour.
    ``needs_scores``: :meth:`configurations` takes per-token ``scores`` ``(B, N)`` as well, which the method computes
    before drawing (:meth:`~jepa_lightning.methods.JEPA.token_scores`; DSeq-JEPA's saliency ranking).
    """

    relative_to_end: bool = False
    needs_scores: bool = False

    def __call__(
        self,
        layout: TokenLayout,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str,
        progress: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    #: How many mask configurations :meth:`configurations` draws per step.
    num_configurations: int = 1

    def configurations(
        self,
        layout: TokenLayout,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str,
        progress: float = 0.0,
    ) -> list[tuple[Tensor, Tensor]]:
        """Every mask configuration of one step, each a ``(context_idx, target_idx)`` pair with its own context:
        the one pair of ``__call__`` for most samplers, several for
        :class:`~jepa_lightning.masks.MultiMaskSampler` (the method averages the loss over them)."""
        return [self(layout, batch_size, generator, device, progress)]


def check_ratio(name: str, ratio: float) -> None:
    """``ratio`` must be a fraction strictly between 0 and 1."""
    if not 0 < ratio < 1:
        raise ValueError(f"{name} must be in (0, 1), got {ratio}")


def check_range(name: str, bounds: tuple[float, float], limit: str = "<= 1") -> None:
    """``bounds`` must be a range ``0 < low <= high``, and ``high`` within ``limit`` (``"<= 1"``, ``"< 1"`` or
    ``""`` for none)."""
    low, high = bounds
    within = {"<= 1": high <= 1, "< 1": high < 1, "": True}[limit]
    if not (0 < low <= high and within):
        raise ValueError(f"{name} must be a range 0 < low <= high{' ' + limit if limit else ''}, got {bounds}")


def check_count(name: str, count: int) -> None:
    """``count`` must be at least 1."""
    if count < 1:
        raise ValueError(f"{name} must be >= 1, got {count}")


def check_context_counts(counts: Tensor, min_context: int, empty: str, small: str) -> None:
    """What a sampler says once its redraws are spent: a sample without a context token is an error (``empty``), one
    whose context keeps ``min_context`` tokens or fewer a warning (``small``), attributed to the sampler's line, so
    Python shows it once per process however many steps draw such masks."""
    if bool((counts == 0).any()):
        raise ValueError(empty)
    if bool((counts <= min_context).any()):
        warnings.warn(small, stacklevel=2)


def to_device(masks: tuple[Tensor, Tensor], device: torch.device | str) -> tuple[Tensor, Tensor]:
    """Move masks sampled on the host to ``device`` without blocking it: through pinned memory to an accelerator,
    so the copy overlaps with the step instead of synchronising the host with the device."""
    device = torch.device(device)
    if device.type == "cpu" or masks[0].device == device:
        return masks
    return tuple(mask.pin_memory().to(device, non_blocking=True) for mask in masks)  # type: ignore[return-value]


def first_true_indices(mask: Tensor, count: int) -> Tensor:
    """Indices of the first ``count`` True entries of each row of a boolean ``(..., N)`` mask, ascending."""
    order = torch.argsort((~mask).to(torch.uint8), dim=-1, stable=True)
    return order[..., :count]
