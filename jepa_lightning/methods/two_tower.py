"""Two-tower contrastive learning on paired batches: two modalities of the same items, one encoder each, a CLIP loss."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jepa_lightning.distributed import gather, rank
from jepa_lightning.inputs import InputSpec, ModelInput, input_batch_size, model_input, paired_input
from jepa_lightning.losses.joint_embedding import clip_loss, similarity_targets, supervised_clip_loss
from jepa_lightning.methods.base import ExportedNetwork, SSLMethod, require_input_spec

#: Builds an encoder ``input -> (B, D)`` with an ``embed_dim`` attribute from the data description (a ``class_path``
#: in configs whose first constructor argument is ``spec``).
EncoderFactory = Callable[[InputSpec], nn.Module]
Projector = Literal["mlp", "linear"]


class ProjectionHead(nn.Module):
    """``Linear -> GELU -> Linear -> LayerNorm`` (ConGraT's ``ProjectHead``), or one ``Linear`` (CLIP's)."""

    def __init__(self, in_dim: int, out_dim: int, kind: Projector = "mlp") -> None:
        super().__init__()
        if kind not in ("mlp", "linear"):
            raise ValueError(f"projector must be 'mlp' or 'linear', got {kind!r}")
        layers = [nn.Linear(in_dim, out_dim)]
        if kind == "mlp":
            layers += [nn.GELU(), nn.Linear(out_dim, out_dim), nn.LayerNorm(out_dim)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class TwoTower(SSLMethod):
    """Two encoders, one per modality of a paired batch (``batch["x"]`` and ``batch["pair"]``, the same items in the
    same order), each followed by a projection head; CLIP's symmetric InfoNCE on the normalised projections with a
    learnable logit scale ``exp(log_scale)``, bounded by ``exp(max_log_scale)`` (clamped, as CLIP and ConGraT do),
    over the items of the global batch (:func:`~jepa_lightning.losses.clip_loss`).

    Options: ``embedding_dropout`` on the normalised projections (ConGraT's); ``supervised_weight`` adds the
    cross-modal supervised contrastive term on the labels ``batch["y"]`` (-1 = unlabelled); ``similarity_smoothing``
    (alpha) smooths the one-hot targets with the batch's graph similarities (``batch["similarity"]``, ConGraT's
    mutual-neighbour cosine; :func:`~jepa_lightning.losses.similarity_targets` with ``similarity_weights``): a
    datamodule with a ``graph_similarity`` switch is told to provide them. ``embed`` is the first tower's encoder
    output (before the projection), what probes read; :meth:`embed_pair` the second's.
    Optimiser defaults: AdamW, lr 1e-4, no weight decay, no warmup, cosine to 1e-6.
    """

    num_views: int = 0

    def __init__(
        self,
        encoder: EncoderFactory,
        pair_encoder: EncoderFactory,
        embed_dim: int = 128,
        projector: Projector = "mlp",
        log_scale_init: float = math.log(1 / 0.07),
        max_log_scale: float | None = math.log(100.0),
        embedding_dropout: float = 0.0,
        supervised_weight: float = 0.0,
        similarity_smoothing: float = 0.0,
        similarity_weights: str = "identity",
        input_spec: InputSpec | None = None,
        lr: float = 1e-4,
        warmup_start_lr: float = 0.0,
        warmup_fraction: float = 0.0,
        weight_decay: float = 0.0,
        final_weight_decay: float | None = None,
        gradient_clip: float | None = None,
        **kwargs: Any,
    ) -> None:
        """``gradient_clip``: the gradient-norm clipping used when the trainer sets none (None: no clipping);
        ``kwargs``: the remaining optimiser settings of :class:`SSLMethod` (``min_lr``, ``betas``, ``adam_eps``)."""
        super().__init__(
            input_spec=input_spec,
            lr=lr,
            warmup_start_lr=warmup_start_lr,
            warmup_fraction=warmup_fraction,
            weight_decay=weight_decay,
            final_weight_decay=final_weight_decay,
            **kwargs,
        )
        require_input_spec(type(self).__name__, input_spec)
        if not 0.0 <= similarity_smoothing < 1.0:
            raise ValueError(f"similarity_smoothing must be in [0, 1), got {similarity_smoothing}")
        if supervised_weight < 0:
            raise ValueError(f"supervised_weight must be >= 0, got {supervised_weight}")
        self.save_hyperparameters(ignore=["encoder", "pair_encoder"])
        self.encoder = encoder(input_spec)
        self.pair_encoder = pair_encoder(input_spec)
        self.projector = ProjectionHead(self.encoder.embed_dim, embed_dim, projector)
        self.pair_projector = ProjectionHead(self.pair_encoder.embed_dim, embed_dim, projector)
        self.log_scale = nn.Parameter(torch.tensor(float(log_scale_init)))
        self.max_log_scale = max_log_scale
        self.dropout = nn.Dropout(embedding_dropout)
        self.supervised_weight = supervised_weight
        self.similarity_smoothing = similarity_smoothing
        self.similarity_weights = similarity_weights
        self.gradient_clip = gradient_clip

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """The trainer's clipping when it sets one, else norm clipping at ``gradient_clip`` (when set)."""
        if gradient_clip_val is None and self.gradient_clip is not None:
            gradient_clip_val, gradient_clip_algorithm = self.gradient_clip, "norm"
        self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def setup(self, stage: str) -> None:
        """Ask the datamodule for graph similarities when the targets are smoothed with them."""
        super().setup(stage)
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if self.similarity_smoothing and datamodule is not None and hasattr(datamodule, "graph_similarity"):
            datamodule.graph_similarity = True

    @property
    def logit_scale(self) -> Tensor:
        """``exp(log_scale)``, clamped at ``exp(max_log_scale)``."""
        scale = self.log_scale.exp()
        return scale if self.max_log_scale is None else scale.clamp(max=math.exp(self.max_log_scale))

    def project(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """Normalised (and, in training, dropped-out) projections of both modalities, ``(B, embed_dim)`` each."""
        z1 = F.normalize(self.projector(self.encoder(model_input(batch))), dim=1)
        z2 = F.normalize(self.pair_projector(self.pair_encoder(paired_input(batch))), dim=1)
        return self.dropout(z1), self.dropout(z2)

    def objective(self, batch: dict[str, Any], z1: Tensor, z2: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """CLIP loss (with smoothed targets if asked), plus the weighted supervised term; the parts to log."""
        scale = self.logit_scale
        targets = None
        if self.similarity_smoothing:
            if "similarity" not in batch:
                raise ValueError(
                    "similarity_smoothing needs batch['similarity'] (GraphDataModule(graph_similarity=...))"
                )
            rows = batch["similarity"].float()
            sims = rows @ gather(rows).T
            own = rank() * z1.shape[0] + torch.arange(z1.shape[0], device=z1.device)
            rows, columns = similarity_targets(sims, own, self.similarity_smoothing, self.similarity_weights)
            targets = (columns, rows)  # ConGraT ranks the similarities from the texts' side: rows for the pair
        contrastive = clip_loss(z1, z2, scale, targets, normalize=False)
        parts = {"contrastive": contrastive.detach(), "logit_scale": scale.detach()}
        loss = contrastive
        if self.supervised_weight:
            supervised = supervised_clip_loss(z1, z2, batch["y"], scale, normalize=False)
            parts["supervised"] = supervised.detach()
            loss = loss + self.supervised_weight * supervised
        return loss, parts

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        z1, z2 = self.project(batch)
        loss, parts = self.objective(batch, z1, z2)
        size = z1.shape[0]
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=size)
        self.log_dict({f"train/{name}": value for name, value in parts.items()}, on_step=True, batch_size=size)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor]:
        """Logs the validation loss (when the batch is paired) and the embeddings' spread; returns the embeddings
        for the diagnostic callbacks."""
        x = model_input(batch)
        embeddings = self.embed(x).float()
        size = input_batch_size(x)
        if "pair" in batch:
            loss, _ = self.objective(batch, *self.project(batch))
            self.log("val/loss", loss, batch_size=size, sync_dist=True)
        self.log("val/embedding_std", embeddings.std(dim=0).mean(), batch_size=size, sync_dist=True)
        return {"embedding": embeddings}

    @torch.no_grad()
    def embed(self, x: ModelInput) -> Tensor:
        """The first tower's representation ``(B, D)`` (encoder output, before the projection head)."""
        return self.encoder(x)

    @torch.no_grad()
    def embed_pair(self, x: Tensor) -> Tensor:
        """The second tower's representation ``(B, D)``."""
        return self.pair_encoder(x)

    def export_network(self, network: ExportedNetwork | None = None) -> nn.Module:
        """The first tower's encoder (what :meth:`embed` reads), for ``jepa-lightning export`` and ``FineTune``; two
        towers train their encoders directly (no EMA teacher), so the only network is ``"student"``."""
        if network not in (None, "student"):
            raise ValueError(f"{type(self).__name__} has no EMA teacher: export network 'student', not {network!r}")
        return self.encoder
