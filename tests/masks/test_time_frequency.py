import pytest
import torch

from jepa_lightning.masks import (
    CurriculumMaskSampler,
    FrequencyBandMaskSampler,
    MaskSampler,
    MultiBlockMaskSampler,
    RandomChoiceMaskSampler,
    TimeSpanMaskSampler,
    mask_generator,
)
from jepa_lightning.tokenizers import TokenLayout, grid_coords
from tests.masks import CountTorchCalls

GRID = (8, 40)  # (frequency, time)


def grid_layout(shape: tuple[int, int] = GRID) -> TokenLayout:
    return TokenLayout("grid", shape, grid_coords(shape))


def sample(sampler: MaskSampler, batch: int = 32, step: int = 0, progress: float = 0.0, shape=GRID):
    return sampler(grid_layout(shape), batch, mask_generator(0, step, 0, "cpu"), "cpu", progress)


def check_bands(sampler: MaskSampler, axis: int, step: int) -> None:
    """Each target is a contiguous run along ``axis`` covering the whole other axis; context is the rest."""
    context, targets = sample(sampler, step=step)
    batch, num_targets, size = targets.shape
    assert num_targets == 2
    other = GRID[1 - axis]
    assert size % other == 0
    width = size // other
    assert round(0.1 * GRID[axis]) <= width <= round(0.2 * GRID[axis])
    rows, cols = targets // GRID[1], targets % GRID[1]
    banded, full = (rows, cols) if axis == 0 else (cols, rows)
    for b in range(batch):
        for m in range(num_targets):
            assert sorted(set(banded[b, m].tolist())) == list(
                range(int(banded[b, m].min()), int(banded[b, m].min()) + width)
            )
            assert sorted(set(full[b, m].tolist())) == list(range(other))
        covered = set(targets[b].flatten().tolist())
        ctx = context[b].tolist()
        assert covered.isdisjoint(ctx)
        # the context is whole lines (columns for time spans, rows for bands): the first uncovered ones, truncated
        # per line to the batch's fewest
        line = (lambda i: i // GRID[1]) if axis == 0 else (lambda i: i % GRID[1])
        lines = sorted({line(i) for i in ctx})
        assert ctx == [i for i in range(GRID[0] * GRID[1]) if line(i) in lines]
        uncovered = [k for k in range(GRID[axis]) if k not in set(banded[b].flatten().tolist())]
        assert lines == uncovered[: len(lines)]
    fewest = min(GRID[axis] - len(set(banded[b].flatten().tolist())) for b in range(batch))
    assert context.shape == (batch, fewest * other)


@pytest.mark.parametrize("step", range(3))
def test_time_spans_cover_all_frequency_rows_of_a_contiguous_time_range(step):
    check_bands(TimeSpanMaskSampler(), axis=1, step=step)


@pytest.mark.parametrize("step", range(3))
def test_frequency_bands_cover_all_time_columns_of_a_contiguous_frequency_range(step):
    check_bands(FrequencyBandMaskSampler(num_targets=2, width_ratio=(0.1, 0.2)), axis=0, step=step)


@pytest.mark.parametrize("sampler_class", [TimeSpanMaskSampler, FrequencyBandMaskSampler])
def test_seeded_determinism(sampler_class):
    a, b, c = (sample(sampler_class(), step=step) for step in (0, 0, 1))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(a, c))


@pytest.mark.parametrize(
    "sampler",
    [
        TimeSpanMaskSampler(),
        FrequencyBandMaskSampler(),
        CurriculumMaskSampler(MultiBlockMaskSampler(), [TimeSpanMaskSampler(), FrequencyBandMaskSampler()]),
    ],
)
def test_no_per_sample_loop(sampler):
    counts = []
    for batch in (2, 256):
        with CountTorchCalls() as probe:
            sample(sampler, batch=batch, progress=0.5)
        counts.append(probe.calls)
    assert counts[0] == counts[1]


def test_too_many_bands_raise():
    with pytest.raises(ValueError, match="too few"):
        sample(FrequencyBandMaskSampler(num_targets=4, width_ratio=(0.25, 0.25)))
    with pytest.raises(ValueError, match="2-D"):
        FrequencyBandMaskSampler()(TokenLayout("sequence", (10,), grid_coords((10,))), 2, torch.Generator(), "cpu")
    with pytest.raises(ValueError, match="width_ratio"):
        TimeSpanMaskSampler(width_ratio=(0.3, 0.2))


class Tagged(MaskSampler):
    """Returns its tag as the context, to see which sampler the curriculum chose."""

    def __init__(self, tag: int) -> None:
        self.tag = tag

    def __call__(self, layout, batch_size, generator, device, progress=0.0):
        return torch.full((batch_size, 1), self.tag), torch.zeros(batch_size, 1, 1, dtype=torch.long)


def chosen(sampler: MaskSampler, progress: float, draws: int = 400) -> list[int]:
    return [int(sample(sampler, batch=2, step=step, progress=progress)[0][0, 0]) for step in range(draws)]


def test_curriculum_uses_early_at_the_start_and_late_at_the_end():
    curriculum = CurriculumMaskSampler(Tagged(0), Tagged(1))
    assert set(chosen(curriculum, 0.0, 50)) == {0}
    assert set(chosen(curriculum, 1.0, 50)) == {1}


def test_curriculum_mixes_linearly_between_start_and_end():
    curriculum = CurriculumMaskSampler(Tagged(0), Tagged(1), start=0.2, end=0.6)
    assert set(chosen(curriculum, 0.1, 50)) == {0}
    assert set(chosen(curriculum, 0.7, 50)) == {1}
    assert curriculum.late_probability(0.3) == pytest.approx(0.25)
    share = sum(chosen(curriculum, 0.3)) / 400
    assert 0.17 < share < 0.33


def test_curriculum_with_a_list_alternates_the_late_samplers():
    curriculum = CurriculumMaskSampler(Tagged(0), [Tagged(1), Tagged(2)])
    picks = chosen(curriculum, 1.0, 200)
    assert set(picks) == {1, 2}
    assert 0.35 < picks.count(1) / 200 < 0.65
    assert isinstance(curriculum.late, RandomChoiceMaskSampler)


def test_curriculum_with_real_samplers_keeps_the_contract():
    curriculum = CurriculumMaskSampler(MultiBlockMaskSampler(), [TimeSpanMaskSampler(), FrequencyBandMaskSampler()])
    for progress in (0.0, 0.5, 1.0):
        context, targets = sample(curriculum, batch=8, progress=progress, shape=(8, 12))
        assert context.shape[0] == 8 and targets.shape[0] == 8
        for b in range(8):
            assert set(context[b].tolist()).isdisjoint(targets[b].flatten().tolist())


def test_random_choice_weights():
    sampler = RandomChoiceMaskSampler([Tagged(1), Tagged(2)], weights=[0.0, 1.0])
    assert set(chosen(sampler, 0.0, 30)) == {2}
    with pytest.raises(ValueError, match="weights"):
        RandomChoiceMaskSampler([Tagged(1)], weights=[1.0, 2.0])
