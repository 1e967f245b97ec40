"""Every communicating objective on 2 CPU processes (gloo) equals one process on the global batch.

One spawn per module: each rank takes half of a fixed global batch, runs it through a shared linear layer and
the objective, back-propagates and averages the layer's gradients over ranks as DDP does; the returned values
(averaged over ranks) and gradients must match a single process on the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist

from jepa_lightning import distributed
from jepa_lightning.losses import (
    barlow_twins,
    clip_loss,
    intl_loss,
    lejepa_loss,
    nt_xent,
    sigmoid_loss,
    sigreg,
    similarity_targets,
    slice_directions,
    supervised_clip_loss,
    tico,
    vicreg,
    vicreg_covariance,
    vicreg_token_terms,
    vicreg_variance,
)
from jepa_lightning.methods import AcousticWordEmbedding, ItemSSL
from tests.distributed import run_on_ranks

pytestmark = pytest.mark.distributed

WORLD = 2
GLOBAL_BATCH = 16
IN_DIM, OUT_DIM = 6, 5

Case = Callable[[list[torch.Tensor]], tuple[torch.Tensor, ...]]


def _initial_covariance() -> torch.Tensor:
    a = torch.randn(OUT_DIM, OUT_DIM, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    return a @ a.T / OUT_DIM


def _token_terms(z: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """VICReg over tokens: each row a sample of 1 token, scaled so that the variance hinge is active."""
    variance, covariance = vicreg_token_terms(0.3 * z[0].reshape(-1, 1, OUT_DIM))
    return variance + covariance, variance, covariance


def _labels(z: torch.Tensor) -> torch.Tensor:
    """This rank's labels of a fixed global labelling: three classes, and unlabelled (-1) rows mostly on rank 1."""
    full = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, -1, 2, -1, -1, 0, -1, 1, 2])
    n = z.shape[0]
    return full[distributed.rank() * n : (distributed.rank() + 1) * n]


