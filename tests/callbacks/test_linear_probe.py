import lightning as L
import numpy as np
import pytest
import torch

from datamodules import ImageDataModule
from jepa_lightning.callbacks import LinearProbeReport, linear_probe_accuracy
from tests.conftest import fast_trainer, tiny_ijepa


def blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    return rng.normal(size=(n, 5)) * 0.1 + np.eye(5)[labels] * 3, labels


def test_probe_is_perfect_on_separable_data_and_at_chance_on_noise():
    assert linear_probe_accuracy(blobs(300, 0), blobs(200, 1)) == 1.0
    rng = np.random.default_rng(0)
    noise_train = (rng.normal(size=(300, 5)), rng.integers(0, 3, 300))
    noise_test = (rng.normal(size=(3000, 5)), rng.integers(0, 3, 3000))
    assert abs(linear_probe_accuracy(noise_train, noise_test) - 1 / 3) < 0.05


def test_unlabeled_samples_are_left_out_and_all_unlabeled_is_an_error():
    features, labels = blobs(300, 0)
    labels = labels.copy()
    features[:50] = 1e6  # garbage rows, marked unlabeled: they must not be used
    labels[:50] = -1
    assert linear_probe_accuracy((features, labels), blobs(200, 1)) == 1.0
    with pytest.raises(ValueError, match=r"labelled samples.*remove the LinearProbeReport callback"):
        linear_probe_accuracy((features, np.full(300, -1)), blobs(200, 1))


def test_report_measures_before_and_after_and_writes_the_plot(tmp_path, capsys):
    report = LinearProbeReport()
    data = ImageDataModule(image_size=16, batch_size=64)
    model = tiny_ijepa(input_spec=data.input_spec)
    trainer = fast_trainer(
        tmp_path, max_epochs=2, limit_train_batches=2, limit_val_batches=1, callbacks=[report], logger=True
    )
    trainer.fit(model, datamodule=data)
    assert 0.5 < report.initial_accuracy <= 1.0
    assert 0.5 < report.final_accuracy <= 1.0
    assert len(report.epoch_losses) == 2
    assert (tmp_path / "lightning_logs" / "version_0" / "report.png").stat().st_size > 1000
    out = capsys.readouterr().out
    assert "encoder at random initialisation" in out
    assert "pretrained encoder" in out
    restored = LinearProbeReport()
    restored.load_state_dict(report.state_dict())
    assert restored.initial_accuracy == report.initial_accuracy


def test_report_needs_a_datamodule_with_eval_loaders():
    class Bare(L.LightningDataModule):
        pass

    trainer = L.Trainer(logger=False)
    trainer.datamodule = Bare()  # type: ignore[misc]
    with pytest.raises(ValueError, match="eval_dataloader"):
        LinearProbeReport().probe(trainer, torch.nn.Linear(1, 1))
