"""ECG-JEPA: Kim, "Learning General Representation of 12-Lead Electrocardiogram with a Joint-Embedding Predictive
Architecture", 2024 (arXiv 2410.08559); official code: sehunfromdaegu/ECG_JEPA@d937ad2c2c8a1e22856ce7e4a23a30f84a71217c
(``ecg_jepa.py``, ``pretrain_ECG_JEPA.py``, ``models.py``, ``linear_probe_utils.py``)."""

from __future__ import annotations

from functools import partial
from typing import Any

from jepa_lightning.inputs import InputSpec
from jepa_lightning.losses.latent import RegressionLoss, TargetNorm
from jepa_lightning.masks.base import MaskSampler
from jepa_lightning.masks.series import TimeSpanUnionMaskSampler
from jepa_lightning.methods.jepa import JEPA, ReadoutNetwork
from jepa_lightning.nn.encoder import AttentionRule, TransformerEncoder
from jepa_lightning.nn.functional import Readout
from jepa_lightning.tokenizers.time_series import ChannelPatchTokenizer


class ECGJEPA(JEPA):
    """ECG-JEPA (Kim's recipe); ``x`` is ``(B, leads, T)`` from the ECG datamodule. The other published ECG JEPA is
    :class:`~jepa_lightning.methods.ECGJEPAWeimann`.

    Defaults (the official ``pretrain_ECG_JEPA.py`` and ``ecg_jepa.py``): 8 leads (I, II, V1-V6), 10 s at 250 Hz
    (the datamodule's ``leads``, ``sample_rate``, ``window_seconds``); per-lead patches of 50 samples, each embedded
    by one ``Linear(50, D)`` (a ``(lead, time)`` grid of 8 x 50 tokens), 2-D sin-cos positions added before every
    encoder block; cross-pattern attention (a token attends to tokens of its own lead or its own time step) in the
    student (on its context tokens) and the teacher; one mask per batch, the union of 4 time spans of
    ``floor(U(0.175, 0.225) * 50)`` patches shared by all leads, as one target group
    (:class:`~jepa_lightning.masks.TimeSpanUnionMaskSampler`); the predictor works lead by lead (``same_channel``
    attention: a lead's context predicts that lead's targets, the official reshape to ``(B * leads, P, D)``) and adds
    its positions before every block, drop-path 0.1 (rising linearly over the blocks, as in the encoder);
    smooth-L1 (beta 1) on layer-normed teacher outputs; EMA 0.996 -> 1 linearly over the run; encoder 768 wide, 12
    layers, 16 heads, drop-path 0.1; predictor 384 wide, 6 layers, 12 heads; AdamW lr 5e-5, betas (0.9, 0.999)
    (warmup from 1e-6 over 5% of the run, cosine to 1e-6), weight decay 0.05 constant, none on biases and norms.
    Batch 64 for 100 epochs under fp16 autocast are the datamodule's and trainer's settings. Readout: the mean of
    the STUDENT's tokens (``readout_network="student"``), the official linear evaluation's features
    (``MaskTransformer.representation`` of the checkpoint's ``encoder``, the student). With fewer leads (e.g. the
    bundled single-lead MIT-BIH record) the grid has one row and the attention rules then allow every pair, so
    attention runs unmasked.

    Deviations: the timm ViT blocks have qkv biases and LayerNorm eps 1e-6 (the official code: ``qkv_bias=False``,
    torch's eps 1e-5); the predictor's positions are the 2-D (lead, time) sin-cos of its tokens (the official
    predictor's give only the time, with the lead half fixed at lead 0; the lead is constant within each lead's
    attention group); the encoder's 2-D sin-cos has the lead half first (official: time first, the same features
    permuted); after the warmup the cosine runs over the remaining steps (timm's ``CosineLRScheduler`` there runs it
    over the whole run from step 0, so its lr is up to 4.6% of the peak lower mid-run); on a grid of fewer than 6
    time patches a span that the official ``floor`` would leave empty gets one patch; the predictor's mask token is not
    weight-decayed (officially it is, as every parameter of more than one dimension). ``instance_norm`` (off) would
    z-score each window per lead in the tokenizer; the datamodule's ``normalize`` does the same on the data side. A
    custom ``encoder`` should keep ``attention="cross_pattern"`` and ``positions_every_layer=True``.
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
        predictor_positions_every_layer: bool = True,
        predictor_drop_path_rate: float = 0.1,
        mask_sampler: MaskSampler | None = None,
        readout: Readout = "mean",
        readout_network: ReadoutNetwork = "student",
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
        official union of time spans; ``kwargs``: the arguments of :class:`JEPA`."""
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
            predictor_positions_every_layer=predictor_positions_every_layer,
            predictor_drop_path_rate=predictor_drop_path_rate,
            mask_sampler=mask_sampler or TimeSpanUnionMaskSampler(),
            readout=readout,
            readout_network=readout_network,
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
