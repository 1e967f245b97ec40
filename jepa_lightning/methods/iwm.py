"""IWM (Image World Models): Garrido et al., "Learning and Leveraging World Models in Visual Representation Learning",
2024 (arXiv 2403.00504; no official code)."""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

import torch
from torch import Tensor

from jepa_lightning.inputs import InputSpec, ModelInput, model_condition, model_input
from jepa_lightning.masks.base import MaskSampler
from jepa_lightning.masks.multiblock import MultiBlockMaskSampler
from jepa_lightning.methods.base import require_input_spec
from jepa_lightning.methods.jepa import JEPA
from jepa_lightning.nn.encoder import TransformerEncoder
from jepa_lightning.nn.predictor import PredictorConditioning
from jepa_lightning.tokenizers.images import PatchTokenizer2d

#: IWM's views: the source (masked, photometrically transformed) and the target (encoded by the EMA teacher).
SOURCE, TARGET = 0, 1


class IWM(JEPA):
    """Image World Model: a JEPA whose predictor learns, in latent space, what a photometric transformation does.

    Two views of an image share one crop and differ in colour (brightness, contrast, saturation, hue, greyscale,
    blur, solarisation): the image datamodule's ``view_params=True`` makes them and reports each view's parameters
    in ``batch["cond"]`` ``(B, 2, P)``. The student encodes the *source* view under a multi-block mask; the predictor,
    conditioned on the transformation (the source's parameters, then the target's: ``2 P`` values), predicts the EMA
    teacher's tokens of the *target* view at the masked positions. The levers the paper studies are exposed:
    ``predictor_conditioning`` (``"concat"``, the paper's feature conditioning, by default; ``"token"`` its sequence
    conditioning; ``"adaln"``; ``"none"`` drops the condition) and the predictor's capacity (``predictor_dim``,
    ``predictor_depth``). A conditioned, capable predictor can apply the transformation itself, so the encoder may
    keep colour information (equivariant features); an unconditioned or weak one cannot, and the encoder learns to
    drop it (invariant features): ``benchmarks/iwm_equivariance.py`` measures both.

    Defaults: ViT-B/16 encoder, predictor 384 wide and 12 deep (the paper's invariant IWM is 12 deep, its
    equivariant one 18), I-JEPA's multi-block masks, smooth-L1 on layer-normed teacher outputs, EMA 0.996 -> 1 and
    the I-JEPA optimiser, the mean of the teacher's tokens as the representation. Validation batches carry no views:
    ``val/loss`` predicts an image from itself, both views' parameters set to the identity (zeros).

    The recipe follows the paper's text: no official code is published (as of this writing), so nothing here is
    checked against code. Unconfirmed (taken from I-JEPA where the text is silent): the loss, the EMA schedule and
    the optimiser. Deviations: both views are photometrically transformed (independently, with SimCLR's
    distributions; :class:`~datamodules.images.PhotometricTransform`) and the condition is the two parameter vectors
    concatenated, one encoding of "the transformation from source to target"; the colour jitter applies its four
    adjustments in a fixed order so that the parameters determine the transform.
    """

    num_views = 2

    def __init__(
        self,
        encoder: TransformerEncoder | None = None,
        patch_size: int = 16,
        predictor_dim: int = 384,
        predictor_depth: int = 12,
        predictor_conditioning: PredictorConditioning = "concat",
        predictor_condition_dim: int | None = None,
        mask_sampler: MaskSampler | None = None,
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        """``encoder=None`` is ViT-B; ``predictor_condition_dim=None`` is twice the datamodule's
        ``input_spec.condition_dim`` (source and target parameters); ``kwargs``: the arguments of :class:`JEPA`."""
        encoder = encoder or TransformerEncoder.from_size("base")
        if predictor_conditioning != "none" and predictor_condition_dim is None:
            spec = require_input_spec(type(self).__name__, input_spec)
            spec.require("condition_dim")
            predictor_condition_dim = 2 * spec.condition_dim
        super().__init__(
            tokenizer=partial(PatchTokenizer2d, patch_size=patch_size, init=encoder.init),
            encoder=encoder,
            predictor_dim=predictor_dim,
            predictor_depth=predictor_depth,
            predictor_conditioning=predictor_conditioning,
            predictor_condition_dim=predictor_condition_dim,
            mask_sampler=mask_sampler or MultiBlockMaskSampler(),
            input_spec=input_spec,
            **kwargs,
        )
        self.condition_dim = None if predictor_conditioning == "none" else predictor_condition_dim

    def objective_inputs(
        self, batch: dict[str, Any], stage: Literal["train", "val"]
    ) -> tuple[ModelInput, dict[str, Any]]:
        """Training: the source view, its transformation to the target view, and the target view. Validation (no
        views): the image predicts itself, both views' parameters the identity."""
        if "views" not in batch:
            x = model_input(batch)
            cond = None if self.condition_dim is None else x.new_zeros(x.shape[0], self.condition_dim)
            return x, {"cond": cond}
        cond = model_condition(batch)
        if cond is None or cond.ndim != 3 or cond.shape[1] < 2:
            raise ValueError(
                "IWM needs each view's transform parameters, batch['cond'] (B, V >= 2, P): use "
                "ImageDataModule(view_params=True)"
            )
        views = batch["views"]
        return views[SOURCE], {"cond": self.transformation(cond), "target_x": views[TARGET]}

    @staticmethod
    def transformation(cond: Tensor) -> Tensor:
        """The condition of the predictor from the views' parameters ``(B, V, P)``: source's then target's, ``(B,
        2 P)``."""
        return torch.cat([cond[:, SOURCE], cond[:, TARGET]], dim=-1)
