"""The generic JEPA LightningModule: every preset (``ijepa.py``, ``pointjepa.py``, ...) is this class with a paper's
defaults."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Literal, NamedTuple, TypeVar

import torch
from torch import Tensor, nn

from jepa_lightning.inputs import InputSpec, ModelInput, input_batch_size, model_condition, model_input
from jepa_lightning.losses.joint_embedding import sigreg, vicreg_covariance, vicreg_token_terms, vicreg_variance
from jepa_lightning.losses.latent import RegressionLoss, TargetNorm, latent_regression, normalize_targets
from jepa_lightning.masks.base import MaskSampler, mask_generator
from jepa_lightning.masks.multiblock import MultiBlockMaskSampler
from jepa_lightning.methods.base import ExportedNetwork, SSLMethod, require_input_spec
from jepa_lightning.nn.backbones import TokenBackbone, TokenEncoder
from jepa_lightning.nn.dense import DenseEncoderFactory, SparseResNet
from jepa_lightning.nn.ema import EMATeacher
from jepa_lightning.nn.encoder import AttentionRule, TransformerEncoder
from jepa_lightning.nn.functional import Readout, check_readout, gather_mask_major, masked_mean, read_out
from jepa_lightning.nn.predictor import JEPAPredictor, PredictorConditioning, PredictorPositions
from jepa_lightning.tokens import TokenizerFactory, Tokens

#: Builds a predictor for the encoder width (first constructor argument ``embed_dim``).
PredictorFactory = Callable[[int], nn.Module]

#: Default weight of each anti-collapse regularizer (LeJEPA's lambda; VICReg's variance weight relative to its
#: invariance weight).
DEFAULT_REGULARIZER_WEIGHT = {"none": 0.0, "sigreg": 0.05, "vicreg": 1.0}
#: VICReg's covariance weight relative to its variance weight (1 / 25).
VICREG_COVARIANCE_RATIO = 0.04

#: Which network's tokens :meth:`JEPA.embed` reads: the target network (EMA teacher; I-JEPA, ECG-JEPA Weimann) or
#: the student's encoder (ECG-JEPA Kim and Point-JEPA evaluate the student).
ReadoutNetwork = Literal["target", "student"]

#: Random-stream ids, so training and validation masks never coincide.
TRAIN_STREAM, VAL_STREAM = 0, 1


#: What a run of the target network's encoder gives (:meth:`JEPA.through_target_encoder`).
EncoderOutput = TypeVar("EncoderOutput")


def saliency_scores(encoded: Tensor, valid: Tensor | None) -> Tensor:
    """Per-token saliency ``(B, N)`` of tokens ``encoded`` ``(B, N, D)``: the scaled dot product of each with their
    mean over the valid tokens (``valid`` ``(B, N)``; padding tokens score -inf)."""
    query = masked_mean(encoded, valid).unsqueeze(1)
    scores = (query @ encoded.transpose(1, 2)).squeeze(1) / encoded.shape[-1] ** 0.5
    return scores if valid is None else scores.masked_fill(~valid, float("-inf"))


def check_unpadded(valid: Tensor, sampler: MaskSampler) -> None:
    """Refuse a padded batch for a sampler that places its targets from the end of the grid (one host sync)."""
    if not bool(valid.all()):
        raise ValueError(
            f"{type(sampler).__name__} places its targets at the end of the token grid, but this batch holds series "
            "shorter than the grid (padding at their end): such masks need series of equal length (crop them with "
            "the time-series datamodule's length or window), or use a sampler that draws anywhere on the grid (e.g. "
            "RandomPatchMaskSampler)"
        )


def check_dense_options(
    predictor: PredictorFactory | None, activation_checkpointing: bool, target_final_norm: bool
) -> None:
    """Refuse the options a dense encoder (:class:`~jepa_lightning.nn.SparseResNet`) cannot honour."""
    if predictor is None:
        raise ValueError(
            "a dense encoder (SparseResNet) needs a predictor factory, e.g. jepa_lightning.nn.ConvPredictor "
            "(CNN-JEPA's): the default transformer predictor is sized from a transformer encoder's heads"
        )
    if activation_checkpointing or not target_final_norm:
        raise ValueError(
            "activation_checkpointing and target_final_norm=False are options of transformer encoders, not of a "
            "dense encoder (SparseResNet)"
        )


def mean_of(values: list[Tensor]) -> Tensor:
    """The mean of one or more scalars; one is returned as it is (no arithmetic, so single-mask runs are unchanged)."""
    return values[0] if len(values) == 1 else torch.stack(values).mean()


class MaskedPrediction(NamedTuple):
    """One pass of the objective: the loss, diagnostics to log, and the target network's encoding of every token
    (no gradient) with its tokens (layout, validity), from which validation reads the embeddings for free."""

    loss: Tensor
    stats: dict[str, Tensor]
    encoded: Tensor
    tokens: Tokens


class JEPA(SSLMethod):
    """Joint-Embedding Predictive Architecture, modality-agnostic.

    The student (tokenizer + encoder) sees only the context tokens chosen by ``mask_sampler``; the predictor
    predicts the representations of the target tokens; the targets, computed on every token and normalised by
    ``target_norm``, are regressed with ``loss``. Every part is a constructor argument, so a LightningCLI config
    can swap it. Defaults follow I-JEPA (Assran et al., 2023).

    Predictor: a :class:`~jepa_lightning.nn.JEPAPredictor` sized by the ``predictor_*`` arguments (heads default to
    the encoder's; initialised like the encoder), or any module built by ``predictor`` (a factory of the encoder
    width), which then replaces it and the ``predictor_*`` arguments do not apply. ``predictor_drop_path_rate``,
    ``predictor_dropout`` and ``predictor_attention_dropout`` regularise its blocks (Point-JEPA: 0.25, 0.1, 0.05).

    Against collapse: ``target_encoder="ema"`` (default) computes targets with an EMA teacher;
    ``target_encoder="student"`` uses the student itself under stop-gradient (no teacher, shared weights) and
    then needs a ``regularizer`` on the student's pooled context representations (B, D): ``"sigreg"`` (LeJEPA's
    SIGReg, the variant its authors ask for; weight 0.05 by default) or ``"vicreg"`` (variance + 0.04 x
    covariance, VICReg's 25 : 1 ratio, as in VJ-VCR; weight 1 by default). A regularizer can also be added on
    top of the EMA teacher. ``regularizer_input="tokens"`` applies VICReg to every context token instead of the
    per-sample mean, for readouts that read more than the mean (rows, flattened tokens).

    ``target_encoder="fixed"``: the targets are a fixed function of the input, ``target_features``, a module
    ``x -> (B, N, F)`` with one row per token and a method ``feature_dim(input_spec) -> F`` (e.g.
    :class:`~jepa_lightning.tokenizers.GradientTargets`, SAR-JEPA's multi-scale gradients per patch): no teacher is
    built (nothing of it in the optimiser or the checkpoint), no regularizer is needed (the targets cannot collapse),
    the default predictor outputs ``target_features.feature_dim(input_spec)`` per token, ``target_final_norm`` does
    not apply, and the embeddings are the student's (``readout_network="student"``).

    ``target_final_norm=False`` takes the targets from the target encoder's last block before its final norm (then
    ``target_norm``), as Point-JEPA does; the default reads the encoder's output (I-JEPA).

    ``teacher_scope`` says what the EMA teacher averages: the whole student (``"backbone"``, tokenizer included) or
    its encoder only (``"encoder"``, Point-JEPA's teacher: it encodes the student's own tokens and positions under no
    gradient, so the tokenizer, trained by the student alone, is shared rather than averaged).

    ``readout`` is what ``embed`` (probes, ``predict``) reads from the tokens of ``readout_network`` (see
    :data:`~jepa_lightning.nn.functional.Readout`, :data:`ReadoutNetwork`): the target network (default) or the
    student, on every token (the probes and validation run it in eval mode). ``predictor_positions_every_layer``,
    ``predictor_drop_path_rate``, ``predictor_dropout``, ``predictor_attention_dropout``,
    ``predictor_mask_noise_levels`` and ``predictor_context_every_layer`` are the
    :class:`~jepa_lightning.nn.JEPAPredictor`'s ``positions_every_layer``, ``drop_path_rate``, ``dropout``,
    ``attention_dropout``, ``mask_noise_levels`` (N-JEPA's noise on the mask tokens' positions) and
    ``context_every_layer`` (3D-JEPA's context-aware decoder). Masks are drawn on the host from a generator seeded
    by ``(mask_seed, optimizer step, micro-batch, rank)``: a resumed run draws the same masks, ranks draw different
    ones, and sampling never waits for an accelerator.

    Padding (series of different lengths, :class:`~jepa_lightning.inputs.SeriesInput`): the tokenizer marks the
    tokens made only of padding (``Tokens.valid``); masks are drawn on the whole grid, then padding tokens drop out of
    the context (no token attends to them), out of the targets (the loss averages the valid target tokens only),
    out of the regularizer and out of every readout. A mask sampler whose targets are defined from the end of the grid
    (``relative_to_end``, e.g. :class:`~jepa_lightning.masks.ForecastMaskSampler`) is refused on padded batches:
    the end of a shorter series is not the end of the grid.

    A :class:`~jepa_lightning.masks.MultiMaskSampler` draws several mask configurations per step (V-JEPA's
    multi-mask): the student encodes each configuration's context, the default predictor (one mask token per
    configuration) predicts its targets, the teacher runs once, and the loss, diagnostics and regularizer are averaged
    over the configurations. A ``predictor`` factory then receives ``mask_index`` in its ``forward``.

    ``ema_interval="epoch"`` steps the teacher's momentum schedule once per epoch (TS-JEPA) instead of once per
    optimizer step; the teacher still moves after every step. ``ema_schedule`` is the momentum's rise: linear (I-JEPA)
    or along a half cosine (CNN-JEPA, BYOL).

    Dense encoders: ``encoder`` may be a factory of the data's :class:`~jepa_lightning.inputs.InputSpec` that builds a
    :class:`~jepa_lightning.nn.SparseResNet` (in configs: its ``class_path`` without ``spec``), with the
    :class:`~jepa_lightning.tokenizers.ImageCellTokenizer` (``cell_size`` = the encoder's ``reduction``) as
    ``tokenizer``: tokens are the cells of its final feature map, masks are drawn on that grid, the student sees the
    pixels of its context cells only (sparse convolutions) and the teacher the whole image. It needs a ``predictor``
    factory (e.g. :class:`~jepa_lightning.nn.ConvPredictor`); the readouts see the final feature map's cells
    (``"mean"``: global average pooling).

    Saliency-ranked masks: a ``mask_sampler`` whose ``needs_scores`` is True (e.g.
    :class:`~jepa_lightning.masks.SaliencyRankedMaskSampler`, DSeq-JEPA) receives per-token scores from
    :meth:`token_scores`, computed on the target network's tokens after ``saliency_depth`` of its blocks (None: all;
    negative: all but the last ``-saliency_depth``), before the masks are drawn; no other sampler does.

    ``activation_checkpointing=True`` recomputes the blocks' activations of the student encoder and the default
    predictor in the backward pass instead of keeping them (less memory for long token sequences such as video, one
    more forward of those blocks per step; loss and gradients unchanged). A ``predictor`` factory sets its own.

    Conditioning: ``predictor_conditioning`` (:data:`~jepa_lightning.nn.predictor.PredictorConditioning`) makes the
    predictor take the batch's condition ``batch["cond"]`` (``(B, C)`` per sample or ``(B, M, C)`` per target group:
    a transformation's parameters, an action), ``C = predictor_condition_dim`` (``None``: the datamodule's
    ``input_spec.condition_dim``). A batch's ``cond`` reaches the predictor whenever the batch holds one; the
    default predictor ignores it unless conditioned.
    """

    def __init__(
        self,
        tokenizer: TokenizerFactory,
        encoder: TransformerEncoder | DenseEncoderFactory,
        predictor: PredictorFactory | None = None,
        predictor_dim: int = 384,
        predictor_depth: int = 6,
        predictor_heads: int | None = None,
        predictor_attention: AttentionRule = "full",
        predictor_positions: PredictorPositions = "sincos",
        predictor_positions_every_layer: bool = False,
        predictor_drop_path_rate: float = 0.0,
        predictor_dropout: float = 0.0,
        predictor_attention_dropout: float = 0.0,
        predictor_mask_noise_levels: int = 0,
        predictor_conditioning: PredictorConditioning = "none",
        predictor_condition_dim: int | None = None,
        predictor_context_every_layer: bool = False,
        mask_sampler: MaskSampler | None = None,
        readout: Readout = "mean",
        readout_network: ReadoutNetwork = "target",
        target_norm: TargetNorm = "layer_norm",
        target_final_norm: bool = True,
        loss: RegressionLoss = "smooth_l1",
        loss_beta: float = 1.0,
        ema_momentum: float = 0.996,
        final_ema_momentum: float = 1.0,
        ema_horizon: float = 1.0,
        ema_interval: Literal["step", "epoch"] = "step",
        ema_schedule: Literal["linear", "cosine"] = "linear",
        target_encoder: Literal["ema", "student", "fixed"] = "ema",
        target_features: nn.Module | None = None,
        teacher_scope: Literal["backbone", "encoder"] = "backbone",
        regularizer: Literal["none", "sigreg", "vicreg"] = "none",
        regularizer_weight: float | None = None,
        regularizer_input: Literal["pooled", "tokens"] = "pooled",
        num_slices: int = 256,
        mask_seed: int = 0,
        activation_checkpointing: bool = False,
        input_spec: InputSpec | None = None,
        saliency_depth: int | None = None,
        **kwargs: Any,
    ) -> None:
        """``kwargs`` are the optimiser settings of :class:`SSLMethod` (``lr``, ``weight_decay``, ...);
        ``mask_sampler=None`` is I-JEPA's :class:`~jepa_lightning.masks.MultiBlockMaskSampler`."""
        super().__init__(input_spec=input_spec, **kwargs)
        require_input_spec(type(self).__name__, input_spec)
        check_readout(readout)
        if readout_network not in ("target", "student"):
            raise ValueError(f"readout_network must be 'target' or 'student', got {readout_network!r}")
        if target_encoder not in ("ema", "student", "fixed"):
            raise ValueError(f"target_encoder must be 'ema', 'student' or 'fixed', got {target_encoder!r}")
        if (target_encoder == "fixed") != (target_features is not None):
            raise ValueError(
                "target_encoder='fixed' and target_features go together: fixed targets are computed by "
                f"target_features (got target_encoder={target_encoder!r}, target_features={target_features!r})"
            )
        if target_encoder == "fixed" and readout_network != "student":
            raise ValueError(
                "target_encoder='fixed' has no target network to read embeddings from: set readout_network='student'"
            )
        if teacher_scope not in ("backbone", "encoder"):
            raise ValueError(f"teacher_scope must be 'backbone' or 'encoder', got {teacher_scope!r}")
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
        self.save_hyperparameters(ignore=["encoder", "tokenizer", "predictor", "mask_sampler", "target_features"])
        if not isinstance(encoder, nn.Module):
            encoder = encoder(input_spec)
        if isinstance(encoder, SparseResNet):
            check_dense_options(predictor, activation_checkpointing, target_final_norm)
        if activation_checkpointing:
            encoder.activation_checkpointing = True
        self.mask_sampler = mask_sampler or MultiBlockMaskSampler()
        self.student = TokenBackbone(tokenizer(input_spec, encoder.embed_dim), encoder)
        predictor = predictor or partial(
            JEPAPredictor,
            predictor_dim=predictor_dim,
            depth=predictor_depth,
            num_heads=predictor_heads or encoder.num_heads,
            attention=predictor_attention,
            positions=predictor_positions,
            positions_every_layer=predictor_positions_every_layer,
            init=encoder.init,
            drop_path_rate=predictor_drop_path_rate,
            dropout=predictor_dropout,
            attention_dropout=predictor_attention_dropout,
            mask_noise_levels=predictor_mask_noise_levels,
            output_dim=None if target_features is None else target_features.feature_dim(input_spec),
            activation_checkpointing=activation_checkpointing,
            num_mask_tokens=self.mask_sampler.num_configurations,
            context_every_layer=predictor_context_every_layer,
            **self.predictor_condition(predictor_conditioning, predictor_condition_dim, input_spec),
        )
        self.predictor = predictor(encoder.embed_dim)
        self.teacher_scope = teacher_scope
        self.teacher = (
            EMATeacher(
                self.ema_source,
                ema_momentum,
                final_ema_momentum,
                ema_horizon,
                schedule=ema_schedule,
                interval=ema_interval,
            )
            if target_encoder == "ema"
            else None
        )
        self.target_features = target_features
        self.regularizer = regularizer
        self.regularizer_weight = (
            DEFAULT_REGULARIZER_WEIGHT[regularizer] if regularizer_weight is None else regularizer_weight
        )
        self.regularizer_input = regularizer_input
        self.num_slices = num_slices
        self.readout = readout
        self.readout_network = readout_network
        self.target_norm = target_norm
        self.target_final_norm = target_final_norm
        self.loss_kind = loss
        self.loss_beta = loss_beta
        self.mask_seed = mask_seed
        self.saliency_depth = saliency_depth

    # -- the objective ------------------------------------------------------------------------------------
    @staticmethod
    def predictor_condition(
        conditioning: PredictorConditioning, condition_dim: int | None, input_spec: InputSpec
    ) -> dict[str, Any]:
        """The conditioning keywords of the :class:`~jepa_lightning.nn.JEPAPredictor` (none when unconditioned, so
        the default predictor is built exactly as before); the width falls back on ``input_spec.condition_dim``."""
        if conditioning == "none":
            return {}
        if condition_dim is None:
            input_spec.require("condition_dim")
            condition_dim = input_spec.condition_dim
        return {"conditioning": conditioning, "condition_dim": condition_dim}

    def masked_prediction(
        self,
        x: ModelInput,
        generator: torch.Generator,
        regularize: bool = True,
        *,
        cond: Tensor | None = None,
        target_x: ModelInput | None = None,
    ) -> MaskedPrediction:
        """Loss of predicting target representations of masked tokens from the context, plus diagnostics.

        ``regularize=False`` leaves out the anti-collapse ``regularizer`` (validation: a batch statistic, undefined
        on a last batch of one sample, and not what ``val/loss`` should measure). ``cond`` goes to the predictor
        (when not None); ``target_x`` is what the target network encodes (default ``x``: another view of the same
        geometry, such as IWM's untransformed image, must tokenize to the same layout)."""
        tokens = self.student.tokenizer(x)
        scores, teacher_pass = {}, None
        if self.mask_sampler.needs_scores and self.shares_saliency_pass(target_x):
            teacher_pass = self.targets_and_saliency(x, tokens)
            scores["scores"] = teacher_pass[2]
        elif self.mask_sampler.needs_scores:
            scores["scores"] = self.token_scores(x, tokens)
        configurations = self.mask_sampler.configurations(
            tokens.layout, input_batch_size(x), generator, tokens.features.device, progress=self.progress, **scores
        )
        valid = tokens.valid
        if valid is not None and self.mask_sampler.relative_to_end:
            check_unpadded(valid, self.mask_sampler)
        # Targets first: the teacher draws no random numbers, so the order changes no value, and its temporaries are
        # freed before the student's saved activations pile up (a lower peak, fewer fresh pages per step on CPUs).
        with torch.no_grad():
            if teacher_pass is not None:
                encoded, target_tokens, _ = teacher_pass
            elif self.target_features is not None:
                encoded, target_tokens = self.fixed_targets(x if target_x is None else target_x, tokens), tokens
            elif target_x is None:
                encoded, target_tokens = self.encode_targets(x, tokens, final_norm=self.target_final_norm)
            else:
                encoded, target_tokens = self.encode_targets(target_x, final_norm=self.target_final_norm)
            normalized = normalize_targets(encoded, self.target_norm)
            targets = [gather_mask_major(normalized, target_idx) for _, target_idx in configurations]
            if not self.target_final_norm and self.target_features is None:  # embeddings read the encoder's output
                encoded = self.target_encoder_network.norm(encoded)
        contexts, predictions, latent_penalties = [], [], []
        for index, (context_idx, target_idx) in enumerate(configurations):
            context = self.student.encoder(tokens, keep=context_idx)
            extra = {"mask_index": index} if len(configurations) > 1 else {}
            condition, latent_penalty = self.prediction_condition(tokens, target_idx, cond)
            if latent_penalty is not None:
                latent_penalties.append(latent_penalty)
            if condition is not None:
                extra["cond"] = condition
            predictions.append(self.predictor(context, tokens.layout, context_idx, target_idx, valid=valid, **extra))
            contexts.append((context, context_idx))
        losses, stats_per_mask = [], []
        for (_, target_idx), prediction, target in zip(configurations, predictions, targets):
            target_valid = None if valid is None else gather_mask_major(valid.unsqueeze(-1), target_idx)[..., 0]
            losses.append(latent_regression(prediction, target, self.loss_kind, self.loss_beta, valid=target_valid))
            stats_per_mask.append(
                {
                    "prediction_std": prediction.detach().float().std(dim=(0, 1)).mean(),
                    "target_std": target.float().std(dim=(0, 1)).mean(),
                }
            )
        loss = mean_of(losses)
        stats = {name: mean_of([entry[name] for entry in stats_per_mask]) for name in stats_per_mask[0]}
        if regularize and self.regularizer != "none":
            penalties = [
                self.regularization(context, None if valid is None else torch.gather(valid, 1, context_idx))
                for context, context_idx in contexts
            ]
            penalty = mean_of(penalties)
            stats["regularizer"] = penalty.detach()
            loss = loss + self.regularizer_weight * penalty
        if latent_penalties:
            latent_penalty = mean_of(latent_penalties)
            stats["latent_penalty"] = latent_penalty.detach()
            loss = loss + latent_penalty
        return MaskedPrediction(loss, stats, encoded, target_tokens)

    def prediction_condition(
        self, tokens: Tokens, target_idx: Tensor, cond: Tensor | None
    ) -> tuple[Tensor | None, Tensor | None]:
        """The predictor's condition for one mask configuration (``target_idx`` ``(B, M, Nt)``) and a penalty to add
        to the loss (None: none). Here the batch's ``cond`` as it is; a method with a latent variable for what the
        context cannot tell about the targets (VJ-VCR) infers it here and returns its regularizer."""
        return cond, None

    def token_scores(self, x: ModelInput, tokens: Tokens) -> Tensor:
        """Per-token saliency ``(B, N)`` for a mask sampler that ranks tokens (``needs_scores``, e.g.
        :class:`~jepa_lightning.masks.SaliencyRankedMaskSampler`), without gradient: the scaled dot product of each of
        the target network's tokens after ``saliency_depth`` blocks (through its final norm; None: all blocks) with
        the mean of those tokens (DSeq-JEPA scores against the teacher's [CLS] token; the library's encoders have
        none); padding tokens score -inf."""
        if self.target_features is not None:
            raise ValueError("target_encoder='fixed' has no target network to score tokens with")
        with torch.no_grad():
            encoded, target_tokens = self.encode_targets(x, tokens, num_blocks=self.saliency_depth)
        return saliency_scores(encoded, target_tokens.valid)

    def shares_saliency_pass(self, target_x: ModelInput | None) -> bool:
        """Whether one target-network pass gives both the targets and the saliency (:meth:`targets_and_saliency`):
        when the targets are that network's encoding of ``x`` itself and it is a
        :class:`~jepa_lightning.nn.TransformerEncoder`."""
        return (
            target_x is None
            and self.target_features is None
            and isinstance(self.target_encoder_network, TransformerEncoder)
        )

    def targets_and_saliency(self, x: ModelInput, tokens: Tokens) -> tuple[Tensor, Tokens, Tensor]:
        """The targets' encoding (as :meth:`encode_targets` with ``final_norm=target_final_norm``), its tokens and
        :meth:`token_scores` from one pass of the target network, without gradient: the saliency's blocks are the
        first blocks of the targets' pass, so the values are those of the two separate passes."""
        with torch.no_grad():
            (encoded, intermediate), target_tokens = self.through_target_encoder(
                x,
                tokens,
                lambda encoder, inputs: encoder.forward_with_intermediate(
                    inputs, self.saliency_depth, final_norm=self.target_final_norm
                ),
            )
        return encoded, target_tokens, saliency_scores(intermediate, target_tokens.valid)

    def fixed_targets(self, x: ModelInput, tokens: Tokens) -> Tensor:
        """The ``target_features`` of ``x``, one row per token of ``tokens`` ``(B, N, F)``, without gradient."""
        with torch.no_grad():
            features = self.target_features(x)
        if features.shape[:2] != tokens.features.shape[:2]:
            raise ValueError(
                f"target_features gave {tuple(features.shape)} for tokens {tuple(tokens.features.shape)}: it must "
                "give one row per token, in the tokenizer's order (e.g. the same patch size)"
            )
        return features

    def fsdp_units(self) -> list[nn.Module]:
        """What the step calls on its own: the tokenizers, the encoders (with their final norms, applied separately
        to targets taken before them) and the predictor."""
        tokenizers, encoders = [self.student.tokenizer], [self.student.encoder]
        if self.teacher is not None and self.teacher_scope == "encoder":
            encoders.append(self.teacher.module)
        elif self.teacher is not None:
            tokenizers.append(self.teacher.module.tokenizer)
            encoders.append(self.teacher.module.encoder)
        norms = [encoder.norm for encoder in encoders if isinstance(getattr(encoder, "norm", None), nn.Module)]
        return [*tokenizers, *norms, *encoders, self.predictor]

    @property
    def ema_source(self) -> nn.Module:
        """What the EMA teacher averages: the whole student (``teacher_scope="backbone"``) or its encoder only
        (``"encoder"``: the teacher encodes the student's tokens, its tokenizer and positions shared)."""
        return self.student.encoder if self.teacher_scope == "encoder" else self.student

    @property
    def target_network(self) -> nn.Module:
        """Where targets (and embeddings) come from: the EMA teacher, or the student itself; with
        ``teacher_scope="encoder"`` the teacher is an encoder of the student's tokens, not ``x -> (B, N, D)``."""
        return self.teacher if self.teacher is not None else self.student

    @property
    def target_encoder_network(self) -> TransformerEncoder:
        """The transformer encoder of the :attr:`target_network`."""
        if self.teacher is None:
            return self.student.encoder
        return self.teacher.module if self.teacher_scope == "encoder" else self.teacher.module.encoder

    def encode_targets(
        self, x: ModelInput, tokens: Tokens | None = None, *, final_norm: bool = True, num_blocks: int | None = None
    ) -> tuple[Tensor, Tokens]:
        """Every token of ``x`` encoded by the :attr:`target_network`, ``(B, N, D)``, and its tokens (layout and
        validity); the teacher runs without dropout or drop-path (:meth:`~jepa_lightning.nn.EMATeacher.frozen`).
        With ``teacher_scope="encoder"`` the teacher encodes ``tokens``, the student's tokenization of ``x`` (made
        here when None), as Point-JEPA's teacher does; a whole-backbone teacher (or the student) tokenizes ``x``
        itself. ``final_norm=False``: the last block's output, before the encoder's final norm. ``num_blocks``: the
        output of the first blocks only (see :class:`~jepa_lightning.nn.TransformerEncoder`)."""
        options: dict[str, Any] = {"final_norm": final_norm}
        if num_blocks is not None:  # an option of transformer encoders only
            options["num_blocks"] = num_blocks
        return self.through_target_encoder(x, tokens, lambda encoder, inputs: encoder(inputs, **options))

    def through_target_encoder(
        self, x: ModelInput, tokens: Tokens | None, run: Callable[[nn.Module, Tokens], EncoderOutput]
    ) -> tuple[EncoderOutput, Tokens]:
        """``run(encoder, tokens)`` on the :attr:`target_network`'s encoder and the tokens it encodes (see
        :meth:`encode_targets`), and those tokens."""
        if self.teacher is None:
            tokens = self.student.tokenizer(x)
            return run(self.student.encoder, tokens), tokens
        if self.teacher_scope == "encoder":
            tokens = self.student.tokenizer(x) if tokens is None else tokens
            with self.teacher.frozen() as encoder:
                return run(encoder, tokens), tokens
        with self.teacher.frozen() as teacher:
            tokens = teacher.tokenizer(x)
            return run(teacher.encoder, tokens), tokens

    def regularization(self, context: Tensor, valid: Tensor | None = None) -> Tensor:
        """Anti-collapse penalty on the student's context tokens ``(B, N, D)`` (``valid`` ``(B, N)``: padding tokens
        False): on their per-sample mean, or on every token (``regularizer_input``); the SIGReg directions follow
        the step."""
        if self.regularizer_input == "tokens":
            variance, covariance = vicreg_token_terms(context, valid)
            return variance + VICREG_COVARIANCE_RATIO * covariance
        pooled = masked_mean(context, valid)
        if self.regularizer == "sigreg":
            return sigreg(pooled, self.num_slices, seed=self.global_step)
        return vicreg_variance(pooled) + VICREG_COVARIANCE_RATIO * vicreg_covariance(pooled)

    def objective_inputs(
        self, batch: dict[str, Any], stage: Literal["train", "val"]
    ) -> tuple[ModelInput, dict[str, Any]]:
        """What :meth:`masked_prediction` takes from a batch: the student's input and the keywords ``cond`` (the
        batch's condition) and ``target_x``; a method that predicts across views (IWM) overrides it."""
        return model_input(batch), {"cond": model_condition(batch)}

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        accumulation = max(self.trainer.accumulate_grad_batches, 1)
        micro_batch = self.trainer.global_step * accumulation + batch_idx % accumulation
        x, inputs = self.objective_inputs(batch, "train")
        generator = mask_generator(self.mask_seed, micro_batch, self.global_rank, "cpu", TRAIN_STREAM)
        step = self.masked_prediction(x, generator, **inputs)
        batch_size = input_batch_size(x)
        self.log("train/loss", step.loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=batch_size)
        self.log_dict({f"train/{k}": v for k, v in step.stats.items()}, on_step=True, batch_size=batch_size)
        return step.loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """``val/loss`` on masks of their own random stream; returns the loss and the batch's embeddings (the
        readout of the target network's tokens, which the loss computed anyway) for the diagnostic callbacks."""
        x, inputs = self.objective_inputs(batch, "val")
        generator = mask_generator(self.mask_seed, batch_idx, self.global_rank, "cpu", VAL_STREAM)
        step = self.masked_prediction(x, generator, regularize=False, **inputs)
        self.log("val/loss", step.loss, prog_bar=True, batch_size=input_batch_size(x), sync_dist=True)
        encoded, tokens = (step.encoded, step.tokens) if self.readout_network == "target" else self.student.encode(x)
        embedding = read_out(encoded, tokens.layout, self.readout, tokens.valid)
        return {"loss": step.loss, "embedding": embedding.detach().float().flatten(1)}

    def after_optimizer_step(self, step: int) -> None:
        if self.teacher is None:
            return
        if self.teacher.interval == "epoch":
            momentum = self.teacher.momentum_at(self.trainer.current_epoch, self.total_epochs)
        else:
            momentum = self.teacher.momentum_at(step, self.total_steps)
        self.teacher.update(self.ema_source, momentum)
        self.log("train/ema_momentum", momentum, on_step=True, on_epoch=False)

    # -- embeddings ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def embed(self, x: ModelInput) -> Tensor:
        """The ``readout`` of the ``readout_network``'s tokens: the target network's (I-JEPA evaluates its EMA
        teacher) or the student's (callers put the model in eval mode, as the probes do)."""
        encoded, tokens = self.readout_tokens(x)
        return read_out(encoded, tokens.layout, self.readout, tokens.valid)

    @torch.no_grad()
    def embed_tokens(self, x: ModelInput) -> tuple[Tensor, Tensor | None]:
        """The ``readout_network``'s encoded tokens ``(B, N, D)`` and their validity (attentive probes)."""
        encoded, tokens = self.readout_tokens(x)
        return encoded, tokens.valid

    def readout_tokens(self, x: ModelInput) -> tuple[Tensor, Tokens]:
        """Every token of ``x`` encoded by the ``readout_network``, and its tokens (layout, validity)."""
        return self.encode_targets(x) if self.readout_network == "target" else self.student.encode(x)

    @property
    def embed_network(self) -> ExportedNetwork:
        return self.readout_network

    def export_network(self, network: ExportedNetwork | None = None) -> TokenEncoder:
        """Tokenizer + encoder of the target network (the EMA teacher; the student without one) or of the student,
        with this model's ``readout``; None: the ``readout_network``, so that the result computes :meth:`embed`. A
        teacher of the encoder only (``teacher_scope="encoder"``) is exported with the student's tokenizer."""
        if self.resolve_network(network) == "student" or self.teacher is None:
            tokenizer, encoder = self.student.tokenizer, self.student.encoder
        elif self.teacher_scope == "encoder":
            tokenizer, encoder = self.student.tokenizer, self.teacher.module
        else:
            tokenizer, encoder = self.teacher.module.tokenizer, self.teacher.module.encoder
        return TokenEncoder(tokenizer, encoder, self.readout)
