"""Geometry of the span, tube and block masks on (channel, time) and (time,) layouts."""

from __future__ import annotations

import math

import pytest
import torch

from jepa_lightning.masks import (
    AxisSpanMaskSampler,
    SharedTimeSpanMaskSampler,
    TimeBlockMaskSampler,
    TimeSpanMaskSampler,
    TubeMaskSampler,
    mask_generator,
)
from jepa_lightning.masks.series import random_split
from jepa_lightning.tokenizers import TokenLayout, grid_coords
from tests.masks import CountTorchCalls


def layout(shape: tuple[int, ...]) -> TokenLayout:
    return TokenLayout("grid" if len(shape) == 2 else "sequence", shape, grid_coords(shape))


def sample(sampler, shape, batch: int = 16, step: int = 0):
    return sampler(layout(shape), batch, mask_generator(0, step, 0, "cpu"), "cpu")


def runs(flags: list[bool]) -> list[int]:
    """Lengths of the runs of True in ``flags``."""
    lengths, current = [], 0
    for flag in [*flags, False]:
        if flag:
            current += 1
        elif current:
            lengths.append(current)
            current = 0
    return lengths


@pytest.mark.parametrize("step", range(3))
def test_time_spans_on_a_1d_layout_are_contiguous_and_the_context_is_the_first_uncovered(step):
    context, targets = sample(SharedTimeSpanMaskSampler(), (40,), step=step)
    length = targets.shape[-1]
    assert torch.equal(targets - targets[..., :1], torch.arange(length).expand_as(targets))
    for b in range(16):
        uncovered = sorted(set(range(40)) - set(targets[b].flatten().tolist()))
        assert context[b].tolist() == uncovered[: context.shape[1]]
    # the same sampler as the audio one, with other defaults
    a = TimeSpanMaskSampler(num_targets=4, width_ratio=(0.175, 0.225))(
        layout((3, 40)), 8, mask_generator(0, 1, 0, "cpu"), "cpu"
    )
    b = SharedTimeSpanMaskSampler()(layout((3, 40)), 8, mask_generator(0, 1, 0, "cpu"), "cpu")
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_truncated_context_keeps_whole_time_columns():
    context, _ = sample(AxisSpanMaskSampler(axis=1, num_targets=3, span_ratio=(0.1, 0.2)), (4, 30), batch=32)
    for b in range(32):
        columns = sorted({i % 30 for i in context[b].tolist()})
        assert context[b].tolist() == [c * 30 + t for c in range(4) for t in columns]


@pytest.mark.parametrize("contiguous", [False, True])
@pytest.mark.parametrize("step", range(3))
def test_tubes_are_time_spans_in_a_channel_subset(contiguous, step):
    channels, patches = 8, 40
    sampler = TubeMaskSampler(
        num_targets=3, time_ratio=(0.1, 0.2), channel_ratio=(0.25, 0.5), contiguous_channels=contiguous
    )
    context, targets = sample(sampler, (channels, patches), step=step)
    batch, groups, size = targets.shape
    assert groups == 3
    lanes_per_tube = {len({i // patches for i in targets[b, m].tolist()}) for b in range(batch) for m in range(groups)}
    assert len(lanes_per_tube) == 1  # one tube shape per batch
    width = lanes_per_tube.pop()
    length = size // width
    assert 2 <= width <= 4 and round(0.1 * patches) <= length <= round(0.2 * patches)
    channel_sets = set()
    for b in range(batch):
        for m in range(groups):
            tube = targets[b, m].tolist()
            lanes = sorted({i // patches for i in tube})
            times = sorted({i % patches for i in tube})
            assert times == list(range(times[0], times[0] + length))
            assert sorted(tube) == tube == [c * patches + t for c in lanes for t in times]  # the full product
            if contiguous:
                assert lanes == list(range(lanes[0], lanes[0] + width))
            channel_sets.add(tuple(lanes))
        covered = set(targets[b].flatten().tolist())
        assert covered.isdisjoint(context[b].tolist()) and len(set(context[b].tolist())) == context.shape[1]
    assert len(channel_sets) > 1  # channel subsets vary
    fewest = min(channels * patches - len(set(targets[b].flatten().tolist())) for b in range(batch))
    assert context.shape == (batch, fewest)


def test_tubes_on_a_single_channel_are_time_spans():
    context, targets = sample(TubeMaskSampler(num_targets=2), (40,))
    assert targets.shape[:2] == (16, 2) and context.max() < 40


@pytest.mark.parametrize("shape", [(200,), (3, 200), (1, 20)])
@pytest.mark.parametrize("step", range(4))
def test_weimann_blocks_keep_ratio_and_minimum_block_length(shape, step):
    patches, channels = shape[-1], (shape[0] if len(shape) == 2 else 1)
    context, targets = sample(TimeBlockMaskSampler(), shape, step=step)
    keep = context.shape[1] // channels
    assert math.ceil(0.15 * patches) <= keep <= math.ceil(0.25 * patches)
    assert targets.shape == (16, 1, channels * (patches - keep))
    for b in range(16):
        assert sorted(context[b].tolist() + targets[b, 0].tolist()) == list(range(channels * patches))
        masked = {i % patches for i in targets[b, 0].tolist()}
        assert targets[b, 0].tolist() == [c * patches + t for c in range(channels) for t in sorted(masked)]
        assert min(runs([t in masked for t in range(patches)])) >= 10


def test_weimann_blocks_vary_in_number_and_place():
    _, targets = sample(TimeBlockMaskSampler(), (200,), batch=64)
    layouts = {tuple(runs([t in set(targets[b, 0].tolist()) for t in range(200)])) for b in range(64)}
    assert len(layouts) > 10 and len({len(blocks) for blocks in layouts}) > 2


def test_random_split_sums_and_zero_slots():
    generator = torch.Generator().manual_seed(0)
    total, parts = torch.tensor([[10], [0], [7]]), torch.tensor([[3], [2], [1]])
    split = random_split(total, parts, 4, generator)
    assert split.shape == (3, 4) and (split >= 0).all()
    assert split.sum(1).tolist() == [10, 0, 7]
    assert (split[0, 3:] == 0).all() and (split[2, 1:] == 0).all()


@pytest.mark.parametrize(
    "sampler",
    [TubeMaskSampler(), TubeMaskSampler(contiguous_channels=True), TimeBlockMaskSampler(), AxisSpanMaskSampler()],
    ids=lambda s: type(s).__name__,
)
def test_seeded_and_vectorised(sampler):
    first, again = sample(sampler, (6, 200), step=5), sample(sampler, (6, 200), step=5)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    other = sample(sampler, (6, 200), step=6)
    assert not all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(first, other))
    counts = []
    for batch in (2, 256):
        with CountTorchCalls() as counter:
            sample(sampler, (6, 200), batch=batch)
        counts.append(counter.calls)
    assert counts[0] == counts[1]


def test_bad_configurations():
    with pytest.raises(ValueError, match="too few"):
        sample(TimeBlockMaskSampler(), (12,))
    with pytest.raises(ValueError, match="too few"):
        sample(TubeMaskSampler(num_targets=4, time_ratio=(0.3, 0.3), channel_ratio=(1.0, 1.0)), (2, 10))
    with pytest.raises(ValueError, match="keep_ratio"):
        TimeBlockMaskSampler(keep_ratio=(0.5, 1.0))
    with pytest.raises(ValueError, match="channel_ratio"):
        TubeMaskSampler(channel_ratio=(0.0, 0.5))
    with pytest.raises(ValueError, match="axis"):
        AxisSpanMaskSampler(axis=2)
