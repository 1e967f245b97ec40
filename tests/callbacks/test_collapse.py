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


def test_too_few_validation_samples_for_rankme_is_warned_once_per_run(tmp_path):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        fit(Stub(prediction_std=0.8), Blobs(n=12), [CollapseMonitor(), RankMeMonitor()], tmp_path, max_epochs=3)
    few = [str(w.message) for w in record if "fewer samples than dimensions" in str(w.message)]
    assert len(few) == 1 and "4 samples for 8 dimensions" in few[0]


def test_patience_must_be_positive():
    with pytest.raises(ValueError, match="patience"):
        CollapseMonitor(patience=0)


class ShrinkingStub(Stub):
    """Logs JEPA-like statistics that drain away over training, and embeddings that lose dimensions per epoch."""

    def training_step(self, batch, batch_idx):
        decay = 0.5**self.current_epoch
        self.log("train/target_std", 0.33 * decay, on_step=True)
        self.log("train/prediction_std", 0.3 * decay, on_step=True)
        self.log("train/loss", 0.5 * decay**3, on_step=True, on_epoch=True)
        return super().training_step(batch, batch_idx)


def test_a_slow_collapse_is_judged_against_the_run_start_and_warned_once(tmp_path):
    monitor = CollapseMonitor(patience=1, window=2)
    with pytest.warns(UserWarning, match="Representation collapse") as record:
        trainer = fit(ShrinkingStub(), Blobs(), [monitor], tmp_path, max_epochs=4)
    messages = [str(w.message) for w in record if "Representation collapse" in str(w.message)]
    assert len(messages) == 1  # once, although later checks also see it
    assert "at epoch 2" in messages[0] and "anti-collapse term (regularizer=vicreg" in messages[0]
    assert "the training loss fell to 2% of its start (0.5 -> 0.007812) while the targets shrank to 25%" in messages[0]
    later = monitor.signals({"target_std": 0.33 / 8, "embedding_std": 0.5}, monitor.start)  # epoch 3's spread
    assert later == ["per-dimension std of the JEPA targets (target_std) fell to 12% of its start (0.33 -> 0.04125)"]
    assert monitor.start["target_std"] == pytest.approx(0.33)
    assert trainer.callback_metrics["collapse/collapsed"] == 1.0 and not trainer.should_stop
    restored = CollapseMonitor()
    restored.load_state_dict(monitor.state_dict())
    assert restored.warned and restored.start == monitor.start


def test_a_jepa_made_to_collapse_is_caught_and_a_healthy_one_is_not(tmp_path):
    """EMA momentum 0: the teacher is the student, whose targets it learns to make trivially predictable."""
    import lightning as L

    from datamodules import ImageDataModule
    from tests.conftest import fast_trainer, tiny_ijepa

    def run(**kwargs) -> list[str]:
        L.seed_everything(0)
        monitor = CollapseMonitor(patience=1)
        trainer = fast_trainer(tmp_path, max_epochs=2, limit_train_batches=20, limit_val_batches=2, callbacks=[monitor])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer.fit(tiny_ijepa(**kwargs), ImageDataModule(image_size=16, batch_size=32))
        return [str(w.message) for w in caught if "Representation collapse" in str(w.message)]

    collapsed = run(ema_momentum=0.0, final_ema_momentum=0.0, lr=3e-3, warmup_fraction=0.0)
    assert len(collapsed) == 1 and "while the targets shrank" in collapsed[0]
    assert run() == []


def test_a_one_sample_validation_split_skips_the_embedding_checks_with_a_note(tmp_path, caplog):
    from jepa_lightning.callbacks import SpectrumPlot

    class OneSample(Blobs):
        def val_dataloader(self):
            return torch.utils.data.DataLoader([{"x": self.x[-1], "y": self.y[-1]}], batch_size=1)

    monitor, spectrum = CollapseMonitor(), SpectrumPlot()
    trainer = fit(Stub(), OneSample(), [monitor, spectrum, RankMeMonitor()], tmp_path, max_epochs=2)
    assert trainer.current_epoch == 2 and spectrum.steps == []
    assert "collapse/embedding_std" not in trainer.callback_metrics
