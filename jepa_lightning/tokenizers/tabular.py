"""Table rows -> one token per feature (FT-Transformer / T-JEPA feature tokenizer) plus regularisation tokens."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from jepa_lightning.inputs import InputSpec, ModelInput, TabularInput, check_finite, check_on_device
from jepa_lightning.tokens import FEATURES_LAYOUT, Tokenizer, TokenLayout, Tokens

#: How the encoder tells tokens apart: a learned embedding per token, or fixed sin-cos of the token index.
FeaturePositions = Literal["learned", "sincos"]


def token_index_sincos(num_tokens: int, dim: int, base: float = 100.0) -> Tensor:
    """Fixed sin-cos positions of token indices ``0 .. num_tokens - 1``, ``(num_tokens, dim)``: sines in the even
    columns, cosines in the odd ones, frequencies ``base^(-2i / dim)``. T-JEPA's encoder adds these (with base 100)
    to its regularisation and feature tokens (jose-melo/t-jepa ``src/utils/train_utils.py::PositionalEncoding``)."""
    if dim % 2:
        raise ValueError(f"sin-cos positions need an even width, got {dim}")
    index = torch.arange(num_tokens, dtype=torch.float32).unsqueeze(1)
    frequencies = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(base) / dim))
    positions = torch.empty(num_tokens, dim)
    positions[:, 0::2] = torch.sin(index * frequencies)
    positions[:, 1::2] = torch.cos(index * frequencies)
    return positions


class FeatureTokenizer(Tokenizer):
    """Rows ``TabularInput(numeric (B, F_num), categorical (B, F_cat))`` (or a plain numeric tensor when the table
    has no categorical feature) -> ``R + F`` tokens: ``R`` learnable regularisation tokens, then the numeric features,
    then the categorical ones (the order of ``spec.feature_names``).

    - numeric feature ``i``: ``x_i * W_i + b_i``; a missing value (NaN) becomes a learned per-feature "missing"
      embedding instead, so missingness is an input the model sees (an indicator), not a silently imputed value;
    - categorical feature ``j`` with code ``c``: row ``c`` of its own embedding table plus a per-feature bias ``b_j``
      (all tables are one offset-indexed table, so every column is looked up at once);
    - positions ``(1, R + F, D)``, one row per token (regularisation tokens included), added by the encoder:
      ``positions="learned"`` (default) a learned feature-index embedding; ``"sincos"`` the fixed sin-cos of the token
      index (:func:`token_index_sincos`, T-JEPA's official encoder).

    Initialisation follows FT-Transformer: uniform in ``±1/sqrt(D)`` for the value maps, biases, tables, missing and
    regularisation tokens; learned positions trunc-normal 0.02. The layout is ``kind="features"``, ``shape=(F,)`` and
    coordinates (``-R .. -1`` for regularisation tokens, ``0 .. F-1`` for features), so mask samplers know which tokens
    are features and predictors get a distinct position for each.
    """

    def __init__(
        self, spec: InputSpec, embed_dim: int, num_register_tokens: int = 1, *, positions: FeaturePositions = "learned"
    ) -> None:
        super().__init__()
        if positions not in ("learned", "sincos"):
            raise ValueError(f"positions must be 'learned' or 'sincos', got {positions!r}")
        spec.require("num_numeric", "categories")
        if num_register_tokens < 0:
            raise ValueError(f"num_register_tokens must be >= 0, got {num_register_tokens}")
        if spec.num_numeric + len(spec.categories) < 1:
            raise ValueError("FeatureTokenizer needs at least one feature; the InputSpec describes none")
        if any(cardinality < 1 for cardinality in spec.categories):
            raise ValueError(f"categorical cardinalities must be >= 1, got {spec.categories}")
        self.embed_dim = embed_dim
        self.num_numeric = spec.num_numeric
        self.categories = tuple(spec.categories)
        self.num_register_tokens = num_register_tokens
        num_features = self.num_numeric + len(self.categories)
        self.num_features = num_features
        self.numeric_weight = nn.Parameter(torch.empty(self.num_numeric, embed_dim))
        self.numeric_bias = nn.Parameter(torch.empty(self.num_numeric, embed_dim))
        self.missing_token = nn.Parameter(torch.empty(self.num_numeric, embed_dim))
        self.category_table = nn.Parameter(torch.empty(sum(self.categories), embed_dim))
        self.category_bias = nn.Parameter(torch.empty(len(self.categories), embed_dim))
        self.register_token = nn.Parameter(torch.empty(1, num_register_tokens, embed_dim))
        num_tokens = num_register_tokens + num_features
        if positions == "learned":
            self.feature_positions = nn.Parameter(torch.empty(1, num_tokens, embed_dim))
        else:
            self.register_buffer("feature_positions", token_index_sincos(num_tokens, embed_dim).unsqueeze(0))
        offsets = torch.tensor((0, *self.categories[:-1]), dtype=torch.long).cumsum(0)[: len(self.categories)]
        self.register_buffer("category_offsets", offsets, persistent=False)
        self.register_buffer("cardinalities", torch.tensor(self.categories, dtype=torch.long), persistent=False)
        coords = torch.arange(-num_register_tokens, num_features, dtype=torch.float32).view(1, -1, 1)
        self.register_buffer("coords", coords, persistent=False)
        bound = 1 / math.sqrt(embed_dim)
        for parameter in (
            self.numeric_weight,
            self.numeric_bias,
            self.missing_token,
            self.category_table,
            self.category_bias,
            self.register_token,
        ):
            nn.init.uniform_(parameter, -bound, bound)
        if positions == "learned":
            nn.init.trunc_normal_(self.feature_positions, std=0.02)

    def _split(self, x: ModelInput) -> tuple[Tensor, Tensor]:
        """Numeric values and categorical codes of ``x``, checked against the spec."""
        if isinstance(x, TabularInput):
            numeric, codes = x
        elif self.categories:
            raise ValueError(
                f"FeatureTokenizer expects TabularInput(numeric, categorical) for a table with {len(self.categories)} "
                "categorical features, got a single tensor"
            )
        else:
            numeric, codes = x, x.new_zeros(x.shape[0], 0, dtype=torch.long)
        if numeric.ndim != 2 or numeric.shape[1] != self.num_numeric or not numeric.is_floating_point():
            raise ValueError(
                f"FeatureTokenizer expects numeric features as float (B, {self.num_numeric}), "
                f"got {numeric.dtype} {tuple(numeric.shape)}"
            )
        if codes.shape != (numeric.shape[0], len(self.categories)) or codes.dtype != torch.long:
            raise ValueError(
                f"FeatureTokenizer expects categorical codes as long (B, {len(self.categories)}) with B = "
                f"{numeric.shape[0]}, got {codes.dtype} {tuple(codes.shape)}"
            )
        check_finite(
            numeric.masked_fill(numeric.isnan(), 0.0), "numeric features contain inf (NaN marks a missing value)"
        )
        check_on_device(
            ((codes >= 0) & (codes < self.cardinalities)).all(),
            f"categorical codes must lie in [0, cardinality) per feature, cardinalities {self.categories}",
        )
        return numeric, codes

    def forward(self, x: ModelInput) -> Tokens:
        numeric, codes = self._split(x)
        missing = numeric.isnan()
        values = torch.einsum("bf,fd->bfd", numeric.masked_fill(missing, 0.0), self.numeric_weight) + self.numeric_bias
        numeric_tokens = torch.where(missing.unsqueeze(-1), self.missing_token.to(values.dtype), values)
        category_tokens = self.category_table[codes + self.category_offsets] + self.category_bias
        registers = self.register_token.expand(numeric.shape[0], -1, -1)
        features = torch.cat([registers.to(values.dtype), numeric_tokens, category_tokens.to(values.dtype)], dim=1)
        layout = TokenLayout(kind=FEATURES_LAYOUT, shape=(self.num_features,), coords=self.coords)
        return Tokens(features=features, positions=self.feature_positions, layout=layout)
