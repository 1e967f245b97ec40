"""The base of the joint-embedding methods: backbone -> projector per view -> objective on the projections. Each
method is a preset in its own module (``simclr.py``, ``barlow_twins.py``, ``vicreg.py``, ``byol.py``, ``tico.py``,
``lejepa.py``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from jepa_lightning.inputs import InputSpec, ModelInput, concat_inputs, input_batch_size, model_input
from jepa_lightning.methods.base import ExportedNetwork, SSLMethod, require_input_spec
from jepa_lightning.nn.backbones import PooledTokenBackbone, TimmBackbone, backbone_embedding, exported_backbone
from jepa_lightning.nn.ema import EMATeacher

#: Builds a pooled backbone ``x -> (B, D)`` (with an ``embed_dim`` attribute) from the data description: in
#: configs a ``class_path`` whose first constructor argument is ``spec``, e.g.
#: :class:`~jepa_lightning.nn.TimmBackbone` or :class:`~jepa_lightning.nn.PooledTokenBackbone`.
BackboneFactory = Callable[[InputSpec], nn.Module]


def projection_mlp(in_dim: int, dims: Sequence[int], batch_norm: bool = True) -> nn.Sequential:
    """``Linear -> [BatchNorm] -> ReLU`` for each hidden width of ``dims``, then a plain ``Linear`` to ``dims[-1]``."""
    if not dims:
        raise ValueError("projector/predictor dims must name at least the output width")
    layers: list[nn.Module] = []
    for width in dims[:-1]:
        layers += [nn.Linear(in_dim, width, bias=not batch_norm)]
        layers += [nn.BatchNorm1d(width)] if batch_norm else []
        layers += [nn.ReLU(inplace=True)]
        in_dim = width
    layers.append(nn.Linear(in_dim, dims[-1]))
    return nn.Sequential(*layers)


def view_size(view: ModelInput) -> tuple[int, ...] | None:
    """The per-sample shape of a tensor view (multi-crop groups views by it); None for table rows and series."""
    return tuple(view.shape[1:]) if isinstance(view, Tensor) else None


class JointEmbedding(SSLMethod):
    """Base of the joint-embedding methods: every view goes through ``backbone`` and ``projector``.

    All views are encoded in one forward pass (concatenated along the batch), then split; subclasses define
    :meth:`objective` on the list of projections. Multi-crop (views of several sizes, e.g. the image datamodule's
    ``local_views``): the backbone encodes each size group in its own pass and the projector takes every view's
    features in one pass, as DINO's ``MultiCropWrapper`` (facebookresearch/dino@7c446df5 ``utils.py``); only
    methods that define a multi-crop objective (``multi_crop = True``: LeJEPA) accept such views, the others
    refuse them.
    ``ema_momentum`` adds an EMA teacher of backbone + projector (BYOL's target network, TiCo's momentum branch),
    moved once per optimizer step. ``embed`` is the online backbone's pooled representation. Optimiser defaults:
    AdamW, lr 1e-3 with 10% linear warmup from 0 and a cosine to 1e-6, weight decay 1e-5 (the papers use LARS / SGD
    at ImageNet scale).
    """

    def __init__(
        self,
        backbone: BackboneFactory | None = None,
        projector_dims: Sequence[int] = (2048, 128),
        projector_batch_norm: bool = True,
        num_views: int = 2,
        ema_momentum: float | None = None,
        final_ema_momentum: float = 1.0,
        ema_schedule: Literal["linear", "cosine"] = "linear",
        input_spec: InputSpec | None = None,
        warmup_start_lr: float = 0.0,
        warmup_fraction: float = 0.1,
        weight_decay: float = 1e-5,
        final_weight_decay: float | None = None,
        **kwargs: Any,
    ) -> None:
        """``kwargs``: the remaining optimiser settings of :class:`SSLMethod` (``lr``, ``min_lr``, ``betas``)."""
        super().__init__(
            input_spec=input_spec,
            warmup_start_lr=warmup_start_lr,
            warmup_fraction=warmup_fraction,
            weight_decay=weight_decay,
            final_weight_decay=final_weight_decay,
            **kwargs,
        )
        require_input_spec(type(self).__name__, input_spec)
        if num_views < 2:
            raise ValueError(f"joint-embedding methods compare views: num_views must be >= 2, got {num_views}")
        self.save_hyperparameters(ignore=["backbone"])
        built = (backbone or TimmBackbone)(input_spec)
        self.network = nn.Sequential(built, projection_mlp(built.embed_dim, projector_dims, projector_batch_norm))
        self.num_views = num_views
        self.teacher = (
            EMATeacher(self.network, ema_momentum, final_ema_momentum, schedule=ema_schedule)
            if ema_momentum is not None
            else None
        )

    #: Whether :meth:`objective` is defined on views of several sizes (multi-crop); the pairwise objectives are not.
    multi_crop: bool = False

    @property
    def backbone(self) -> nn.Module:
        return self.network[0]

    @property
    def projector(self) -> nn.Module:
        return self.network[1]

    @staticmethod
    def each_view(network: nn.Module, views: Sequence[ModelInput]) -> list[Tensor]:
        """``network`` (backbone, projector) applied to every view in one batched pass, split back per view; views
        of several sizes: the backbone once per size, the projector once on all of them, in view order."""
        sizes = [view_size(view) for view in views]
        if len(set(sizes)) == 1:
            return list(network(concat_inputs(views)).chunk(len(views)))
        if isinstance(network, EMATeacher):
            with network.frozen() as module:
                return JointEmbedding.each_view(module, views)
        backbone, projector = network
        groups: dict[tuple[int, ...] | None, list[int]] = {}
        for position, size in enumerate(sizes):
            groups.setdefault(size, []).append(position)
        features: dict[int, Tensor] = {}
        for positions in groups.values():
            encoded = backbone(concat_inputs([views[position] for position in positions])).chunk(len(positions))
            features.update(zip(positions, encoded))
        return list(projector(torch.cat([features[position] for position in range(len(views))])).chunk(len(views)))

    def objective(self, projections: list[Tensor], views: Sequence[ModelInput]) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss (and named parts to log) from the online projections of each view."""
        raise NotImplementedError

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        views = batch.get("views")
        if not views or len(views) < self.num_views:
            raise ValueError(
                f"{type(self).__name__} needs batch['views'] with {self.num_views} views; the datamodule gave "
                f"{0 if not views else len(views)} (leave its num_views unset so the method can ask for them)."
            )
        sizes = sorted({view_size(view) for view in views}, reverse=True)
        if len(sizes) > 1 and not self.multi_crop:
            raise ValueError(
                f"{type(self).__name__} does not define multi-crop: its objective compares two views of one size, but "
                f"the datamodule gave views of sizes {sizes} (set the datamodule's local_views=0; LeJEPA takes "
                "multi-crop views)."
            )
        if len(sizes) > 1 and len(views) != self.num_views:
            raise ValueError(
                f"{type(self).__name__} takes num_views={self.num_views} views but the datamodule gave {len(views)} "
                f"multi-crop views: leave the datamodule's num_views unset so no crop is dropped."
            )
        views = views[: self.num_views]
        loss, parts = self.objective(self.each_view(self.network, views), views)
        batch_size = input_batch_size(views[0])
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=batch_size)
        self.log_dict({f"train/{name}": value for name, value in parts.items()}, on_step=True, batch_size=batch_size)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor]:
        """Logs the per-dimension spread of the embeddings (near 0 means collapse) and returns the embeddings for
        the diagnostic callbacks."""
        embeddings = self.embed(model_input(batch)).float().flatten(1)
        std = embeddings.std(dim=0).mean()
        self.log("val/embedding_std", std, batch_size=embeddings.shape[0], sync_dist=True)
        return {"embedding": embeddings}

    def after_optimizer_step(self, step: int) -> None:
        if self.teacher is not None:
            momentum = self.teacher.momentum_at(step, self.total_steps)
            self.teacher.update(self.network, momentum)
            self.log("train/ema_momentum", momentum, on_step=True, on_epoch=False)

    @torch.no_grad()
    def teacher_projections(self, views: Sequence[ModelInput]) -> list[Tensor]:
        """Projections of every view by the EMA teacher (no gradient)."""
        if self.teacher is None:
            raise RuntimeError(f"{type(self).__name__} has no EMA teacher (ema_momentum=None)")
        return self.each_view(self.teacher, views)

    @torch.no_grad()
    def embed(self, x: ModelInput) -> Tensor:
        """The online backbone's pooled representation ``(B, D)`` (a :class:`~jepa_lightning.nn.TimmBackbone`'s
        ``readout``)."""
        return backbone_embedding(self.backbone, x)

    @torch.no_grad()
    def embed_tokens(self, x: ModelInput) -> tuple[Tensor, Tensor | None]:
        """A :class:`~jepa_lightning.nn.PooledTokenBackbone`'s encoded tokens before pooling, and their validity;
        other backbones' pooled representation as a single token."""
        if isinstance(self.backbone, PooledTokenBackbone):
            encoded, tokens = self.backbone.tokens.encode(x)
            return encoded, tokens.valid
        return super().embed_tokens(x)

    def export_network(self, network: ExportedNetwork | None = None) -> nn.Module:
        """The online backbone (``"student"``, default: what :meth:`embed` reads) or the EMA teacher's
        (``"target"``, methods with ``ema_momentum``), as :func:`~jepa_lightning.nn.backbones.exported_backbone`
        writes it."""
        network = self.resolve_network(network)
        if network == "target" and self.teacher is None:
            raise ValueError(f"{type(self).__name__} has no EMA teacher (ema_momentum=None): export the student")
        return exported_backbone(self.teacher.module[0] if network == "target" else self.backbone)
