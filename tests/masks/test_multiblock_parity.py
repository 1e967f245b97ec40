# ruff: noqa: N803, N806, RUF046  (the official collator is re-typed with its own names)
"""MultiBlockMaskSampler against I-JEPA's official MaskCollator, re-typed below: the same block sizes for the same
uniform draws, the same statistics of target sizes, and the four places where we deliberately differ (each a fix of
an upstream bug) asserted as such."""

from __future__ import annotations

import math

import pytest
import torch

from jepa_lightning.masks import MultiBlockMaskSampler, mask_generator
from jepa_lightning.masks.multiblock import block_size
from jepa_lightning.tokenizers import TokenLayout, grid_coords

GRID = (14, 14)  # ViT-H/14 at 224 px, the paper's headline setting
PRED_SCALE, ENC_SCALE, ASPECT = (0.15, 0.2), (0.85, 1.0), (0.75, 1.5)  # configs/in1k_vith14_ep300.yaml


# official: facebookresearch/ijepa@52c1ae95d05f743e000e8f10a1f3a79b10cff048 src/masks/multiblock.py::MaskCollator
class OfficialMaskCollator:
    def __init__(self, height=14, width=14, enc_mask_scale=ENC_SCALE, pred_mask_scale=PRED_SCALE,
                 aspect_ratio=ASPECT, nenc=1, npred=4, min_keep=10, allow_overlap=False):  # fmt: skip
        self.height, self.width = height, width
        self.enc_mask_scale, self.pred_mask_scale, self.aspect_ratio = enc_mask_scale, pred_mask_scale, aspect_ratio
        self.nenc, self.npred, self.min_keep, self.allow_overlap = nenc, npred, min_keep, allow_overlap

    def _sample_block_size(self, generator, scale, aspect_ratio_scale):
        _rand = torch.rand(1, generator=generator).item()
        min_s, max_s = scale
        mask_scale = min_s + _rand * (max_s - min_s)
        max_keep = int(self.height * self.width * mask_scale)
        min_ar, max_ar = aspect_ratio_scale
        aspect_ratio = min_ar + _rand * (max_ar - min_ar)
        h = int(round(math.sqrt(max_keep * aspect_ratio)))
        w = int(round(math.sqrt(max_keep / aspect_ratio)))
        while h >= self.height:
            h -= 1
        while w >= self.width:
            w -= 1
        return (h, w)

    def _sample_block_mask(self, b_size, acceptable_regions=None):
        h, w = b_size

        def constrain_mask(mask, tries=0):
            N = max(int(len(acceptable_regions) - tries), 0)
            for k in range(N):
                mask *= acceptable_regions[k]

        tries = 0
        timeout = og_timeout = 20
        valid_mask = False
        while not valid_mask:
            top = torch.randint(0, self.height - h, (1,))
            left = torch.randint(0, self.width - w, (1,))
            mask = torch.zeros((self.height, self.width), dtype=torch.int32)
            mask[top : top + h, left : left + w] = 1
            if acceptable_regions is not None:
                constrain_mask(mask, tries)
            mask = torch.nonzero(mask.flatten())
            valid_mask = len(mask) > self.min_keep
            if not valid_mask:
                timeout -= 1
                if timeout == 0:
                    tries += 1
                    timeout = og_timeout
        mask = mask.squeeze()
        mask_complement = torch.ones((self.height, self.width), dtype=torch.int32)
        mask_complement[top : top + h, left : left + w] = 0
        return mask, mask_complement

    def __call__(self, B, seed):  # the batch itself is not needed; `seed` is the official self.step()
        g = torch.Generator()
        g.manual_seed(seed)
        p_size = self._sample_block_size(generator=g, scale=self.pred_mask_scale, aspect_ratio_scale=self.aspect_ratio)
        e_size = self._sample_block_size(generator=g, scale=self.enc_mask_scale, aspect_ratio_scale=(1.0, 1.0))
        collated_masks_pred, collated_masks_enc = [], []
        min_keep_pred = min_keep_enc = self.height * self.width
        for _ in range(B):
            masks_p, masks_C = [], []
            for _ in range(self.npred):
                mask, mask_C = self._sample_block_mask(p_size)
                masks_p.append(mask)
                masks_C.append(mask_C)
                min_keep_pred = min(min_keep_pred, len(mask))
            collated_masks_pred.append(masks_p)
            acceptable_regions = None if self.allow_overlap else masks_C
            masks_e = []
            for _ in range(self.nenc):
                mask, _ = self._sample_block_mask(e_size, acceptable_regions=acceptable_regions)
                masks_e.append(mask)
                min_keep_enc = min(min_keep_enc, len(mask))
            collated_masks_enc.append(masks_e)
        collated_masks_pred = [[cm[:min_keep_pred] for cm in cm_list] for cm_list in collated_masks_pred]
        collated_masks_enc = [[cm[:min_keep_enc] for cm in cm_list] for cm_list in collated_masks_enc]
        collated_masks_pred = torch.utils.data.default_collate(collated_masks_pred)
        collated_masks_enc = torch.utils.data.default_collate(collated_masks_enc)
        return collated_masks_enc, collated_masks_pred  # lists (one per mask) of (B, K) index tensors


