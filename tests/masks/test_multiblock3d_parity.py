"""V-JEPA's 3-D multi-block masks: our BlockUnionMaskSampler on a (T, H, W) tubelet grid against the official
``_MaskGenerator`` (re-typed below) and the published settings; the multi-mask combinator and the causal sampler."""

from __future__ import annotations

import math

import pytest
import torch

from jepa_lightning.masks import (
    BlockUnionMaskSampler,
    FutureFrameMaskSampler,
    MultiMaskSampler,
    RandomChoiceMaskSampler,
    mask_generator,
    vjepa_multiblock,
)
from jepa_lightning.tokens import TokenLayout, grid_coords

#: The two mask configurations of configs/pretrain/vitl16.yaml (and vith16*.yaml): the paper's short- and long-range.
PUBLISHED = [
    {"num_blocks": 8, "spatial_scale": (0.15, 0.15), "temporal_scale": (1.0, 1.0), "aspect_ratio": (0.75, 1.5)},
    {"num_blocks": 2, "spatial_scale": (0.7, 0.7), "temporal_scale": (1.0, 1.0), "aspect_ratio": (0.75, 1.5)},
]


# official: facebookresearch/jepa@51c59d518fc63c08464af6de585f78ac0c7ed4d5
#   src/masks/multiblock3d.py::_MaskGenerator._sample_block_size
def official_block_size(generator, duration, height, width, temporal_scale, spatial_scale, aspect_ratio_scale):
    _rand = torch.rand(1, generator=generator).item()
    min_t, max_t = temporal_scale
    temporal_mask_scale = min_t + _rand * (max_t - min_t)
    t = max(1, int(duration * temporal_mask_scale))
    _rand = torch.rand(1, generator=generator).item()
    min_s, max_s = spatial_scale
    spatial_mask_scale = min_s + _rand * (max_s - min_s)
    spatial_num_keep = int(height * width * spatial_mask_scale)
    _rand = torch.rand(1, generator=generator).item()
    min_ar, max_ar = aspect_ratio_scale
    aspect_ratio = min_ar + _rand * (max_ar - min_ar)
    h = round(math.sqrt(spatial_num_keep * aspect_ratio))
    w = round(math.sqrt(spatial_num_keep / aspect_ratio))
    h = min(h, height)
    w = min(w, width)
    return (t, h, w)


# official: facebookresearch/jepa@51c59d518fc63c08464af6de585f78ac0c7ed4d5
#   src/masks/multiblock3d.py::_MaskGenerator._sample_block_mask
def official_block_mask(b_size, duration, height, width):
    t, h, w = b_size
    top = torch.randint(0, height - h + 1, (1,))
    left = torch.randint(0, width - w + 1, (1,))
    start = torch.randint(0, duration - t + 1, (1,))
    mask = torch.ones((duration, height, width), dtype=torch.int32)
    mask[start : start + t, top : top + h, left : left + w] = 0
    return mask


# official: facebookresearch/jepa@51c59d518fc63c08464af6de585f78ac0c7ed4d5
#   src/masks/multiblock3d.py::_MaskGenerator.__call__
# (max_keep None and max_context_frames_ratio 1, as in the pretraining configs; seed = the collator's step counter)
def official_masks(batch_size, seed, grid, config):
    duration, height, width = grid
    g = torch.Generator()
    g.manual_seed(seed)
    p_size = official_block_size(
        g, duration, height, width, config["temporal_scale"], config["spatial_scale"], config["aspect_ratio"]
    )
    collated_masks_pred, collated_masks_enc = [], []
    min_keep_enc = min_keep_pred = duration * height * width
    for _ in range(batch_size):
        empty_context = True
        while empty_context:
            mask_e = torch.ones((duration, height, width), dtype=torch.int32)
            for _ in range(config["num_blocks"]):
                mask_e *= official_block_mask(p_size, duration, height, width)
            mask_e = mask_e.flatten()
            mask_p = torch.argwhere(mask_e == 0).squeeze()
            mask_e = torch.nonzero(mask_e).squeeze()
            empty_context = len(mask_e) == 0
            if not empty_context:
                min_keep_pred = min(min_keep_pred, len(mask_p))
                min_keep_enc = min(min_keep_enc, len(mask_e))
                collated_masks_pred.append(mask_p)
                collated_masks_enc.append(mask_e)
    collated_masks_pred = torch.stack([cm[:min_keep_pred] for cm in collated_masks_pred])
    collated_masks_enc = torch.stack([cm[:min_keep_enc] for cm in collated_masks_enc])
    return collated_masks_enc, collated_masks_pred, p_size


def layout(shape: tuple[int, ...]) -> TokenLayout:
    return TokenLayout("grid", shape, grid_coords(shape))


def ours(config: dict) -> BlockUnionMaskSampler:
    return BlockUnionMaskSampler(config["num_blocks"], config["spatial_scale"][0], config["aspect_ratio"])


@pytest.mark.parametrize("grid", [(8, 14, 14), (8, 6, 6), (8, 4, 4)])
@pytest.mark.parametrize("config", PUBLISHED)
def test_block_sizes_are_the_official_ones_for_the_same_aspect_draw(grid, config):
    sampler = ours(config)
    for seed in range(50):
        scales = (config["temporal_scale"], config["spatial_scale"], config["aspect_ratio"])
        expected = official_block_size(torch.Generator().manual_seed(seed), *grid, *scales)
        aspect_draw = torch.rand(3, generator=torch.Generator().manual_seed(seed))[2].item()
        assert sampler.block_shape(grid, aspect_draw) == expected
    # the published settings: blocks through the whole clip covering about 15% (short) or 70% (long) of each frame
    if grid == (8, 14, 14):
        heights_widths = {sampler.block_shape(grid, r)[1:] for r in torch.linspace(0, 0.999, 30).tolist()}
        assert all(sampler.block_shape(grid, r)[0] == 8 for r in (0.0, 0.5, 0.99))
        shares = [h * w / 196 for h, w in heights_widths]
        assert max(abs(share - config["spatial_scale"][0]) for share in shares) < 0.04


