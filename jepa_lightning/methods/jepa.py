"""The generic JEPA LightningModule and its presets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import torch
from torch import Tensor, nn

from jepa_lightning.inputs import InputSpec, ModelInput, input_batch_size, model_input
from jepa_lightning.losses.joint_embedding import sigreg, vicreg_covariance, vicreg_token_terms, vicreg_variance
from jepa_lightning.losses.latent import RegressionLoss, TargetNorm, latent_regression, normalize_targets
from jepa_lightning.masks.base import MaskSampler, mask_generator
from jepa_lightning.masks.features import FeatureSubsetMaskSampler
from jepa_lightning.masks.multiblock import BlockUnionMaskSampler, MultiBlockMaskSampler
from jepa_lightning.masks.series import (
    ForecastMaskSampler,
    RandomPatchMaskSampler,
    SharedTimeSpanMaskSampler,
    TimeBlockMaskSampler,
    TubeMaskSampler,
)
from jepa_lightning.masks.spans import ContiguousSpanMaskSampler
from jepa_lightning.masks.time_frequency import (
    CurriculumMaskSampler,
    FrequencyBandMaskSampler,
    RandomChoiceMaskSampler,
    TimeSpanMaskSampler,
)
from jepa_lightning.methods.base import SSLMethod
from jepa_lightning.nn.backbones import TokenBackbone
from jepa_lightning.nn.ema import EMATeacher
from jepa_lightning.nn.encoder import AttentionRule, TransformerEncoder
from jepa_lightning.nn.functional import gather_mask_major, pool_rows
from jepa_lightning.nn.predictor import JEPAPredictor
from jepa_lightning.tokenizers.audio import LogMelPatchTokenizer
from jepa_lightning.tokenizers.images import PatchTokenizer2d
from jepa_lightning.tokenizers.point_clouds import PointPatchTokenizer
from jepa_lightning.tokenizers.tabular import FeatureTokenizer
from jepa_lightning.tokenizers.time_series import ChannelPatchTokenizer
from jepa_lightning.tokens import TokenizerFactory

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
    top of the EMA teacher. ``regularizer_input="tokens"`` applies VICReg to every context token instead of the
    per-sample mean, for probes that read more than the mean (frequency rows, flattened tokens).

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
        regularizer_input: Literal["pooled", "tokens"] = "pooled",
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
        if regularizer_input not in ("pooled", "tokens"):
            raise ValueError(f"regularizer_input must be 'pooled' or 'tokens', got {regularizer_input!r}")
        if regularizer_input == "tokens" and regularizer != "vicreg":
            raise ValueError(
                f"regularizer_input='tokens' needs regularizer='vicreg', got {regularizer!r} (SIGReg's statistics "
                "need the same number of samples on every rank, and context lengths differ between ranks)"
            )
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
        self.regularizer_input = regularizer_input
        self.num_slices = num_slices
        self.mask_sampler = mask_sampler or MultiBlockMaskSampler()
        self.target_norm = target_norm
        self.loss_kind = loss
        self.loss_beta = loss_beta
        self.mask_seed = mask_seed

    # -- the objective ------------------------------------------------------------------------------------
    def masked_prediction(
        self, x: ModelInput, generator: torch.Generator, regularize: bool = True
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss of predicting target representations of masked tokens from the context, plus diagnostics.

        ``regularize=False`` leaves out the anti-collapse ``regularizer`` (validation: a batch statistic, undefined
        on a last batch of one sample, and not what ``val/loss`` should measure)."""
        tokens = self.student.tokenizer(x)
        context_idx, target_idx = self.mask_sampler(
            tokens.layout, input_batch_size(x), generator, tokens.features.device, progress=self.progress
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
        if regularize and self.regularizer != "none":
            penalty = self.regularization(context)
            stats["regularizer"] = penalty.detach()
            loss = loss + self.regularizer_weight * penalty
        return loss, stats

    @property
    def target_network(self) -> nn.Module:
        """Where targets (and embeddings) come from: the EMA teacher, or the student itself."""
        return self.teacher if self.teacher is not None else self.student

    def regularization(self, context: Tensor) -> Tensor:
        """Anti-collapse penalty on the student's context tokens ``(B, N, D)``: on their per-sample mean, or on every
        token (``regularizer_input``); the SIGReg directions follow the step."""
        if self.regularizer_input == "tokens":
            variance, covariance = vicreg_token_terms(context)
            return variance + VICREG_COVARIANCE_RATIO * covariance
        pooled = context.mean(dim=1)
        if self.regularizer == "sigreg":
            return sigreg(pooled, self.num_slices, seed=self.global_step)
        return vicreg_variance(pooled) + VICREG_COVARIANCE_RATIO * vicreg_covariance(pooled)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        accumulation = max(self.trainer.accumulate_grad_batches, 1)
        micro_batch = self.trainer.global_step * accumulation + batch_idx % accumulation
        x = model_input(batch)
        generator = mask_generator(self.mask_seed, micro_batch, self.global_rank, "cpu", TRAIN_STREAM)
        loss, stats = self.masked_prediction(x, generator)
        batch_size = input_batch_size(x)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=batch_size)
        self.log_dict({f"train/{k}": v for k, v in stats.items()}, on_step=True, batch_size=batch_size)
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        x = model_input(batch)
        generator = mask_generator(self.mask_seed, batch_idx, self.global_rank, "cpu", VAL_STREAM)
        loss, _ = self.masked_prediction(x, generator, regularize=False)
        self.log("val/loss", loss, prog_bar=True, batch_size=input_batch_size(x), sync_dist=True)
        return loss

    def after_optimizer_step(self, step: int) -> None:
        if self.teacher is None:
            return
        momentum = self.teacher.momentum_at(step, self.total_steps)
        self.teacher.update(self.student, momentum)
        self.log("train/ema_momentum", momentum, on_step=True, on_epoch=False)

    # -- embeddings ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def embed(self, x: ModelInput) -> Tensor:
        """Average-pooled representation of all tokens by the target network (I-JEPA evaluates its EMA teacher)."""
        return self.target_network(x).mean(dim=1)


