"""The generic JEPA LightningModule and its presets."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Literal

import torch
from torch import Tensor, nn

from jepa_lightning.losses.joint_embedding import sigreg, vicreg_covariance, vicreg_variance
from jepa_lightning.losses.latent import RegressionLoss, TargetNorm, latent_regression, normalize_targets
from jepa_lightning.masks.base import MaskSampler, mask_generator
from jepa_lightning.masks.multiblock import MultiBlockMaskSampler
from jepa_lightning.masks.spans import ContiguousSpanMaskSampler
from jepa_lightning.methods.base import SSLMethod
from jepa_lightning.nn.backbones import TokenBackbone
from jepa_lightning.nn.ema import EMATeacher
from jepa_lightning.nn.encoder import TransformerEncoder
from jepa_lightning.nn.functional import gather_mask_major
from jepa_lightning.nn.predictor import JEPAPredictor
from jepa_lightning.tokenizers.base import InputSpec, TokenizerFactory
from jepa_lightning.tokenizers.images import PatchTokenizer2d
from jepa_lightning.tokenizers.point_clouds import PointPatchTokenizer

#: Builds a predictor for the encoder width (first constructor argument ``embed_dim``).
PredictorFactory = Callable[[int], nn.Module]

#: Default weight of each anti-collapse regularizer (LeJEPA's lambda; VICReg's variance weight relative to its
#: invariance weight).
DEFAULT_REGULARIZER_WEIGHT = {"none": 0.0, "sigreg": 0.05, "vicreg": 1.0}
#: VICReg's covariance weight relative to its variance weight (1 / 25).
VICREG_COVARIANCE_RATIO = 0.04

#: Random-stream ids, so training and validation masks never coincide.
TRAIN_STREAM, VAL_STREAM = 0, 1


class JEPA(SSLMethod):
    """Joint-Embedding Predictive Architecture, modality-agnostic.

    The student (tokenizer + encoder) sees only the context tokens chosen by ``mask_sampler``; the
    predictor predicts the representations of the target tokens; the targets, computed on every token and
    normalised by ``target_norm``, are regressed with ``loss``. Every part is a constructor argument, so a
    LightningCLI config can swap it. Defaults follow I-JEPA.

    Against collapse: ``target_encoder="ema"`` (default) computes targets with an EMA teacher;
    ``target_encoder="student"`` uses the student itself under stop-gradient (no teacher, shared weights) and
    then needs a ``regularizer`` on the student's pooled context representations (B, D): ``"sigreg"`` (LeJEPA's
    SIGReg, the variant its authors ask for; weight 0.05 by default) or ``"vicreg"`` (variance + 0.04 x
    covariance, VICReg's 25 : 1 ratio, as in VJ-VCR; weight 1 by default). A regularizer can also be added on
    top of the EMA teacher.

    Masks are drawn on the host from a generator seeded by ``(mask_seed, optimizer step, micro-batch, rank)``: a
    resumed run draws the same masks, ranks draw different ones, and sampling never waits for an accelerator.
    """

    def __init__(
        self,
        tokenizer: TokenizerFactory,
        encoder: TransformerEncoder,
        predictor: PredictorFactory,
        mask_sampler: MaskSampler | None = None,
        target_norm: TargetNorm = "layer_norm",
        loss: RegressionLoss = "smooth_l1",
        loss_beta: float = 1.0,
        ema_momentum: float = 0.996,
        final_ema_momentum: float = 1.0,
        ema_horizon: float = 1.0,
        target_encoder: Literal["ema", "student"] = "ema",
        regularizer: Literal["none", "sigreg", "vicreg"] = "none",
        regularizer_weight: float | None = None,
        num_slices: int = 256,
        mask_seed: int = 0,
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        """``kwargs`` are the optimiser settings of :class:`SSLMethod` (``lr``, ``weight_decay``, ...)."""
        super().__init__(input_spec=input_spec, **kwargs)
        if input_spec is None:
            raise ValueError(
                f"{type(self).__name__} needs input_spec (what the data looks like): the CLI links it from the "
                "datamodule; in Python pass input_spec=datamodule.input_spec."
            )
        if target_encoder not in ("ema", "student"):
            raise ValueError(f"target_encoder must be 'ema' or 'student', got {target_encoder!r}")
        if regularizer not in DEFAULT_REGULARIZER_WEIGHT:
            raise ValueError(f"regularizer must be one of {sorted(DEFAULT_REGULARIZER_WEIGHT)}, got {regularizer!r}")
        if target_encoder == "student" and regularizer == "none":
            raise ValueError(
                "target_encoder='student' (no teacher) collapses without a regularizer: set regularizer='sigreg' "
                "or 'vicreg'"
            )
        self.save_hyperparameters(ignore=["encoder", "tokenizer", "predictor", "mask_sampler"])
        self.student = TokenBackbone(tokenizer(input_spec, encoder.embed_dim), encoder)
        self.predictor = predictor(encoder.embed_dim)
        self.teacher = (
            EMATeacher(self.student, ema_momentum, final_ema_momentum, ema_horizon) if target_encoder == "ema" else None
        )
        self.regularizer = regularizer
        self.regularizer_weight = (
            DEFAULT_REGULARIZER_WEIGHT[regularizer] if regularizer_weight is None else regularizer_weight
        )
        self.num_slices = num_slices
        self.mask_sampler = mask_sampler or MultiBlockMaskSampler()
        self.target_norm = target_norm
        self.loss_kind = loss
        self.loss_beta = loss_beta
        self.mask_seed = mask_seed

    # -- the objective ------------------------------------------------------------------------------------
    def masked_prediction(self, x: Tensor, generator: torch.Generator) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss of predicting target representations of masked tokens from the context, plus diagnostics."""
        tokens = self.student.tokenizer(x)
        context_idx, target_idx = self.mask_sampler(
            tokens.layout, x.shape[0], generator, x.device, progress=self.progress
        )
        context = self.student.encoder(tokens, keep=context_idx)
        prediction = self.predictor(context, tokens.layout, context_idx, target_idx)
        with torch.no_grad():
            target = normalize_targets(self.target_network(x), self.target_norm)
            target = gather_mask_major(target, target_idx)
        loss = latent_regression(prediction, target, self.loss_kind, self.loss_beta)
        stats = {
            "prediction_std": prediction.detach().float().std(dim=(0, 1)).mean(),
            "target_std": target.float().std(dim=(0, 1)).mean(),
        }
        if self.regularizer != "none":
            penalty = self.regularization(context.mean(dim=1))
            stats["regularizer"] = penalty.detach()
            loss = loss + self.regularizer_weight * penalty
        return loss, stats

    @property
    def target_network(self) -> nn.Module:
        """Where targets (and embeddings) come from: the EMA teacher, or the student itself."""
        return self.teacher if self.teacher is not None else self.student

    def regularization(self, embeddings: Tensor) -> Tensor:
        """Anti-collapse penalty on pooled representations ``(B, D)``; the SIGReg directions follow the step."""
        if self.regularizer == "sigreg":
            return sigreg(embeddings, self.num_slices, seed=self.global_step)
        return vicreg_variance(embeddings) + VICREG_COVARIANCE_RATIO * vicreg_covariance(embeddings)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        accumulation = max(self.trainer.accumulate_grad_batches, 1)
        micro_batch = self.trainer.global_step * accumulation + batch_idx % accumulation
        x = batch["x"]
        generator = mask_generator(self.mask_seed, micro_batch, self.global_rank, "cpu", TRAIN_STREAM)
        loss, stats = self.masked_prediction(x, generator)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=x.shape[0])
        self.log_dict({f"train/{k}": v for k, v in stats.items()}, on_step=True, batch_size=x.shape[0])
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        x = batch["x"]
        generator = mask_generator(self.mask_seed, batch_idx, self.global_rank, "cpu", VAL_STREAM)
        loss, _ = self.masked_prediction(x, generator)
        self.log("val/loss", loss, prog_bar=True, batch_size=x.shape[0], sync_dist=True)
        return loss

    def after_optimizer_step(self, step: int) -> None:
        if self.teacher is None:
            return
        momentum = self.teacher.momentum_at(step, self.total_steps)
        self.teacher.update(self.student, momentum)
        self.log("train/ema_momentum", momentum, on_step=True, on_epoch=False)

    # -- embeddings ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def embed(self, x: Tensor) -> Tensor:
        """Average-pooled representation of all tokens by the target network (I-JEPA evaluates its EMA teacher)."""
        return self.target_network(x).mean(dim=1)


