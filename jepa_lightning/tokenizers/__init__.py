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
from jepa_lightning.tokenizers.point_clouds import (
    MiniPointNet,
    PointPatchTokenizer,
    farthest_point_sampling,
    knn_group,
    sequence_order,
)

__all__ = [
    "InputSpec",
    "MiniPointNet",
    "PatchTokenizer2d",
    "PointPatchTokenizer",
    "TokenLayout",
    "Tokenizer",
    "TokenizerFactory",
    "Tokens",
    "farthest_point_sampling",
    "grid_coords",
    "knn_group",
    "sequence_order",
    "sincos_embedding",
]
