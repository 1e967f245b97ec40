"""The checkpoint every command-line ``fit`` keeps: a ``last.ckpt`` that is never far behind, to resume from."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException


class RunCheckpoint(ModelCheckpoint):
    """Lightning's default checkpoint (the latest epoch's file) plus a ``last.ckpt`` that a killed run resumes from.

    ``last.ckpt`` is written at every epoch end, every ``every_n_steps`` training steps (so a killed run loses at
    most that many steps, not an epoch), at the end of ``fit`` and when SIGTERM (what schedulers and ``timeout``
    send) stops the run after the step in progress. A step-interval ``last.ckpt`` records the training loader's
    place in the epoch, so resuming from it continues with the next batch. Other ``ModelCheckpoint`` arguments
    (``dirpath``, ``monitor``, ``save_top_k``, ...) keep their meaning.

    Args:
        every_n_steps: training steps between two ``last.ckpt`` writes; 0 writes it at epoch ends only.
    """

    def __init__(self, every_n_steps: int = 500, **kwargs: Any) -> None:
        if every_n_steps < 0:
            raise ValueError(f"every_n_steps: expected an integer >= 0, got {every_n_steps}")
        super().__init__(**{**kwargs, "save_last": True})
        self.every_n_steps = every_n_steps
        self._last_step_written = 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            self._write_last(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Make ``last.ckpt`` the final state also when ``fit`` stops between two epoch ends (``max_steps``)."""
        self._write_last(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        """On SIGTERM (raised by Lightning once the step in progress is done) write ``last.ckpt``; on any other
        exception write nothing (a diverged or half-done step is no state to resume from)."""
        if isinstance(exception, SIGTERMException):
            path = self._write_last(trainer)
            rank_zero_info(
                f"SIGTERM: stopped after step {trainer.global_step} and saved {path}; "
                "resume with `jepa-lightning fit --config <the same config> --ckpt_path last`"
            )

    def _write_last(self, trainer: L.Trainer) -> str:
        """Write ``last.ckpt`` for the current step unless it already holds it; its path."""
        path = self.format_checkpoint_name({}, self.CHECKPOINT_NAME_LAST)
        if trainer.fast_dev_run or trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return path
        # the parent writes last.ckpt with every file it saves (save_last=True), and nothing at step 0
        if trainer.global_step in (self._last_global_step_saved, self._last_step_written):
            return path
        self.last_model_path = path  # part of the state it writes
        trainer.save_checkpoint(path, self.save_weights_only)
        self._last_step_written = trainer.global_step
        return path
