"""EEG-VJEPA in full: Hojjati et al., "From Video to EEG: Adapting Joint Embedding Predictive Architecture to Uncover
Visual Concepts in Brain Signal Analysis", 2025 (official code: amir-hojjati/eeg-vjepa): V-JEPA (Bardes et al., 2024;
facebookresearch/jepa) on clips of consecutive EEG windows."""

from __future__ import annotations

from typing import Any

from jepa_lightning.inputs import InputSpec
from jepa_lightning.masks.base import MaskSampler
from jepa_lightning.methods.vjepa import VJEPA
from jepa_lightning.nn.encoder import TransformerEncoder


class EEGVJEPA(VJEPA):
    """EEG-VJEPA: consecutive ``channels x time`` EEG windows stacked as the frames of a clip ``(B, 1, frames,
    channels, T)``, tokenized into tubelets of ``tubelet_size`` frames x ``patch_size`` (channels, samples), V-JEPA's
    3-D multi-block masks and objective; for :class:`~datamodules.eeg.EEGDataModule` with ``frames`` set (which cuts
    each window into that many consecutive frames). :class:`~jepa_lightning.methods.EEGJEPA` is the single-frame
    variant (one window, 2-D blocks).

    Defaults, those of the official pretraining config (amir-hojjati/eeg-vjepa@ea6a26209403fe44f28fa907f39ef0971af302ff,
    ``configs/pretrain/cluster_vitl16_EEG.yaml``, ``app/vjepa/train.py``, ``src/datasets/video_dataset.py``): clips
    of 32 frames of 19 channels x 500 samples (the datamodule's ``frames=32``); tubelets of 4 frames x 4 channels x
    30 samples embedded by a ``Conv3d`` of one input plane, 3-D sin-cos positions (``uniform_power``;
    :class:`~jepa_lightning.tokenizers.TubeletTokenizer` with a ``(height, width)`` patch); encoder ViT-S (384 wide,
    12 layers, 6 heads); predictor 384 wide, 6 layers; both of V-JEPA's mask configurations on every clip,
    short-range 8 blocks of spatial scale 0.15 and long-range 2 blocks of scale 0.7, aspect 0.75-1.5, every block
    through the whole clip, the loss averaged over the two (``multi-mask``); L1 loss to layer-normed EMA-teacher
    outputs; EMA 0.998 -> 1.0; AdamW, lr linear from 2e-4 to 6.25e-4 over the first 10% (40 of 400 epochs), then a
    cosine to 1e-6; weight decay a cosine 0.04 -> 0.4; the schedules stretched over 1.25x the run (``ipe_scale``).
    Gradient clipping at 10 is a Trainer setting (``gradient_clip_val: 10``); the random-resized crop (scale 0.3-1,
    aspect 0.75-1.35), one box for every frame of a clip, is the datamodule's ``frame_crop``.

    Deviations (besides those of :class:`~jepa_lightning.methods.VJEPA`):

    - frames: the official loader takes 32 frames every 3rd (``sampling_rate``) from a recording stored as a
      sequence of windows; the datamodule cuts each window (``window_seconds``, or a whole trial) into ``frames``
      consecutive, non-overlapping pieces, so a clip is one contiguous stretch of signal.
    - channels and samples: the official strided patch embedding silently drops the channels and samples that do
      not fill a last patch (a 19 x 500 frame in 4 x 30 patches keeps 16 x 480); here a patch that does not divide
      the frame is an error naming the sizes (choose a divisor, or select channels / resample so that one fits).
    - the official random-resized crop draws an absolute aspect, which never fits a 19 x 500 frame (it falls back to
      a central crop); ``frame_crop`` draws it relative to the frame's (:class:`~datamodules.recordings.FrameCrop`).

    At small scale (hundreds of trials, a few hundred CPU steps; ``examples/configs/eegvjepa_blink.yaml``, the
    small-data variant, with its flattened-token readout) pretraining does not always beat the random encoder: read
    flattened, a random encoder already keeps the raw signal, and on short many-channel trials (UEA FingerMovements:
    28 channels x 0.5 s) the trained probe ties it, while a faster-moving teacher or student lowers it. The numbers are
    in ``benchmarks/results/quality_panel.md``.
    """

    def __init__(
        self,
        encoder: TransformerEncoder | None = None,
        patch_size: int | tuple[int, int] = (4, 30),
        tubelet_size: int = 4,
        predictor_dim: int = 384,
        predictor_depth: int = 6,
        mask_sampler: MaskSampler | None = None,
        warmup_fraction: float = 0.1,
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        """``encoder=None`` is ViT-S; ``mask_sampler=None`` both of V-JEPA's configurations on every clip;
        ``kwargs``: the other arguments of :class:`~jepa_lightning.methods.VJEPA` (loss, EMA and schedules)."""
        super().__init__(
            encoder=encoder or TransformerEncoder.from_size("small"),
            patch_size=patch_size,
            tubelet_size=tubelet_size,
            predictor_dim=predictor_dim,
            predictor_depth=predictor_depth,
            mask_sampler=mask_sampler,
            warmup_fraction=warmup_fraction,
            input_spec=input_spec,
            **kwargs,
        )
