"""ECG-JEPA after Weimann and Conrad, "Self-Supervised Pre-Training with Joint-Embedding Predictive Architecture
Boosts ECG Classification Performance", 2024 (arXiv 2410.13867); official code:
kweimann/ECG-JEPA@504b4e5b55c2de3c6dca0492435b993a8f4a4013 (``configs/pretrain/ViTS_all.yaml``, ``pretrain.py``,
``models/``, ``data/masks.py``, ``utils/schedules.py``, ``finetune.py``)."""

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
    """ECG-JEPA (Weimann and Conrad's recipe, config ViTS_all); ``x`` is ``(B, leads, T)`` from the ECG datamodule.
    The other published ECG JEPA is :class:`~jepa_lightning.methods.ECGJEPA` (Kim).

    Defaults: 12 leads, 10 s at 500 Hz (the datamodule's settings); one token per 25 samples of all leads
    (``Linear(leads * 25, D)``, the same map as their ``Conv1d``) -> 200 tokens, 1-D sin-cos positions added once;
    context = ``ceil(k * P)`` patches, ``k ~ U(0.15, 0.25)`` per batch, the rest masked as blocks of at least 10
    patches (:class:`~jepa_lightning.masks.TimeBlockMaskSampler`), one target group; L1 loss on the teacher's output
    (which ends in its final norm; no extra target norm); EMA 0.998 -> 0.9995 linearly over the run; ViT-S encoder
    384 wide, 8 layers, 6 heads; predictor 192 wide, 8 layers, 6 heads, positions once, no drop-path; AdamW lr 1e-3
    (warmup over 10% of the run from 1e-6, cosine to 1e-6), betas (0.9, 0.99), eps 1e-6, weight decay cosine
    0.01 -> 0.1 on the weights of linear maps only. Batch 2048 for 100k steps is the datamodule's and trainer's
    setting. Readout: the mean of the teacher's tokens (their classifier's parameter-free option, ``attn_pooling:
    False`` without a register). With fewer leads the patch map takes ``leads * 25`` inputs.

    Deviations: the timm ViT blocks have biases in every linear map and LayerNorm and no register token (the
    official ``bias: False``, ``qkv_bias: False``, one register token); the residual projections start at std
    ``0.02 / sqrt(2 * layer)`` (I-JEPA's init; official: ``0.02 / sqrt(2 * depth)`` in every block); the official
    evaluation trains an attentive pooler on the teacher's tokens of 2.5 s crops (a trained probe, not a readout;
    here the probes read the mean); the block layout is drawn in a vectorised way (number of blocks uniform, lengths
    a random split) rather than by sequential interval splitting, with the same guarantees (exact keep count, masked
    runs of >= 10 patches); the teacher moves after each optimizer step, so the update towards the student after
    ``k`` steps uses the momentum of step ``k - 1`` (officially, moved before each forward pass: of step ``k``).
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
        warmup_start_lr: float = 1e-6,
        warmup_fraction: float = 0.1,
        weight_decay: float = 0.01,
        final_weight_decay: float | None = 0.1,
        betas: tuple[float, float] = (0.9, 0.99),
        adam_eps: float = 1e-6,
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
            adam_eps=adam_eps,
            input_spec=input_spec,
            **kwargs,
        )
