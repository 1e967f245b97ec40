"""Label-free health checks of the embedding: RankMe, per-dimension spread and JEPA prediction/target std.

All statistics are torchmetrics Metrics (synchronised over ranks) or means over ranks, so every rank sees the
same numbers and takes the same decision under DDP. They are measured on validation batches (all samples,
labelled or not), from the embeddings the validation step returns, skipping the sanity check.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from jepa_lightning.callbacks.online_probes import ValidationEmbeddingsCallback
from jepa_lightning.distributed import all_reduce_mean
from jepa_lightning.metrics import EmbeddingStd, RankMe

JEPA_STATS = ("train/prediction_std", "train/target_std")
DESCRIPTIONS = {
    "embedding_std": "spread of the normalised val embeddings",
    "rankme": "RankMe of the val embeddings",
    "prediction_std": "per-dimension std of the JEPA predictions",
    "target_std": "per-dimension std of the JEPA targets",
}


class RankMeMonitor(ValidationEmbeddingsCallback):
    """RankMe (effective rank of the embedding matrix) of the validation split, logged as ``val/rankme``.

    Args:
        max_samples: keep at most this many embeddings per process (memory cap; RankMe needs N >> D).
    """

    def __init__(self, max_samples: int | None = None) -> None:
        self.metric = RankMe(max_samples=max_samples)

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.metric.to(pl_module.device).reset()

    def observe(self, embeddings: Tensor, labels: Tensor) -> None:
        self.metric.update(embeddings)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking and self.metric.update_count:
            pl_module.log("val/rankme", self.metric.compute(), sync_dist=True)
        self.metric.reset()


class CollapseMonitor(ValidationEmbeddingsCallback):
    """Warns (and optionally stops training) when the representation collapses.

    At the end of each validation epoch it checks, on the validation embeddings:

    - ``collapse/embedding_std``: mean per-dimension std of the L2-normalised embeddings times ``sqrt(D)``
      (about 1 for isotropic embeddings, 0 for a constant encoder), against ``min_std``;
    - ``collapse/rankme``: RankMe, against ``min_rankme``;
    - for JEPAs, ``collapse/prediction_std`` and ``collapse/target_std``: the latest ``train/prediction_std`` and
      ``train/target_std`` the method logged (mean over ranks), against ``min_jepa_std``, when present.

    When any value is below its threshold (or not finite) for ``patience`` consecutive checks it warns on rank zero
    with what collapsed and the numbers, and with ``stop=True`` sets ``trainer.should_stop``.
    ``collapse/collapsed`` logs 1.0 on epochs with a collapse signal, else 0.0. A threshold of ``None`` disables that
    check.

    The defaults flag a complete collapse (an encoder whose output no longer depends on its input) but not an
    untrained encoder: a randomly initialised ViT's mean-pooled embeddings share a large common component
    (about 0.006 and RankMe 1.08 for the tiny I-JEPA of the tests). Raise ``min_rankme`` (e.g. to a fraction of
    the embedding width) to also catch dimensional collapse once you know a healthy run's values.

    Args:
        min_std: threshold of ``collapse/embedding_std``.
        min_rankme: threshold of RankMe (1 is a full collapse).
        min_jepa_std: threshold of the JEPA prediction / target std.
        patience: consecutive collapsed checks before warning / stopping.
        stop: stop training on collapse.
        max_samples: RankMe's per-process cap on stored embeddings.
    """

    def __init__(
        self,
        min_std: float | None = 1e-3,
        min_rankme: float | None = 1.01,
        min_jepa_std: float | None = 1e-3,
        patience: int = 2,
        stop: bool = False,
        max_samples: int | None = None,
    ) -> None:
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.thresholds = {
            "embedding_std": min_std,
            "rankme": min_rankme,
            "prediction_std": min_jepa_std,
            "target_std": min_jepa_std,
        }
        self.patience = patience
        self.stop = stop
        self.std = EmbeddingStd(normalize=True)
        self.rankme = RankMe(max_samples=max_samples)
        self.streak = 0

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for metric in (self.std, self.rankme):
            metric.to(pl_module.device).reset()

    def observe(self, embeddings: Tensor, labels: Tensor) -> None:
        self.std.update(embeddings)
        self.rankme.update(embeddings)

    def measure(self, trainer: L.Trainer) -> dict[str, float]:
        """This epoch's statistics (identical on every rank)."""
        std = self.std.compute()
        values = {"embedding_std": float(std.mean() * math.sqrt(std.numel())), "rankme": float(self.rankme.compute())}
        for key in JEPA_STATS:
            if key in trainer.callback_metrics:
                value = trainer.callback_metrics[key].detach().float().to(std.device)
                values[key.removeprefix("train/")] = float(all_reduce_mean(value))
        return values

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self.std.update_count:
            return
        values = self.measure(trainer)
        collapsed = {
            name: value
            for name, value in values.items()
            if self.thresholds.get(name) is not None and not value >= self.thresholds[name]  # NaN: collapsed too
        }
        self.streak = self.streak + 1 if collapsed else 0
        pl_module.log_dict({f"collapse/{name}": value for name, value in values.items()}, sync_dist=True)
        pl_module.log("collapse/collapsed", float(bool(collapsed)), sync_dist=True)
        if self.streak >= self.patience:
            details = "; ".join(
                f"{DESCRIPTIONS[name]} ({name}) "
                + (f"{value:.4g} < {self.thresholds[name]:g}" if math.isfinite(value) else f"{value} (not finite)")
                for name, value in collapsed.items()
            )
            action = "; stopping training" if self.stop else ""
            rank_zero_warn(
                f"Representation collapse at epoch {trainer.current_epoch} (step {trainer.global_step}), "
                f"{self.streak} check(s) in a row: {details}{action}"
            )
            if self.stop:
                trainer.should_stop = True
        for metric in (self.std, self.rankme):
            metric.reset()

    def state_dict(self) -> dict[str, Any]:
        return {"streak": self.streak}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.streak = state_dict["streak"]
