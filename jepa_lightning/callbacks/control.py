"""The report of the control presets: how well a trajectory JEPA predicts the future and decodes the actions, against
baselines that ignore the actions, at initialisation and after training."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.utilities import move_data_to_device, rank_zero_info, rank_zero_only

#: The report's rows: (metric of ``control_metrics``, label); a metric the model does not give is left out.
ROWS = (
    ("next_state_mse", "next-state prediction, latent MSE"),
    ("no_action_mse", "  same predictor, actions zeroed"),
    ("persistence_mse", "  persistence (nothing moves)"),
    ("action_mae", "action MAE (action head)"),
    ("no_action_mae", "  doing nothing (zero actions)"),
)


def control_report(model: L.LightningModule, datamodule: L.LightningDataModule, split: str) -> dict[str, float]:
    """The means over ``split`` of ``model.control_metrics(batch)`` (a trajectory JEPA's, see
    :meth:`~jepa_lightning.methods.trajectory.TrajectoryJEPA.control_metrics`), weighted by batch size, with the model
    in eval mode."""
    if not hasattr(model, "control_metrics"):
        raise ValueError(f"ControlReport needs a trajectory JEPA (control_metrics), got {type(model).__name__}")
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    try:
        for batch in datamodule.eval_dataloader(split):
            batch = move_data_to_device(batch, model.device)
            size = batch["x"].shape[0]
            for name, value in model.control_metrics(batch).items():
                sums[name] = sums.get(name, 0.0) + float(value) * size
            count += size
    finally:
        model.train(was_training)
    return {name: total / max(count, 1) for name, total in sums.items()}


class ControlReport(L.Callback):
    """Before and after ``fit``: the control metrics of a trajectory JEPA on ``eval_split`` (held-out episodes):
    the latent MSE of its next-state prediction, of the same predictor told zero actions (conditioned predictors) and
    of persistence (the targets of a future in which nothing moves), and the MAE of its decoded actions against
    always doing nothing. Prints a table, logs ``control/<metric>`` and ``control/<metric>_init``."""

    def __init__(self, eval_split: str = "val") -> None:
        self.eval_split = eval_split
        self.initial: dict[str, float] | None = None
        self.final: dict[str, float] | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.initial is None and trainer.global_step == 0:
            self.initial = control_report(pl_module, trainer.datamodule, self.eval_split)
            rank_zero_info(f"Control metrics at initialisation ({self.eval_split}): {self.initial}")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.final = control_report(pl_module, trainer.datamodule, self.eval_split)
        metrics = {f"control/{name}": value for name, value in self.final.items()}
        if self.initial is not None:
            metrics |= {f"control/{name}_init": value for name, value in self.initial.items()}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        self._report()

    @rank_zero_only
    def _report(self) -> None:
        assert self.final is not None
        initial = self.initial or {}
        lines = [
            f"Control report on the {self.eval_split} split (held-out episodes; latent MSE on the normalised "
            "targets of the target network, lower is better):",
            f"  {'':40s} {'at init':>9s} {'trained':>9s}",
        ]
        for name, label in ROWS:
            if name in self.final:
                start = f"{initial[name]:9.4f}" if name in initial else f"{'':9s}"
                lines.append(f"  {label:40s} {start} {self.final[name]:9.4f}")
        print("\n".join(lines), flush=True)

    def state_dict(self) -> dict[str, Any]:
        return {"initial": self.initial}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.initial = state_dict["initial"]
