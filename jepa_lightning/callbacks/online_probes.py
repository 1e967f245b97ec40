"""Online probes during pretraining: a linear classifier and a kNN classifier on the method's frozen embeddings.

Both read ``pl_module.embed(model_input(batch))`` (any :class:`~jepa_lightning.methods.base.SSLMethod`), detached and in
eval mode, so they never touch the training gradients, BatchNorm statistics or the model's optimizer. Samples
labelled -1 are skipped; with no labels at all the probes log nothing. Cross-rank sums go through
:mod:`jepa_lightning.distributed`, so the numbers are those of the global batch under DDP.

Cost: one extra no-grad ``embed`` forward per training batch (linear probe). Validation embeddings come from the
method's validation step (:func:`validation_embeddings`), which every method of this package returns at no extra
cost, and are shared by every diagnostic callback. The kNN probe also embeds the whole training split at each
validation it runs.
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

from jepa_lightning.callbacks.linear_probe import embed_loader
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


def embed_batch(pl_module: L.LightningModule, x: ModelInput) -> Tensor:
    """Detached float32 embeddings ``pl_module.embed(x)`` ``(B, D)``, computed in eval mode under the trainer's
    precision context; every submodule's own mode is restored afterwards."""
    trainer = pl_module._trainer
    context = trainer.precision_plugin.forward_context() if trainer is not None else nullcontext()
    with torch.no_grad(), eval_mode(pl_module), context:
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


def num_classes_of(trainer: L.Trainer, pl_module: L.LightningModule) -> int | None:
    """``input_spec.num_classes`` of the datamodule, else of the model, else None."""
    for owner in (getattr(trainer, "datamodule", None), pl_module):
        spec = getattr(owner, "input_spec", None)
        if spec is not None and getattr(spec, "num_classes", None) is not None:
            return int(spec.num_classes)
    return None


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


class StandardizedLinear(nn.Module):
    """Linear layer (zero-initialised) on features standardised by running statistics of the global batch.

    Like ``BatchNorm1d(affine=False)`` before the layer (MAE's linear probe), which makes the probe indifferent
    to the embedding's offset and scale (pooled JEPA features share a large common component), but the
    statistics are summed over ranks so DDP replicas stay identical. The first update sets them, later ones move
    them by ``momentum``.
    """

    def __init__(self, dim: int, num_classes: int, momentum: float = 0.1, device: torch.device | None = None) -> None:
        super().__init__()
        self.momentum = momentum
        self.linear = nn.Linear(dim, num_classes, device=device)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.register_buffer("mean", torch.zeros(dim, device=device))
        self.register_buffer("var", torch.ones(dim, device=device))
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long, device=device))

    @torch.no_grad()
    def update_statistics(self, z: Tensor) -> None:
        """Move the running mean / variance toward those of ``z`` gathered over ranks (float64 sums)."""
        z = z.double()
        sums = all_reduce_sum(torch.cat([z.sum(0), z.square().sum(0), z.new_ones(1) * z.shape[0]]))
        first, second, count = sums[: z.shape[1]], sums[z.shape[1] : -1], sums[-1]
        mean = first / count.clamp_min(1)
        var = (second / count.clamp_min(1) - mean.square()).clamp_min(0)
        weight = torch.where(self.num_updates == 0, 1.0, self.momentum) * (count > 0)  # no host sync
        self.mean.lerp_(mean.float(), weight.float())
        self.var.lerp_(var.float(), weight.float())
        self.num_updates += (count > 0).long()

    def forward(self, z: Tensor) -> Tensor:
        return self.linear((z - self.mean) * torch.rsqrt(self.var + 1e-8))


