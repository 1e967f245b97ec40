"""Resume as users type it: a run killed mid-epoch (SIGKILL) or stopped by SIGTERM continues with
``--ckpt_path last`` in its own run folder and ends with the weights of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from jepa_lightning.cli import main
from tests.conftest import TINY_IJEPA

REPO = Path(__file__).resolve().parents[1]
#: Two epochs of four steps, last.ckpt every two steps: a kill at step 7 resumes from step 6, mid-epoch 2.
RESUMABLE = [
    *TINY_IJEPA,
    "--diagnostics=false",
    "--trainer.max_epochs=2",
    "--trainer.limit_train_batches=4",
    "--trainer.limit_val_batches=1",
    "--checkpoint_every_n_steps=2",
]


class SignalAtStep(L.Callback):
    """Sends ``signal`` (a name: "SIGKILL", "SIGTERM") to its own process when training reaches ``step``."""

    def __init__(self, step: int, signal: str = "SIGKILL") -> None:
        self.step = step
        self.signal = signal

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), getattr(signal, self.signal))


def fit(root: Path, *args: str) -> subprocess.CompletedProcess:
    """``jepa-lightning fit`` of :data:`RESUMABLE` into ``root``, in a process of its own (cwd: ``root``'s parent)."""
    command = [sys.executable, "-m", "jepa_lightning", "fit", *RESUMABLE, f"--trainer.default_root_dir={root}", *args]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(command, cwd=root.parent, env=env, capture_output=True, text=True, timeout=600)


def fit_here(root: Path, *args: str) -> None:
    """The same fit in this process (faster: no second start of Python and torch)."""
    main(["fit", *RESUMABLE, f"--trainer.default_root_dir={root}", *args])


def interrupted(root: Path, *args: str) -> subprocess.CompletedProcess:
    return fit(root, "--trainer.callbacks=tests.test_resume.SignalAtStep", "--trainer.callbacks.step=7", *args)


def last_checkpoint(root: Path, version: int = 0) -> dict:
    return torch.load(root / "lightning_logs" / f"version_{version}" / "checkpoints" / "last.ckpt", weights_only=True)


def assert_same_weights(expected: dict, got: dict) -> None:
    assert expected["global_step"] == got["global_step"] == 8
    for name, value in expected["state_dict"].items():
        torch.testing.assert_close(got["state_dict"][name], value, rtol=0, atol=0, msg=name)


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> dict:
    """The uninterrupted run's last checkpoint."""
    root = tmp_path_factory.mktemp("straight") / "runs"
    fit_here(root, "--trainer.logger=false")
    return last_checkpoint(root)


def test_a_run_killed_mid_epoch_resumes_with_ckpt_path_last_to_the_same_weights(tmp_path, straight):
    root = tmp_path / "runs"
    killed = interrupted(root)
    assert killed.returncode == -signal.SIGKILL
    saved = last_checkpoint(root)
    assert saved["global_step"] == 6  # two steps into the second epoch
    assert saved["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"epoch": 1, "batches": 2}]

    output = killed.stdout + killed.stderr
    assert "Tip" not in output  # no advertising
    assert "LeafSpec" not in output  # no pytree deprecation warning

    fit_here(root, "--ckpt_path=last")
    assert sorted(path.name for path in (root / "lightning_logs").iterdir()) == ["version_0"]  # same run folder
    assert_same_weights(straight, last_checkpoint(root))


def test_sigterm_saves_last_ckpt_after_the_step_in_progress_and_exits_143(tmp_path, straight):
    root = tmp_path / "runs"
    stopped = interrupted(root, "--trainer.callbacks.signal=SIGTERM", "--trainer.logger=false")
    assert stopped.returncode == 143, stopped.stderr
    assert "SIGTERM: stopped after step 7" in stopped.stdout + stopped.stderr
    assert last_checkpoint(root)["global_step"] == 7

    fit_here(root, "--ckpt_path=last", "--trainer.logger=false")
    assert sorted(path.name for path in (root / "lightning_logs").iterdir()) == ["version_0"]
    assert_same_weights(straight, last_checkpoint(root))


def test_ckpt_path_last_without_a_previous_run_starts_a_new_one(tmp_path, caplog):
    fit_here(tmp_path / "runs", "--ckpt_path=last", "--trainer.max_epochs=1", "--trainer.logger=false")
    assert "starting a new run" in caplog.text
    assert last_checkpoint(tmp_path / "runs")["global_step"] == 4
