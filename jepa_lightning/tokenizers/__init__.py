"""Modality -> token sequence. One file per modality; :mod:`.base` holds the shared contract."""

from jepa_lightning.tokenizers.audio import LogMelPatchTokenizer
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
from jepa_lightning.tokenizers.time_series import ChannelPatchTokenizer, cross_pattern_attention_mask

__all__ = [
    "ChannelPatchTokenizer",
    "InputSpec",
    "LogMelPatchTokenizer",
    "MiniPointNet",
    "PatchTokenizer2d",
    "PointPatchTokenizer",
    "TokenLayout",
    "Tokenizer",
    "TokenizerFactory",
    "Tokens",
    "cross_pattern_attention_mask",
    "farthest_point_sampling",
    "grid_coords",
    "knn_group",
    "sequence_order",
    "sincos_embedding",
]
