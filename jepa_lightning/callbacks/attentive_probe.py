"""Attentive probe (V-JEPA's evaluation): a cross-attention head trained on the frozen encoder's token sequence.

Where the linear probe reads one pooled vector per sample, the attentive probe reads every token the method's
encoder produced (``embed_tokens``: ``(B, N, D)`` and the ``valid`` mask of padding tokens) and learns where to look:
an :class:`~jepa_lightning.nn.attentive.AttentiveClassifier` (one learned query, one cross-attention block, a linear
classifier) trained with cross-entropy on the labelled training split, scored on a held-out split. The recipe is the
official one (facebookresearch/jepa@51c59d5 ``evals/video_classification_frozen/eval.py``, ``configs/evals/*.yaml``):
depth 1, the encoder's number of heads, AdamW at lr 1e-3 with a cosine decay to 0 and no warmup, weight decay 0.01 (the
video evaluations'; the image ones use 0.001) decaying to 1e-6 by cosine (biases and norms excluded), 20 epochs.
Deviation: batches of 16 on one device (official: 16 images or 4 clips per GPU on 64 GPUs), since the data sets here
are small; the schedules step per batch as the official ones do. Tokens are computed once (frozen encoder, evaluation
transforms, no augmentation) and kept on the CPU (``S x N x D`` floats for ``S`` samples); the online callback bounds
``S`` with ``max_train_samples``. With few samples, a head at the official recipe may not leave its start (it predicts
one class): its small initialisation pools nearly the same vector for every sample until the query learns where to
look, which takes a few hundred steps; more epochs (``AttentiveProbeSettings.epochs``) help there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import move_data_to_device
from torch import Tensor, nn
from torch.utils.data import DataLoader

from jepa_lightning.callbacks.linear_probe import LabelBudget
from jepa_lightning.callbacks.online_probes import frozen_forward, training_split_loader
from jepa_lightning.distributed import all_reduce_sum
from jepa_lightning.inputs import ModelInput, model_input
from jepa_lightning.nn.attentive import AttentiveClassifier
from jepa_lightning.nn.encoder import TransformerEncoder


@dataclass
class TokenSet:
    """Frozen token sequences of a split: ``features`` ``(S, N, D)`` float32, ``valid`` ``(S, N)`` bool (False:
    padding, to the longest sequence), ``labels`` ``(S,)`` (-1: unlabeled)."""

    features: Tensor
    valid: Tensor
    labels: Tensor

    def labelled(self) -> TokenSet:
        keep = self.labels >= 0
        return TokenSet(self.features[keep], self.valid[keep], self.labels[keep])

    def few_labels(self, budget: LabelBudget, seed: int) -> TokenSet:
        """The stratified subset that ``budget`` draws with ``seed`` (:meth:`LabelBudget.subset`)."""
        index = torch.from_numpy(budget.subset(self.labels.numpy(), seed))
        return TokenSet(self.features[index], self.valid[index], self.labels[index])


def frozen_tokens(model: L.LightningModule, x: ModelInput) -> tuple[Tensor, Tensor]:
    """The model's token sequence ``(B, N, D)`` float32 and validity ``(B, N)`` bool under :func:`frozen_forward`
    (``embed_tokens``; a module without it gives its ``embed`` as a single token)."""
    with frozen_forward(model):
        if hasattr(model, "embed_tokens"):
            tokens, valid = model.embed_tokens(x)
        else:
            tokens, valid = model.embed(x).flatten(1).unsqueeze(1), None
    tokens = tokens.detach().float()
    valid = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device) if valid is None else valid.bool()
    return tokens, valid


def pad_tokens(parts: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """Batches of ``(tokens (B, N_i, D), valid (B, N_i))`` concatenated, padded to the longest ``N_i`` (invalid)."""
    length = max(tokens.shape[1] for tokens, _ in parts)
    features = torch.cat([F.pad(tokens, (0, 0, 0, length - tokens.shape[1])) for tokens, _ in parts])
    valid = torch.cat([F.pad(valid, (0, length - valid.shape[1]), value=False) for _, valid in parts])
    return features, valid


def token_set(model: L.LightningModule, loader: DataLoader) -> TokenSet:
    """:func:`frozen_tokens` of every batch of ``loader``, on the CPU, with the labels."""
    parts, labels = [], []
    for batch in loader:
        tokens, valid = frozen_tokens(model, move_data_to_device(model_input(batch), model.device))
        parts.append((tokens.cpu(), valid.cpu()))
        labels.append(batch["y"].cpu())
    if not parts:
        raise ValueError("the attentive probe got an empty split")
    features, valid = pad_tokens(parts)
    return TokenSet(features, valid, torch.cat(labels).long())


def encoder_heads(model: nn.Module, dim: int) -> int:
    """Heads of the model's first :class:`~jepa_lightning.nn.TransformerEncoder` of width ``dim`` (the official probe
    uses the encoder's), else 1."""
    return next(
        (m.num_heads for m in model.modules() if isinstance(m, TransformerEncoder) and m.embed_dim == dim),
        1,
    )


