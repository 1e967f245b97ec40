"""I-JEPA multi-block masking on a 2-D token grid and V-JEPA's block unions on 2-D and 3-D (video) grids, vectorised
over the batch."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from jepa_lightning.masks.base import (
    MaskSampler,
    check_context_counts,
    check_count,
    check_range,
    check_ratio,
    first_true_indices,
    to_device,
)
from jepa_lightning.masks.combinators import MultiMaskSampler, RandomChoiceMaskSampler
from jepa_lightning.tokens import TokenLayout


def block_size(grid: tuple[int, int], scale: float, aspect: float, *, shrink_to_fit_strictly: bool) -> tuple[int, int]:
    """Height and width of a block covering ``scale`` of the grid with aspect ratio ``aspect`` (h / w).

    ``area = int(H * W * scale)``, ``h = round(sqrt(area * aspect))``, ``w = round(sqrt(area / aspect))``, as
    I-JEPA's ``MaskCollator._sample_block_size`` (facebookresearch/ijepa@52c1ae9 src/masks/multiblock.py), which
    shrinks EVERY block, context included, until it is strictly smaller than the grid.
    ``shrink_to_fit_strictly=True`` does that; ``False`` caps a side at the grid instead, so a context block of
    scale near 1 may fill the grid (:class:`MultiBlockMaskSampler` does this on purpose: a fix of that upstream
    bug, see there), and so may V-JEPA's blocks (``multiblock3d`` clips each side with ``min``). Sides are at
    least 1.
    """
    height, width = grid
    area = int(height * width * scale)
    h = max(1, round(math.sqrt(area * aspect)))
    w = max(1, round(math.sqrt(area / aspect)))
    limit_h, limit_w = (height - 1, width - 1) if shrink_to_fit_strictly else (height, width)
    return max(1, min(h, limit_h)), max(1, min(w, limit_w))


def block_masks(
    grid: tuple[int, int], size: tuple[int, int], shape: tuple[int, ...], generator: torch.Generator
) -> Tensor:
    """Boolean masks ``(*shape, H, W)`` each holding one ``size`` block at a uniformly random position.

    Every position is possible, the last row and column included (``top`` in ``[0, H - h]``). I-JEPA's collator
    draws ``top`` from ``randint(0, H - h)``, whose upper bound is exclusive, so its blocks never touch the last row
    or column (facebookresearch/ijepa pull request #40); this is a named fix of that bug.
    """
    (height, width), (h, w) = grid, size
    device = generator.device
    top = torch.randint(0, height - h + 1, shape, generator=generator, device=device)
    left = torch.randint(0, width - w + 1, shape, generator=generator, device=device)
    rows = torch.arange(height, device=device).view(1, height, 1)
    cols = torch.arange(width, device=device).view(1, 1, width)
    top, left = top.reshape(-1, 1, 1), left.reshape(-1, 1, 1)
    inside = (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)
    return inside.view(*shape, height, width)


class MultiBlockMaskSampler(MaskSampler):
    """I-JEPA's multi-block masks: ``num_targets`` target blocks and one large context block without them.

    As the official ``MaskCollator`` (facebookresearch/ijepa@52c1ae95d05f743e000e8f10a1f3a79b10cff048,
    src/masks/multiblock.py): per batch one target size and one context size, each from one uniform draw ``r``
    (for the targets one ``r`` sets both scale and aspect ratio; the context is square), the target draw
    first; per sample ``num_targets`` blocks of the target size at independent positions (they may
    overlap each other); the context is one block of the context size minus the union of the targets; samples
    keeping ``min_context`` or fewer tokens redraw their context block; targets and contexts are truncated to the
    batch's shortest so they stack, keeping the first tokens in raster order. ``tests/masks/test_multiblock_parity.py``
    re-types the official draw and checks all of this.

    Four deliberate deviations, each a fix of an upstream bug:

    1. Positions cover the whole grid (:func:`block_masks`); the official ``randint(0, H - h)`` never reaches the
       last row or column, so the last row and column are never context nor target (facebookresearch/ijepa pull
       request #40).
    2. The context block may fill the grid: its sides are capped at the grid, not shrunk below it
       (:func:`block_size`). Officially every block is strictly smaller than the grid, so ``context_scale``
       (0.85, 1.0) on a 14 x 14 grid always gives a 13 x 13 block (86%), whatever the draw (pull request #40's
       discussion), and with bug 1 always the same top-left one; here 13 x 13 or 14 x 14, anywhere.
    3. ``min_context`` applies to the context only. The official ``min_keep`` also applies to target blocks,
       which have one fixed size per batch: the check always passes or, for blocks of ``min_keep`` tokens or
       fewer (small grids), loops forever.
    4. No overlap fallback: a context that stays too small after ``max_tries`` redraws is kept (with a warning;
       an empty one is an error). The official collator, after every 20 failed draws, drops one target's
       exclusion, so the context may then contain target tokens (the prediction task leaks its answer).

    ``pad_context=True`` pads every context to the batch's longest by repeating the sample's first context token,
    instead of truncating every one to the shortest: every non-target token stays in the context, as CNN-JEPA's
    dense masks have it (kaland313/CNN-JEPA, which leaves out the truncation: "only needed for ViTs"). Only for
    networks that read the context as a set of positions (a dense encoder such as
    :class:`~jepa_lightning.nn.SparseResNet` with the :class:`~jepa_lightning.nn.ConvPredictor`): a transformer would
    weigh a repeated token twice.
    """

    def __init__(
        self,
        num_targets: int = 4,
        target_scale: tuple[float, float] = (0.15, 0.2),
        target_aspect: tuple[float, float] = (0.75, 1.5),
        context_scale: tuple[float, float] = (0.85, 1.0),
        min_context: int = 10,
        max_tries: int = 20,
        *,
        pad_context: bool = False,
    ) -> None:
        for name, bounds in {
            "target_scale": target_scale,
            "target_aspect": target_aspect,
            "context_scale": context_scale,
        }.items():
            check_range(name, bounds, limit="")
        check_count("num_targets", num_targets)
        self.num_targets = num_targets
        self.target_scale = target_scale
        self.target_aspect = target_aspect
        self.context_scale = context_scale
        self.min_context = min_context
        self.max_tries = max_tries
        self.pad_context = pad_context

    def __call__(
        self,
        layout: TokenLayout,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str,
        progress: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        if len(layout.shape) != 2:
            raise ValueError(f"MultiBlockMaskSampler needs a 2-D token grid, got layout shape {layout.shape}")
        grid = layout.shape
        sample_device = generator.device
        r = torch.rand(2, generator=generator, device=sample_device).tolist()
        target_size = block_size(
            grid,
            self.target_scale[0] + r[0] * (self.target_scale[1] - self.target_scale[0]),
            self.target_aspect[0] + r[0] * (self.target_aspect[1] - self.target_aspect[0]),
            shrink_to_fit_strictly=True,
        )
        context_size = block_size(
            grid,
            self.context_scale[0] + r[1] * (self.context_scale[1] - self.context_scale[0]),
            1.0,
            shrink_to_fit_strictly=False,
        )
        targets = block_masks(grid, target_size, (batch_size, self.num_targets), generator)
        covered = targets.any(dim=1)
        context = block_masks(grid, context_size, (batch_size,), generator) & ~covered
        context = self._redraw_small_contexts(context, covered, grid, context_size, generator)

        counts = context.flatten(1).sum(1)
        context_idx = first_true_indices(context.flatten(1), int(counts.max() if self.pad_context else counts.min()))
        if self.pad_context:  # each sample's own cells, then its first cell again up to the batch's longest
            filled = torch.arange(context_idx.shape[1], device=counts.device) < counts.unsqueeze(1)
            context_idx = torch.where(filled, context_idx, context_idx[:, :1])
        target_idx = first_true_indices(targets.flatten(2), target_size[0] * target_size[1])
        return to_device((context_idx, target_idx), device)

    def _redraw_small_contexts(
        self,
        context: Tensor,
        covered: Tensor,
        grid: tuple[int, int],
        size: tuple[int, int],
        generator: torch.Generator,
    ) -> Tensor:
        """Redraw the context block of samples that keep too few tokens (vectorised over those samples)."""
        for _ in range(self.max_tries):
            small = context.flatten(1).sum(1) <= self.min_context
            if not bool(small.any()):
                return context
            redrawn = block_masks(grid, size, (context.shape[0],), generator) & ~covered
            context = torch.where(small.view(-1, 1, 1), redrawn, context)
        counts = context.flatten(1).sum(1)
        check_context_counts(
            counts,
            self.min_context,
            empty=f"MultiBlockMaskSampler could not find a non-empty context on a {grid} grid "
            f"(targets {self.num_targets} x scale {self.target_scale}): lower num_targets or target_scale.",
            small=f"MultiBlockMaskSampler: some contexts keep min_context={self.min_context} tokens or fewer after "
            f"{self.max_tries} redraws on a {grid} grid; the targets cover most of the grid.",
        )
        return context


class BlockUnionMaskSampler(MaskSampler):
    """V-JEPA's multi-block mask of one configuration: the target is the union of ``num_blocks`` blocks, the context
    everything else; on a 2-D grid (e.g. EEG channel groups x time patches) or a 3-D ``(T, H, W)`` grid of video
    tubelets, where each block is a spatial block through ``temporal_scale`` of the frames (1: the whole clip).

    As V-JEPA's ``_MaskGenerator`` (facebookresearch/jepa@51c59d518fc63c08464af6de585f78ac0c7ed4d5
    src/masks/multiblock3d.py): per batch one block size, ``scale`` of the (last two axes of the) grid with an aspect
    ratio (height / width) ``U(aspect)``, each side clipped to the grid's (:func:`block_size` without I-JEPA's strict
    shrinking: ``multiblock3d`` clips with ``min``, so a long-range block may span every row), and on a 3-D grid
    ``max(1, int(T * temporal_scale))`` frames; per sample ``num_blocks`` blocks of that size at independent
    positions (they may overlap). All masked tokens form one target group, predicted in one pass. A sample whose
    blocks leave no context redraws them (at most ``max_tries`` times, then an error). Contexts and targets are
    truncated to the batch's smallest, keeping the first tokens in raster order, as V-JEPA's collator does. V-JEPA's
    two configurations, short-range ``(8, 0.15)`` and long-range ``(2, 0.7)``, are two samplers: both on every clip
    under :class:`~jepa_lightning.masks.MultiMaskSampler` (V-JEPA, :func:`vjepa_multiblock` with ``per_clip=True``),
    or one per batch under :class:`~jepa_lightning.masks.RandomChoiceMaskSampler`.
    """

    def __init__(
        self,
        num_blocks: int = 8,
        scale: float = 0.15,
        aspect: tuple[float, float] = (0.75, 1.5),
        max_tries: int = 20,
        temporal_scale: float = 1.0,
    ) -> None:
        check_count("num_blocks", num_blocks)
        check_ratio("scale", scale)
        check_range("aspect", aspect, limit="")
        if not 0 < temporal_scale <= 1:
            raise ValueError(f"temporal_scale must be in (0, 1], got {temporal_scale}")
        self.num_blocks = num_blocks
        self.scale = scale
        self.aspect = aspect
        self.max_tries = max_tries
        self.temporal_scale = temporal_scale

    def block_shape(self, grid: tuple[int, ...], r: float) -> tuple[int, ...]:
        """The batch's block size from one uniform draw ``r`` (for the aspect ratio): ``(h, w)`` on a 2-D grid,
        ``(t, h, w)`` on a 3-D one."""
        size = block_size(
            grid[-2:], self.scale, self.aspect[0] + r * (self.aspect[1] - self.aspect[0]), shrink_to_fit_strictly=False
        )
        if len(grid) == 2:
            return size
        return (max(1, int(grid[0] * self.temporal_scale)), *size)

    def _masked(
        self, grid: tuple[int, ...], size: tuple[int, ...], batch_size: int, generator: torch.Generator
    ) -> Tensor:
        """``(B, N)``: the union of ``num_blocks`` blocks of ``size`` per sample."""
        shape = (batch_size, self.num_blocks)
        spatial = block_masks(grid[-2:], size[-2:], shape, generator)  # (B, K, H, W)
        if len(grid) == 3:
            duration, frames = grid[0], size[0]
            frame = torch.arange(duration, device=generator.device)
            if frames < duration:
                start = torch.randint(0, duration - frames + 1, (*shape, 1), generator=generator, device=frame.device)
                through = (frame >= start) & (frame < start + frames)  # (B, K, T)
            else:
                through = torch.ones(*shape, duration, dtype=torch.bool, device=frame.device)
            spatial = through[..., None, None] & spatial[..., None, :, :]
        return spatial.any(dim=1).flatten(1)

    def __call__(
        self,
        layout: TokenLayout,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str,
        progress: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        if len(layout.shape) not in (2, 3):
            raise ValueError(
                f"BlockUnionMaskSampler needs a 2-D token grid or a 3-D (frames, rows, columns) one, got layout shape "
                f"{layout.shape}"
            )
        grid = layout.shape
        r = float(torch.rand(1, generator=generator, device=generator.device))
        size = self.block_shape(grid, r)
        masked = self._masked(grid, size, batch_size, generator)  # (B, N)
        for _ in range(self.max_tries):
            full = masked.all(dim=1)
            if not bool(full.any()):
                break
            masked = torch.where(full[:, None], self._masked(grid, size, batch_size, generator), masked)
        else:
            if bool(masked.all(dim=1).any()):
                raise ValueError(
                    f"BlockUnionMaskSampler: {self.num_blocks} blocks of {size} cover the whole {grid} grid in "
                    f"{self.max_tries} draws; lower num_blocks or scale."
                )
        num_context = int((~masked).sum(dim=1).min())
        num_target = int(masked.sum(dim=1).min())
        context_idx = first_true_indices(~masked, num_context)
        target_idx = first_true_indices(masked, num_target).unsqueeze(1)
        return to_device((context_idx, target_idx), device)


def vjepa_multiblock(
    aspect: tuple[float, float] = (0.75, 1.5), per_clip: bool = False
) -> RandomChoiceMaskSampler | MultiMaskSampler:
    """V-JEPA's two mask configurations (Bardes et al., 2024): short-range (8 blocks of scale 0.15) and long-range
    (2 blocks of scale 0.7), each target the union of its blocks (on a 3-D grid: tubes through the whole clip), the
    context the rest. ``per_clip=True`` uses both on every clip, the loss averaged over the two, as V-JEPA's training
    does (:class:`~jepa_lightning.masks.MultiMaskSampler`); the default chooses one uniformly per batch (the same
    expected loss, one predictor pass)."""
    samplers = [BlockUnionMaskSampler(8, 0.15, aspect), BlockUnionMaskSampler(2, 0.7, aspect)]
    return MultiMaskSampler(samplers) if per_clip else RandomChoiceMaskSampler(samplers)
