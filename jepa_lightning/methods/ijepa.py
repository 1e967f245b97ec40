"""I-JEPA: Assran et al., "Self-Supervised Learning from Images with a Joint-Embedding Predictive Architecture",
CVPR 2023 (official code: facebookresearch/ijepa)."""

from __future__ import annotations

from functools import partial
from typing import Any

from jepa_lightning.inputs import InputSpec
from jepa_lightning.masks.base import MaskSampler
from jepa_lightning.masks.multiblock import MultiBlockMaskSampler
from jepa_lightning.methods.jepa import JEPA
from jepa_lightning.nn.encoder import TransformerEncoder
from jepa_lightning.tokenizers.images import PatchTokenizer2d


class IJEPA(JEPA):
    """I-JEPA: images as 2-D patch grids, multi-block masks, EMA target encoder.

    Defaults: ViT-B/16 encoder (the paper's headline model is ViT-H/14; pass a larger ``encoder``), predictor 384
    wide and 6 deep with the encoder's head count, 4 targets of scale 0.15-0.2 and aspect 0.75-1.5, context
    0.85-1.0 (:class:`~jepa_lightning.masks.MultiBlockMaskSampler`), smooth-L1 (beta 1) on layer-normed teacher
    outputs, EMA 0.996 -> 1, AdamW with the warmup + cosine schedule and weight decay rising 0.04 -> 0.4, the mean
    of the teacher's tokens as the representation. Augmentation (random resized crop, scale 0.3-1) is the
    datamodule's default. Patch embedding and predictor are initialised like the encoder (its ``init``: the paper's
    trunc-normal by default; see :data:`~jepa_lightning.nn.init.WeightInit` for small models).

    Official code: facebookresearch/ijepa@52c1ae95d05f743e000e8f10a1f3a79b10cff048 (the defaults above are its
    ``configs/in1k_vith14_ep300.yaml``). Deviations: the paper writes an L2 loss, its official code uses smooth-L1
    (kept here); the predictor depth for ViT-B is not given in the paper (6 here; the official ViT-H/14 config uses
    12); the mask sampler fixes four upstream bugs of the official collator, listed in
    :class:`~jepa_lightning.masks.MultiBlockMaskSampler`; ``init="ijepa"`` keeps the depth rescale of the residual
    projections that the official training script's re-initialisation undoes
    (:data:`~jepa_lightning.nn.init.WeightInit`).
    """

    def __init__(
        self,
        encoder: TransformerEncoder | None = None,
        patch_size: int = 16,
        predictor_dim: int = 384,
        predictor_depth: int = 6,
        mask_sampler: MaskSampler | None = None,
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        """``encoder=None`` is ViT-B; ``mask_sampler=None`` is I-JEPA's multi-block sampler; ``kwargs``: the
        arguments of :class:`JEPA`."""
        encoder = encoder or TransformerEncoder.from_size("base")
        super().__init__(
            tokenizer=partial(PatchTokenizer2d, patch_size=patch_size, init=encoder.init),
            encoder=encoder,
            predictor_dim=predictor_dim,
            predictor_depth=predictor_depth,
            mask_sampler=mask_sampler or MultiBlockMaskSampler(),
            input_spec=input_spec,
            **kwargs,
        )
