import pytest
import torch

from jepa_lightning.masks import (
    ForecastMaskSampler,
    RandomPatchMaskSampler,
    SharedTimeSpanMaskSampler,
    TimeSpanUnionMaskSampler,
    mask_generator,
)
from jepa_lightning.tokenizers import TokenLayout, grid_coords
from tests.masks import CountTorchCalls


def layout(shape: tuple[int, ...]) -> TokenLayout:
    return TokenLayout("grid" if len(shape) == 2 else "sequence", shape, grid_coords(shape))


def sample(sampler, shape=(3, 40), batch: int = 16, seed: int = 0, step: int = 0):
    return sampler(layout(shape), batch, mask_generator(seed, step, 0, "cpu"), "cpu")


SAMPLERS = [
    RandomPatchMaskSampler(),
    ForecastMaskSampler(0.25),
    SharedTimeSpanMaskSampler(),
    TimeSpanUnionMaskSampler(),
]


def time_columns(idx: torch.Tensor, patches: int) -> set[int]:
    return {i % patches for i in idx.tolist()}


@pytest.mark.parametrize("sampler", SAMPLERS, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("shape", [(3, 40), (40,)])
def test_shapes_disjoint_and_shared_across_channels(sampler, shape):
    channels, patches = (shape[0], shape[1]) if len(shape) == 2 else (1, shape[0])
    context, targets = sample(sampler, shape)
    assert context.ndim == 2 and context.shape[0] == 16 and targets.ndim == 3 and targets.shape[0] == 16
    assert context.dtype == targets.dtype == torch.long
    assert context.min() >= 0 and max(context.max(), targets.max()) < channels * patches
    for b in range(16):
        ctx, tgt = set(context[b].tolist()), set(targets[b].flatten().tolist())
        assert ctx.isdisjoint(tgt)
        # every channel of a masked (or context) time patch is a target (or context)
        for idx in (ctx, tgt):
            columns = {i % patches for i in idx}
            assert idx == {c * patches + t for c in range(channels) for t in columns}


@pytest.mark.parametrize("step", range(3))
def test_random_patch_ratio_and_partition(step):
    context, targets = sample(RandomPatchMaskSampler(0.5), (3, 40), step=step)
    assert targets.shape == (16, 1, 3 * 20) and context.shape == (16, 3 * 20)
    for b in range(16):
        assert sorted(context[b].tolist() + targets[b, 0].tolist()) == list(range(120))


def test_random_patch_per_channel_masks():
    context, targets = sample(RandomPatchMaskSampler(0.5, share_channels=False), (3, 40))
    assert targets.shape == (16, 1, 60)
    for b in range(16):
        assert sorted(context[b].tolist() + targets[b, 0].tolist()) == list(range(120))
        per_channel = [{i % 40 for i in targets[b, 0].tolist() if i // 40 == c} for c in range(3)]
        assert all(len(cols) == 20 for cols in per_channel)
    # channels draw different patches somewhere in the batch
    cols = [
        [tuple(sorted(i % 40 for i in targets[b, 0].tolist() if i // 40 == c)) for c in range(3)] for b in range(16)
    ]
    assert any(len(set(row)) > 1 for row in cols)


def test_forecast_targets_are_the_last_patches():
    context, targets = sample(ForecastMaskSampler(0.25), (3, 40))
    assert time_columns(targets[0, 0], 40) == set(range(30, 40))
    assert time_columns(context[0], 40) == set(range(30))
    assert (targets == targets[:1]).all() and (context == context[:1]).all()


@pytest.mark.parametrize("step", range(3))
def test_shared_spans_are_contiguous_in_time(step):
    patches = 40
    context, targets = sample(SharedTimeSpanMaskSampler(), (3, patches), step=step)
    assert targets.shape[:2] == (16, 4)
    length = targets.shape[-1] // 3
    assert round(0.175 * patches) <= length <= round(0.225 * patches)
    spans = targets.view(16, 4, 3, length)
    assert torch.equal(spans - spans[..., :1], torch.arange(length).expand_as(spans))
    assert torch.equal(spans - spans[:, :, :1], (torch.arange(3) * patches).view(1, 1, 3, 1).expand_as(spans))
    # the context is the uncovered patches, truncated to the batch's fewest
    fewest = min(patches - len(time_columns(targets[b].flatten(), patches)) for b in range(16))
    assert context.shape[1] == 3 * fewest


@pytest.mark.parametrize("step", range(3))
def test_span_union_is_one_group_shared_by_the_batch_and_never_masks_the_last_patch(step):
    context, targets = sample(TimeSpanUnionMaskSampler(), (3, 40), step=step)
    assert targets.shape[:2] == (16, 1) and (targets == targets[:1]).all() and (context == context[:1]).all()
    masked = time_columns(targets[0, 0], 40)
    assert 39 not in masked and sorted(context[0].tolist() + targets[0, 0].tolist()) == list(range(120))
    # 4 spans of floor(U(0.175, 0.225) * 40) = 7..9 patches: between 7 (all overlapping) and 36 masked patches
    assert 7 <= len(masked) <= 36


@pytest.mark.parametrize("sampler", SAMPLERS, ids=lambda s: type(s).__name__)
def test_seeded_determinism(sampler):
    first, second = sample(sampler, seed=3, step=7), sample(sampler, seed=3, step=7)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    if not isinstance(sampler, ForecastMaskSampler):
        other = sample(sampler, seed=3, step=8)
        assert not all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize(
    "sampler",
    [*SAMPLERS, RandomPatchMaskSampler(share_channels=False)],
    ids=lambda s: type(s).__name__,
)
def test_no_per_sample_loop(sampler):
    counts = {}
    for batch in (2, 256):
        with CountTorchCalls() as counter:
            sampler(layout((3, 40)), batch, mask_generator(0, 0, 0, "cpu"), "cpu")
        counts[batch] = counter.calls
    assert counts[256] == counts[2]


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: RandomPatchMaskSampler(0.0), "target_ratio"),
        (lambda: RandomPatchMaskSampler(1.0), "target_ratio"),
        (lambda: ForecastMaskSampler(1.5), "target_ratio"),
        (lambda: SharedTimeSpanMaskSampler(span_ratio=(0.3, 0.1)), "span_ratio"),
        (lambda: SharedTimeSpanMaskSampler(num_targets=0), "num_targets"),
        (lambda: TimeSpanUnionMaskSampler(num_spans=0), "num_spans"),
        (lambda: TimeSpanUnionMaskSampler(span_ratio=(0.5, 1.0)), "span_ratio"),
    ],
)
def test_bad_arguments(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_bad_layouts():
    with pytest.raises(ValueError, match="layout"):
        sample(RandomPatchMaskSampler(), shape=(2, 3, 4))
    with pytest.raises(ValueError, match="too few"):
        sample(SharedTimeSpanMaskSampler(), shape=(3, 8))
    with pytest.raises(ValueError, match="no context"):
        sample(ForecastMaskSampler(0.9), shape=(3, 2))
    with pytest.raises(ValueError, match="at least 2 time patches"):
        sample(TimeSpanUnionMaskSampler(), shape=(3, 1))