@dataclass(frozen=True)
class AttentiveProbeSettings:
    """How the attentive probe is trained (defaults: the official recipe, see the module docstring)."""

    epochs: int = 20
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.01
    final_weight_decay: float = 1e-6
    depth: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.depth < 1 or self.lr <= 0:
            raise ValueError("epochs, batch_size and depth must be >= 1 and lr > 0")


#: The official recipe.
OFFICIAL_SETTINGS = AttentiveProbeSettings()


def fit_attentive_probe(
    train: TokenSet,
    num_heads: int,
    settings: AttentiveProbeSettings = OFFICIAL_SETTINGS,
    device: torch.device | str = "cpu",
) -> AttentiveClassifier:
    """An :class:`AttentiveClassifier` trained on the labelled samples of ``train``; the same ``settings.seed`` gives
    the same head (initialisation and batch order come from it, the global random state is left alone)."""
    train = train.labelled()
    if len(train.labels) == 0:
        raise ValueError("the attentive probe needs labelled samples (y >= 0) in the training split")
    # Lightning validates under inference mode: train with autograd on ordinary copies of the tokens.
    with torch.inference_mode(False), torch.enable_grad():
        train = TokenSet(*(t.clone() if t.is_inference() else t for t in (train.features, train.valid, train.labels)))
        return train_head(train, num_heads, settings, device)


