"""The command line loads nothing that can run code or come from the network, overwrites no earlier run, and
reports bad settings and diverged runs in one line."""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from jepa_lightning.cli import main
from tests.conftest import TINY_IJEPA

REPO = Path(__file__).resolve().parents[1]
QUICK_FIT = [
    *TINY_IJEPA,
    "--diagnostics=false",
    "--trainer.max_steps=2",
    "--trainer.limit_val_batches=1",
    "--trainer.logger=false",
]


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["jepa-lightning"])


class CreatesAFile:
    """Unpickling it creates ``path``: what a malicious checkpoint would do (with worse code)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_the_crafted_payload_runs_code_when_unpickled(tmp_path):
    pickle.loads(pickle.dumps(CreatesAFile(tmp_path / "ran")))
    assert (tmp_path / "ran").exists()


@pytest.mark.parametrize("command", ["fit", "predict", "probe"])
def test_a_crafted_checkpoint_runs_no_code(tmp_path, command):
    marker = tmp_path / "code_ran"
    checkpoint = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": CreatesAFile(marker)}, checkpoint)
    args = [command, *QUICK_FIT, f"--trainer.default_root_dir={tmp_path}", f"--ckpt_path={checkpoint}"]
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        main(args)
    assert not marker.exists()


@pytest.mark.parametrize("url", ["https://example.com/model.ckpt", "s3://bucket/model.ckpt"])
def test_remote_checkpoints_are_refused_unless_allowed(tmp_path, capsys, url):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", *QUICK_FIT, f"--trainer.default_root_dir={tmp_path}", f"--ckpt_path={url}"])
    assert exit_.value.code == 1
    error = capsys.readouterr().err
    assert "is remote" in error and "--allow_remote_checkpoint true" in error


def test_allow_remote_checkpoint_hands_the_url_to_lightning(tmp_path, monkeypatch):
    class LoadError(Exception):
        pass

    def load_checkpoint(self, path, *args, **kwargs):
        raise LoadError(path)

    monkeypatch.setattr(TorchCheckpointIO, "load_checkpoint", load_checkpoint)  # no network in tests
    url = "https://example.com/model.ckpt"
    with pytest.raises(LoadError, match=re.escape(url)):
        main(
            [
                "fit",
                *QUICK_FIT,
                f"--trainer.default_root_dir={tmp_path}",
                f"--ckpt_path={url}",
                "--allow_remote_checkpoint=true",
            ]
        )


def test_two_runs_without_a_logger_keep_their_own_config_and_report(tmp_path):
    for steps in (2, 3):
        main(
            [
                "fit",
                *QUICK_FIT,
                f"--trainer.max_steps={steps}",
                f"--trainer.default_root_dir={tmp_path}",
                "--trainer.callbacks=jepa_lightning.callbacks.LinearProbeReport",
            ]
        )
    runs = sorted((tmp_path / "lightning_logs").iterdir())
    assert [run.name for run in runs] == ["version_0", "version_1"]
    for run, steps in zip(runs, (2, 3)):
        assert f"max_steps: {steps}" in (run / "config.yaml").read_text()
        assert (run / "report.png").stat().st_size > 1000
        assert (run / "checkpoints" / "last.ckpt").is_file()
    assert not (tmp_path / "config.yaml").exists() and not (tmp_path / "report.png").exists()


def test_a_diverging_run_stops_with_one_line_and_exit_status_1(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", *QUICK_FIT, "--trainer.max_steps=40", "--model.lr=1e6", f"--trainer.default_root_dir={tmp_path}"])
    assert exit_.value.code == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("DivergenceError: ")


def test_missing_data_is_one_line_naming_the_path(tmp_path, capsys):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(SystemExit) as exit_:
        main(["fit", *QUICK_FIT, f"--data.path={missing}", f"--trainer.default_root_dir={tmp_path}"])
    assert exit_.value.code == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("ConfigurationError: ") and str(missing) in last


def test_an_image_size_the_patch_does_not_divide_is_one_line_not_a_traceback(tmp_path):
    config = REPO / "examples" / "configs" / "ijepa_digits.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "jepa_lightning", "fit", "--config", str(config), "--data.init_args.image_size", "30"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "Namespace(" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "ConfigurationError: image_size (30, 30) is not divisible by patch_size=4: pick a patch size that divides "
        "both sides (or resize the images)."
    )
    assert not any(tmp_path.iterdir())