def layout(grid: tuple[int, int] = GRID) -> TokenLayout:
    return TokenLayout("grid", grid, grid_coords(grid))


def our_sizes(r_target: float, r_context: float, grid=GRID, strict_context=False):
    target = block_size(
        grid,
        PRED_SCALE[0] + r_target * (PRED_SCALE[1] - PRED_SCALE[0]),
        ASPECT[0] + r_target * (ASPECT[1] - ASPECT[0]),
        shrink_to_fit_strictly=True,
    )
    context = block_size(
        grid, ENC_SCALE[0] + r_context * (ENC_SCALE[1] - ENC_SCALE[0]), 1.0, shrink_to_fit_strictly=strict_context
    )
    return target, context


def test_block_sizes_match_the_official_draw_for_the_same_uniforms():
    official = OfficialMaskCollator()
    context_differs = 0
    for seed in range(500):
        g = torch.Generator().manual_seed(seed)
        p_size = official._sample_block_size(g, PRED_SCALE, ASPECT)
        e_size = official._sample_block_size(g, ENC_SCALE, (1.0, 1.0))
        r = torch.rand(2, generator=torch.Generator().manual_seed(seed)).tolist()  # our sampler's draw
        target, context = our_sizes(*r)
        assert target == p_size
        assert our_sizes(*r, strict_context=True)[1] == e_size  # the official rule, when asked for
        assert e_size == (13, 13)  # official: always 13 x 13 on 14 x 14, whatever the draw
        # deviation 2 (upstream bug fix): our context block may fill the grid
        assert context in {(13, 13), (14, 14)}
        context_differs += context != e_size
    # 14 x 14 when int(196 * s) >= 183, i.e. s >= 183 / 196: probability (1 - 183 / 196) / 0.15 = 0.44
    assert abs(context_differs / 500 - (1 - 183 / 196) / 0.15) < 0.06


def test_sampler_uses_the_official_size_for_the_batch_from_its_generator():
    """The sampler's targets have the size the official collator draws from the same generator state."""
    sampler, official = MultiBlockMaskSampler(), OfficialMaskCollator()
    for step in range(20):
        g = mask_generator(0, step, 0, "cpu")
        seed_state = g.get_state()
        _, targets = sampler(layout(), 8, g, "cpu")
        replay = torch.Generator()
        replay.set_state(seed_state)
        h, w = official._sample_block_size(replay, PRED_SCALE, ASPECT)
        assert targets.shape == (8, 4, h * w)
        rows, cols = targets // GRID[1], targets % GRID[1]
        assert torch.all(rows.amax(-1) - rows.amin(-1) + 1 == h) and torch.all(cols.amax(-1) - cols.amin(-1) + 1 == w)


def test_target_size_statistics_match_the_official_collator():
    torch.manual_seed(0)
    official = OfficialMaskCollator()
    sampler = MultiBlockMaskSampler()
    ours, theirs = [], []
    for step in range(300):
        theirs.append(official(2, seed=step)[1][0].shape[-1])
        ours.append(sampler(layout(), 2, mask_generator(1, step, 0, "cpu"), "cpu")[1].shape[-1])
    ours_t, theirs_t = torch.tensor(ours, dtype=torch.float64), torch.tensor(theirs, dtype=torch.float64)
    assert abs(ours_t.mean() - theirs_t.mean()) < 1.0  # ~33 tokens each, std ~3.5, 300 draws
    assert abs(ours_t.std() - theirs_t.std()) < 1.0
    assert set(ours) <= {h * w for h in range(1, 14) for w in range(1, 14)}
    assert min(theirs) >= int(196 * 0.15) * 0.8 and max(ours) <= int(196 * 0.2) * 1.2