class OnlineLinearProbe(ValidationEmbeddingsCallback):
    """A linear classifier trained online on detached embeddings, with its own AdamW optimizer.

    Each training batch: the feature standardisation (:class:`StandardizedLinear`) takes in the batch's
    statistics, then one gradient step of softmax regression on the labelled samples; statistics and gradients
    are summed over ranks (with the labelled counts) so every rank takes the same step on the global batch and
    the replicas stay identical (two small all-reduces per batch). The classifier is built lazily at the first
    batch (the embedding width is known then). Logs ``probe/train_acc`` and ``probe/train_loss`` per training epoch
    (accuracy of the classifier on each batch before its step) and ``probe/acc`` on the validation split.
    Its weights and optimizer state live in this callback's ``state_dict`` (saved in checkpoints).

    Args:
        num_classes: number of classes; ``None`` reads ``input_spec.num_classes`` of the datamodule (or model),
            and disables the probe with a warning when that is unknown too.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
    """

    def __init__(self, num_classes: int | None = None, lr: float = 1e-2, weight_decay: float = 0.0) -> None:
        self.num_classes = num_classes
        self.lr = lr
        self.weight_decay = weight_decay
        self._state_key = self._generate_state_key(num_classes=num_classes, lr=lr, weight_decay=weight_decay)
        self.classifier: StandardizedLinear | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self._pending: dict[str, Any] | None = None
        self._train_totals: Tensor | None = None
        self._val_totals: Tensor | None = None

    @property
    def state_key(self) -> str:
        return self._state_key  # from the constructor arguments: setup may fill num_classes in later

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.num_classes is None:
            self.num_classes = num_classes_of(trainer, pl_module)
            if self.num_classes is None:
                rank_zero_warn("OnlineLinearProbe: the number of classes is unknown (no input_spec.num_classes); off")

    def _build(self, dim: int, device: torch.device) -> StandardizedLinear:
        if self.classifier is None:
            self.classifier = StandardizedLinear(dim, self.num_classes, device=device)
            self.optimizer = torch.optim.AdamW(self.classifier.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            if self._pending is not None:
                self.classifier.load_state_dict(self._pending["classifier"])
                self.optimizer.load_state_dict(self._pending["optimizer"])
                self._pending = None
        return self.classifier

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._train_totals = None

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: dict[str, Tensor], batch_idx: int
    ) -> None:
        if self.num_classes is None:
            return
        z = embed_batch(pl_module, model_input(batch))
        classifier = self._build(z.shape[1], z.device)
        keep = batch["y"] >= 0
        z, y = z[keep], batch["y"][keep]
        classifier.update_statistics(z)
        parameters = list(classifier.parameters())
        with torch.enable_grad():
            logits = classifier(z)
            loss = F.cross_entropy(logits, y, reduction="sum")
            grads = torch.autograd.grad(loss, parameters)
        local = torch.stack([loss.detach(), (logits.argmax(1) == y).sum().float(), keep.sum().float()])
        flat = all_reduce_sum(torch.cat([*(g.flatten() for g in grads), local]))
        totals = flat[-3:]
        if totals[2] == 0:  # no rank had a labelled sample: no step (Adam's momentum would still move)
            return
        for parameter, grad in zip(parameters, flat[:-3].split([p.numel() for p in parameters])):
            parameter.grad = grad.view_as(parameter) / totals[2]
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._train_totals = totals if self._train_totals is None else self._train_totals + totals

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._train_totals is not None and self._train_totals[2] > 0:
            loss, correct, count = self._train_totals
            pl_module.log("probe/train_acc", correct / count, sync_dist=True)
            pl_module.log("probe/train_loss", loss / count, sync_dist=True)

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._val_totals = None

    def observing(self, trainer: L.Trainer) -> bool:
        return self.classifier is not None and super().observing(trainer)

    def observe(self, embeddings: Tensor, labels: Tensor) -> None:
        keep = labels >= 0
        correct = (self.classifier(embeddings[keep]).argmax(1) == labels[keep]).sum()
        totals = torch.stack([correct, keep.sum()]).float()
        self._val_totals = totals if self._val_totals is None else self._val_totals + totals

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.classifier is None or trainer.sanity_checking:
            return
        local = self._val_totals if self._val_totals is not None else torch.zeros(2, device=pl_module.device)
        correct, count = all_reduce_sum(local)
        if count > 0:
            pl_module.log("probe/acc", correct / count, sync_dist=True)

    def state_dict(self) -> dict[str, Any]:
        if self.classifier is None:
            return {"num_classes": self.num_classes, "classifier": None, "optimizer": None}
        return {
            "num_classes": self.num_classes,
            "classifier": self.classifier.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.num_classes = state_dict["num_classes"]
        self.classifier, self.optimizer, self._pending = None, None, None
        if state_dict["classifier"] is not None:
            self._pending = state_dict


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
        datamodule = trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "eval_dataloader"):
            raise ValueError("OnlineKNNProbe needs a datamodule with eval_dataloader(split)")
        embedded = embed_loader(pl_module, datamodule.eval_dataloader("train"))
        bank, bank_labels = (torch.from_numpy(array).to(pl_module.device) for array in embedded)
        keep = bank_labels >= 0
        bank, bank_labels = bank[keep], bank_labels[keep].long()
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
