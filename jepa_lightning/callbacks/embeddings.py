"""Write the embeddings that ``predict`` produces to a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_info


class EmbeddingWriter(BasePredictionWriter):
    """Saves ``embedding`` (N, D) and ``y`` (N,) from ``predict`` as a NumPy ``.npz`` file.

    ``output`` defaults to ``<log dir>/embeddings.npz``; under several processes each rank writes its own
    part, with ``.rank<k>`` before the suffix. Works without keeping predictions in the trainer.
    """

    def __init__(self, output: str | None = None) -> None:
        super().__init__(write_interval="batch")
        self.output = output
        self._batches: list[dict[str, torch.Tensor]] = []

    def path_for(self, trainer: L.Trainer) -> Path:
        folder = Path(trainer.log_dir or trainer.default_root_dir)
        path = Path(self.output) if self.output else folder / "embeddings.npz"
        if trainer.world_size > 1:
            path = path.with_name(f"{path.stem}.rank{trainer.global_rank}{path.suffix}")
        return path

    def on_predict_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._batches = []

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: Any,
        batch_indices: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        self._batches.append({key: value.detach().cpu() for key, value in prediction.items()})

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._batches:
            return
        path = self.path_for(trainer)
        path.parent.mkdir(parents=True, exist_ok=True)
        embedding = torch.cat([batch["embedding"] for batch in self._batches]).float().numpy()
        labels = torch.cat([batch["y"] for batch in self._batches]).numpy().astype(np.int64)
        np.savez(path, embedding=embedding, y=labels)
        self._batches = []
        rank_zero_info(f"Wrote {len(embedding)} embeddings of width {embedding.shape[1]} to {path}")