def _smoothed_clip(z: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """CLIP with ConGraT's targets smoothed by similarities of the third view ("exp" weights: rows and columns
    differ, so the columns need the other rank's rows)."""
    rows = torch.nn.functional.normalize(z[2].detach(), dim=1)
    sims = rows @ distributed.gather(rows).T
    own = distributed.rank() * rows.shape[0] + torch.arange(rows.shape[0])
    row_targets, column_targets = similarity_targets(sims, own, alpha=0.3, weights="exp")
    return (clip_loss(z[0], z[1], 3.0, (column_targets, row_targets)),)


def _same_string_sigmoid(z: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """AcousticWordEmbedding's positives (the own partner and every item with the same label, gathered) in the
    sigmoid loss, and its hard-negative term (every pair a negative)."""
    n = z[0].shape[0]
    positives = AcousticWordEmbedding.positives(
        SimpleNamespace(same_string_positives=True), {"y": _labels(z[0])}, n, z[0].device
    )
    matching = sigmoid_loss(z[0], z[1], 3.0, -2.0, positives)
    negatives = sigmoid_loss(z[0], z[2], 3.0, -2.0, torch.zeros_like(positives))
    return (matching + negatives) / 2, matching, negatives


#: Rank 0 holds rows [0, 5) and rank 1 rows [5, 16): token counts differ between ranks, as JEPA contexts do.
UNEVEN_ROWS = (slice(0, 5), slice(5, GLOBAL_BATCH))

# Each case maps the projected views of this rank's rows to (loss, *values); every value's mean over ranks
# must equal the single-process value (a local mean, or identical on every rank).
CASES: dict[str, Case] = {
    "nt_xent": lambda z: (nt_xent(z[0], z[1], 0.5),),
    "clip_loss": lambda z: (clip_loss(z[0], z[1], torch.tensor(2.0, dtype=torch.float64)),),
    "clip_loss_smoothed": _smoothed_clip,
    "supervised_clip_loss": lambda z: (supervised_clip_loss(z[0], z[1], _labels(z[0]), 2.0),),
    "sigmoid_loss": lambda z: (sigmoid_loss(z[0], z[1], torch.tensor(3.0, dtype=torch.float64), -2.0),),
    "acoustic_word": _same_string_sigmoid,
    "barlow_twins": lambda z: (barlow_twins(z[0], z[1], 0.1),),
    "vicreg": lambda z: tuple(vicreg(z[0], z[1])),
    "vicreg_variance": lambda z: (vicreg_variance(z[0] * 0.3),),
    "vicreg_covariance": lambda z: (vicreg_covariance(z[0]),),
    "vicreg_token_terms": _token_terms,
    "tico": lambda z: tico(z[0], z[1], _initial_covariance(), beta=0.7, rho=3.0),
    "tico_detached_batch_covariance": lambda z: tico(
        z[0], z[1], _initial_covariance(), beta=0.7, rho=3.0, detach_batch_covariance=True
    ),
    "sigreg": lambda z: (sigreg(z[0], num_slices=16, seed=5),),
    "lejepa_loss": lambda z: tuple(lejepa_loss(z, lambda_=0.3, num_slices=16, seed=9, num_global_views=2)),
    "intl_channel": lambda z: tuple(intl_loss(z[0], z[1])),
    "intl_batch": lambda z: tuple(intl_loss(z[0], z[1], axis="batch")),
    # ItemSSL's own objective (it reads only ``temperature`` from the module): normalise, then clip_loss at 1 / T
    "item_ssl": lambda z: (ItemSSL.objective(SimpleNamespace(temperature=0.2), [z[0], z[1]], [])[0],),
}


def _layer() -> torch.nn.Linear:
    torch.manual_seed(0)
    return torch.nn.Linear(IN_DIM, OUT_DIM).double()


def _inputs() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    base = torch.randn(GLOBAL_BATCH, IN_DIM, generator=g, dtype=torch.float64)
    return [base + 0.3 * torch.randn(GLOBAL_BATCH, IN_DIM, generator=g, dtype=torch.float64) for _ in range(3)]


def _run_case(case: Case, rows: slice) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Values and layer gradients of one case on ``rows`` of the global batch."""
    layer = _layer()
    outputs = case([layer(x[rows]) for x in _inputs()])
    outputs[0].backward()
    return [o.detach() for o in outputs], [p.grad for p in layer.parameters()]


def _mean_over_ranks(x: torch.Tensor) -> torch.Tensor:
    x = x.clone()
    dist.all_reduce(x)
    return x / dist.get_world_size()


def _collective_checks(rank: int) -> dict[str, object]:
    """The collectives' own forward and backward, the uneven-size error and rank-identical directions."""
    out: dict[str, object] = {"topology": (distributed.is_distributed(), distributed.world_size(), distributed.rank())}
    x = (torch.arange(6.0, dtype=torch.float64).reshape(3, 2) + 10 * rank).requires_grad_()
    weight = torch.arange(12.0, dtype=torch.float64).reshape(6, 2) * (rank + 1)
    gathered = distributed.gather(x)
    (gathered * weight).sum().backward()
    out["gather"] = (gathered.detach(), x.grad)
    for name, reduce in (("sum", distributed.all_reduce_sum), ("mean", distributed.all_reduce_mean)):
        y = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
        value = reduce(y * (rank + 1))
        (value * (rank + 1)).sum().backward()
        out[name] = (value.detach(), y.grad)
    try:
        distributed.gather(torch.zeros(2 + rank, 3))
    except ValueError as error:
        out["uneven"] = str(error)
    torch.manual_seed(100 + rank)
    out["broadcast"] = distributed.broadcast(torch.full((2,), float(rank)))
    out["directions_without_seed"] = slice_directions(4, 3)
    return out


def _job(rank: int) -> dict[str, object]:
    local = GLOBAL_BATCH // WORLD
    results: dict[str, object] = {}
    for name, case in CASES.items():
        values, grads = _run_case(case, slice(rank * local, (rank + 1) * local))
        results[name] = ([_mean_over_ranks(v) for v in values], [_mean_over_ranks(g) for g in grads])
    values, grads = _run_case(_token_terms, UNEVEN_ROWS[rank])
    results["token_terms_uneven"] = ([_mean_over_ranks(v) for v in values], [_mean_over_ranks(g) for g in grads])
    results.update(_collective_checks(rank))
    return results


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict[str, object]]:
    folder = tmp_path_factory.mktemp("objectives")
    return run_on_ranks(_job, folder, WORLD)


@pytest.mark.parametrize("name", [*CASES, "token_terms_uneven"])
def test_two_ranks_equal_one_process_on_the_global_batch(ranks, name):
    expected_values, expected_grads = _run_case(CASES.get(name, _token_terms), slice(None))
    for result in ranks:
        values, grads = result[name]
        assert len(values) == len(expected_values)
        for value, expected in zip(values, expected_values):
            torch.testing.assert_close(value, expected, rtol=1e-9, atol=1e-11)
        for grad, expected in zip(grads, expected_grads):
            torch.testing.assert_close(grad, expected, rtol=1e-9, atol=1e-11)


def test_collectives_forward_and_backward(ranks):
    base = torch.arange(12.0, dtype=torch.float64).reshape(6, 2)
    x = [torch.arange(6.0, dtype=torch.float64).reshape(3, 2) + 10 * r for r in range(WORLD)]
    for r, result in enumerate(ranks):
        assert result["topology"] == (True, WORLD, r)
        gathered, grad = result["gather"]
        torch.testing.assert_close(gathered, torch.cat(x))
        # every rank's loss sends its gradient back: sum over ranks of weight_r, this rank's rows
        torch.testing.assert_close(grad, 3 * base[3 * r : 3 * r + 3])
        value, grad = result["sum"]
        torch.testing.assert_close(value, torch.tensor([3.0, 6.0], dtype=torch.float64))
        # the sum's backward sums the incoming gradients: sum_s (s+1), times this rank's factor (r+1)
        torch.testing.assert_close(grad, torch.full((2,), 3.0 * (r + 1), dtype=torch.float64))
        value, grad = result["mean"]
        torch.testing.assert_close(value, torch.tensor([1.5, 3.0], dtype=torch.float64))
        # the mean's backward averages the incoming gradients: mean_s (s+1), times this rank's factor
        torch.testing.assert_close(grad, torch.full((2,), 1.5 * (r + 1), dtype=torch.float64))


def test_gather_rejects_uneven_batches(ranks):
    for result in ranks:
        assert "equal local batch sizes" in result["uneven"]
        assert "(2, 3), (3, 3)" in result["uneven"]


def test_broadcast_and_unseeded_directions_are_identical_on_every_rank(ranks):
    for result in ranks:
        torch.testing.assert_close(result["broadcast"], torch.zeros(2))
    torch.testing.assert_close(ranks[0]["directions_without_seed"], ranks[1]["directions_without_seed"])
