"""V-JEPA: Bardes et al., "Revisiting Feature Prediction for Learning Visual Representations from Video", 2024
(official code: facebookresearch/jepa)."""

from __future__ import annotations

from functools import partial
from typing import Any

from jepa_lightning.inputs import InputSpec
from jepa_lightning.losses.latent import RegressionLoss, TargetNorm
from jepa_lightning.masks.base import MaskSampler
from jepa_lightning.masks.multiblock import vjepa_multiblock
from jepa_lightning.methods.jepa import JEPA
from jepa_lightning.nn.encoder import TransformerEncoder
from jepa_lightning.tokenizers.video import TubeletTokenizer


class VJEPA(JEPA):
    """V-JEPA: video clips ``(B, C, T, H, W)`` as 3-D grids of tubelets, multi-block masks through time, EMA target
    encoder; for :class:`~datamodules.video.VideoDataModule`.

    Defaults, those of the official ViT-L pretraining config
    (facebookresearch/jepa@51c59d518fc63c08464af6de585f78ac0c7ed4d5, ``configs/pretrain/vitl16.yaml``,
    ``app/vjepa/train.py``): tubelets of 2 frames x 16 x 16 pixels embedded by a
    ``Conv3d`` with fixed 3-D sin-cos positions (:class:`~jepa_lightning.tokenizers.TubeletTokenizer`, the
    ``uniform_power`` split of the width); encoder ViT-L (1024 wide, 24 layers, 16 heads); predictor 384 wide and
    12 deep with the encoder's head count and one learned mask token per mask configuration; both mask
    configurations on every clip (``multi-mask``): short-range 8 blocks of spatial scale 0.15 and long-range 2
    blocks of scale 0.7, aspect 0.75-1.5, each block through the whole clip, the target the union of the blocks,
    the context the rest (:func:`~jepa_lightning.masks.vjepa_multiblock` with ``per_clip=True``); the student
    encodes each context, the teacher the whole clip once, and the loss is the mean over the two configurations of
    the L1 loss (``loss_exp`` 1) to layer-normed teacher outputs; EMA 0.998 -> 1.0; AdamW, lr linear from 2e-4 to
    6.25e-4 over the first 40 of 300 epochs, then a cosine to 1e-6; weight decay a cosine 0.04 -> 0.4 (not on
    biases and norms); the EMA, learning-rate and weight-decay schedules stretched over 1.25x the run
    (``ipe_scale``: ``ema_horizon`` and ``schedule_horizon``). The recipe clips gradients at norm 10
    (``clip_grad``): a Trainer setting here, ``gradient_clip_val: 10``. Augmentation (a random resized crop shared
    by every frame of a clip, scale 0.3-1, aspect 0.75-1.35, and a horizontal flip) is the datamodule's. The official
    clips are 16 frames taken every 4th (``sampling_rate``), cropped to 224 and normalised with ImageNet's mean and
    std: ``VideoDataModule(frames_per_clip=16, frame_step=4, image_size=224, mean=[0.485, 0.456, 0.406],
    std=[0.229, 0.224, 0.225])``; the datamodule's defaults (every frame, statistics of the data) suit small data.

    Deviations:

    - the mask tokens start trunc-normal (std 0.02), the library's predictor init; the official config zero-inits
      them (``zero_init_mask_tokens``).
    - gradient clipping: the official code clips the encoder and the predictor separately at 10 and only after the
      warmup epochs; the Trainer's ``gradient_clip_val`` clips all gradients together, from the first step.
    - the learning rate of optimizer step ``k`` is the official schedule's value one step earlier (the official
      scheduler steps before the update).
    - initialisation: ``init="ijepa"`` keeps the depth rescale of the residual projections that the official
      ``init_video_model`` re-initialisation undoes (as for I-JEPA, :data:`~jepa_lightning.nn.init.WeightInit`).
    - the mask sampler draws block positions over the whole grid with a generator seeded per step and rank, and
      redraws a sample whose blocks leave no context (the official collator draws positions from the global RNG and
      retries the same way); block sizes, counts, truncation to the batch's smallest and the complement context
      follow ``src/masks/multiblock3d.py`` (``tests/masks/test_multiblock3d_parity.py``).
    - evaluation: the official frozen evaluation trains an attentive probe; the library's probes read ``readout``
      (mean of the teacher's tokens) unless an attentive head is chosen.
    """

    def __init__(
        self,
        encoder: TransformerEncoder | None = None,
        patch_size: int | tuple[int, int] = 16,
        tubelet_size: int = 2,
        predictor_dim: int = 384,
        predictor_depth: int = 12,
        mask_sampler: MaskSampler | None = None,
        target_norm: TargetNorm = "layer_norm",
        loss: RegressionLoss = "l1",
        ema_momentum: float = 0.998,
        final_ema_momentum: float = 1.0,
        ema_horizon: float = 1.25,
        lr: float = 6.25e-4,
        warmup_start_lr: float = 2e-4,
        min_lr: float = 1e-6,
        warmup_fraction: float = 40 / 300,
        weight_decay: float = 0.04,
        final_weight_decay: float | None = 0.4,
        schedule_horizon: float = 1.25,
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        """``encoder=None`` is ViT-L; ``mask_sampler=None`` both of V-JEPA's configurations on every clip;
        ``kwargs``: the other arguments of :class:`JEPA`."""
        encoder = encoder or TransformerEncoder.from_size("large")
        super().__init__(
            tokenizer=partial(TubeletTokenizer, patch_size=patch_size, tubelet_size=tubelet_size, init=encoder.init),
            encoder=encoder,
            predictor_dim=predictor_dim,
            predictor_depth=predictor_depth,
            mask_sampler=mask_sampler or vjepa_multiblock(per_clip=True),
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