class IJEPA(JEPA):
    """I-JEPA (Assran et al., 2023): images as 2-D patch grids, multi-block masks, EMA target encoder.

    Paper defaults: ViT-B/16 encoder here (the paper's headline model is ViT-H/14; pass a larger
    ``encoder``), predictor 384 wide and 6 deep with the encoder's head count (unconfirmed for ViT-B),
    4 targets of scale 0.15-0.2 and aspect 0.75-1.5, context 0.85-1.0, smooth-L1 (beta 1; the paper writes
    L2, the official code uses smooth-L1) on layer-normed teacher outputs, EMA 0.996 -> 1, AdamW with the
    warmup + cosine schedule and weight decay rising 0.04 -> 0.4. Augmentation (random resized crop,
    scale 0.3-1) is the datamodule's default. Small images: see ``examples/configs/ijepa_digits.yaml``.
    """

    def __init__(
        self,
        encoder: TransformerEncoder | None = None,
        patch_size: int = 16,
        predictor_dim: int = 384,
        predictor_depth: int = 6,
        predictor_heads: int | None = None,
        mask_sampler: MaskSampler | None = None,
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        encoder = encoder or TransformerEncoder.from_size("base")
        super().__init__(
            tokenizer=partial(PatchTokenizer2d, patch_size=patch_size),
            encoder=encoder,
            predictor=partial(
                JEPAPredictor,
                predictor_dim=predictor_dim,
                depth=predictor_depth,
                num_heads=predictor_heads or encoder.num_heads,
            ),
            mask_sampler=mask_sampler,
            input_spec=input_spec,
            **kwargs,
        )


class PointJEPA(JEPA):
    """Point-JEPA (Saito et al.): point clouds as sequences of point groups, span masks, EMA teacher.

    Paper defaults: 1,024 points -> 64 farthest-point centres with kNN groups of 32, a mini-PointNet token per
    group, learned positions of the centres added at every encoder layer, the greedy nearest-neighbour
    sequencer; encoder 384 wide, 12 layers, 6 heads; predictor 192 wide, 6 layers, positions learned from the
    centres; 4 target spans of ratio U(0.15, 0.2) in sequence order and a contiguous context run of ratio
    U(0.4, 0.75) of the remaining tokens; smooth-L1 (beta 2) on layer-normed teacher outputs; EMA 0.9995 ->
    0.99999. Deviation: farthest-point sampling starts deterministically (see
    :class:`~jepa_lightning.tokenizers.PointPatchTokenizer`), so student and teacher form identical groups.
    A custom ``encoder`` should keep ``positions_every_layer=True``.
    """

    def __init__(
        self,
        encoder: TransformerEncoder | None = None,
        num_groups: int = 64,
        group_size: int = 32,
        predictor_dim: int = 192,
        predictor_depth: int = 6,
        predictor_heads: int | None = None,
        mask_sampler: MaskSampler | None = None,
        loss_beta: float = 2.0,
        ema_momentum: float = 0.9995,
        final_ema_momentum: float = 0.99999,
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        encoder = encoder or TransformerEncoder(embed_dim=384, depth=12, num_heads=6, positions_every_layer=True)
        super().__init__(
            tokenizer=partial(PointPatchTokenizer, num_groups=num_groups, group_size=group_size),
            encoder=encoder,
            predictor=partial(
                JEPAPredictor,
                predictor_dim=predictor_dim,
                depth=predictor_depth,
                num_heads=predictor_heads or encoder.num_heads,
                positions="mlp",
                coord_dim=3,
            ),
            mask_sampler=mask_sampler or ContiguousSpanMaskSampler(),
            loss_beta=loss_beta,
            ema_momentum=ema_momentum,
            final_ema_momentum=final_ema_momentum,
            input_spec=input_spec,
            **kwargs,
        )
