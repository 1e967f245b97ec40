"""Link prediction on frozen node embeddings: do held-out edges join nodes whose embeddings are alike?"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from sklearn.metrics import roc_auc_score

from jepa_lightning.callbacks.linear_probe import embed_loader


def link_prediction_auc(model: L.LightningModule, datamodule: L.LightningDataModule) -> float:
    """ROC-AUC of the cosine similarity of ``model.embed`` node embeddings as a score for the datamodule's held-out
    edges against as many random unlinked pairs (``datamodule.link_prediction_pairs()``; every node embedded through
    ``eval_dataloader("all")``, whose message passing never sees the held-out edges)."""
    if not hasattr(datamodule, "link_prediction_pairs"):
        raise ValueError(f"link prediction needs a datamodule with held-out edges, got {type(datamodule).__name__}")
    pairs, labels = datamodule.link_prediction_pairs()
    embeddings, _ = embed_loader(model, datamodule.eval_dataloader("all"))
    z = F.normalize(torch.from_numpy(embeddings), dim=1)
    scores = (z[pairs[0]] * z[pairs[1]]).sum(1)
    return float(roc_auc_score(labels.numpy(), scores.numpy()))


class LinkPredictionReport(L.Callback):
    """Link-prediction ROC-AUC (:func:`link_prediction_auc`) of the encoder at the start and at the end of ``fit``;
    prints both and logs ``probe/link_auc_init`` and ``probe/link_auc``. Needs a datamodule with held-out edges
    (``GraphDataModule(link_fraction=...)``)."""

    def __init__(self) -> None:
        self.initial_auc: float | None = None
        self.final_auc: float | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.initial_auc is None and trainer.global_step == 0:
            self.initial_auc = link_prediction_auc(pl_module, trainer.datamodule)
            rank_zero_info(f"Link prediction ROC-AUC at initialisation: {self.initial_auc:.4f}")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.final_auc = link_prediction_auc(pl_module, trainer.datamodule)
        metrics = {"probe/link_auc": self.final_auc}
        if self.initial_auc is not None:
            metrics["probe/link_auc_init"] = self.initial_auc
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        initial = "" if self.initial_auc is None else f"{self.initial_auc:.4f} at initialisation -> "
        self._report(f"Link prediction ROC-AUC (cosine of node embeddings): {initial}{self.final_auc:.4f} pretrained")

    @rank_zero_only
    def _report(self, line: str) -> None:
        print(line, flush=True)

    def state_dict(self) -> dict[str, float | None]:
        return {"initial_auc": self.initial_auc}

    def load_state_dict(self, state_dict: dict[str, float | None]) -> None:
        self.initial_auc = state_dict["initial_auc"]
