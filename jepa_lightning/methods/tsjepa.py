"""TS-JEPA: Ennadir, Golkar and Sarra, "Joint Embeddings Go Temporal", 2025 (official code: Sennadir/TS_JEPA)."""

from __future__ import annotations

from functools import partial
from typing import Any

from jepa_lightning.inputs import InputSpec
from jepa_lightning.losses.latent import RegressionLoss, TargetNorm
from jepa_lightning.masks.base import MaskSampler
from jepa_lightning.masks.series import RandomPatchMaskSampler
from jepa_lightning.methods.jepa import JEPA
from jepa_lightning.nn.encoder import AttentionRule, TransformerEncoder
from jepa_lightning.tokenizers.time_series import ChannelPatchTokenizer


class TSJEPA(JEPA):
    """TS-JEPA: patches of a series as tokens, random patch masks, EMA teacher; ``x`` is ``(B, C, T)`` from the
    time-series datamodule.

    Defaults: every channel is cut into non-overlapping patches of ``patch_length`` samples (24) embedded by one
    shared linear map (:class:`~jepa_lightning.tokenizers.ChannelPatchTokenizer`), after RevIN-style instance
    normalisation of each (sample, channel) (``instance_norm``); the encoder and the predictor attend within a
    channel only (``attention="same_channel"``: each channel is its own sequence, PatchTST's channel independence;
    the weights are shared by all channels); a random 50% of the patches per (sample, channel) are the target
    (:class:`~jepa_lightning.masks.RandomPatchMaskSampler` with ``share_channels=False``;
    :class:`~jepa_lightning.masks.ForecastMaskSampler` predicts the tail instead); smooth-L1 (beta 0.5) on
    layer-normed EMA-teacher outputs (0.996 -> 1); encoder 128 wide, 3 layers, 16 heads; predictor 64 wide, 2
    layers, 4 heads; the base I-JEPA optimiser schedule. ``crop=True`` lets series whose length is not a multiple
    of ``patch_length`` drop their trailing samples instead of failing.

    Deviations from the official code, kept for now as this library's choices: per-channel (PatchTST-style)
    patches, RevIN, 24-sample linear patches, 50% targets and smooth-L1; the official recipe z-scores globally,
    tokenises 32-sample patches with a Conv1d, masks a random 70% of the patches and uses an L1 loss with an
    encoder of 384 x 3 and a predictor of 128 x 1. Instance normalisation is not inverted (targets are latent).
    """

    def __init__(
        self,
        encoder: TransformerEncoder | None = None,
        patch_length: int = 24,
        instance_norm: bool = True,
        crop: bool = False,
        predictor_dim: int = 64,
        predictor_depth: int = 2,
        predictor_heads: int = 4,
        predictor_attention: AttentionRule = "same_channel",
        mask_sampler: MaskSampler | None = None,
        target_norm: TargetNorm = "layer_norm",
        loss: RegressionLoss = "smooth_l1",
        loss_beta: float = 0.5,
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        """``encoder=None`` is 128 x 3 with 16 heads and per-channel attention; ``mask_sampler=None`` the random 50%
        per (sample, channel); ``kwargs``: the arguments of :class:`JEPA`."""
        super().__init__(
            tokenizer=partial(
                ChannelPatchTokenizer,
                patch_length=patch_length,
                channel_independent=True,
                instance_norm=instance_norm,
                crop=crop,
            ),
            encoder=encoder or TransformerEncoder(128, 3, 16, attention="same_channel"),
            predictor_dim=predictor_dim,
            predictor_depth=predictor_depth,
            predictor_heads=predictor_heads,
            predictor_attention=predictor_attention,
            mask_sampler=mask_sampler or RandomPatchMaskSampler(0.5, share_channels=False),
            target_norm=target_norm,
            loss=loss,
            loss_beta=loss_beta,
            input_spec=input_spec,
            **kwargs,
        )
