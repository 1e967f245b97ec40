"""Linear probe on frozen embeddings: the number that says whether pretraining learned anything."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
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


@dataclass(frozen=True)
class LabelBudget:
    """How many training labels a few-label probe may read: a ``fraction`` of the labelled training samples or
    ``per_class`` samples of every class (exactly one of the two), drawn stratified by :meth:`subset`.

    A fraction keeps ``round(fraction * N)`` of the ``N`` labelled samples, shared out over the classes in proportion
    to their sizes (largest remainders; ties to the smaller class index), so a class's share is its quota
    ``fraction * N_c`` rounded up or down. A budget that leaves a class with no sample, or asks a class for more
    samples than it has, is refused (:class:`ValueError` naming the class and the budget): nothing is silently
    shortened or topped up.
    """

    fraction: float | None = None
    per_class: int | None = None

    def __post_init__(self) -> None:
        if (self.fraction is None) == (self.per_class is None):
            raise ValueError("a label budget is a fraction of the training labels or a count per class (one of them)")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise ValueError(f"the label fraction must be in (0, 1], got {self.fraction}")
        if self.per_class is not None and self.per_class < 1:
            raise ValueError(f"labels per class must be >= 1, got {self.per_class}")

    def __str__(self) -> str:
        if self.fraction is not None:
            return f"{100 * self.fraction:g}% of the training labels"
        return f"{self.per_class} training labels per class"

    def counts(self, labels: np.ndarray) -> dict[int, int]:
        """Samples kept per class (every class of the labelled samples of ``labels``; -1 is unlabeled)."""
        classes, sizes = np.unique(labels[labels >= 0], return_counts=True)
        if len(classes) == 0:
            raise ValueError("a label budget needs labelled samples (y >= 0) in the training split")
        if self.per_class is not None:
            short = [(int(c), int(n)) for c, n in zip(classes, sizes, strict=True) if n < self.per_class]
            if short:
                listed = ", ".join(f"class {c} has {n}" for c, n in short)
                raise ValueError(f"label budget {self}: more than the training split holds ({listed})")
            return {int(c): self.per_class for c in classes}
        quotas = self.fraction * sizes
        counts = np.floor(quotas).astype(int)
        total = math.floor(self.fraction * int(sizes.sum()) + 0.5)
        remainders = np.argsort(-(quotas - counts), kind="stable")[: total - int(counts.sum())]
        counts[remainders] += 1
        empty = [(int(c), int(n)) for c, n, k in zip(classes, sizes, counts, strict=True) if k == 0]
        if empty:
            listed = ", ".join(f"class {c} ({n} samples)" for c, n in empty)
            raise ValueError(
                f"label budget {self} keeps {total} of {int(sizes.sum())} labelled training samples and leaves no "
                f"sample of {listed}; raise the fraction or give a count per class"
            )
        return {int(c): int(k) for c, k in zip(classes, counts, strict=True)}

    def subset(self, labels: np.ndarray, seed: int) -> np.ndarray:
        """Indices (ascending) into ``labels`` of the stratified subset of seed ``seed``: the same seed gives the same
        subset, whatever the global random state (left untouched), and a larger budget's subset contains a smaller
        one's (each class's samples are taken in one seeded order)."""
        labels = np.asarray(labels)
        generator = np.random.default_rng(seed)
        chosen = [
            generator.permutation(np.flatnonzero(labels == c))[:count] for c, count in self.counts(labels).items()
        ]
        return np.sort(np.concatenate(chosen))


def few_label_probe_accuracies(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    budget: LabelBudget,
    seeds: list[int],
    max_iter: int = 2000,
) -> list[float]:
    """:func:`linear_probe_accuracy` fitted on the subset of ``train`` that ``budget`` draws with each seed (one
    accuracy per seed, in order); the held-out side is scored whole."""
    features, labels = train
    return [
        linear_probe_accuracy((features[index], labels[index]), test, max_iter)
        for index in (budget.subset(labels, seed) for seed in seeds)
    ]


def datamodule_few_label_probe_accuracies(
    model: L.LightningModule,
    datamodule: L.LightningDataModule,
    budget: LabelBudget,
    seeds: list[int],
    split: str = "val",
) -> list[float]:
    """:func:`datamodule_probe_accuracy` with the probe fitted on ``budget``'s stratified subset of the training
    split, one accuracy per seed of ``seeds`` (the embeddings are computed once)."""
    if not hasattr(datamodule, "eval_dataloader"):
        name = type(datamodule).__name__
        raise ValueError(f"a linear probe needs a datamodule with eval_dataloader(split), got {name}")
    train = embed_loader(model, datamodule.eval_dataloader("train"))
    held_out = embed_loader(model, datamodule.eval_dataloader(split))
    return few_label_probe_accuracies(train, held_out, budget, seeds)


def mean_std(accuracies: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value) of per-seed accuracies."""
    return statistics.mean(accuracies), statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0


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
