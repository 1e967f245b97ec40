"""Modality -> token sequence. One file per modality; :mod:`.base` holds the shared contract."""

from jepa_lightning.tokenizers.base import (
    InputSpec,
    Tokenizer,
    TokenizerFactory,
    TokenLayout,
    Tokens,
    grid_coords,
    sincos_embedding,
)
from jepa_lightning.tokenizers.images import PatchTokenizer2d

__all__ = [
    "InputSpec",
    "PatchTokenizer2d",
    "TokenLayout",
    "Tokenizer",
    "TokenizerFactory",
    "Tokens",
    "grid_coords",
    "sincos_embedding",
]
