"""EEG-JEPA after EEG-VJEPA: Hojjati et al., "From Video to EEG: Adapting Joint Embedding Predictive Architecture to
Uncover Visual Concepts in Brain Signal Analysis", 2025 (official code: amir-hojjati/eeg-vjepa), which applies V-JEPA
(Bardes et al., 2024) to EEG."""

from __future__ import annotations

from functools import partial
from typing import Any

from jepa_lightning.inputs import InputSpec
from jepa_lightning.losses.latent import RegressionLoss, TargetNorm
from jepa_lightning.masks.base import MaskSampler
from jepa_lightning.masks.multiblock import vjepa_multiblock
from jepa_lightning.methods.jepa import JEPA
from jepa_lightning.nn.encoder import TransformerEncoder
from jepa_lightning.tokenizers.time_series import ChannelPatchTokenizer


class EEGJEPA(JEPA):
    """EEG-JEPA: V-JEPA on one channels x time frame; ``x`` is ``(B, channels, T)`` from
    :class:`~datamodules.eeg.EEGDataModule`.

    Defaults: tokens are patches of ``channel_group=4`` neighbouring channels x ``patch_length=30`` samples, embedded
    by one linear map, on a ``(channels / 4, T / 30)`` grid with 2-D sin-cos positions
    (:class:`~jepa_lightning.tokenizers.ChannelPatchTokenizer` with ``channel_group``); V-JEPA's two mask
    configurations, short-range 8 blocks of scale 0.15 and long-range 2 blocks of scale 0.7, aspect 0.75-1.5, the
    target the union of the blocks, the context the rest (:func:`~jepa_lightning.masks.vjepa_multiblock`;
    :class:`~jepa_lightning.masks.TubeMaskSampler` gives channel x time tubes instead); L1 loss on layer-normed
    teacher outputs; EMA 0.998 -> 1.0 stretched over 1.25x the run (``ema_horizon``); predictor 384 wide, 12 layers
    (V-JEPA); encoder ViT-B, 768 wide, 12 layers, 12 heads (pass a smaller ``encoder`` for small data); the base
    I-JEPA optimiser schedule (AdamW, warmup + cosine, weight decay 0.04 -> 0.4), as in V-JEPA. ``readout="rows"``
    averages over time within each channel group and concatenates the groups, so a probe still knows which channels
    a feature came from.

    Channels: EEG-VJEPA's floor division silently drops the channels that do not fill the last group (19 channels
    in groups of 4 keep 16). Here that is an error naming the counts; ``pad_channels=True`` pads the last group with
    zero channels instead, or choose a ``channel_group`` that divides the channel count.

    Deviations: no frame axis: EEG-VJEPA stacks 32 consecutive windows as frames (tubelets of 4), here one window is
    one frame, so V-JEPA's blocks through time are 2-D blocks on the (channel group, time patch) grid. V-JEPA
    averages the loss of both mask configurations at every step (one predictor pass each); here each batch uses one
    configuration, chosen uniformly (the same expected loss, one predictor pass). The official code's encoder is
    ViT-S with a predictor of depth 6; this preset keeps V-JEPA's ViT-B / depth 12. ``instance_norm`` (off) would
    z-score each window per channel in the tokenizer; the datamodule normalises per channel with training-set
    statistics by default, which keeps the slow shifts and power differences that EEG classes often differ by. On
    small data the representation loses rank as the recipe trains; ``regularizer="vicreg"`` with
    ``regularizer_input="tokens"`` keeps it (the example configs use both).
    """

    def __init__(
        self,
        encoder: TransformerEncoder | None = None,
        patch_length: int = 30,
        channel_group: int = 4,
        pad_channels: bool = False,
        instance_norm: bool = False,
        crop: bool = False,
        predictor_dim: int = 384,
        predictor_depth: int = 12,
        mask_sampler: MaskSampler | None = None,
        target_norm: TargetNorm = "layer_norm",
        loss: RegressionLoss = "l1",
        ema_momentum: float = 0.998,
        final_ema_momentum: float = 1.0,
        ema_horizon: float = 1.25,
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        """``encoder=None`` is ViT-B; ``mask_sampler=None`` V-JEPA's two configurations; ``kwargs``: the arguments
        of :class:`JEPA`."""
        super().__init__(
            tokenizer=partial(
                ChannelPatchTokenizer,
                patch_length=patch_length,
                channel_independent=True,
                instance_norm=instance_norm,
                crop=crop,
                channel_group=channel_group,
                pad_channels=pad_channels,
            ),
            encoder=encoder or TransformerEncoder.from_size("base"),
            predictor_dim=predictor_dim,
            predictor_depth=predictor_depth,
            mask_sampler=mask_sampler or vjepa_multiblock(),
            target_norm=target_norm,
            loss=loss,
            ema_momentum=ema_momentum,
            final_ema_momentum=final_ema_momentum,
            ema_horizon=ema_horizon,
            input_spec=input_spec,
            **kwargs,
        )
