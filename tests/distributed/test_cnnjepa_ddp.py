"""CNN-JEPA under DDP with synchronised batch norms (2 CPU processes, gloo) equals one process on the global batch.

Each rank takes half of a fixed global batch, converts the model's batch norms as Lightning's ``sync_batchnorm=True``
does (``TorchSyncBatchNorm().apply``: every batch norm, the sparse ones of the student included, becomes an
``nn.SyncBatchNorm``), runs one CNN-JEPA objective with the masks of its own rows, back-propagates and averages the
gradients over ranks as DDP does. Loss, gradients and batch-norm running statistics must match one process on the
whole batch; without synchronisation they do not (per-rank statistics).
"""

from __future__ import annotations

from functools import partial

import pytest
import torch
import torch.distributed as dist
from lightning.pytorch.plugins.layer_sync import TorchSyncBatchNorm
from torch import Tensor

from jepa_lightning import distributed
from jepa_lightning.inputs import InputSpec
from jepa_lightning.masks import MaskSampler, RandomMaskSampler, mask_generator
from jepa_lightning.methods import CNNJEPA
from jepa_lightning.nn.dense import SparseBatchNorm2d, SparseResNet
from jepa_lightning.tokens import TokenLayout
from tests.distributed import run_on_ranks

pytestmark = pytest.mark.distributed

WORLD, LOCAL = 2, 4
SPEC = InputSpec("images", channels=1, image_size=(32, 32))
#: A small ResNet-18 (one block per stage) on 32-pixel images: an 8 x 8 grid of 4-pixel cells.
ENCODER = partial(
    SparseResNet,
    model_name="resnet18",
    layers=(1, 1, 1, 1),
    channels=(8, 8, 16, 16),
    stem_width=8,
    small_input_stem=True,
    output_stride=16,
)


class RowsOfGlobalMasks(MaskSampler):
    """Random masks (60% targets: equal counts, so the global batch stacks) drawn once for the whole global batch
    from a fixed generator; a rank keeps the rows of its own samples."""

    def __call__(
        self, layout: TokenLayout, batch_size: int, generator: torch.Generator, device, progress: float = 0.0
    ) -> tuple[Tensor, Tensor]:
        context, target = RandomMaskSampler(0.6)(layout, WORLD * LOCAL, torch.Generator().manual_seed(3), device)
        start = distributed.rank() * batch_size if batch_size < WORLD * LOCAL else 0
        return context[start : start + batch_size], target[start : start + batch_size]


def images() -> Tensor:
    return torch.randn(WORLD * LOCAL, 1, 32, 32, generator=torch.Generator().manual_seed(1))


def build(sync: bool) -> CNNJEPA:
    torch.manual_seed(0)
    model = CNNJEPA(encoder=ENCODER, input_spec=SPEC, mask_sampler=RowsOfGlobalMasks())
    return TorchSyncBatchNorm().apply(model) if sync else model


def step(model: CNNJEPA, rows: slice) -> dict[str, object]:
    """One objective on ``rows`` of the global batch: loss, gradients and running statistics (averaged over ranks)."""
    loss = model.masked_prediction(images()[rows], mask_generator(0, 0, distributed.rank(), "cpu")).loss
    loss.backward()
    trained = [*model.student.named_parameters(), *model.predictor.named_parameters()]
    running = {name: b for name, b in model.named_buffers() if name.endswith(("running_mean", "running_var"))}
    return {
        "loss": distributed.all_reduce_mean(loss.detach()),
        "grads": {name: distributed.all_reduce_mean(p.grad) for name, p in trained},
        "running": {name: distributed.all_reduce_mean(b) for name, b in running.items()},
        "norms": sorted({type(m).__name__ + ("+sync" if getattr(m, "sync", False) else "") for m in norms(model)}),
    }


def norms(model: CNNJEPA) -> list[torch.nn.Module]:
    return [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def _job(rank: int) -> dict[str, object]:
    rows = slice(rank * LOCAL, (rank + 1) * LOCAL)
    synced = step(build(sync=True), rows)
    local = step(build(sync=False), rows)
    dist.barrier()
    return {"synced": synced, "local": local}


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict[str, object]]:
    return run_on_ranks(_job, tmp_path_factory.mktemp("cnnjepa_ddp"), WORLD)


@pytest.fixture(scope="module")
def one_process() -> dict[str, object]:
    return step(build(sync=False), slice(None))


def test_synchronised_batch_norms_stay_sparse_and_sync(ranks):
    for result in ranks:
        assert result["synced"]["norms"] == ["SparseBatchNorm2d+sync"]
        assert result["local"]["norms"] == ["BatchNorm2d", "SparseBatchNorm2d"]


def test_two_ranks_with_sync_batchnorm_equal_one_process_on_the_global_batch(ranks, one_process):
    for result in ranks:
        synced = result["synced"]
        torch.testing.assert_close(synced["loss"], one_process["loss"], rtol=1e-5, atol=1e-6)
        assert synced["grads"].keys() == one_process["grads"].keys()
        for name, grad in one_process["grads"].items():
            torch.testing.assert_close(synced["grads"][name], grad, rtol=1e-4, atol=1e-6, msg=name)
        assert synced["running"].keys() == one_process["running"].keys()
        for name, value in one_process["running"].items():
            torch.testing.assert_close(synced["running"][name], value, rtol=1e-5, atol=1e-6, msg=name)


def test_without_synchronisation_the_ranks_normalise_with_their_own_statistics(ranks, one_process):
    local = ranks[0]["local"]
    differs = [not torch.allclose(local["grads"][n], g, rtol=1e-3, atol=1e-5) for n, g in one_process["grads"].items()]
    assert any(differs)
    assert not torch.allclose(local["loss"], one_process["loss"], rtol=1e-5, atol=1e-6)


def test_the_conversion_is_undone_bit_identically_in_one_process():
    """Without a process group a restored sparse batch norm is the sparse batch norm it replaced."""
    plain, converted = build(sync=False), build(sync=True)
    first = plain.masked_prediction(images(), mask_generator(0, 0, 0, "cpu")).loss
    second = converted.masked_prediction(images(), mask_generator(0, 0, 0, "cpu")).loss
    assert all(isinstance(m, SparseBatchNorm2d) and m.sync for m in norms(converted))
    assert torch.equal(first, second)
