"""Embedding metrics on 2 CPU processes (gloo) equal one process on all the data, and every diagnostic callback
(the online probes included) runs under Lightning's DDP without a collective mismatch (hang).

The ranks hold uneven shares of the samples (37 and 27 rows) to exercise torchmetrics' uneven gather.
"""

from __future__ import annotations

import pytest
import torch

from jepa_lightning.callbacks import CollapseMonitor, OnlineKNNProbe, OnlineLinearProbe, RankMeMonitor, SpectrumPlot
from jepa_lightning.callbacks.online_probes import eval_mode
from jepa_lightning.metrics import EmbeddingSpectrum, EmbeddingStd, RankMe, rankme
from tests.callbacks.test_online_probes import Blobs, Stub, fit
from tests.distributed import run_on_ranks

pytestmark = pytest.mark.distributed

WORLD = 2
SPLIT = 37


def embeddings() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(64, 6, generator=g) @ torch.diag(torch.tensor([4.0, 2.0, 1.0, 0.5, 0.2, 0.1]))


def run_metrics(z: torch.Tensor) -> dict[str, torch.Tensor]:
    results = {}
    for name, metric in {"rankme": RankMe(), "spectrum": EmbeddingSpectrum(), "std": EmbeddingStd()}.items():
        metric.update(z)
        results[name] = metric.compute()
    return results


def _job(rank: int) -> dict[str, object]:
    z = embeddings()
    return run_metrics(z[:SPLIT] if rank == 0 else z[SPLIT:])


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict[str, object]]:
    folder = tmp_path_factory.mktemp("rankme")
    return run_on_ranks(_job, folder, WORLD)


def test_metrics_on_two_ranks_equal_one_process(ranks):
    expected = run_metrics(embeddings())
    for result in ranks:
        for name in ("rankme", "spectrum", "std"):
            torch.testing.assert_close(result[name], expected[name], rtol=1e-5, atol=1e-8)
    assert 1.0 < expected["rankme"] < 6.0


def test_diagnostic_callbacks_run_under_lightning_ddp(tmp_path):
    callbacks = [
        OnlineLinearProbe(),
        OnlineKNNProbe(k=5),
        RankMeMonitor(),
        SpectrumPlot(top_k=4),
        CollapseMonitor(),
    ]
    model, data = Stub(), Blobs()
    trainer = fit(model, data, callbacks, tmp_path, strategy="ddp_spawn", devices=WORLD, max_epochs=2)
    metrics = trainer.callback_metrics
    assert metrics["probe/acc"] > 0.9 and metrics["probe/knn_acc"] > 0.9
    assert metrics["collapse/collapsed"] == 0.0 and metrics["val/rankme"] > 2.0
    assert (tmp_path / "spectrum.png").exists()
    # ddp_spawn brings rank 0's weights back: RankMe gathered over the two val shards is that of the whole split
    with torch.no_grad(), eval_mode(model):
        expected = rankme(model.embed(data.x[data.n_train :]))
    assert metrics["val/rankme"].item() == pytest.approx(expected.item(), rel=1e-5)