def train_head(
    train: TokenSet, num_heads: int, settings: AttentiveProbeSettings, device: torch.device | str
) -> AttentiveClassifier:
    """The training loop of :func:`fit_attentive_probe` on labelled tokens."""
    num_classes = int(train.labels.max()) + 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        head = AttentiveClassifier(train.features.shape[-1], num_heads, num_classes, depth=settings.depth)
    head.to(device).train()
    decay = [p for p in head.parameters() if p.ndim > 1]
    no_decay = [p for p in head.parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}], lr=settings.lr)
    generator = torch.Generator().manual_seed(settings.seed)
    steps_per_epoch = math.ceil(len(train.labels) / settings.batch_size)
    total, step = settings.epochs * steps_per_epoch, 0
    for _ in range(settings.epochs):
        for index in torch.randperm(len(train.labels), generator=generator).split(settings.batch_size):
            step += 1  # the official schedules step before each iteration
            cosine = 0.5 * (1.0 + math.cos(math.pi * step / total))
            optimizer.param_groups[0]["lr"] = optimizer.param_groups[1]["lr"] = settings.lr * cosine
            wd = settings.final_weight_decay + (settings.weight_decay - settings.final_weight_decay) * cosine
            optimizer.param_groups[0]["weight_decay"] = wd
            logits = head(train.features[index].to(device), train.valid[index].to(device))
            loss = F.cross_entropy(logits, train.labels[index].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return head.eval()


@torch.no_grad()
def count_correct(head: AttentiveClassifier, features: Tensor, valid: Tensor, labels: Tensor) -> tuple[int, int]:
    """Correct predictions and count over the labelled samples of one batch of tokens."""
    keep = labels >= 0
    if not keep.any():
        return 0, 0
    device = head.linear.weight.device
    predicted = head(features[keep].to(device), valid[keep].to(device)).argmax(dim=1).cpu()
    return int((predicted == labels[keep].cpu()).sum()), int(keep.sum())


def attentive_probe_accuracy(
    train: TokenSet,
    test: TokenSet,
    num_heads: int,
    settings: AttentiveProbeSettings = OFFICIAL_SETTINGS,
    device: torch.device | str = "cpu",
) -> float:
    """Accuracy on the labelled samples of ``test`` of the attentive probe fitted on ``train``."""
    head = fit_attentive_probe(train, num_heads, settings, device)
    correct = total = 0
    for index in torch.arange(len(test.labels)).split(256):
        batch_correct, batch_total = count_correct(head, test.features[index], test.valid[index], test.labels[index])
        correct, total = correct + batch_correct, total + batch_total
    if total == 0:
        raise ValueError("the attentive probe needs labelled samples (y >= 0) in the held-out split")
    return correct / total


def datamodule_attentive_probe_accuracy(
    model: L.LightningModule,
    datamodule: L.LightningDataModule,
    split: str = "val",
    settings: AttentiveProbeSettings = OFFICIAL_SETTINGS,
) -> float:
    """Attentive-probe accuracy of the model's frozen tokens on ``split``, trained on the training split (evaluation
    transforms), on the model's device; any jepa-lightning datamodule (``eval_dataloader(split)``)."""
    if not hasattr(datamodule, "eval_dataloader"):
        raise ValueError(f"an attentive probe needs a datamodule with eval_dataloader(split), got {type(datamodule)}")
    train = token_set(model, datamodule.eval_dataloader("train"))
    held_out = token_set(model, datamodule.eval_dataloader(split))
    heads = encoder_heads(model, train.features.shape[-1])
    return attentive_probe_accuracy(train, held_out, heads, settings, model.device)


def datamodule_few_label_attentive_probe_accuracies(
    model: L.LightningModule,
    datamodule: L.LightningDataModule,
    budget: LabelBudget,
    seeds: list[int],
    split: str = "val",
    settings: AttentiveProbeSettings = OFFICIAL_SETTINGS,
) -> list[float]:
    """:func:`datamodule_attentive_probe_accuracy` with the head trained on ``budget``'s stratified subset of the
    training split, one accuracy per seed of ``seeds`` (the seed draws the subset; the head's initialisation and batch
    order come from ``settings.seed`` as without a budget). The tokens are computed once."""
    if not hasattr(datamodule, "eval_dataloader"):
        raise ValueError(f"an attentive probe needs a datamodule with eval_dataloader(split), got {type(datamodule)}")
    train = token_set(model, datamodule.eval_dataloader("train"))
    held_out = token_set(model, datamodule.eval_dataloader(split))
    heads = encoder_heads(model, train.features.shape[-1])
    return [
        attentive_probe_accuracy(train.few_labels(budget, seed), held_out, heads, settings, model.device)
        for seed in seeds
    ]


class OnlineAttentiveProbe(L.Callback):
    """Attentive-probe accuracy during training (``probe/attentive_acc``), measured as the offline one
    (``jepa-lightning probe --head attentive``) measures it.

    At each validation epoch it runs (every ``every_n_epochs``), it takes the frozen tokens of each validation batch
    (one more forward of the batch in eval mode: the validation step returns pooled embeddings only) and of the
    training split under evaluation transforms (at most ``max_train_samples`` of it, a fixed random subset, as
    :class:`~jepa_lightning.callbacks.OnlineLinearProbe` does), trains a fresh head on the latter and scores the
    former. Under DDP every rank trains the same head; the validation shards' correct counts are summed over ranks.
    Samples labelled -1 are left out; without labels it logs nothing.

    Args:
        max_train_samples: training samples the head is trained on (None: all).
        every_n_epochs: run on validation epochs whose index is a multiple of this.
        epochs, batch_size, lr, weight_decay, depth, seed: the head's training
            (:class:`AttentiveProbeSettings`).
    """

    def __init__(
        self,
        max_train_samples: int | None = 10_000,
        every_n_epochs: int = 1,
        epochs: int = 20,
        batch_size: int = 16,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        depth: int = 1,
        seed: int = 0,
    ) -> None:
        if (max_train_samples is not None and max_train_samples < 1) or every_n_epochs < 1:
            raise ValueError("max_train_samples (or None) and every_n_epochs must be >= 1")
        self.max_train_samples = max_train_samples
        self.every_n_epochs = every_n_epochs
        self.settings = AttentiveProbeSettings(
            epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, depth=depth, seed=seed
        )
        self._batches: list[tuple[Tensor, Tensor, Tensor]] = []

    def observing(self, trainer: L.Trainer) -> bool:
        return not trainer.sanity_checking and trainer.current_epoch % self.every_n_epochs == 0

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._batches = []

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: object,
        batch: dict[str, Tensor],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self.observing(trainer) and bool((batch["y"] >= 0).any()):
            tokens, valid = frozen_tokens(pl_module, model_input(batch))
            self._batches.append((tokens.cpu(), valid.cpu(), batch["y"].cpu()))

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.observing(trainer):
            return
        totals = torch.zeros(2, device=pl_module.device)
        train = token_set(pl_module, training_split_loader(trainer, self.max_train_samples)).labelled()
        if len(train.labels) and self._batches:
            heads = encoder_heads(pl_module, train.features.shape[-1])
            head = fit_attentive_probe(train, heads, self.settings, pl_module.device)
            counts = [count_correct(head, *batch) for batch in self._batches]
            totals = torch.tensor([sum(c for c, _ in counts), sum(n for _, n in counts)], device=pl_module.device)
        correct, count = all_reduce_sum(totals.float())
        if count > 0:
            pl_module.log("probe/attentive_acc", correct / count, sync_dist=True)
        self._batches = []
