"""ECG-JEPA after Weimann and Conrad, "Self-Supervised Pre-Training with Joint-Embedding Predictive Architecture
Boosts ECG Classification Performance", 2024 (official code: kweimann/ECG-JEPA, config ViTS_all)."""

from __future__ import annotations

from functools import partial
from typing import Any

from jepa_lightning.inputs import InputSpec
from jepa_lightning.losses.latent import RegressionLoss, TargetNorm
from jepa_lightning.masks.base import MaskSampler
from jepa_lightning.masks.series import TimeBlockMaskSampler
from jepa_lightning.methods.jepa import JEPA
from jepa_lightning.nn.encoder import TransformerEncoder
from jepa_lightning.tokenizers.time_series import ChannelPatchTokenizer


class ECGJEPAWeimann(JEPA):
    """ECG-JEPA (Weimann and Conrad's recipe); ``x`` is ``(B, leads, T)`` from the ECG datamodule. The other
    published ECG JEPA is :class:`~jepa_lightning.methods.ECGJEPA` (Kim).

    Defaults: 12 leads, 10 s at 500 Hz (the datamodule's settings); one token per 25 samples of all leads
    (``Linear(leads * 25, D)``, the same map as their ``Conv1d``) -> 200 tokens, 1-D sin-cos positions; context =
    ``ceil(k * P)`` patches, ``k ~ U(0.15, 0.25)``, the rest masked as blocks of at least 10 patches
    (:class:`~jepa_lightning.masks.TimeBlockMaskSampler`), one target group; L1 loss on the teacher's output (which
    ends in its final norm; no extra target norm); EMA 0.998 -> 0.9995; ViT-S encoder 384 wide, 8 layers, 6 heads;
    predictor 192 wide, 8 layers, 6 heads; AdamW lr 1e-3 (warmup 10% from 0, cosine to 1e-6), betas (0.9, 0.99),
    weight decay cosine 0.01 -> 0.1. With fewer leads the patch map takes ``leads * 25`` inputs.

    Deviations: the timm ViT blocks have qkv and other biases and no register token (the official code has
    neither bias and one register token); the block layout is drawn in a vectorised way (number of blocks
    uniform, lengths a random split) rather than by sequential interval splitting, with the same guarantees (exact
    keep count, masked runs of >= 10 patches).
    """

    def __init__(
        self,
        encoder: TransformerEncoder | None = None,
        patch_length: int = 25,
        instance_norm: bool = False,
        predictor_dim: int = 192,
        predictor_depth: int = 8,
        predictor_heads: int = 6,
        mask_sampler: MaskSampler | None = None,
        target_norm: TargetNorm = "none",
        loss: RegressionLoss = "l1",
        ema_momentum: float = 0.998,
        final_ema_momentum: float = 0.9995,
        lr: float = 1e-3,
        warmup_start_lr: float = 0.0,
        warmup_fraction: float = 0.1,
        weight_decay: float = 0.01,
        final_weight_decay: float | None = 0.1,
        betas: tuple[float, float] = (0.9, 0.99),
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        """``encoder=None`` is the paper's ViT-S (384 x 8); ``mask_sampler=None`` the time blocks; ``kwargs``: the
        arguments of :class:`JEPA`."""
        super().__init__(
            tokenizer=partial(
                ChannelPatchTokenizer, patch_length=patch_length, channel_independent=False, instance_norm=instance_norm
            ),
            encoder=encoder or TransformerEncoder(384, 8, 6),
            predictor_dim=predictor_dim,
            predictor_depth=predictor_depth,
            predictor_heads=predictor_heads,
            mask_sampler=mask_sampler or TimeBlockMaskSampler(),
            target_norm=target_norm,
            loss=loss,
            ema_momentum=ema_momentum,
            final_ema_momentum=final_ema_momentum,
            lr=lr,
            warmup_start_lr=warmup_start_lr,
            warmup_fraction=warmup_fraction,
            weight_decay=weight_decay,
            final_weight_decay=final_weight_decay,
            betas=betas,
            input_spec=input_spec,
            **kwargs,
        )
