"""The stepwise-learning picture: top eigenvalues of the embedding covariance over training, as a figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from lightning.pytorch.utilities import move_data_to_device, rank_zero_info, rank_zero_only
from torch import Tensor

from jepa_lightning.callbacks.online_probes import ValidationEmbeddingsCallback, embed_batch
from jepa_lightning.inputs import model_input
from jepa_lightning.metrics import EmbeddingSpectrum


class SpectrumPlot(ValidationEmbeddingsCallback):
    """Records the ``top_k`` largest eigenvalues of the embedding covariance every ``every_n_epochs`` epochs and
    plots them against the training step (log scale, one line per rank index).

    Joint-embedding methods started from a small initialisation learn eigendirections one at a time: the lines
    rise in separated steps (Simon et al., 2023). ``split="val"`` measures the validation batches (at the end of
    the validation epoch); ``split="train"`` embeds ``datamodule.eval_dataloader("train")`` in eval mode at the
    end of the training epoch, each rank taking every ``world_size``-th batch. The covariance is synchronised
    over ranks. On rank zero the figure goes to ``<log_dir>/<filename>`` and to every logger whose experiment
    has ``add_figure`` (TensorBoard). The history is part of the callback's ``state_dict``.

    Args:
        every_n_epochs: record on epochs whose index is a multiple of this.
        top_k: eigenvalues kept per record.
        split: "val" or "train".
        filename: name of the PNG in the log directory.
    """

    def __init__(
        self, every_n_epochs: int = 1, top_k: int = 32, split: str = "val", filename: str = "spectrum.png"
    ) -> None:
        if split not in ("val", "train"):
            raise ValueError(f"split must be 'val' or 'train', got {split!r}")
        if every_n_epochs < 1 or top_k < 1:
            raise ValueError("every_n_epochs and top_k must be >= 1")
        self.every_n_epochs = every_n_epochs
        self.top_k = top_k
        self.split = split
        self.filename = filename
        self.metric = EmbeddingSpectrum()
        self.steps: list[int] = []
        self.eigenvalues: list[list[float]] = []
        self._noted_small_split = False

    @property
    def state_key(self) -> str:
        return self._generate_state_key(split=self.split, filename=self.filename)

    def _due(self, trainer: L.Trainer) -> bool:
        return not trainer.sanity_checking and trainer.current_epoch % self.every_n_epochs == 0

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.metric.to(pl_module.device).reset()

    def observing(self, trainer: L.Trainer) -> bool:
        return self.split == "val" and self._due(trainer)

    def observe(self, embeddings: Tensor, labels: Tensor) -> None:
        self.metric.update(embeddings)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.split == "val" and self._due(trainer) and self.metric.update_count:
            self.record(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.split != "train" or not self._due(trainer):
            return
        datamodule = trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "eval_dataloader"):
            raise ValueError("SpectrumPlot(split='train') needs a datamodule with eval_dataloader(split)")
        self.metric.to(pl_module.device).reset()
        for index, batch in enumerate(datamodule.eval_dataloader("train")):
            if index % trainer.world_size == trainer.global_rank:
                x = move_data_to_device(model_input(batch), pl_module.device)
                self.metric.update(embed_batch(pl_module, x))
        self.record(trainer)

    def record(self, trainer: L.Trainer) -> None:
        """Append this step's top eigenvalues (synchronised over ranks) and redraw the figure; skipped, with a note,
        when the split holds fewer than 2 samples (no covariance)."""
        with self.metric.sync_context():
            count = int(self.metric.count)  # over every rank, so all ranks take the same branch
        if count < 2:
            self.metric.reset()
            if not self._noted_small_split:
                rank_zero_info(f"SpectrumPlot: the {self.split} split holds {count} sample(s); no spectrum to plot")
                self._noted_small_split = True
            return
        eigenvalues = self.metric.compute()[: self.top_k]
        self.metric.reset()
        self.steps.append(trainer.global_step)
        self.eigenvalues.append(eigenvalues.tolist())
        self._publish(trainer, trainer.log_dir)  # log_dir broadcasts under DDP: every rank must ask

    @rank_zero_only
    def _publish(self, trainer: L.Trainer, log_dir: str | None) -> None:
        figure = self.figure()
        if log_dir:
            folder = Path(log_dir)
            folder.mkdir(parents=True, exist_ok=True)
            figure.savefig(folder / self.filename, dpi=100)
        for logger in trainer.loggers:
            if hasattr(logger.experiment, "add_figure"):
                logger.experiment.add_figure("spectrum", figure, global_step=trainer.global_step, close=False)

    def figure(self) -> Any:
        """The eigenvalue-versus-step figure of the recorded history (a matplotlib Figure, no pyplot state)."""
        from matplotlib import colormaps
        from matplotlib.figure import Figure

        width = max(len(values) for values in self.eigenvalues)
        history = np.full((len(self.steps), width), np.nan)
        for row, values in enumerate(self.eigenvalues):
            history[row, : len(values)] = values
        history = np.maximum(history, 1e-12)  # log scale: numerically zero or negative eigenvalues sit at the floor
        figure = Figure(figsize=(6, 4))
        axes = figure.subplots()
        colors = colormaps["viridis"](np.linspace(0, 1, width))
        for rank_index in range(width):
            axes.plot(self.steps, history[:, rank_index], color=colors[rank_index], marker=".", linewidth=1)
        axes.set(
            yscale="log",
            xlabel="step",
            ylabel="eigenvalue",
            title=f"Top {width} eigenvalues of the embedding covariance ({self.split})",
        )
        figure.tight_layout()
        return figure

    def state_dict(self) -> dict[str, Any]:
        return {"steps": list(self.steps), "eigenvalues": [list(values) for values in self.eigenvalues]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.steps = list(state_dict["steps"])
        self.eigenvalues = [list(values) for values in state_dict["eigenvalues"]]
