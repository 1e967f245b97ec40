"""Progress for logs that are not a terminal: one plain line per epoch instead of a redrawn bar."""

from __future__ import annotations

import sys
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ProgressBar


def is_terminal() -> bool:
    """Whether progress goes to a terminal, where a redrawn bar is readable (stderr: where tqdm writes)."""
    return sys.stderr.isatty()


class LineProgressBar(ProgressBar):
    """One line per training epoch, ``epoch 3/40 | step 120 | train/loss_step 0.123 | ... | 4.2 s``, on rank 0.

    A redrawn bar written to a file or a pipe is a carriage return per update (a 40-epoch log of 0.5 MB); this bar
    writes what the bar would show (the progress-bar metrics: the loss, and ``val/loss`` after validation) once per
    epoch, so a redirected log stays readable. The ``jepa-lightning`` command uses it when stderr is not a terminal.
    """

    def __init__(self) -> None:
        super().__init__()
        self._enabled = True
        self._epoch_start = 0.0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = time.monotonic()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        epochs = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        fields = [f"epoch {trainer.current_epoch + 1}{epochs}", f"step {trainer.global_step}"]
        metrics = self.get_metrics(trainer, pl_module)
        fields += [f"{name} {format_value(value)}" for name, value in metrics.items() if name != "v_num"]
        fields.append(f"{time.monotonic() - self._epoch_start:.1f} s")
        print(" | ".join(fields), file=sys.stderr, flush=True)


def format_value(value: Any) -> str:
    """Numbers to four significant digits, anything else as it is."""
    return f"{value:.4g}" if isinstance(value, (int, float)) else str(value)
