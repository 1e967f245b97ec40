"""T-JEPA: Thimonier et al., "T-JEPA: Augmentation-Free Self-Supervised Learning for Tabular Data", ICLR 2025
(official code: jose-melo/t-jepa@98dda991dd5e5d12266b3557aa80a33c4e0a6606)."""

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
from jepa_lightning.nn.predictor import JEPAPredictor
from jepa_lightning.tokenizers.tabular import FeatureTokenizer

#: The official launch script's (``scripts/launch_tjepa.sh``, tuned on jannis) context and target shares.
CONTEXT_SHARE = (0.13628349247854785, 0.36819012681604135)
TARGET_SHARE = (0.1556321308543076, 0.6222278244105446)
#: Its AdamW learning rate (``EXP_LR``), reached after 10 of 300 warmup epochs from 0, then a cosine to 0.
LEARNING_RATE = 0.0003658682841082736
#: PyTorch's ``nn.TransformerEncoderLayer`` LayerNorm eps, which the official layers and heads use.
LAYER_NORM_EPS = 1e-5


def tjepa_encoder() -> TransformerEncoder:
    """The official encoder: 16 post-norm ReLU layers, 64 wide, 2 heads, FFN width 64, then LayerNorm, Linear,
    LayerNorm (``src/encoder.py::TabularEncoder``)."""
    return TransformerEncoder(
        embed_dim=64,
        depth=16,
        num_heads=2,
        mlp_ratio=1.0,
        norm_placement="post",
        activation="relu",
        norm_eps=LAYER_NORM_EPS,
        output_head=True,
    )


class TJEPA(JEPA):
    """T-JEPA: tables as sets of feature tokens, feature-subset masks, EMA teacher.

    Defaults (the official code, jose-melo/t-jepa@98dda99: ``scripts/launch_tjepa.sh``, ``src/configs.py``,
    ``src/encoder.py``, ``src/predictors.py``, ``src/mask.py``, ``src/train.py``, ``src/utils/optim_utils.py``):

    - tokenizer: numeric ``x_i * W_i + b_i``, categorical embedding + per-feature bias, one regularisation token
      (``N_CLS_TOKENS=1``) prepended (:class:`~jepa_lightning.tokenizers.FeatureTokenizer`), with fixed sin-cos
      positions of the token index (``positions="sincos"``: the official ``PositionalEncoding``, base 100; its
      feature-index and feature-type embeddings are off in the launch script);
    - encoder (:func:`tjepa_encoder`): 16 post-norm layers (PyTorch's ``TransformerEncoderLayer``, ReLU), 64 wide,
      2 heads, FFN width 64, LayerNorm eps 1e-5, then LayerNorm, Linear, LayerNorm;
    - predictor: 16 wide, 16 layers, 4 heads, FFN width 256 (``pred_dim_feedforward``'s default), the same post-norm
      ReLU layers and output head, then its own LayerNorm and a projection back to 64; fixed 1-D sin-cos positions;
    - masks (:class:`~jepa_lightning.masks.FeatureSubsetMaskSampler`, ``size_rule="count"``): per batch a context and
      a target size uniform over whole counts between ``round(F * share)`` bounds, context share 0.136-0.368, target
      share 0.156-0.622 (the launch script's, tuned on jannis: the repository publishes no other data set's shares),
      4 target groups drawn from the features outside the context;
    - loss: MSE (``torch.nn.MSELoss``, mean over all elements) on the teacher's output, no target norm;
    - EMA 0.996 -> 1, linear over training; AdamW lr 3.66e-4 with weight decay 0, linear warmup from 0 over 10 of
      300 epochs (``warmup_fraction=1/30``), cosine to 0; batch 512 (a datamodule setting);
    - ``readout="flatten"``: the teacher's regularisation and feature tokens flattened, what the official linear
      probe reads (``src/datasets/online_dataset.py``, ``src/models/linear_probing.py``).

    Input: the tabular datamodule's rows (``batch["x"]`` numeric with NaN for missing, ``batch["x_cat"]`` codes).

    Deviations kept on purpose:

    - token indices: the official masks draw indices ``0 .. F-1`` but apply them to the ``R + F`` tokens, so the
      regularisation token is masked like a feature (context or target) and the last ``R`` features are never seen
      by the student or predicted; here masks index the features and the regularisation tokens are always in the
      context and never targets (what the paper describes; there is nothing to predict for a token without data);
    - predictor positions: sin-cos of the layout coordinate (``-R .. -1`` for the regularisation tokens, the feature
      index for features) instead of the official token index; the same embedding shifted by ``R``;
    - gradients: the official encoder clamps every gradient element to ±1 (``exp_gradient_clipping=1.0``); here that
      is the trainer's ``gradient_clip_val: 1.0`` with ``gradient_clip_algorithm: value`` (the example configs set it);
    - dropout: the launch script's 0.0019 (encoder) and 0.0019 (predictor) are left out (none);
    - initialisation: the library's ``init="ijepa"`` (trunc-normal 0.02 with residual rescaling, FT-Transformer
      uniform tables); the official code uses trunc-normal 0.02 without the rescaling, PyTorch's xavier-uniform for
      the attention input projection and trunc-normal 0.02 for the categorical tables;
    - numeric inputs: the datamodule standardises numeric columns; the official code min-max scales them to [0, 1];
    - missing values: a learned per-feature "missing" token (the official data sets are complete).

    On small tables the recipe can lose rank as it trains; ``regularizer="vicreg"`` keeps it (the example configs
    use it).
    """

    def __init__(
        self,
        encoder: TransformerEncoder | None = None,
        num_register_tokens: int = 1,
        predictor_dim: int = 16,
        predictor_depth: int = 16,
        predictor_heads: int = 4,
        predictor_mlp_ratio: float = 16.0,
        mask_sampler: MaskSampler | None = None,
        readout: Readout = "flatten",
        target_norm: TargetNorm = "none",
        loss: RegressionLoss = "mse",
        lr: float = LEARNING_RATE,
        warmup_start_lr: float = 0.0,
        min_lr: float = 0.0,
        warmup_fraction: float = 10 / 300,
        weight_decay: float = 0.0,
        final_weight_decay: float | None = None,
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        """``encoder=None`` is the official encoder (:func:`tjepa_encoder`); ``predictor_*`` size the official
        post-norm predictor (``predictor_mlp_ratio`` x ``predictor_dim`` is its FFN width); ``kwargs``: the arguments
        of :class:`JEPA`."""
        encoder = encoder or tjepa_encoder()
        super().__init__(
            tokenizer=partial(FeatureTokenizer, num_register_tokens=num_register_tokens, positions="sincos"),
            encoder=encoder,
            predictor=partial(
                JEPAPredictor,
                predictor_dim=predictor_dim,
                depth=predictor_depth,
                num_heads=predictor_heads,
                mlp_ratio=predictor_mlp_ratio,
                init=encoder.init,
                norm_placement="post",
                activation="relu",
                norm_eps=LAYER_NORM_EPS,
                output_head=True,
            ),
            mask_sampler=mask_sampler
            or FeatureSubsetMaskSampler(context_ratio=CONTEXT_SHARE, target_ratio=TARGET_SHARE, size_rule="count"),
            readout=readout,
            target_norm=target_norm,
            loss=loss,
            lr=lr,
            warmup_start_lr=warmup_start_lr,
            min_lr=min_lr,
            warmup_fraction=warmup_fraction,
            weight_decay=weight_decay,
            final_weight_decay=final_weight_decay,
            input_spec=input_spec,
            **kwargs,
        )
