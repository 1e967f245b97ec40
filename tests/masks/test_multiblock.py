import pytest
import torch

from jepa_lightning.masks import MultiBlockMaskSampler, first_true_indices, mask_generator
from jepa_lightning.tokenizers import TokenLayout, grid_coords
from tests.masks import CountTorchCalls


def grid_layout(height: int, width: int) -> TokenLayout:
    return TokenLayout("grid", (height, width), grid_coords((height, width)))


def sample(batch: int = 64, grid: tuple[int, int] = (14, 14), seed: int = 0, step: int = 0, **kwargs):
    sampler = MultiBlockMaskSampler(**kwargs)
    return sampler(grid_layout(*grid), batch, mask_generator(seed, step, 0, "cpu"), "cpu")


def test_shapes_and_index_range():
    context, targets = sample(batch=32)
    assert context.ndim == 2 and context.shape[0] == 32
    assert targets.shape[:2] == (32, 4)
    assert context.dtype == targets.dtype == torch.long
    for idx in (context, targets):
        assert idx.min() >= 0 and idx.max() < 14 * 14


def test_context_and_targets_are_disjoint_and_unique():
    context, targets = sample(batch=128)
    for b in range(128):
        ctx = set(context[b].tolist())
        assert len(ctx) == context.shape[1], "context indices repeat"
        for group in targets[b]:
            assert len(set(group.tolist())) == group.numel()
            assert ctx.isdisjoint(group.tolist())


@pytest.mark.parametrize("step", range(5))
def test_target_blocks_are_rectangles_of_the_configured_size(step):
    height, width = 14, 14
    _, targets = sample(batch=16, step=step)
    n_target = targets.shape[-1]
    # one size per batch: h * w tokens covering 15-20% of the grid (up to rounding of each side)
    assert 0.15 * 196 * 0.7 <= n_target <= 0.2 * 196 * 1.3
    rows, cols = targets // width, targets % width
    h = rows.amax(-1) - rows.amin(-1) + 1
    w = cols.amax(-1) - cols.amin(-1) + 1
    assert torch.all(h * w == n_target), "targets are not filled rectangles"
    assert len(set((h * 100 + w).flatten().tolist())) == 1, "block size changed within the batch"
    aspect = (h.float() / w.float())[0, 0]
    assert 0.5 <= aspect <= 2.0
    assert (rows.amax(-1) < height).all() and (h < height).all() and (w < width).all()


def test_context_keeps_more_than_min_context_tokens():
    context, _ = sample(batch=256, grid=(8, 8), min_context=10)
    assert context.shape[1] > 10


def test_same_seed_same_masks_other_seed_or_step_other_masks():
    a = sample(seed=3, step=7)
    b = sample(seed=3, step=7)
    c = sample(seed=4, step=7)
    d = sample(seed=3, step=8)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[1], c[1])
    assert not torch.equal(a[1], d[1])


def test_rank_changes_masks():
    sampler, layout = MultiBlockMaskSampler(), grid_layout(14, 14)
    rank0 = sampler(layout, 8, mask_generator(0, 0, 0, "cpu"), "cpu")
    rank1 = sampler(layout, 8, mask_generator(0, 0, 1, "cpu"), "cpu")
    assert not torch.equal(rank0[1], rank1[1])


def test_sampling_is_vectorised_over_the_batch():
    """The number of torch calls must not grow with the batch: no per-sample Python loop."""
    counts = {}
    for batch in (2, 256):
        sampler, layout = MultiBlockMaskSampler(min_context=0), grid_layout(14, 14)
        with CountTorchCalls() as counter:
            sampler(layout, batch, mask_generator(0, 0, 0, "cpu"), "cpu")
        counts[batch] = counter.calls
    assert counts[256] == counts[2]


def test_first_true_indices_keeps_raster_order():
    mask = torch.tensor([[False, True, True, False, True], [True, False, False, True, True]])
    assert first_true_indices(mask, 2).tolist() == [[1, 2], [0, 3]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_scale": (0.3, 0.1)}, "target_scale"),
        ({"context_scale": (0.0, 1.0)}, "context_scale"),
        ({"num_targets": 0}, "num_targets"),
    ],
)
def test_bad_configuration_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MultiBlockMaskSampler(**kwargs)


def test_needs_a_2d_grid():
    layout = TokenLayout("sequence", (64,), torch.arange(64.0).view(1, 64, 1))
    with pytest.raises(ValueError, match="2-D token grid"):
        MultiBlockMaskSampler()(layout, 2, mask_generator(0, 0, 0, "cpu"), "cpu")
