"""Online probes during pretraining: a linear probe and a kNN classifier on the method's frozen embeddings.

Both score the validation embeddings against embeddings of the training split under evaluation transforms, detached
and in eval mode, so they never touch the training gradients, BatchNorm statistics or the model's optimizer. Samples
labelled -1 are skipped; with no labels at all the probes log nothing. Cross-rank sums go through
:mod:`jepa_lightning.distributed`, so the numbers are those of the whole validation split under DDP.

Cost: validation embeddings come from the method's validation step (:func:`validation_embeddings`), which every
method of this package returns at no extra cost, and are shared by every diagnostic callback; each probe also embeds
(part of) the training split at each validation it runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset

from jepa_lightning.callbacks.linear_probe import embed_loader, fit_linear_probe
from jepa_lightning.distributed import all_reduce_sum
from jepa_lightning.inputs import ModelInput, model_input


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Put ``module`` in eval mode, then restore every submodule's own mode (e.g. a teacher kept in eval)."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


@contextmanager
def frozen_forward(pl_module: L.LightningModule) -> Iterator[None]:
    """No gradient, eval mode (every submodule's own mode restored afterwards) and, when a trainer is attached, its
    precision context: how the probes run the model."""
    trainer = pl_module._trainer
    context = trainer.precision_plugin.forward_context() if trainer is not None else nullcontext()
    with torch.no_grad(), eval_mode(pl_module), context:
        yield


def embed_batch(pl_module: L.LightningModule, x: ModelInput) -> Tensor:
    """Detached float32 embeddings ``pl_module.embed(x)`` ``(B, D)``, computed under :func:`frozen_forward`."""
    with frozen_forward(pl_module):
        return pl_module.embed(x).detach().float().flatten(1)


def validation_embeddings(pl_module: L.LightningModule, outputs: Any, batch: dict[str, Any]) -> Tensor:
    """The embeddings of a validation batch: those the method's ``validation_step`` returned as
    ``{"embedding": (B, D)}`` (every :class:`~jepa_lightning.methods.SSLMethod` does, at no extra cost), otherwise
    computed here with :func:`embed_batch` (any other LightningModule with an ``embed`` method)."""
    if isinstance(outputs, dict) and outputs.get("embedding") is not None:
        return outputs["embedding"].detach().float().flatten(1)
    return embed_batch(pl_module, model_input(batch))


class ValidationEmbeddingsCallback(L.Callback):
    """Base of the diagnostics that read validation embeddings: each validation batch's embeddings (what the
    validation step returned, :func:`validation_embeddings`) and labels go to :meth:`observe` while
    :meth:`observing`."""

    def observing(self, trainer: L.Trainer) -> bool:
        """Whether this validation epoch is looked at (never during the sanity check)."""
        return not trainer.sanity_checking

    def observe(self, embeddings: Tensor, labels: Tensor) -> None:
        """Take one validation batch's detached embeddings (B, D) and labels (B,), -1 = unlabeled."""
        raise NotImplementedError

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: dict[str, Tensor],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self.observing(trainer):
            self.observe(validation_embeddings(pl_module, outputs, batch), batch["y"])


def knn_predict(
    query: Tensor,
    bank: Tensor,
    bank_labels: Tensor,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
    chunk_size: int = 1024,
) -> Tensor:
    """Weighted kNN labels (Wu et al., 2018) of ``query`` (N, D) against ``bank`` (M, D) with labels (M,).

    Cosine similarity, the ``k`` nearest bank samples vote for their label with weight ``exp(sim / T)``;
    the query is processed in chunks of ``chunk_size`` rows to bound the (chunk, M) similarity matrix.
    """
    query, bank = F.normalize(query.float(), dim=1), F.normalize(bank.float(), dim=1)
    k = min(k, bank.shape[0])
    predictions = []
    for chunk in query.split(chunk_size):
        similarity, index = (chunk @ bank.T).topk(k, dim=1)
        votes = torch.zeros(chunk.shape[0], num_classes, device=chunk.device)
        votes.scatter_add_(1, bank_labels[index], (similarity / temperature).exp())
        predictions.append(votes.argmax(dim=1))
    return torch.cat(predictions) if predictions else bank_labels.new_empty(0)


def training_split_loader(trainer: L.Trainer, max_samples: int | None = None, seed: int = 0) -> DataLoader:
    """The training split under evaluation transforms (``datamodule.eval_dataloader("train")``): all of it, or a fixed
    random subset of ``max_samples`` (the same at every call, so successive measurements are comparable). Every rank
    reads the same samples."""
    datamodule = trainer.datamodule
    if datamodule is None or not hasattr(datamodule, "eval_dataloader"):
        raise ValueError("the online probes need a datamodule with eval_dataloader(split)")
    loader = datamodule.eval_dataloader("train")
    size = len(loader.dataset)
    if max_samples is not None and size > max_samples:
        chosen = torch.randperm(size, generator=torch.Generator().manual_seed(seed))[:max_samples].sort().values
        loader = DataLoader(
            Subset(loader.dataset, chosen.tolist()),
            batch_size=loader.batch_size,
            collate_fn=loader.collate_fn,
            num_workers=loader.num_workers,
        )
    return loader


