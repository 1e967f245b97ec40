import pytest
import torch

from jepa_lightning.masks import ContiguousSpanMaskSampler, mask_generator
from jepa_lightning.tokenizers import TokenLayout, grid_coords
from tests.masks import CountTorchCalls


def sequence_layout(num_tokens: int) -> TokenLayout:
    return TokenLayout("sequence", (num_tokens,), grid_coords((num_tokens,)))


def sample(batch: int = 64, num_tokens: int = 64, seed: int = 0, step: int = 0, rank: int = 0, **kwargs):
    sampler = ContiguousSpanMaskSampler(**kwargs)
    return sampler(sequence_layout(num_tokens), batch, mask_generator(seed, step, rank, "cpu"), "cpu")


def remaining_tokens(targets: torch.Tensor, num_tokens: int) -> list[int]:
    covered = set(targets.flatten().tolist())
    return [i for i in range(num_tokens) if i not in covered]


def test_shapes_and_index_range():
    context, targets = sample(batch=32)
    assert context.ndim == 2 and context.shape[0] == 32 and context.shape[1] >= 1
    assert targets.ndim == 3 and targets.shape[:2] == (32, 4)
    assert context.dtype == targets.dtype == torch.long
    for idx in (context, targets):
        assert idx.min() >= 0 and idx.max() < 64


@pytest.mark.parametrize("step", range(5))
def test_targets_are_contiguous_spans_of_one_length(step):
    num_tokens = 64
    _, targets = sample(batch=32, num_tokens=num_tokens, step=step)
    length = targets.shape[-1]
    assert int(0.15 * num_tokens) <= length <= int(0.2 * num_tokens)
    assert torch.equal(targets - targets[..., :1], torch.arange(length).expand_as(targets))


@pytest.mark.parametrize("step", range(5))
def test_context_is_a_contiguous_run_of_the_remaining_tokens_disjoint_from_targets(step):
    num_tokens = 64
    context, targets = sample(batch=64, num_tokens=num_tokens, step=step)
    for b in range(64):
        remaining = remaining_tokens(targets[b], num_tokens)
        ctx = context[b].tolist()
        assert set(ctx).isdisjoint(targets[b].flatten().tolist())
        ranks = [remaining.index(i) for i in ctx]
        assert ranks == list(range(ranks[0], ranks[0] + len(ranks))), "context is not a run of remaining tokens"


@pytest.mark.parametrize("step", range(5))
def test_context_ratio_within_range(step):
    num_tokens = 64
    context, targets = sample(batch=16, num_tokens=num_tokens, step=step)
    fewest_remaining = min(len(remaining_tokens(targets[b], num_tokens)) for b in range(16))
    # one context ratio per batch; the shortest context sets the stacked length
    assert int(0.4 * fewest_remaining) <= context.shape[1] <= int(0.75 * fewest_remaining)


def test_context_window_positions_vary():
    """Single-sample batches (no truncation) place the context window anywhere in the remaining tokens."""
    sampler, layout, num_tokens = ContiguousSpanMaskSampler(context_ratio=(0.4, 0.4)), sequence_layout(32), 32
    starts_at_first, ends_at_last = False, False
    for step in range(200):
        context, targets = sampler(layout, 1, mask_generator(0, step, 0, "cpu"), "cpu")
        remaining = remaining_tokens(targets[0], num_tokens)
        assert context.shape[1] == max(1, int(0.4 * len(remaining)))
        starts_at_first |= context[0, 0].item() == remaining[0]
        ends_at_last |= context[0, -1].item() == remaining[-1]
    assert starts_at_first and ends_at_last


def test_same_seed_same_masks_other_seed_step_or_rank_other_masks():
    a = sample(seed=3, step=7)
    b = sample(seed=3, step=7)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    for other in (sample(seed=4, step=7), sample(seed=3, step=8), sample(seed=3, step=7, rank=1)):
        assert not torch.equal(a[1][..., 0], other[1][..., 0])


def test_sampling_is_vectorised_over_the_batch():
    """The number of torch calls must not grow with the batch: no per-sample Python loop."""
    counts = {}
    for batch in (2, 256):
        sampler, layout = ContiguousSpanMaskSampler(), sequence_layout(64)
        with CountTorchCalls() as counter:
            sampler(layout, batch, mask_generator(0, 0, 0, "cpu"), "cpu")
        counts[batch] = counter.calls
    assert counts[256] == counts[2]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_ratio": (0.3, 0.1)}, "target_ratio"),
        ({"target_ratio": (0.1, 1.5)}, "target_ratio"),
        ({"context_ratio": (0.0, 0.5)}, "context_ratio"),
        ({"num_targets": 0}, "num_targets"),
    ],
)
def test_bad_configuration_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ContiguousSpanMaskSampler(**kwargs)


def test_needs_a_1d_sequence():
    layout = TokenLayout("grid", (8, 8), grid_coords((8, 8)))
    with pytest.raises(ValueError, match="1-D token sequence"):
        ContiguousSpanMaskSampler()(layout, 2, mask_generator(0, 0, 0, "cpu"), "cpu")


@pytest.mark.parametrize(("num_tokens", "num_targets"), [(1, 1), (4, 4), (20, 5)])
def test_too_short_sequence_is_rejected(num_tokens, num_targets):
    sampler = ContiguousSpanMaskSampler(num_targets=num_targets)
    with pytest.raises(ValueError, match="too short"):
        sampler(sequence_layout(num_tokens), 2, mask_generator(0, 0, 0, "cpu"), "cpu")


def test_shortest_valid_sequence_keeps_one_context_token():
    context, targets = sample(batch=64, num_tokens=2, num_targets=1)
    assert context.shape == (64, 1) and targets.shape == (64, 1, 1)
    assert (context != targets[:, 0]).all()


def test_batch_shared_masks_are_one_mask_for_every_sample():
    context, targets = sample(batch=16, batch_shared=True)
    assert (context == context[:1]).all() and (targets == targets[:1]).all()
    assert set(context[0].tolist()).isdisjoint(targets[0].flatten().tolist())
    _, per_sample_targets = sample(batch=16)
    assert not (per_sample_targets == per_sample_targets[:1]).all()
