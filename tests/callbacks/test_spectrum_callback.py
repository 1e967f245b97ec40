import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from jepa_lightning.callbacks import SpectrumPlot
from jepa_lightning.callbacks.online_probes import eval_mode
from tests.callbacks.test_online_probes import DIM, Blobs, Stub, fit

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_val_spectrum_is_recorded_plotted_and_sent_to_tensorboard(tmp_path):
    model, data = Stub(), Blobs()
    plot = SpectrumPlot(top_k=4)
    logger = TensorBoardLogger(tmp_path, name="run")
    trainer = fit(model, data, [plot], tmp_path, logger=logger)
    assert plot.steps == [5, 10, 15] and all(len(values) == 4 for values in plot.eigenvalues)
    with torch.no_grad(), eval_mode(model):
        z = model.embed(data.x[data.n_train :]).double()
    expected = torch.linalg.eigvalsh(torch.cov(z.T)).flip(0)[:4]
    torch.testing.assert_close(torch.tensor(plot.eigenvalues[-1], dtype=torch.float64), expected, rtol=1e-5, atol=0)
    image = (tmp_path / "run" / "version_0" / "spectrum.png").read_bytes()
    assert image.startswith(PNG_MAGIC) and len(image) > 1000
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(trainer.log_dir).Reload()
    assert len(events.Images("spectrum")) == 3


def test_train_split_spectrum_without_validation_and_state_round_trip(tmp_path):
    plot = SpectrumPlot(every_n_epochs=2, top_k=DIM + 5, split="train", filename="train_spectrum.png")
    fit(Stub(), Blobs(), [plot], tmp_path, limit_val_batches=0)
    assert plot.steps == [5, 15] and all(len(values) == DIM for values in plot.eigenvalues)
    assert (tmp_path / "train_spectrum.png").read_bytes().startswith(PNG_MAGIC)
    restored = SpectrumPlot()
    restored.load_state_dict(plot.state_dict())
    assert restored.steps == plot.steps and restored.eigenvalues == plot.eigenvalues
    restored.eigenvalues[0] = restored.eigenvalues[0][:3]  # histories of different widths still plot
    assert len(restored.figure().axes[0].lines) == DIM


def test_spectrum_plot_validates_its_arguments():
    with pytest.raises(ValueError, match="split"):
        SpectrumPlot(split="test")
    with pytest.raises(ValueError, match="top_k"):
        SpectrumPlot(top_k=0)
