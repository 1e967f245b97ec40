"""ECG-JEPA: Kim, "Learning General Representation of 12-Lead Electrocardiogram with a Joint-Embedding Predictive
Architecture", 2024 (official code: sehunfromdaegu/ECG_JEPA)."""

from __future__ import annotations

from functools import partial
from typing import Any

from jepa_lightning.inputs import InputSpec
from jepa_lightning.losses.latent import RegressionLoss, TargetNorm
from jepa_lightning.masks.base import MaskSampler
from jepa_lightning.masks.series import SharedTimeSpanMaskSampler
from jepa_lightning.methods.jepa import JEPA
from jepa_lightning.nn.encoder import AttentionRule, TransformerEncoder
from jepa_lightning.tokenizers.time_series import ChannelPatchTokenizer


class ECGJEPA(JEPA):
    """ECG-JEPA (Kim's recipe); ``x`` is ``(B, leads, T)`` from the ECG datamodule. The other published ECG JEPA is
    :class:`~jepa_lightning.methods.ECGJEPAWeimann`.

    Defaults: 8 leads (I, II, V1-V6), 10 s at 250 Hz (the datamodule's ``leads``, ``sample_rate``,
    ``window_seconds``); per-lead patches of 50 samples (a ``(lead, time)`` grid of 8 x 50 tokens) with 2-D sin-cos
    positions added before every block, as the official code does; cross-pattern attention (a token attends to
    tokens of its own lead or its own time step) in the student (on its context tokens) and the teacher; 4 time
    spans of ``U(0.175, 0.225)`` of the patches, shared by all leads, as targets
    (:class:`~jepa_lightning.masks.SharedTimeSpanMaskSampler`); the predictor works lead by lead (``same_channel``
    attention: a lead's context predicts that lead's targets, the official predictor's reshape to
    ``(B * leads, P, D)``); smooth-L1 on layer-normed teacher outputs; EMA 0.996 -> 1; encoder 768 wide, 12 layers,
    16 heads, drop-path 0.1; predictor 384 wide, 6 layers, 12 heads; AdamW lr 5e-5 (warmup from 1e-6 over 5% of the
    run, cosine to 1e-6), weight decay 0.05 constant. With fewer leads (e.g. the bundled single-lead MIT-BIH
    record) the grid has one row and the attention rules then allow every pair, so attention runs unmasked.

    Deviations: the timm ViT blocks have qkv and projection biases (the official code has ``qkv_bias=False``); the
    official code draws one mask per batch and predicts the union of the 4 spans in one group, here each sample
    draws its own spans and each span is a target group (4 groups, I-JEPA style); the predictor keeps the 2-D
    (lead, time) positions (the official one gives only the time position; the lead is fixed within its attention
    group). ``instance_norm`` (off) would z-score each window per lead in the tokenizer; the datamodule's
    ``normalize`` does the same on the data side. A custom ``encoder`` should keep ``attention="cross_pattern"`` and
    ``positions_every_layer=True``.
    """

    def __init__(
        self,
        encoder: TransformerEncoder | None = None,
        patch_length: int = 50,
        instance_norm: bool = False,
        predictor_dim: int = 384,
        predictor_depth: int = 6,
        predictor_heads: int = 12,
        predictor_attention: AttentionRule = "same_channel",
        mask_sampler: MaskSampler | None = None,
        target_norm: TargetNorm = "layer_norm",
        loss: RegressionLoss = "smooth_l1",
        ema_momentum: float = 0.996,
        final_ema_momentum: float = 1.0,
        lr: float = 5e-5,
        warmup_start_lr: float = 1e-6,
        warmup_fraction: float = 0.05,
        weight_decay: float = 0.05,
        final_weight_decay: float | None = None,
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        """``encoder=None`` is the paper's 768 x 12 encoder with cross-pattern attention; ``mask_sampler=None`` the
        shared time spans; ``kwargs``: the arguments of :class:`JEPA`."""
        super().__init__(
            tokenizer=partial(
                ChannelPatchTokenizer, patch_length=patch_length, channel_independent=True, instance_norm=instance_norm
            ),
            encoder=encoder
            or TransformerEncoder(
                768, 12, 16, drop_path_rate=0.1, positions_every_layer=True, attention="cross_pattern"
            ),
            predictor_dim=predictor_dim,
            predictor_depth=predictor_depth,
            predictor_heads=predictor_heads,
            predictor_attention=predictor_attention,
            mask_sampler=mask_sampler or SharedTimeSpanMaskSampler(),
            target_norm=target_norm,
            loss=loss,
            ema_momentum=ema_momentum,
            final_ema_momentum=final_ema_momentum,
            lr=lr,
            warmup_start_lr=warmup_start_lr,
            warmup_fraction=warmup_fraction,
            weight_decay=weight_decay,
            final_weight_decay=final_weight_decay,
            input_spec=input_spec,
            **kwargs,
        )
