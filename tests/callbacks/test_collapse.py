import warnings

import pytest
import torch

from jepa_lightning.callbacks import CollapseMonitor, RankMeMonitor
from jepa_lightning.callbacks.online_probes import eval_mode
from jepa_lightning.metrics import rankme
from tests.callbacks.test_online_probes import Blobs, Stub, fit


def test_collapsed_encoder_warns_with_the_numbers_and_stops_after_patience(tmp_path):
    monitor = CollapseMonitor(patience=2, stop=True)
    with pytest.warns(UserWarning, match="Representation collapse") as record:
        trainer = fit(Stub(collapsed=True, prediction_std=1e-4), Blobs(), [monitor], tmp_path, max_epochs=5)
    message = str(next(w.message for w in record if "collapse" in str(w.message)))
    assert "2 check(s) in a row" in message
    for name in ("embedding_std", "rankme", "prediction_std"):
        assert name in message
    assert trainer.should_stop and trainer.current_epoch == 2  # stopped after the second collapsed epoch
    metrics = trainer.callback_metrics
    assert metrics["collapse/collapsed"] == 1.0
    assert metrics["collapse/embedding_std"] < 1e-3
    assert metrics["collapse/rankme"] == pytest.approx(1.0, abs=1e-3)
    assert metrics["collapse/prediction_std"] == pytest.approx(1e-4)
    restored = CollapseMonitor()
    restored.load_state_dict(monitor.state_dict())
    assert restored.streak == 2


def test_healthy_encoder_stays_quiet_and_rankme_is_logged(tmp_path):
    model, data = Stub(prediction_std=0.8), Blobs()
    monitor = CollapseMonitor(patience=1, stop=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*collapse.*")
        trainer = fit(model, data, [monitor, RankMeMonitor()], tmp_path, max_epochs=2)
    metrics = trainer.callback_metrics
    assert not trainer.should_stop and trainer.current_epoch == 2 and monitor.streak == 0
    assert metrics["collapse/collapsed"] == 0.0
    assert metrics["collapse/embedding_std"] > 0.3
    with torch.no_grad(), eval_mode(model):
        expected = rankme(model.embed(data.x[data.n_train :]))
    assert metrics["val/rankme"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert metrics["collapse/rankme"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert 2.0 < expected < 8.0


def test_patience_must_be_positive():
    with pytest.raises(ValueError, match="patience"):
        CollapseMonitor(patience=0)
