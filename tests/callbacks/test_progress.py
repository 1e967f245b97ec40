from jepa_lightning.callbacks.progress import LineProgressBar, format_value
from tests.callbacks.test_online_probes import Blobs, Stub
from tests.conftest import fast_trainer


def test_one_plain_line_per_epoch_with_the_bar_metrics(tmp_path, capsys):
    bar = LineProgressBar()
    trainer = fast_trainer(tmp_path, max_epochs=3, enable_progress_bar=True, callbacks=[bar])
    assert trainer.progress_bar_callback is bar
    trainer.fit(Stub(), datamodule=Blobs())
    lines = capsys.readouterr().err.splitlines()
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [line.split(" | ")[0] for line in epochs] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all(line.split(" | ")[-1].endswith(" s") for line in epochs)
    assert "\r" not in "".join(lines)


def test_disabled_bar_writes_nothing(tmp_path, capsys):
    bar = LineProgressBar()
    bar.disable()
    fast_trainer(tmp_path, max_epochs=1, enable_progress_bar=True, callbacks=[bar]).fit(Stub(), datamodule=Blobs())
    assert not [line for line in capsys.readouterr().err.splitlines() if line.startswith("epoch ")]


def test_values_are_short():
    assert (format_value(0.123456789), format_value(12), format_value("x")) == ("0.1235", "12", "x")
