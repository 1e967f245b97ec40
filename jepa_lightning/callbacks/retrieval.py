"""Cross-modal retrieval and same-different word discrimination for two-tower models on paired data."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import move_data_to_device, rank_zero_info, rank_zero_only
from sklearn.metrics import average_precision_score
from torch import Tensor
from torch.utils.data import DataLoader

from jepa_lightning.inputs import model_input, paired_input


def retrieval_scores(model: L.LightningModule, loader: DataLoader) -> dict[str, float]:
    """Audio -> phoneme-string (first modality -> second) retrieval and word discrimination over ``loader``'s items.

    ``retrieval_top1``: the share of items whose projected first modality (``model.projector(model.encoder(x))``)
    is nearest (cosine) to the projection of its own second modality among the distinct second-modality entries of
    the loader (``batch["pair"]`` rows; identical rows are one candidate). ``word_ap``: the average precision of the
    cosine of the items' ``model.embed`` embeddings as a score for "same entry" over every pair of items (the
    same-different word discrimination task of acoustic word embeddings). Model in eval mode, no gradient.
    """
    was_training = model.training
    model.eval()
    queries, embeddings, keys = [], [], []
    pairs: list[tuple[int, ...]] = []
    try:
        with torch.no_grad():
            for batch in loader:
                x = move_data_to_device(model_input(batch), model.device)
                pair = paired_input(batch)
                embedding = model.embed(x)
                queries.append(F.normalize(model.projector(embedding), dim=1).float().cpu())
                embeddings.append(F.normalize(embedding.float(), dim=1).cpu())
                keys.append(F.normalize(model.pair_projector(model.embed_pair(pair.to(model.device))), dim=1).cpu())
                pairs += [tuple(int(i) for i in row if i != 0) for row in pair]
    finally:
        model.train(was_training)
    first: dict[tuple[int, ...], int] = {}
    for position, string in enumerate(pairs):
        first.setdefault(string, position)
    distinct = {string: k for k, string in enumerate(first)}
    own = torch.tensor([distinct[string] for string in pairs])
    candidates: Tensor = torch.cat(keys).float()[list(first.values())]
    top1 = float(((torch.cat(queries) @ candidates.T).argmax(1) == own).float().mean())
    z = torch.cat(embeddings)
    rows, columns = np.triu_indices(len(z), k=1)
    similarity = (z @ z.T).numpy()[rows, columns]
    same = (own[:, None] == own[None, :]).numpy()[rows, columns]
    word_ap = float(average_precision_score(same, similarity)) if same.any() else float("nan")
    return {"retrieval_top1": top1, "word_ap": word_ap}


class CrossModalRetrievalReport(L.Callback):
    """:func:`retrieval_scores` of a two-tower model (e.g. :class:`~jepa_lightning.methods.AcousticWordEmbedding`)
    on the datamodule's ``split`` (``eval_dataloader(split)``, paired batches) at the start and at the end of
    ``fit``; prints both and logs ``probe/retrieval_top1``, ``probe/word_ap`` (and their ``_init`` values)."""

    def __init__(self, split: str = "test") -> None:
        self.split = split
        self.initial: dict[str, float] | None = None
        self.final: dict[str, float] | None = None

    def scores(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, float]:
        return retrieval_scores(pl_module, trainer.datamodule.eval_dataloader(self.split))

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.initial is None and trainer.global_step == 0:
            self.initial = self.scores(trainer, pl_module)
            rank_zero_info(f"Cross-modal retrieval at initialisation ({self.split}): {self._format(self.initial)}")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.final = self.scores(trainer, pl_module)
        metrics = {f"probe/{name}": value for name, value in self.final.items()}
        if self.initial is not None:
            metrics |= {f"probe/{name}_init": value for name, value in self.initial.items()}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        lines = [f"{self._format(self.initial)} at initialisation -> "] if self.initial is not None else []
        self._report(f"Cross-modal retrieval ({self.split}): {''.join(lines)}{self._format(self.final)} trained")

    @staticmethod
    def _format(scores: dict[str, float]) -> str:
        return ", ".join(f"{name} {value:.4f}" for name, value in scores.items())

    @rank_zero_only
    def _report(self, line: str) -> None:
        print(line, flush=True)

    def state_dict(self) -> dict[str, dict[str, float] | None]:
        return {"initial": self.initial}

    def load_state_dict(self, state_dict: dict[str, dict[str, float] | None]) -> None:
        self.initial = state_dict["initial"]
