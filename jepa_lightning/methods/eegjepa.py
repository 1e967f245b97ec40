"""EEG-JEPA after EEG-VJEPA: Hojjati et al., "From Video to EEG: Adapting Joint Embedding Predictive Architecture to
Uncover Visual Concepts in Brain Signal Analysis", 2025 (official code: amir-hojjati/eeg-vjepa), which applies V-JEPA
(Bardes et al., 2024; facebookresearch/jepa) to EEG."""

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

    Defaults, those of the official pretraining config (amir-hojjati/eeg-vjepa@ea6a26209403fe44f28fa907f39ef0971af302ff,
    ``configs/pretrain/cluster_vitl16_EEG.yaml``, ``app/vjepa/train.py``): tokens are patches of ``channel_group=4``
    neighbouring channels x ``patch_length=30`` samples, embedded by one linear map (the official ``Conv2d`` /
    ``Conv3d`` patch embedding with one input channel), on a ``(channels / 4, T / 30)`` grid with 2-D sin-cos
    positions (:class:`~jepa_lightning.tokenizers.ChannelPatchTokenizer` with ``channel_group``); encoder ViT-S
    (``vit_small``: 384 wide, 12 layers, 6 heads); predictor 384 wide, 6 layers, the encoder's 6 heads; V-JEPA's two
    mask configurations, short-range 8 blocks of scale 0.15 and long-range 2 blocks of scale 0.7, aspect 0.75-1.5, each
    side clipped to the grid, the target the union of the blocks, the context the rest
    (:func:`~jepa_lightning.masks.vjepa_multiblock`; :class:`~jepa_lightning.masks.TubeMaskSampler` gives channel x
    time tubes instead); L1 loss (``loss_exp`` 1) on layer-normed teacher outputs; EMA 0.998 -> 1.0; AdamW, lr
    linear from 2e-4 to 6.25e-4 over the first 10% of the run (40 of 400 epochs), then a cosine to 1e-6; weight decay
    a cosine 0.04 -> 0.4 (not on biases and norms); the EMA, learning-rate and weight-decay schedules all stretched
    over 1.25x the run (``ipe_scale``: ``ema_horizon`` and ``schedule_horizon``), so the run ends before their final
    values. The recipe clips gradients at norm 10 (``clip_grad``): a Trainer setting here, ``gradient_clip_val: 10``
    (the example configs set it). Its one augmentation, a random-resized crop of each (channel, time) frame
    (scale 0.3-1, aspect 0.75-1.35), is the datamodule's ``frame_crop`` (off by default, see
    :class:`~datamodules.recordings.FrameCrop`). ``readout="rows"`` averages over time within each channel group and
    concatenates the groups, so a probe still knows which channels a feature came from. ``min_patches`` (None:
    the official fixed patch length) shortens the patches of trials too short for ``min_patches`` patches of
    ``patch_length`` (the tokenizer's option), so the masks keep a time axis to hide and predict along: 0.5 s trials
    of 28 channels at 128 Hz in 32-sample patches are a 28 x 2 grid on which every V-JEPA block spans the whole
    trial, and the task becomes predicting whole channels from the others.

    Channels: EEG-VJEPA's floor division silently drops the channels that do not fill the last group (19 channels
    in groups of 4 keep 16). Here that is an error naming the counts; ``pad_channels=True`` pads the last group with
    zero channels instead, or choose a ``channel_group`` that divides the channel count.

    Deviations:

    - no frame axis: EEG-VJEPA stacks 32 consecutive windows as frames (tubelets of 4 frames, 3-D sin-cos positions),
      here one window is one frame, so V-JEPA's blocks through time (temporal scale 1: every frame) are 2-D blocks on
      the (channel group, time patch) grid. :class:`~jepa_lightning.methods.EEGVJEPA` is the full version: the
      datamodule's ``frames`` stacks consecutive frames into clips for its tubelets.
    - V-JEPA averages the loss of both mask configurations at every step (one predictor pass each, with a learned
      mask token per configuration); here each batch uses one configuration, chosen uniformly (the same expected
      loss, one predictor pass, one mask token).
    - gradient clipping: the official code clips the encoder and the predictor separately at 10 and only after the
      warmup epochs; the Trainer's ``gradient_clip_val`` clips all gradients together, from the first step.
    - the learning rate of optimizer step ``k`` (0-based) is the official schedule's value one step earlier (the
      official scheduler steps before the update, so its first step already leaves ``start_lr``).
    - evaluation: the official frozen evaluation trains an attention-pooling classifier (one softmax-attention query
      and a linear layer, ``AttentionClassifier``) on the teacher's tokens for 500 epochs; here the probes are the
      library's linear probes on ``readout`` (an attentive probe is not part of this preset).
    - the official random-resized crop draws its box with an absolute aspect ratio, which never fits a 19 x 500
      frame, so it always falls back to the same central 19 x 26 crop (stretched to 500 samples); ``frame_crop``
      draws the aspect relative to the frame's, so crops vary as intended.
    - ``instance_norm`` (off) would z-score each window per channel in the tokenizer; the datamodule normalises per
      channel with training-set statistics by default, which keeps the slow shifts and power differences that EEG
      classes often differ by. On small data the representation loses rank as the recipe trains;
      ``regularizer="vicreg"`` with ``regularizer_input="tokens"`` keeps it (the example configs use both, with a
      smaller encoder and predictor for CPU budgets).

    At small scale (``examples/configs/eegjepa_scp1.yaml``, a few hundred CPU steps) pretraining does not always beat
    the random encoder: on UEA HandMovementDirection (10 MEG channels, 1 s, four movement directions) the time-pooled
    ``rows`` readout reads near chance before and after training, since the direction lies in the trials' time
    course, which it averages away; readouts that keep time (``flatten``, ``row_quarters``) start near the raw trials
    and training lowers them. The numbers are in ``benchmarks/results/quality_panel.md``.
    """

    def __init__(
        self,
        encoder: TransformerEncoder | None = None,
        patch_length: int = 30,
        channel_group: int = 4,
        pad_channels: bool = False,
        instance_norm: bool = False,
        crop: bool = False,
        min_patches: int | None = None,
        predictor_dim: int = 384,
        predictor_depth: int = 6,
        mask_sampler: MaskSampler | None = None,
        target_norm: TargetNorm = "layer_norm",
        loss: RegressionLoss = "l1",
        ema_momentum: float = 0.998,
        final_ema_momentum: float = 1.0,
        ema_horizon: float = 1.25,
        lr: float = 6.25e-4,
        warmup_start_lr: float = 2e-4,
        min_lr: float = 1e-6,
        warmup_fraction: float = 0.1,
        weight_decay: float = 0.04,
        final_weight_decay: float | None = 0.4,
        schedule_horizon: float = 1.25,
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        """``encoder=None`` is ViT-S; ``mask_sampler=None`` V-JEPA's two configurations; ``kwargs``: the other
        arguments of :class:`JEPA`."""
        super().__init__(
            tokenizer=partial(
                ChannelPatchTokenizer,
                patch_length=patch_length,
                channel_independent=True,
                instance_norm=instance_norm,
                crop=crop,
                min_patches=min_patches,
                channel_group=channel_group,
                pad_channels=pad_channels,
            ),
            encoder=encoder or TransformerEncoder.from_size("small"),
            predictor_dim=predictor_dim,
            predictor_depth=predictor_depth,
            mask_sampler=mask_sampler or vjepa_multiblock(),
            target_norm=target_norm,
            loss=loss,
            ema_momentum=ema_momentum,
            final_ema_momentum=final_ema_momentum,
            ema_horizon=ema_horizon,
            lr=lr,
            warmup_start_lr=warmup_start_lr,
            min_lr=min_lr,
            warmup_fraction=warmup_fraction,
            weight_decay=weight_decay,
            final_weight_decay=final_weight_decay,
            schedule_horizon=schedule_horizon,
            input_spec=input_spec,
            **kwargs,
        )