def training_split_embeddings(
    trainer: L.Trainer, pl_module: L.LightningModule, max_samples: int | None = None, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Embeddings and labels of :func:`training_split_loader`, on the module's device."""
    embeddings, labels = embed_loader(pl_module, training_split_loader(trainer, max_samples, seed))
    return torch.from_numpy(embeddings).to(pl_module.device), torch.from_numpy(labels).to(pl_module.device).long()


class OnlineLinearProbe(ValidationEmbeddingsCallback):
    """Linear-probe accuracy during training (``probe/acc``), measured the way the offline probe
    (:class:`~jepa_lightning.callbacks.LinearProbeReport`, ``jepa-lightning probe``) measures it, so the two agree.

    At each validation epoch it runs (every ``every_n_epochs``), it embeds the training split under evaluation
    transforms (at most ``max_train_samples`` of it, a fixed random subset), fits a logistic regression on the
    standardised embeddings and scores the validation embeddings of that epoch. Samples labelled -1 are left out;
    without labels it logs nothing.

    Why not a classifier trained by SGD on the training batches, as some libraries do: those batches are augmented
    views (random resized crops for I-JEPA, distortions for joint-embedding methods) whose features differ from the
    clean validation ones, and the features keep moving under the classifier; on the bundled digits such a probe
    read 0.21-0.57 over an I-JEPA run whose offline probe reads 0.90.

    Cost: one pass over at most ``max_train_samples`` training samples per validation run (like
    :class:`OnlineKNNProbe`), and a logistic regression fit on the CPU. Under DDP every rank embeds the same
    subset and fits the same probe; the validation shards' correct counts are summed over ranks.

    Args:
        max_train_samples: training samples the probe is fitted on (None: all).
        every_n_epochs: run on validation epochs whose index is a multiple of this.
        max_iter: iterations of the logistic regression's solver.
    """

    def __init__(self, max_train_samples: int | None = 10_000, every_n_epochs: int = 1, max_iter: int = 1000) -> None:
        if (max_train_samples is not None and max_train_samples < 1) or every_n_epochs < 1 or max_iter < 1:
            raise ValueError("max_train_samples (or None), every_n_epochs and max_iter must be >= 1")
        self.max_train_samples = max_train_samples
        self.every_n_epochs = every_n_epochs
        self.max_iter = max_iter
        self._queries: list[Tensor] = []
        self._labels: list[Tensor] = []

    def observing(self, trainer: L.Trainer) -> bool:
        return super().observing(trainer) and trainer.current_epoch % self.every_n_epochs == 0

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._queries, self._labels = [], []

    def observe(self, embeddings: Tensor, labels: Tensor) -> None:
        keep = labels >= 0
        self._queries.append(embeddings[keep])
        self._labels.append(labels[keep])

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.observing(trainer):
            return
        bank, bank_labels = training_split_embeddings(trainer, pl_module, self.max_train_samples)
        keep = bank_labels >= 0
        totals = torch.zeros(2, device=pl_module.device)
        if keep.any() and self._queries:
            probe = fit_linear_probe(bank[keep].cpu().numpy(), bank_labels[keep].cpu().numpy(), self.max_iter)
            queries, labels = torch.cat(self._queries), torch.cat(self._labels)
            if len(labels):
                predicted = torch.from_numpy(probe.predict(queries.cpu().numpy())).to(labels.device)
                totals = torch.stack([(predicted == labels).sum(), labels.new_tensor(labels.numel())]).float()
        correct, count = all_reduce_sum(totals.to(pl_module.device))
        if count > 0:
            pl_module.log("probe/acc", correct / count, sync_dist=True)
        self._queries, self._labels = [], []


class OnlineKNNProbe(ValidationEmbeddingsCallback):
    """Weighted kNN accuracy (cosine similarity, votes ``exp(sim / T)``) of the validation split, logged as
    ``probe/knn_acc``.

    The bank is the labelled part of the training split under evaluation transforms
    (``datamodule.eval_dataloader("train")``), embedded at the end of each validation epoch it runs. Every rank
    embeds the whole bank (no communication, but ``world_size`` times the work); the validation split is
    sharded as usual and the correct counts are summed over ranks. Use ``every_n_epochs`` to bound the cost.

    Args:
        k: neighbours that vote.
        temperature: vote weights are ``exp(similarity / temperature)``.
        every_n_epochs: run on validation epochs whose index is a multiple of this.
        chunk_size: validation rows per similarity matmul.
    """

    def __init__(self, k: int = 20, temperature: float = 0.07, every_n_epochs: int = 1, chunk_size: int = 1024) -> None:
        if k < 1 or temperature <= 0 or every_n_epochs < 1 or chunk_size < 1:
            raise ValueError("k, every_n_epochs and chunk_size must be >= 1 and temperature > 0")
        self.k = k
        self.temperature = temperature
        self.every_n_epochs = every_n_epochs
        self.chunk_size = chunk_size
        self._queries: list[Tensor] = []
        self._labels: list[Tensor] = []

    def observing(self, trainer: L.Trainer) -> bool:
        return super().observing(trainer) and trainer.current_epoch % self.every_n_epochs == 0

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._queries, self._labels = [], []

    def observe(self, embeddings: Tensor, labels: Tensor) -> None:
        keep = labels >= 0
        self._queries.append(embeddings[keep])
        self._labels.append(labels[keep])

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.observing(trainer):
            return
        bank, bank_labels = training_split_embeddings(trainer, pl_module)
        keep = bank_labels >= 0
        bank, bank_labels = bank[keep], bank_labels[keep]
        if bank.shape[0] == 0:
            rank_zero_warn("OnlineKNNProbe: the training split has no labelled samples; probe/knn_acc not logged")
            return
        totals = torch.zeros(2, device=pl_module.device)
        if self._queries:
            labels = torch.cat(self._labels)
            num_classes = int(bank_labels.max()) + 1  # predictions are bank labels
            predicted = knn_predict(
                torch.cat(self._queries), bank, bank_labels, num_classes, self.k, self.temperature, self.chunk_size
            )
            totals = torch.stack([(predicted == labels).sum(), labels.new_tensor(labels.numel())]).float()
        correct, count = all_reduce_sum(totals)
        if count > 0:
            pl_module.log("probe/knn_acc", correct / count, sync_dist=True)
        self._queries, self._labels = [], []
