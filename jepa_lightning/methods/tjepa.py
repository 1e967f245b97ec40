"""T-JEPA: Thimonier et al., "T-JEPA: Augmentation-Free Self-Supervised Learning for Tabular Data", ICLR 2025
(official code: jose-melo/t-jepa)."""

from __future__ import annotations

from functools import partial
from typing import Any

from jepa_lightning.inputs import InputSpec
from jepa_lightning.losses.latent import RegressionLoss, TargetNorm
from jepa_lightning.masks.base import MaskSampler
from jepa_lightning.masks.features import FeatureSubsetMaskSampler
from jepa_lightning.methods.jepa import JEPA
from jepa_lightning.nn.encoder import TransformerEncoder
from jepa_lightning.nn.functional import Readout
from jepa_lightning.tokenizers.tabular import FeatureTokenizer


class TJEPA(JEPA):
    """T-JEPA: tables as sets of feature tokens, feature-subset masks, EMA teacher.

    Defaults (the paper's): feature tokenizer (numeric ``x_i * W_i + b_i``, categorical embedding + bias, a learned
    feature-index embedding) with ``num_register_tokens`` learnable regularisation tokens prepended
    (:class:`~jepa_lightning.tokenizers.FeatureTokenizer`); per batch context and target sizes
    ``round(F * U(0.2, 0.4))``, per sample a shuffled split into a context and 4 target groups drawn from the other
    features (:class:`~jepa_lightning.masks.FeatureSubsetMaskSampler`; regularisation tokens always in the context,
    never targets); MSE on the teacher's output without a target norm (the encoder ends in its LayerNorm); EMA 0.996
    -> 1; encoder 64 wide, 4 layers, 8 heads; predictor 64 wide, 2 layers; ``readout="flatten"``: the teacher's
    tokens flattened, as the official linear probe reads them. Input: the tabular datamodule's rows
    (``batch["x"]`` numeric with NaN for missing, ``batch["x_cat"]`` codes).

    Predictor positions: :class:`~jepa_lightning.nn.JEPAPredictor` gives each context token and each target query
    the fixed 1-D sin-cos embedding of its layout coordinate (the feature index; ``-R .. -1`` for the regularisation
    tokens); the encoder uses the tokenizer's learned feature-index embedding.

    Deviations: the optimiser is the base I-JEPA schedule (AdamW, warmup + cosine, weight decay 0.04 -> 0.4). On
    small tables the recipe loses rank as it trains and the probe can end below the random encoder;
    ``regularizer="vicreg"`` keeps the rank (the example configs use it).
    """

    def __init__(
        self,
        encoder: TransformerEncoder | None = None,
        num_register_tokens: int = 1,
        predictor_dim: int = 64,
        predictor_depth: int = 2,
        mask_sampler: MaskSampler | None = None,
        readout: Readout = "flatten",
        target_norm: TargetNorm = "none",
        loss: RegressionLoss = "mse",
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        """``encoder=None`` is the paper's 64 x 4 encoder; ``kwargs``: the arguments of :class:`JEPA`."""
        super().__init__(
            tokenizer=partial(FeatureTokenizer, num_register_tokens=num_register_tokens),
            encoder=encoder or TransformerEncoder(embed_dim=64, depth=4, num_heads=8),
            predictor_dim=predictor_dim,
            predictor_depth=predictor_depth,
            mask_sampler=mask_sampler or FeatureSubsetMaskSampler(),
            readout=readout,
            target_norm=target_norm,
            loss=loss,
            input_spec=input_spec,
            **kwargs,
        )
