"""SAR-JEPA: Li, Yang, Liu, Hou, Li, Liu and Liu, "Predicting Gradient is Better: Exploring Self-Supervised Learning
for SAR ATR with a Joint-Embedding Predictive Architecture", ISPRS Journal of Photogrammetry and Remote Sensing, 2024
(arXiv:2311.15153; official code: waterdisappear/SAR-JEPA)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from jepa_lightning.inputs import InputSpec
from jepa_lightning.masks.windows import LocalWindowMaskSampler
from jepa_lightning.methods.jepa import JEPA
from jepa_lightning.nn.encoder import TransformerEncoder
from jepa_lightning.tokenizers.gradients import GradientTargets
from jepa_lightning.tokenizers.images import PatchTokenizer2d


class SARJEPA(JEPA):
    """SAR-JEPA: predict fixed multi-scale SAR gradient features of masked patches inside local windows; no teacher.

    Targets: :class:`~jepa_lightning.tokenizers.GradientTargets`, the ratio-of-averages gradient magnitude (robust to
    multiplicative speckle) at kernel radii 5, 9, 13, 17, each patch's pixels of the four maps concatenated
    (``4 p^2 C`` per token), not normalised, regressed with MSE on the masked tokens (``target_encoder="fixed"``:
    no EMA teacher, nothing but the student and predictor is trained or saved). Masks:
    :class:`~jepa_lightning.masks.LocalWindowMaskSampler`, 4 windows of 7 x 7 patches, 80% of each masked.
    Defaults: ViT-B/16 encoder, predictor 512 wide, 8 deep, 16 heads (the official decoder), AdamW betas
    (0.9, 0.95), weight decay 0.05, lr 1e-3 (the official base lr at batch 256), warmup from 0 over 20 of 300
    epochs, cosine to 0; embeddings are the student's (mean of its tokens). Input images must be non-negative
    intensities (the official code feeds [0, 1] images without normalisation).

    Official code: waterdisappear/SAR-JEPA@1f17f9007481c563653066c0c49dbd55c0846298 (``Pretraining/models_lomar.py``:
    ``GF``, ``MaskedAutoencoderViT.forward_encoder`` / ``forward_loss``; ``Pretraining/main_pretrain.py``). Matches:
    the gradient features (``tests/tokenizers/test_gradients.py`` compares with the re-typed ``GF``), their patch
    layout, the MSE on masked patches, the window sampling (distinct window rows and columns for the batch, masked
    patches per sample and window), the optimiser settings.

    Deviations: the official model (built on LoMaR) encodes each window separately with its masked patches replaced
    by mask tokens inside the encoder, relative position encodings (iRPE) and a class token, then decodes every
    window token; here the student encodes only the visible tokens of all windows together (one context per sample,
    shared by the window groups) with fixed sin-cos positions, and the I-JEPA predictor places mask tokens at the
    targets; AdamW with the library's schedule.
    """

    def __init__(
        self,
        encoder: TransformerEncoder | None = None,
        patch_size: int = 16,
        radii: Sequence[int] = (5, 9, 13, 17),
        window_size: int = 7,
        num_windows: int = 4,
        target_ratio: float = 0.8,
        predictor_dim: int = 512,
        predictor_depth: int = 8,
        predictor_heads: int | None = 16,
        lr: float = 1e-3,
        warmup_start_lr: float = 0.0,
        min_lr: float = 0.0,
        warmup_fraction: float = 20 / 300,
        weight_decay: float = 0.05,
        final_weight_decay: float | None = None,
        betas: tuple[float, float] = (0.9, 0.95),
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        """``encoder=None`` is ViT-B; ``radii``: the gradient scales; ``window_size``, ``num_windows``,
        ``target_ratio``: the local-window masks; ``kwargs``: the arguments of :class:`JEPA`."""
        encoder = encoder or TransformerEncoder.from_size("base")
        super().__init__(
            tokenizer=partial(PatchTokenizer2d, patch_size=patch_size, init=encoder.init),
            encoder=encoder,
            predictor_dim=predictor_dim,
            predictor_depth=predictor_depth,
            predictor_heads=predictor_heads,
            mask_sampler=LocalWindowMaskSampler(window_size, num_windows, target_ratio),
            target_encoder="fixed",
            target_features=GradientTargets(patch_size, radii),
            readout_network="student",
            target_norm="none",
            loss="mse",
            lr=lr,
            warmup_start_lr=warmup_start_lr,
            min_lr=min_lr,
            warmup_fraction=warmup_fraction,
            weight_decay=weight_decay,
            final_weight_decay=final_weight_decay,
            betas=betas,
            input_spec=input_spec,
            **kwargs,
        )
