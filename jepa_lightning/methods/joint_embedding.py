"""Joint-embedding methods on one base: backbone -> projector per view -> objective on the projections."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from jepa_lightning.inputs import InputSpec, ModelInput, concat_inputs, input_batch_size, model_input
from jepa_lightning.losses.joint_embedding import (
    barlow_twins,
    byol_loss,
    lejepa_loss,
    nt_xent,
    tico,
    vicreg,
)
from jepa_lightning.methods.base import SSLMethod
from jepa_lightning.nn.backbones import TimmBackbone
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


class JointEmbedding(SSLMethod):
    """Base of the joint-embedding methods: every view goes through ``backbone`` and ``projector``.

    All views are encoded in one forward pass (concatenated along the batch), then split; subclasses define
    :meth:`objective` on the list of projections. ``ema_momentum`` adds an EMA teacher of backbone + projector
    (BYOL's target network, TiCo's momentum branch), moved once per optimizer step. ``embed`` is the online
    backbone's pooled representation. Optimiser defaults: AdamW, lr 1e-3 with 10% linear warmup from 0 and a
    cosine to 1e-6, weight decay 1e-5 (the papers use LARS / SGD at ImageNet scale).
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
        if input_spec is None:
            raise ValueError(
                f"{type(self).__name__} needs input_spec (what the data looks like): the CLI links it from the "
                "datamodule; in Python pass input_spec=datamodule.input_spec."
            )
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

    @property
    def backbone(self) -> nn.Module:
        return self.network[0]

    @property
    def projector(self) -> nn.Module:
        return self.network[1]

    @staticmethod
    def each_view(network: nn.Module, views: Sequence[ModelInput]) -> list[Tensor]:
        """``network`` applied to every view in one batched pass, split back per view."""
        return list(network(concat_inputs(views)).chunk(len(views)))

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
        views = views[: self.num_views]
        loss, parts = self.objective(self.each_view(self.network, views), views)
        batch_size = input_batch_size(views[0])
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=batch_size)
        self.log_dict({f"train/{name}": value for name, value in parts.items()}, on_step=True, batch_size=batch_size)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Per-dimension spread of the embeddings: near 0 means collapse."""
        embeddings = self.embed(model_input(batch))
        std = embeddings.float().std(dim=0).mean()
        self.log("val/embedding_std", std, batch_size=embeddings.shape[0], sync_dist=True)

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
        """The online backbone's pooled representation ``(B, D)``."""
        return self.backbone(x)


