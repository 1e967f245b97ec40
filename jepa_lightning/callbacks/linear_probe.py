"""Linear probe on frozen embeddings: the number that says whether pretraining learned anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import move_data_to_device, rank_zero_info, rank_zero_only
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from torch.utils.data import DataLoader

from jepa_lightning.inputs import model_input


@torch.no_grad()
def embed_loader(model: L.LightningModule, loader: DataLoader) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings ``model.embed(x)`` (``x`` = :func:`model_input` of each batch) and labels of every batch of
    ``loader``, with the model in eval mode."""
    was_training = model.training
    model.eval()
    embeddings, labels = [], []
    try:
        for batch in loader:
            embeddings.append(model.embed(move_data_to_device(model_input(batch), model.device)).float().cpu())
            labels.append(batch["y"].cpu())
    finally:
        model.train(was_training)
    return torch.cat(embeddings).numpy(), torch.cat(labels).numpy()


def linear_probe_accuracy(
    train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], max_iter: int = 2000
) -> float:
    """Accuracy on ``test`` of a logistic regression fitted on standardised ``train`` embeddings.

    Samples labelled -1 (unlabeled) are left out of both sides.
    """
    (x_train, y_train), (x_test, y_test) = train, test
    keep_train, keep_test = y_train >= 0, y_test >= 0
    if not keep_train.any() or not keep_test.any():
        raise ValueError(
            "linear probe needs labelled samples (y >= 0) in both the fitting and the held-out split; for unlabelled "
            "data remove the LinearProbeReport callback (from trainer.callbacks in the config)"
        )
    probe = fit_linear_probe(x_train[keep_train], y_train[keep_train], max_iter)
    return float(probe.score(x_test[keep_test], y_test[keep_test]))


def fit_linear_probe(features: np.ndarray, labels: np.ndarray, max_iter: int = 2000) -> Pipeline:
    """The linear probe of every measurement in this package: a logistic regression on standardised features."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter)).fit(features, labels)


def datamodule_probe_accuracy(model: L.LightningModule, datamodule: L.LightningDataModule, split: str = "val") -> float:
    """Linear-probe accuracy of ``model.embed`` on ``split``, fitted on the training split (evaluation transforms).

    Works for any modality whose datamodule has ``eval_dataloader(split)`` (every jepa-lightning datamodule).
    """
    if not hasattr(datamodule, "eval_dataloader"):
        name = type(datamodule).__name__
        raise ValueError(f"a linear probe needs a datamodule with eval_dataloader(split), got {name}")
    train = embed_loader(model, datamodule.eval_dataloader("train"))
    held_out = embed_loader(model, datamodule.eval_dataloader(split))
    return linear_probe_accuracy(train, held_out)


class LinearProbeReport(L.Callback):
    """Before and after ``fit``: linear-probe accuracy of the encoder on held-out data, plus the loss curve.

    Fits a logistic regression on embeddings of the training split (evaluation transforms) and scores it on
    ``eval_split``, once at the start of training (the random initialisation) and once at the end; prints a
    short report, logs ``probe/linear_acc_init`` and ``probe/linear_acc``, and writes ``report.png`` (loss
    per epoch, the two accuracies) to the log directory. Needs a datamodule with ``eval_dataloader(split)``
    (every jepa-lightning datamodule has it).
    """

    def __init__(self, eval_split: str = "val", plot: bool = True) -> None:
        self.eval_split = eval_split
        self.plot = plot
        self.initial_accuracy: float | None = None
        self.final_accuracy: float | None = None
        self.epoch_losses: list[float] = []

    def probe(self, trainer: L.Trainer, model: L.LightningModule) -> float:
        return datamodule_probe_accuracy(model, trainer.datamodule, self.eval_split)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.initial_accuracy is None and trainer.global_step == 0:
            self.initial_accuracy = self.probe(trainer, pl_module)
            rank_zero_info(f"Linear probe at initialisation ({self.eval_split}): {self.initial_accuracy:.4f}")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loss = trainer.callback_metrics.get("train/loss_epoch")
        if loss is not None:
            self.epoch_losses.append(float(loss))

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.final_accuracy = self.probe(trainer, pl_module)
        metrics = {"probe/linear_acc": self.final_accuracy}
        if self.initial_accuracy is not None:
            metrics["probe/linear_acc_init"] = self.initial_accuracy
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        # log_dir is a collective under DDP: read it on every rank, report on rank zero only.
        self._report(trainer.log_dir)

    @rank_zero_only
    def _report(self, log_dir: str | None) -> None:
        lines = [f"Linear probe on the {self.eval_split} split (logistic regression on frozen embeddings):"]
        if self.initial_accuracy is not None:
            lines.append(f"  encoder at random initialisation: {self.initial_accuracy:.4f}")
        lines.append(f"  pretrained encoder:               {self.final_accuracy:.4f}")
        if self.epoch_losses:
            curve = " -> ".join(f"{loss:.4f}" for loss in self.epoch_losses)
            lines.append(f"Training loss per epoch: {curve}")
        if self.plot and log_dir:
            path = self._plot(Path(log_dir))
            lines.append(f"Report plot: {path}")
        print("\n".join(lines), flush=True)

    def _plot(self, folder: Path) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (loss_ax, probe_ax) = plt.subplots(1, 2, figsize=(9, 3.5))
        loss_ax.plot(range(1, len(self.epoch_losses) + 1), self.epoch_losses, marker="o")
        loss_ax.set(xlabel="epoch", ylabel="train/loss", title="Pretraining loss")
        names, values = (
            ["random init", "pretrained"],
            [self.initial_accuracy or 0.0, self.final_accuracy or 0.0],
        )
        bars = probe_ax.bar(names, values, color=["#999999", "#3366cc"])
        probe_ax.bar_label(bars, fmt="%.3f")
        probe_ax.set(ylim=(0, 1), ylabel="accuracy", title=f"Linear probe ({self.eval_split})")
        fig.tight_layout()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "report.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path

    def state_dict(self) -> dict[str, Any]:
        return {"initial_accuracy": self.initial_accuracy, "epoch_losses": list(self.epoch_losses)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.initial_accuracy = state_dict["initial_accuracy"]
        self.epoch_losses = list(state_dict["epoch_losses"])
