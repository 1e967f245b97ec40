"""Label-free health checks of the embedding: RankMe, per-dimension spread and JEPA prediction/target std.

All statistics are torchmetrics Metrics (synchronised over ranks) or means over ranks, so every rank sees the
same numbers and takes the same decision under DDP. They are measured on validation batches (all samples,
labelled or not), from the embeddings the validation step returns.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor

from jepa_lightning.callbacks.online_probes import ValidationEmbeddingsCallback
from jepa_lightning.distributed import all_reduce_mean
from jepa_lightning.metrics import EmbeddingStd, RankMe

#: Training statistics the monitor follows: its name -> the key the method logs.
TRAIN_STATS = {"prediction_std": "train/prediction_std", "target_std": "train/target_std", "loss": "train/loss"}
#: Statistics judged against their start (``relative_floor``).
RELATIVE = ("embedding_std", "rankme", "target_std")
DESCRIPTIONS = {
    "embedding_std": "spread of the normalised val embeddings",
    "rankme": "RankMe of the val embeddings",
    "prediction_std": "per-dimension std of the JEPA predictions",
    "target_std": "per-dimension std of the JEPA targets",
    "loss": "training loss",
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
    """Warns (and optionally stops training) when the representation collapses, judged against the run's own start.

    At the end of each validation epoch it measures

    - ``collapse/embedding_std``: mean per-dimension std of the L2-normalised validation embeddings times
      ``sqrt(D)`` (about 1 for isotropic embeddings, 0 for a constant encoder);
    - ``collapse/rankme``: RankMe of the validation embeddings;
    - for JEPAs, ``collapse/prediction_std`` and ``collapse/target_std``: the mean of ``train/prediction_std`` and
      ``train/target_std`` over the last ``window`` training batches, and ``collapse/loss`` the mean training loss
      over them (means over ranks);

    and flags, each a collapse signal:

    - a value below its absolute floor (``min_std``, ``min_rankme``, ``min_jepa_std``), or not finite: a complete
      collapse, an encoder whose output no longer depends on its input;
    - with ``relative_floor`` (default 0.25), the embedding spread, RankMe or the target spread fallen below that
      fraction of its value at the start of the run: the spread a probe reads is draining away, even if no absolute
      floor is reached yet (a slow dimensional collapse);
    - the training loss fallen below ``relative_floor`` of its start while the targets shrank to less than half of
      theirs: the predictor matches ever-smaller targets, a loss "improving" towards 0 because there is less and
      less to predict.

    The start is the first ``window`` training batches for the training statistics, and the sanity-check
    validation (the untrained model) for the embeddings, or the first validation check when there is no sanity
    check. When signals persist for ``patience`` consecutive checks it warns once on rank zero, with the numbers
    (start -> now) and what to try; with ``stop=True`` it also sets ``trainer.should_stop``. ``collapse/collapsed``
    logs 1.0 on checks with a signal, else 0.0. A floor of ``None`` disables its check. A validation split of fewer
    than 2 samples has no spread: the embedding checks are skipped with a note.

    Args:
        min_std: absolute floor of ``collapse/embedding_std``.
        min_rankme: absolute floor of RankMe (1 is a full collapse).
        min_jepa_std: absolute floor of the JEPA prediction / target std.
        relative_floor: fraction of its start below which a spread or the loss counts as collapsed.
        window: training batches averaged for the start and for each check's training statistics.
        patience: consecutive checks with a signal before warning / stopping.
        stop: stop training on collapse.
        max_samples: RankMe's per-process cap on stored embeddings.
    """

    def __init__(
        self,
        min_std: float | None = 1e-3,
        min_rankme: float | None = 1.01,
        min_jepa_std: float | None = 1e-3,
        relative_floor: float | None = 0.25,
        window: int = 10,
        patience: int = 2,
        stop: bool = False,
        max_samples: int | None = None,
    ) -> None:
        if patience < 1 or window < 1:
            raise ValueError(f"patience and window must be >= 1, got patience={patience}, window={window}")
        if relative_floor is not None and not 0 < relative_floor < 1:
            raise ValueError(f"relative_floor must be None or in (0, 1), got {relative_floor}")
        self.thresholds = {
            "embedding_std": min_std,
            "rankme": min_rankme,
            "prediction_std": min_jepa_std,
            "target_std": min_jepa_std,
        }
        self.relative_floor = relative_floor
        self.window = window
        self.patience = patience
        self.stop = stop
        self.std = EmbeddingStd(normalize=True)
        self.rankme = RankMe(max_samples=max_samples, warn_few_samples=False)  # RankMeMonitor warns about that
        self.streak = 0
        self.warned = False
        self.start: dict[str, float] = {}
        self._start_sums: dict[str, list[float]] = {}
        self._recent: dict[str, deque[float]] = {}
        self._noted_small_split = False

    # -- training statistics --------------------------------------------------------------------------------
    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        for name, key in TRAIN_STATS.items():
            value = step_value(trainer.callback_metrics, key)
            if value is None:
                continue
            self._recent.setdefault(name, deque(maxlen=self.window)).append(value)
            if name not in self.start:
                collected = self._start_sums.setdefault(name, [])
                collected.append(value)
                if len(collected) == self.window:
                    self.start[name] = sum(collected) / len(collected)

    # -- validation statistics ------------------------------------------------------------------------------
    def observing(self, trainer: L.Trainer) -> bool:
        return not trainer.sanity_checking or "rankme" not in self.start  # the sanity check measures the start

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for metric in (self.std, self.rankme):
            metric.to(pl_module.device).reset()

    def observe(self, embeddings: Tensor, labels: Tensor) -> None:
        self.std.update(embeddings)
        self.rankme.update(embeddings)

    def measure(self, trainer: L.Trainer, device: torch.device) -> dict[str, float]:
        """This check's statistics (identical on every rank); the embedding ones only with >= 2 samples."""
        values: dict[str, float] = {}
        if self.std.count >= 2:
            std = self.std.compute()
            values["embedding_std"] = float(std.mean() * math.sqrt(std.numel()))
            values["rankme"] = float(self.rankme.compute())
        elif not self._noted_small_split:
            rank_zero_info("CollapseMonitor: the validation split has fewer than 2 samples; embedding checks skipped")
            self._noted_small_split = True
        for name, recent in self._recent.items():
            local = torch.tensor(sum(recent) / len(recent), dtype=torch.float32, device=device)
            values[name] = float(all_reduce_mean(local))
        return values

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.std.update_count:
            return
        values = self.measure(trainer, pl_module.device)
        if trainer.sanity_checking:
            self.start.update({name: values[name] for name in ("embedding_std", "rankme") if name in values})
            return
        for name in ("embedding_std", "rankme"):
            self.start.setdefault(name, values.get(name, math.nan))
        signals = self.signals(values, self._start_on_every_rank(pl_module.device))
        self.streak = self.streak + 1 if signals else 0
        pl_module.log_dict({f"collapse/{name}": value for name, value in values.items()}, sync_dist=True)
        pl_module.log("collapse/collapsed", float(bool(signals)), sync_dist=True)
        if self.streak >= self.patience and not self.warned:
            self.warned = True
            action = "; stopping training" if self.stop else ""
            rank_zero_warn(
                f"Representation collapse at epoch {trainer.current_epoch} (step {trainer.global_step}), "
                f"{self.streak} check(s) in a row: {'; '.join(signals)}{action}. {advice(values)}"
            )
        if self.stop and self.streak >= self.patience:
            trainer.should_stop = True

    def _start_on_every_rank(self, device: torch.device) -> dict[str, float]:
        """The start values, training ones averaged over ranks (the embedding ones are already global)."""
        start = dict(self.start)
        for name in TRAIN_STATS:
            if name in start:
                start[name] = float(all_reduce_mean(torch.tensor(start[name], dtype=torch.float32, device=device)))
        return start

    def signals(self, values: dict[str, float], start: dict[str, float]) -> list[str]:
        """What looks collapsed, each as a sentence with its numbers."""
        found = []
        relative = self.relative_floor
        for name, value in values.items():
            floor = self.thresholds.get(name)
            if floor is not None and not value >= floor:  # NaN counts
                shown = f"{value:.4g} < {floor:g}" if math.isfinite(value) else f"{value} (not finite)"
                found.append(f"{DESCRIPTIONS[name]} ({name}) {shown}")
            elif (
                relative is not None and name in RELATIVE and start.get(name, 0) > 0 and value < relative * start[name]
            ):
                found.append(
                    f"{DESCRIPTIONS[name]} ({name}) fell to {value / start[name]:.0%} of its start "
                    f"({start[name]:.4g} -> {value:.4g})"
                )
        loss, targets = values.get("loss", math.inf), values.get("target_std", math.inf)
        start_loss, start_targets = start.get("loss", 0.0), start.get("target_std", 0.0)
        if relative is not None and start_loss > 0 and loss < relative * start_loss and targets < 0.5 * start_targets:
            found.append(
                f"the training loss fell to {loss / start_loss:.0%} of its start ({start_loss:.4g} -> {loss:.4g}) "
                f"while the targets shrank to {targets / start_targets:.0%} of theirs: less and less is left to predict"
            )
        return found

    def state_dict(self) -> dict[str, Any]:
        return {"streak": self.streak, "warned": self.warned, "start": dict(self.start)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.streak = state_dict["streak"]
        self.warned = state_dict.get("warned", False)
        self.start = dict(state_dict.get("start", {}))


def step_value(metrics: dict[str, Any], key: str) -> float | None:
    """The latest per-step value of a logged metric (``key`` or its ``_step`` variant), or None."""
    for name in (f"{key}_step", key):
        if name in metrics:
            return float(metrics[name])
    return None


def advice(values: dict[str, float]) -> str:
    """What to try against the collapse just seen."""
    if "target_std" in values:
        return (
            "Try an anti-collapse term (regularizer=vicreg, with regularizer_input=tokens when the readout is 'rows' "
            "or 'flatten'), a slower teacher (a higher ema_momentum), or a lower learning rate."
        )
    return "Try a lower learning rate, a larger batch or stronger augmentations."