class IJEPA(JEPA):
    """I-JEPA (Assran et al., 2023): images as 2-D patch grids, multi-block masks, EMA target encoder.

    Paper defaults: ViT-B/16 encoder here (the paper's headline model is ViT-H/14; pass a larger
    ``encoder``), predictor 384 wide and 6 deep with the encoder's head count (unconfirmed for ViT-B),
    4 targets of scale 0.15-0.2 and aspect 0.75-1.5, context 0.85-1.0, smooth-L1 (beta 1; the paper writes
    L2, the official code uses smooth-L1) on layer-normed teacher outputs, EMA 0.996 -> 1, AdamW with the
    warmup + cosine schedule and weight decay rising 0.04 -> 0.4. Augmentation (random resized crop,
    scale 0.3-1) is the datamodule's default. Patch embedding and predictor are initialised like the encoder (its
    ``init``: the paper's trunc-normal by default; small models train better with ``init="xavier"``, see
    :data:`~jepa_lightning.nn.init.WeightInit`). Small images: see ``examples/configs/ijepa_digits.yaml``.
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
            tokenizer=partial(PatchTokenizer2d, patch_size=patch_size, init=encoder.init),
            encoder=encoder,
            predictor=partial(
                JEPAPredictor,
                predictor_dim=predictor_dim,
                depth=predictor_depth,
                num_heads=predictor_heads or encoder.num_heads,
                init=encoder.init,
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


@dataclass(frozen=True)
class ECGRecipe:
    """One published ECG-JEPA recipe: what :class:`ECGJEPA` uses for every argument left at None."""

    patch_length: int
    channel_independent: bool
    encoder_size: tuple[int, int, int]  # width, depth, heads
    predictor_size: tuple[int, int, int]
    attention: AttentionRule
    predictor_attention: AttentionRule
    positions_every_layer: bool
    drop_path_rate: float
    mask_sampler: Callable[[], MaskSampler]
    target_norm: TargetNorm
    loss: RegressionLoss
    ema_momentum: float
    final_ema_momentum: float
    lr: float
    warmup_start_lr: float
    warmup_fraction: float
    weight_decay: float
    final_weight_decay: float
    betas: tuple[float, float]


#: METHODS.md "ECG-JEPA": Kim et al. (official code sehunfromdaegu/ECG_JEPA) and Weimann & Conrad (kweimann/ECG-JEPA,
#: config ViTS_all).
ECG_JEPA_RECIPES: dict[str, ECGRecipe] = {
    "kim": ECGRecipe(
        patch_length=50,
        channel_independent=True,
        encoder_size=(768, 12, 16),
        predictor_size=(384, 6, 12),
        attention="cross_pattern",
        predictor_attention="same_channel",
        positions_every_layer=True,
        drop_path_rate=0.1,
        mask_sampler=SharedTimeSpanMaskSampler,
        target_norm="layer_norm",
        loss="smooth_l1",
        ema_momentum=0.996,
        final_ema_momentum=1.0,
        lr=5e-5,
        warmup_start_lr=1e-6,
        warmup_fraction=0.05,
        weight_decay=0.05,
        final_weight_decay=0.05,
        betas=(0.9, 0.999),
    ),
    "weimann": ECGRecipe(
        patch_length=25,
        channel_independent=False,
        encoder_size=(384, 8, 6),
        predictor_size=(192, 8, 6),
        attention="full",
        predictor_attention="full",
        positions_every_layer=False,
        drop_path_rate=0.0,
        mask_sampler=TimeBlockMaskSampler,
        target_norm="none",
        loss="l1",
        ema_momentum=0.998,
        final_ema_momentum=0.9995,
        lr=1e-3,
        warmup_start_lr=0.0,
        warmup_fraction=0.1,
        weight_decay=0.01,
        final_weight_decay=0.1,
        betas=(0.9, 0.99),
    ),
}


class ECGJEPA(JEPA):
    """ECG-JEPA, both published variants (METHODS.md); ``x`` is ``(B, leads, T)`` from the ECG datamodule.

    - ``variant="kim"`` (Kim et al., 2024): 8 leads (I, II, V1-V6), 10 s at 250 Hz; per-lead patches of 50 samples
      (a ``(lead, time)`` grid of 8 x 50 tokens) with 2-D sin-cos positions added before every block, as the
      official code does; cross-pattern attention (a token attends to tokens of its own lead or its own time step)
      in the student (on its context tokens) and the teacher; 4 time spans of ``U(0.175, 0.225)`` of the patches,
      shared by all leads, as targets; the predictor works lead by lead (``same_channel`` attention: a lead's
      context predicts that lead's targets, the official predictor's reshape to ``(B * leads, P, D)``);
      smooth-L1 on layer-normed teacher outputs; EMA 0.996 -> 1; encoder 768 wide, 12 layers, 16 heads, drop-path
      0.1; predictor 384 wide, 6 layers, 12 heads; AdamW lr 5e-5 (warmup from 1e-6 over 5% of the run, cosine
      to 1e-6), weight decay 0.05 constant.
    - ``variant="weimann"`` (Weimann & Conrad, 2024): 12 leads, 10 s at 500 Hz; one token per 25 samples of all
      leads (``Linear(leads * 25, D)``, the same map as their ``Conv1d``) -> 200 tokens, 1-D sin-cos positions;
      context = ``ceil(k * P)`` patches, ``k ~ U(0.15, 0.25)``, the rest masked as blocks of at least 10 patches
      (:class:`~jepa_lightning.masks.TimeBlockMaskSampler`), one target group; L1 loss on the teacher's output
      (which ends in its final norm; no extra target norm); EMA 0.998 -> 0.9995; ViT-S encoder 384 wide, 8 layers,
      6 heads; predictor 192 wide, 8 layers, 6 heads; AdamW lr 1e-3 (warmup 10% from 0, cosine to 1e-6), betas
      (0.9, 0.99), weight decay cosine 0.01 -> 0.1.

    Arguments left at None take the variant's value; set ``final_weight_decay`` equal to ``weight_decay`` for a
    constant weight decay. The leads, rate and window come from the datamodule (``leads``, ``sample_rate``,
    ``window_seconds``); the paper settings are e.g. ``ECGDataModule(leads=["I", "II", "V1", ..., "V6"],
    sample_rate=250, window_seconds=10)`` for Kim. With fewer leads (e.g. the bundled single-lead MIT-BIH record),
    both variants run unchanged: Kim's grid has one row and its attention rules then allow every pair (so
    attention runs unmasked), Weimann's patch map takes ``leads * 25`` inputs.

    Deviations: the timm ViT blocks have qkv and projection biases (both official codes have qkv_bias=False;
    Weimann's also no other biases and one register token, not used here); Kim's official code draws one mask per
    batch and predicts the union of the 4 spans in one group, here each sample draws its own spans and each span
    is a target group (4 groups, I-JEPA style); the Weimann block layout is drawn in a vectorised way (number of
    blocks uniform, lengths a random split) rather than by their sequential interval splitting, with the same
    guarantees (exact keep count, masked runs of >= 10 patches). The Kim predictor keeps the 2-D (lead, time)
    positions (the official one gives only the time position; the lead is fixed within its attention group).
    ``instance_norm`` (off) would z-score each window per lead in the tokenizer; the datamodule's ``normalize`` does
    the same on the data side. A custom ``encoder`` should use ``attention="cross_pattern"`` and
    ``positions_every_layer=True`` for the Kim recipe.
    """

    def __init__(
        self,
        variant: Literal["kim", "weimann"] = "kim",
        encoder: TransformerEncoder | None = None,
        patch_length: int | None = None,
        predictor_dim: int | None = None,
        predictor_depth: int | None = None,
        predictor_heads: int | None = None,
        mask_sampler: MaskSampler | None = None,
        instance_norm: bool = False,
        target_norm: TargetNorm | None = None,
        loss: RegressionLoss | None = None,
        ema_momentum: float | None = None,
        final_ema_momentum: float | None = None,
        lr: float | None = None,
        warmup_start_lr: float | None = None,
        warmup_fraction: float | None = None,
        weight_decay: float | None = None,
        final_weight_decay: float | None = None,
        betas: tuple[float, float] | None = None,
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        if variant not in ECG_JEPA_RECIPES:
            raise ValueError(f"variant must be one of {sorted(ECG_JEPA_RECIPES)}, got {variant!r}")
        recipe = ECG_JEPA_RECIPES[variant]
        width, depth, heads = recipe.encoder_size
        encoder = encoder or TransformerEncoder(
            width,
            depth,
            heads,
            drop_path_rate=recipe.drop_path_rate,
            positions_every_layer=recipe.positions_every_layer,
            attention=recipe.attention,
        )
        default_dim, default_depth, default_heads = recipe.predictor_size

        def chosen(value: Any, default: Any) -> Any:
            return default if value is None else value

        super().__init__(
            tokenizer=partial(
                ChannelPatchTokenizer,
                patch_length=chosen(patch_length, recipe.patch_length),
                channel_independent=recipe.channel_independent,
                instance_norm=instance_norm,
            ),
            encoder=encoder,
            predictor=partial(
                JEPAPredictor,
                predictor_dim=chosen(predictor_dim, default_dim),
                depth=chosen(predictor_depth, default_depth),
                num_heads=chosen(predictor_heads, default_heads),
                attention=recipe.predictor_attention,
            ),
            mask_sampler=mask_sampler or recipe.mask_sampler(),
            target_norm=chosen(target_norm, recipe.target_norm),
            loss=chosen(loss, recipe.loss),
            ema_momentum=chosen(ema_momentum, recipe.ema_momentum),
            final_ema_momentum=chosen(final_ema_momentum, recipe.final_ema_momentum),
            lr=chosen(lr, recipe.lr),
            warmup_start_lr=chosen(warmup_start_lr, recipe.warmup_start_lr),
            warmup_fraction=chosen(warmup_fraction, recipe.warmup_fraction),
            weight_decay=chosen(weight_decay, recipe.weight_decay),
            final_weight_decay=chosen(final_weight_decay, recipe.final_weight_decay),
            betas=chosen(betas, recipe.betas),
            input_spec=input_spec,
            **kwargs,
        )
        self.variant = variant


class TJEPA(JEPA):
    """T-JEPA (Thimonier et al., 2024): tables as sets of feature tokens, feature-subset masks, EMA teacher.

    Paper defaults (METHODS.md): feature tokenizer (numeric ``x_i * W_i + b_i``, categorical embedding + bias, a
    learned feature-index embedding) with ``num_register_tokens`` learnable regularisation tokens prepended
    (:class:`~jepa_lightning.tokenizers.FeatureTokenizer`); per batch context and target sizes
    ``round(F * U(0.2, 0.4))``, per sample a shuffled split into a context and 4 target groups drawn from the other
    features (:class:`~jepa_lightning.masks.FeatureSubsetMaskSampler`; regularisation tokens always in the context,
    never targets); MSE on the teacher's output without a target norm (the encoder ends in its LayerNorm); EMA 0.996
    -> 1; encoder 64 wide, 4 layers, 8 heads; predictor 64 wide, 2 layers. Input: the tabular datamodule's rows
    (``batch["x"]`` numeric with NaN for missing, ``batch["x_cat"]`` codes).

    Predictor positions: :class:`~jepa_lightning.nn.JEPAPredictor` gives each context token and each target query
    the fixed 1-D sin-cos embedding of its layout coordinate (the feature index; ``-R .. -1`` for the regularisation
    tokens), so every feature has a distinct, fixed position code in the predictor; the encoder uses the tokenizer's
    learned feature-index embedding. Deviations: the optimiser is the base I-JEPA schedule (AdamW, warmup + cosine,
    weight decay 0.04 -> 0.4; METHODS.md gives no T-JEPA values). ``embed`` flattens the teacher's tokens, as the
    official linear probe does.

    On small tables the paper recipe loses rank as it trains (UCI Letter: the flattened tokens' effective rank falls
    from 14 to 8 in 10 epochs and the probe ends below the random encoder); ``regularizer="vicreg"`` keeps it (the
    example configs use it: Letter's probe gains 4 points over the random encoder instead of losing half of one).
    """

    def __init__(
        self,
        encoder: TransformerEncoder | None = None,
        num_register_tokens: int = 1,
        predictor_dim: int = 64,
        predictor_depth: int = 2,
        predictor_heads: int | None = None,
        mask_sampler: MaskSampler | None = None,
        target_norm: TargetNorm = "none",
        loss: RegressionLoss = "mse",
        ema_momentum: float = 0.996,
        final_ema_momentum: float = 1.0,
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        encoder = encoder or TransformerEncoder(embed_dim=64, depth=4, num_heads=8)
        super().__init__(
            tokenizer=partial(FeatureTokenizer, num_register_tokens=num_register_tokens),
            encoder=encoder,
            predictor=partial(
                JEPAPredictor,
                predictor_dim=predictor_dim,
                depth=predictor_depth,
                num_heads=predictor_heads or encoder.num_heads,
            ),
            mask_sampler=mask_sampler or FeatureSubsetMaskSampler(),
            target_norm=target_norm,
            loss=loss,
            ema_momentum=ema_momentum,
            final_ema_momentum=final_ema_momentum,
            input_spec=input_spec,
            **kwargs,
        )

    @torch.no_grad()
    def embed(self, x: ModelInput) -> Tensor:
        """The teacher's tokens (regularisation tokens, then features) flattened to ``(B, (R + F) * D)``: T-JEPA's
        probing protocol (its linear probe reads the flattened representation, not a pooled one)."""
        return self.target_network(x).flatten(1)


#: What :meth:`AJEPA.embed` returns: every token averaged, or time-averaged frequency rows concatenated.
A_JEPA_READOUTS = ("mean", "frequency")


class AJEPA(JEPA):
    """A-JEPA (Fei et al., 2023): audio as a (frequency, time) grid of log-mel patches, I-JEPA machinery, L2 loss,
    curriculum masking (METHODS.md; unconfirmed, no official code).

    Paper defaults: 128 mel bins and 16 x 16 patches (:class:`~jepa_lightning.tokenizers.LogMelPatchTokenizer`;
    10 s at 16 kHz with a 10 ms hop gives an 8 x 62 grid), a ViT-B encoder, an I-JEPA predictor (384 wide, 6 deep,
    positioned mask tokens), an EMA teacher (0.996 -> 1) on the whole spectrogram whose layer-normed outputs are
    regressed with MSE, and curriculum masking: :class:`~jepa_lightning.masks.CurriculumMaskSampler` from I-JEPA
    multi-block masks early in training to time-frequency-aware masks late (per batch, time spans or frequency
    bands: :class:`~jepa_lightning.masks.TimeSpanMaskSampler`, :class:`~jepa_lightning.masks.FrequencyBandMaskSampler`),
    the share of the late masks rising linearly from ``curriculum_start`` to ``curriculum_end`` (fractions of the
    run). The optimiser is the base I-JEPA schedule. The waveform comes from the audio datamodule
    (``x`` ``(B, 1, T)`` at its ``sample_rate``; the paper's is ``AudioDataModule(sample_rate=16000,
    clip_seconds=10)``).

    Deviations: the front end is torchaudio's mel spectrogram (``n_fft`` 1024, Hann window of ``n_fft``, hop 10 ms)
    with per-clip normalisation, not Kaldi filter banks over 25 ms windows with dataset statistics; the paper gives
    neither the curriculum's schedule (linear over the whole run here) nor the time / frequency mask sizes (2
    targets of 10-20% of the axis each). Fine-tuning's "regularised masking" is not part of pretraining and not
    implemented.

    Readout (``embed``, what probes read): ``readout="mean"`` averages all teacher tokens, as :class:`JEPA` does;
    ``readout="frequency"`` averages over time within each frequency row and concatenates the rows (``(B, F * D)``),
    the linear-evaluation protocol of audio masked models (MSM-MAE, M2D), which keeps where in the spectrum a
    feature sits. On small data the frequency rows lose rank as the paper recipe trains; ``regularizer="vicreg"``
    with ``regularizer_input="tokens"`` keeps it (``examples/configs/ajepa_klettres.yaml`` uses both).
    """

    def __init__(
        self,
        encoder: TransformerEncoder | None = None,
        n_mels: int = 128,
        n_fft: int = 1024,
        hop_length: int | None = None,
        patch_size: int | tuple[int, int] = 16,
        predictor_dim: int = 384,
        predictor_depth: int = 6,
        predictor_heads: int | None = None,
        mask_sampler: MaskSampler | None = None,
        curriculum_start: float = 0.0,
        curriculum_end: float = 1.0,
        loss: RegressionLoss = "mse",
        readout: Literal["mean", "frequency"] = "mean",
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        if readout not in A_JEPA_READOUTS:
            raise ValueError(f"readout must be one of {A_JEPA_READOUTS}, got {readout!r}")
        encoder = encoder or TransformerEncoder.from_size("base")
        super().__init__(
            tokenizer=partial(
                LogMelPatchTokenizer, n_mels=n_mels, n_fft=n_fft, hop_length=hop_length, patch_size=patch_size
            ),
            encoder=encoder,
            predictor=partial(
                JEPAPredictor,
                predictor_dim=predictor_dim,
                depth=predictor_depth,
                num_heads=predictor_heads or encoder.num_heads,
            ),
            mask_sampler=mask_sampler
            or CurriculumMaskSampler(
                MultiBlockMaskSampler(),
                [TimeSpanMaskSampler(), FrequencyBandMaskSampler()],
                start=curriculum_start,
                end=curriculum_end,
            ),
            loss=loss,
            input_spec=input_spec,
            **kwargs,
        )
        self.readout = readout

    @torch.no_grad()
    def embed(self, x: ModelInput) -> Tensor:
        """The teacher's tokens averaged over everything (``readout="mean"``) or over time per frequency row and
        concatenated from low to high frequency (``readout="frequency"``, ``(B, F * D)``)."""
        if self.readout == "mean":
            return super().embed(x)
        tokenizer = self.student.tokenizer
        return pool_rows(self.target_network(x), tokenizer.n_mels // tokenizer.patch_size[0])  # frequency-major


#: TS-JEPA's two masking schemes (METHODS.md): random patches per (sample, channel), or the forecast-like tail.
TS_JEPA_MASKS = ("random", "forecast")


class TSJEPA(JEPA):
    """TS-JEPA (time series; METHODS.md): channel-independent patches, instance normalisation, per-channel masks.

    Defaults: every channel is cut into non-overlapping patches of ``patch_length`` samples (PatchTST style, 24)
    embedded by one shared linear map (:class:`~jepa_lightning.tokenizers.ChannelPatchTokenizer`), after RevIN-style
    instance normalisation of each (sample, channel) (``instance_norm``); the encoder and the predictor attend
    within a channel only (``same_channel``: each channel is its own sequence, PatchTST's channel independence; the
    weights are shared by all channels); ``mask="random"`` draws a random ``target_ratio`` (50%) of the patches per
    (sample, channel) as the target (:class:`~jepa_lightning.masks.RandomPatchMaskSampler` with
    ``share_channels=False``), ``mask="forecast"`` keeps the head as context and predicts the tail
    (:class:`~jepa_lightning.masks.ForecastMaskSampler`); smooth-L1 (beta 0.5) on layer-normed EMA-teacher outputs
    (0.996 -> 1). Optional VICReg term on the pooled context: ``regularizer="vicreg"`` (see :class:`JEPA`).
    Encoder 128 wide, 3 layers, 16 heads (PatchTST's size); predictor 64 wide, 2 layers, 4 heads; the base
    I-JEPA optimiser schedule. Input: ``x`` ``(B, C, T)`` from the time-series datamodule with a fixed ``length``
    that is a multiple of ``patch_length`` (or ``window``). A ``mask_sampler`` given explicitly replaces ``mask``.

    Unconfirmed / deviations: METHODS.md fixes the recipe, not the sizes; the encoder, predictor and optimiser
    values are this library's choices. Instance normalisation is not inverted (targets are latent).
    """

    def __init__(
        self,
        encoder: TransformerEncoder | None = None,
        patch_length: int = 24,
        instance_norm: bool = True,
        mask: Literal["random", "forecast"] = "random",
        target_ratio: float = 0.5,
        predictor_dim: int = 64,
        predictor_depth: int = 2,
        predictor_heads: int = 4,
        mask_sampler: MaskSampler | None = None,
        target_norm: TargetNorm = "layer_norm",
        loss: RegressionLoss = "smooth_l1",
        loss_beta: float = 0.5,
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        if mask not in TS_JEPA_MASKS:
            raise ValueError(f"mask must be one of {TS_JEPA_MASKS}, got {mask!r}")
        if mask_sampler is None:
            mask_sampler = (
                RandomPatchMaskSampler(target_ratio, share_channels=False)
                if mask == "random"
                else ForecastMaskSampler(target_ratio)
            )
        super().__init__(
            tokenizer=partial(
                ChannelPatchTokenizer, patch_length=patch_length, channel_independent=True, instance_norm=instance_norm
            ),
            encoder=encoder or TransformerEncoder(128, 3, 16, attention="same_channel"),
            predictor=partial(
                JEPAPredictor,
                predictor_dim=predictor_dim,
                depth=predictor_depth,
                num_heads=predictor_heads,
                attention="same_channel",
            ),
            mask_sampler=mask_sampler,
            target_norm=target_norm,
            loss=loss,
            loss_beta=loss_beta,
            input_spec=input_spec,
            **kwargs,
        )
        self.mask = mask


#: EEG-JEPA's mask geometries on the (channel group, time patch) grid: V-JEPA's multi-block, or channel x time tubes.
EEG_JEPA_MASKS = ("multiblock", "tube")
EEG_JEPA_READOUTS = ("mean", "channel")


def vjepa_multiblock(aspect: tuple[float, float] = (0.75, 1.5)) -> MaskSampler:
    """V-JEPA's two mask configurations, one chosen uniformly per batch: short-range (8 blocks of scale 0.15) and
    long-range (2 blocks of scale 0.7), each target the union of its blocks (METHODS.md)."""
    return RandomChoiceMaskSampler([BlockUnionMaskSampler(8, 0.15, aspect), BlockUnionMaskSampler(2, 0.7, aspect)])


class EEGJEPA(JEPA):
    """EEG-JEPA after EEG-VJEPA (V-JEPA on EEG treated as video; METHODS.md), on one channels x time frame: ``x`` is
    ``(B, channels, T)`` from :class:`~datamodules.eeg.EEGDataModule`.

    Paper defaults: tokens are patches of ``channel_group=4`` neighbouring channels x ``patch_length=30`` samples,
    embedded by one linear map, on a ``(channels / 4, T / 30)`` grid with 2-D sin-cos positions
    (:class:`~jepa_lightning.tokenizers.ChannelPatchTokenizer` with ``channel_group``); ``mask="multiblock"``:
    V-JEPA's two configurations, short-range 8 blocks of scale 0.15 and long-range 2 blocks of scale 0.7, aspect
    0.75-1.5, the target the union of the blocks, the context the rest (:func:`vjepa_multiblock`); L1 loss on
    layer-normed teacher outputs; EMA 0.998 -> 1.0 stretched over 1.25x the run (``ema_horizon``); predictor 384
    wide, 12 layers (V-JEPA); encoder ViT-B, 768 wide, 12 layers, 12 heads (unconfirmed for EEG-VJEPA; pass a
    smaller ``encoder`` for small data). ``mask="tube"``: :class:`~jepa_lightning.masks.TubeMaskSampler` (4 tubes of
    a random subset of channel groups x a time span) instead. Small CPU settings:
    ``examples/configs/eegjepa_scp1.yaml``.

    Channels: EEG-VJEPA's floor division silently drops the channels that do not fill the last group (19 channels
    in groups of 4 keep 16). Here that is an error naming the counts; ``pad_channels=True`` pads the last group with
    zero channels instead, or choose a ``channel_group`` that divides the channel count.

    Deviations: no frame axis: EEG-VJEPA stacks 32 consecutive windows as frames (tubelets of 4), here one window is
    one frame, so V-JEPA's blocks through time are 2-D blocks on the (channel group, time patch) grid. V-JEPA
    averages the loss of both mask configurations at every step (one predictor pass each); here each batch uses one
    configuration, chosen uniformly (the same expected loss, one predictor pass). ``instance_norm`` (off) would
    z-score each window per channel in the tokenizer; the datamodule normalises per channel with training-set
    statistics by default, which keeps the slow shifts and power differences that EEG classes often differ by.
    The optimiser is the base I-JEPA schedule (AdamW, warmup + cosine, weight decay 0.04 -> 0.4), as in V-JEPA.

    Readout (``embed``, what probes read): ``readout="mean"`` averages all (channel group, time patch) tokens of the
    teacher, as :class:`JEPA` does; ``readout="channel"`` averages over time within each channel group and
    concatenates the groups, ``(B, groups * D)``, so a probe still knows which channels a feature came from (slow
    cortical potentials and motor rhythms are told apart by where they appear, not only what they look like).
    On small data the representation loses rank as the paper recipe trains; ``regularizer="vicreg"`` with
    ``regularizer_input="tokens"`` keeps it (the example configs use both).
    """

    def __init__(
        self,
        encoder: TransformerEncoder | None = None,
        patch_length: int = 30,
        channel_group: int = 4,
        pad_channels: bool = False,
        instance_norm: bool = False,
        predictor_dim: int = 384,
        predictor_depth: int = 12,
        predictor_heads: int | None = None,
        mask: Literal["multiblock", "tube"] = "multiblock",
        mask_sampler: MaskSampler | None = None,
        target_norm: TargetNorm = "layer_norm",
        loss: RegressionLoss = "l1",
        ema_momentum: float = 0.998,
        final_ema_momentum: float = 1.0,
        ema_horizon: float = 1.25,
        readout: Literal["mean", "channel"] = "mean",
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        if mask not in EEG_JEPA_MASKS:
            raise ValueError(f"mask must be one of {EEG_JEPA_MASKS}, got {mask!r}")
        if readout not in EEG_JEPA_READOUTS:
            raise ValueError(f"readout must be one of {EEG_JEPA_READOUTS}, got {readout!r}")
        encoder = encoder or TransformerEncoder.from_size("base")
        super().__init__(
            tokenizer=partial(
                ChannelPatchTokenizer,
                patch_length=patch_length,
                channel_independent=True,
                instance_norm=instance_norm,
                channel_group=channel_group,
                pad_channels=pad_channels,
            ),
            encoder=encoder,
            predictor=partial(
                JEPAPredictor,
                predictor_dim=predictor_dim,
                depth=predictor_depth,
                num_heads=predictor_heads or encoder.num_heads,
            ),
            mask_sampler=mask_sampler or (vjepa_multiblock() if mask == "multiblock" else TubeMaskSampler()),
            target_norm=target_norm,
            loss=loss,
            ema_momentum=ema_momentum,
            final_ema_momentum=final_ema_momentum,
            ema_horizon=ema_horizon,
            input_spec=input_spec,
            **kwargs,
        )
        self.mask = mask
        self.readout = readout

    @torch.no_grad()
    def embed(self, x: ModelInput) -> Tensor:
        """The teacher's tokens averaged over everything (``readout="mean"``) or over time per channel group and
        concatenated in group order (``readout="channel"``, ``(B, groups * D)``)."""
        if self.readout == "mean":
            return super().embed(x)
        return pool_rows(self.target_network(x), self.student.tokenizer.rows)  # channel-group-major