class SimCLR(JointEmbedding):
    """SimCLR (Chen et al., 2020): NT-Xent over the global batch of both views.

    Defaults: projector 2048 -> 128 with BatchNorm (SimCLR v2 style), temperature 0.1, ResNet-18. Deviation:
    AdamW instead of LARS.
    """

    def __init__(self, temperature: float = 0.1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.temperature = temperature

    def objective(self, projections: list[Tensor], views: Sequence[ModelInput]) -> tuple[Tensor, dict[str, Tensor]]:
        return nt_xent(projections[0], projections[1], self.temperature), {}


class BarlowTwins(JointEmbedding):
    """Barlow Twins (Zbontar et al., 2021): drive the cross-correlation of the two views to the identity.

    Defaults: projector 3 x 8192 (BatchNorm + ReLU between), off-diagonal weight 0.0051. Deviation: AdamW
    instead of LARS; use smaller projectors for small data (see the digits config).
    """

    def __init__(
        self, lambda_offdiag: float = 0.0051, projector_dims: Sequence[int] = (8192, 8192, 8192), **kwargs: Any
    ) -> None:
        super().__init__(projector_dims=projector_dims, **kwargs)
        self.lambda_offdiag = lambda_offdiag

    def objective(self, projections: list[Tensor], views: Sequence[ModelInput]) -> tuple[Tensor, dict[str, Tensor]]:
        return barlow_twins(projections[0], projections[1], self.lambda_offdiag), {}


class VICReg(JointEmbedding):
    """VICReg (Bardes et al., 2022): invariance + variance + covariance, weights 25 / 25 / 1.

    Defaults: projector 3 x 8192. Deviation: AdamW instead of LARS.
    """

    def __init__(
        self,
        sim_weight: float = 25.0,
        var_weight: float = 25.0,
        cov_weight: float = 1.0,
        projector_dims: Sequence[int] = (8192, 8192, 8192),
        **kwargs: Any,
    ) -> None:
        super().__init__(projector_dims=projector_dims, **kwargs)
        self.weights = {"sim_weight": sim_weight, "var_weight": var_weight, "cov_weight": cov_weight}

    def objective(self, projections: list[Tensor], views: Sequence[ModelInput]) -> tuple[Tensor, dict[str, Tensor]]:
        parts = vicreg(projections[0], projections[1], **self.weights)
        return parts.loss, {"invariance": parts.invariance, "variance": parts.variance, "covariance": parts.covariance}


class BYOL(JointEmbedding):
    """BYOL (Grill et al., 2020): an online predictor regresses the EMA target network's projection of the
    other view; ``2 - 2 cos``, symmetrised. Defaults: projector 4096 -> 256, predictor 4096 -> (projector
    output), EMA 0.996 -> 1 on a cosine. Deviation: AdamW instead of LARS.
    """

    def __init__(
        self,
        predictor_hidden_dims: Sequence[int] = (4096,),
        projector_dims: Sequence[int] = (4096, 256),
        ema_momentum: float = 0.996,
        ema_schedule: Literal["linear", "cosine"] = "cosine",
        **kwargs: Any,
    ) -> None:
        super().__init__(projector_dims=projector_dims, ema_momentum=ema_momentum, ema_schedule=ema_schedule, **kwargs)
        self.predictor = projection_mlp(projector_dims[-1], [*predictor_hidden_dims, projector_dims[-1]])

    def objective(self, projections: list[Tensor], views: Sequence[ModelInput]) -> tuple[Tensor, dict[str, Tensor]]:
        predictions = [self.predictor(z) for z in projections]
        targets = self.teacher_projections(views)
        loss = byol_loss(predictions[0], targets[1]) + byol_loss(predictions[1], targets[0])
        return loss, {}


class TiCo(JointEmbedding):
    """TiCo (Zhu et al., 2022): transformation invariance + a running-covariance contrast term.

    ``z_a`` is the online projection of one view, ``z_b`` the momentum branch's projection of the other;
    the covariance ``C`` is a detached running state (``beta`` 0.9), saved in the checkpoint. Defaults:
    rho 8, projector 4096 -> 256, momentum branch 0.99 -> 1 (unconfirmed). Deviation: AdamW.
    """

    def __init__(
        self,
        beta: float = 0.9,
        rho: float = 8.0,
        projector_dims: Sequence[int] = (4096, 256),
        ema_momentum: float = 0.99,
        **kwargs: Any,
    ) -> None:
        super().__init__(projector_dims=projector_dims, ema_momentum=ema_momentum, **kwargs)
        self.beta = beta
        self.rho = rho
        self.register_buffer("covariance", torch.zeros(projector_dims[-1], projector_dims[-1]))

    def objective(self, projections: list[Tensor], views: Sequence[ModelInput]) -> tuple[Tensor, dict[str, Tensor]]:
        targets = self.teacher_projections(views)
        loss, covariance = tico(projections[0], targets[1], self.covariance, beta=self.beta, rho=self.rho)
        self.covariance.copy_(covariance)
        return loss, {}


class LeJEPA(JointEmbedding):
    """LeJEPA (Balestriero & LeCun, 2025): SIGReg pushes projections towards an isotropic Gaussian, plus view
    invariance to the mean projection; no teacher, no stop-gradient. ``lambda_`` 0.05, ``num_slices`` random
    directions per step, identical on every rank (seeded by the optimizer step). Projections are not
    L2-normalised. Default projector 2048 -> 2048 -> 128 with BatchNorm (unconfirmed widths).
    """

    def __init__(
        self,
        lambda_: float = 0.05,
        num_slices: int = 256,
        projector_dims: Sequence[int] = (2048, 2048, 128),
        **kwargs: Any,
    ) -> None:
        super().__init__(projector_dims=projector_dims, **kwargs)
        self.lambda_ = lambda_
        self.num_slices = num_slices

    def objective(self, projections: list[Tensor], views: Sequence[ModelInput]) -> tuple[Tensor, dict[str, Tensor]]:
        seed = self.trainer.global_step if self._trainer is not None else 0
        parts = lejepa_loss(projections, self.lambda_, num_slices=self.num_slices, seed=seed)
        return parts.loss, {"invariance": parts.invariance, "sigreg": parts.sigreg}