@pytest.mark.parametrize("config", PUBLISHED)
def test_mask_statistics_match_the_official_generator(config):
    grid, batch, draws = (8, 14, 14), 8, 60
    sampler = ours(config)
    stats = {"official": [], "ours": []}
    torch.manual_seed(0)  # the official block positions come from the global RNG
    for step in range(draws):
        enc, pred, _ = official_masks(batch, step, grid, config)
        stats["official"].append((enc.shape[1], pred.shape[1]))
        context, target = sampler(layout(grid), batch, mask_generator(0, step, 0, "cpu"), "cpu")
        assert target.shape[1] == 1  # one target group: the union of the blocks, predicted in one pass
        stats["ours"].append((context.shape[1], target.shape[2]))
        for c, t in zip(context, target[:, 0]):
            assert not set(c.tolist()) & set(t.tolist())  # no context / target overlap
    total = math.prod(grid)
    official = torch.tensor(stats["official"], dtype=torch.float64).mean(0) / total
    mine = torch.tensor(stats["ours"], dtype=torch.float64).mean(0) / total
    # context share and target share (after truncation to the batch's smallest) agree within 3 points
    torch.testing.assert_close(mine, official, atol=0.03, rtol=0)
    expected_context = {8: 0.27, 2: 0.10}[config["num_blocks"]]  # the official generator's, 200 batches of 8
    assert abs(float(official[0]) - expected_context) < 0.04
    # per clip, before truncation (batches of one): the official generator keeps 37.6% (short) / 18.6% (long) as context
    torch.manual_seed(1)
    single = [official_masks(1, step, grid, config)[0].shape[1] for step in range(100)]
    mine_single = [sampler(layout(grid), 1, mask_generator(1, s, 0, "cpu"), "cpu")[0].shape[1] for s in range(100)]
    assert abs(sum(single) - sum(mine_single)) / (100 * total) < 0.03
    assert abs(sum(single) / (100 * total) - {8: 0.376, 2: 0.186}[config["num_blocks"]]) < 0.04


@pytest.mark.parametrize("config", PUBLISHED)
def test_blocks_are_tubes_through_the_clip_and_the_context_is_the_complement(config):
    grid = (8, 14, 14)
    for step in range(10):
        context, target = ours(config)(layout(grid), 1, mask_generator(1, step, 0, "cpu"), "cpu")
        masked = torch.zeros(math.prod(grid), dtype=torch.bool)
        masked[target[0, 0]] = True
        frames = masked.view(grid[0], -1)
        assert (frames == frames[0]).all()  # the same spatial pattern in every frame: tubes through time
        assert sorted(context[0].tolist()) == torch.nonzero(~masked).flatten().tolist()  # context = complement


def test_a_temporal_scale_below_one_draws_blocks_through_part_of_the_clip():
    sampler = BlockUnionMaskSampler(1, 0.3, temporal_scale=0.5)
    _, target = sampler(layout((8, 6, 6)), 1, mask_generator(0, 0, 0, "cpu"), "cpu")
    frames = torch.zeros(8 * 36, dtype=torch.bool)
    frames[target[0, 0]] = True
    assert frames.view(8, -1).any(dim=1).sum() == 4


def test_multi_mask_draws_both_configurations_on_every_clip():
    sampler = vjepa_multiblock(per_clip=True)
    assert isinstance(sampler, MultiMaskSampler) and sampler.num_configurations == 2
    assert isinstance(vjepa_multiblock(), RandomChoiceMaskSampler)
    pairs = sampler.configurations(layout((8, 14, 14)), 4, mask_generator(0, 0, 0, "cpu"), "cpu")
    assert len(pairs) == 2
    (short_context, _), (long_context, _) = pairs
    assert short_context.shape[0] == long_context.shape[0] == 4
    assert long_context.shape[1] < short_context.shape[1]  # long-range masks hide more
    with pytest.raises(TypeError, match="configurations"):
        sampler(layout((8, 14, 14)), 4, mask_generator(0, 0, 0, "cpu"), "cpu")
    with pytest.raises(ValueError, match="no nested"):
        MultiMaskSampler([sampler])


def test_future_frames_are_the_targets_of_the_past():
    sampler = FutureFrameMaskSampler(context_ratio=(0.25, 0.75))
    seen = set()
    for step in range(20):
        context, target = sampler(layout((8, 3, 3)), 2, mask_generator(0, step, 0, "cpu"), "cpu")
        frames = context.shape[1] // 9
        seen.add(frames)
        assert context.shape == (2, frames * 9) and target.shape == (2, 1, (8 - frames) * 9)
        assert int(context.max()) < int(target.min())  # every context token precedes every target token
        assert torch.equal(torch.cat([context[0], target[0, 0]]), torch.arange(72))
    assert seen <= {2, 3, 4, 5, 6} and len(seen) > 1
    context, target = FutureFrameMaskSampler((0.9, 0.9))(layout((2, 2, 2)), 1, mask_generator(0, 0, 0, "cpu"), "cpu")
    assert context.shape[1] == 4 and target.shape[2] == 4  # at least one future step