def test_deviation_1_blocks_reach_the_last_row_and_column():
    """Official: randint(0, H - h) excludes H - h, so no block ever covers the last row or column."""
    torch.manual_seed(0)
    official = OfficialMaskCollator()
    covered_official = torch.zeros(GRID[0] * GRID[1], dtype=torch.bool)
    for step in range(30):
        enc, pred = official(8, seed=step)
        covered_official[torch.cat([m.flatten() for m in enc + pred])] = True
    grid = covered_official.view(GRID)
    assert not grid[-1].any() and not grid[:, -1].any()
    assert grid[:-1, :-1].all()

    context, targets = MultiBlockMaskSampler()(layout(), 256, mask_generator(0, 0, 0, "cpu"), "cpu")
    ours = torch.zeros(GRID[0] * GRID[1], dtype=torch.bool)
    ours[context.flatten()] = True
    ours[targets.flatten()] = True
    assert ours.all()


def test_deviation_3_min_keep_on_targets_cannot_be_met_on_small_grids():
    """Official: a target block of min_keep tokens or fewer is rejected at every position (an endless loop); ours
    applies min_context to the context only."""
    official = OfficialMaskCollator(height=6, width=6, pred_mask_scale=(0.25, 0.25), aspect_ratio=(1.0, 1.0))
    size = official._sample_block_size(torch.Generator().manual_seed(0), (0.25, 0.25), (1.0, 1.0))
    assert size == (3, 3) and size[0] * size[1] <= official.min_keep  # 9 <= 10: no position is ever valid
    sampler = MultiBlockMaskSampler(target_scale=(0.25, 0.25), target_aspect=(1.0, 1.0), num_targets=1)
    context, targets = sampler(layout((6, 6)), 16, mask_generator(0, 0, 0, "cpu"), "cpu")
    assert targets.shape == (16, 1, 9) and context.shape[1] > 10


def test_deviation_4_no_context_target_overlap_where_the_official_fallback_allows_it():
    torch.manual_seed(0)
    kwargs = {"pred_mask_scale": (0.25, 0.25), "aspect_ratio": (1.0, 1.0), "min_keep": 8}
    official = OfficialMaskCollator(height=6, width=6, **kwargs)
    enc, pred = official(64, seed=0)
    enc, pred = enc[0], torch.stack(pred, dim=1)
    overlaps = sum(bool(set(enc[b].tolist()) & set(pred[b].flatten().tolist())) for b in range(64))
    assert overlaps > 0  # after 20 failed draws the official collator lets the context cover a target

    sampler = MultiBlockMaskSampler(target_scale=(0.25, 0.25), target_aspect=(1.0, 1.0), min_context=8)
    with pytest.warns(UserWarning, match="min_context"):  # kept small, never overlapping
        context, targets = sampler(layout((6, 6)), 64, mask_generator(0, 0, 0, "cpu"), "cpu")
    for b in range(64):
        assert not set(context[b].tolist()) & set(targets[b].flatten().tolist())


def test_deviations_1_and_2_give_larger_contexts_than_the_official_collator():
    """Per-sample context sizes over many draws (batch of one, so no truncation): officially a 13 x 13 block in the
    top-left corner minus the targets; ours a 13 x 13 or 14 x 14 block anywhere minus the targets. Measured: mean
    83.8 (official) vs 94.9 tokens (ours), standard deviations 14 and 17, over 200 draws."""
    torch.manual_seed(0)
    official, sampler = OfficialMaskCollator(), MultiBlockMaskSampler()
    theirs = torch.tensor([official(1, seed=step)[0][0].shape[-1] for step in range(200)], dtype=torch.float64)
    ours = torch.tensor(
        [sampler(layout(), 1, mask_generator(0, step, 0, "cpu"), "cpu")[0].shape[1] for step in range(200)],
        dtype=torch.float64,
    )
    assert ours.mean() - theirs.mean() > 5  # the difference's standard error is ~1.5
    assert ours.mean() - theirs.mean() < 20
