"""A small transformer over token ids trained from scratch: the text tower of two-tower methods (ConGraT's node
texts, CLAP-IPA's phoneme strings)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jepa_lightning.inputs import InputSpec
from jepa_lightning.nn.functional import masked_mean


class TextEncoder(nn.Module):
    """A small transformer over token ids ``(B, L)`` (0 = padding), trained from scratch: token + learned position
    embeddings, pre-norm transformer layers, mean over the non-padding tokens, L2-normalised (ConGraT's sentence
    embedding: mean pooling, normalised). ``embed_dim`` = ``width``."""

    def __init__(
        self,
        spec: InputSpec,
        width: int = 64,
        depth: int = 2,
        heads: int = 4,
        max_length: int = 64,
        dropout: float = 0.1,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        spec.require("vocab_size")
        self.embed_dim = width
        self.max_length = max_length
        self.normalize = normalize
        self.tokens = nn.Embedding(spec.vocab_size, width, padding_idx=0)  # type: ignore[arg-type]  # required above
        self.positions = nn.Parameter(torch.zeros(1, max_length, width))
        nn.init.trunc_normal_(self.positions, std=0.02)
        layer = nn.TransformerEncoderLayer(
            width, heads, 4 * width, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, depth, norm=nn.LayerNorm(width), enable_nested_tensor=False)

    def forward(self, ids: Tensor) -> Tensor:
        if ids.ndim != 2 or ids.shape[1] > self.max_length:
            raise ValueError(f"TextEncoder expects token ids (B, L <= {self.max_length}), got {tuple(ids.shape)}")
        valid = ids != 0
        h = self.encoder(self.tokens(ids) + self.positions[:, : ids.shape[1]], src_key_padding_mask=~valid)
        pooled = masked_mean(h, valid)
        return F.normalize(pooled, dim=1) if self.normalize else pooled
