"""Modality -> token sequence. One file per modality; :mod:`.base` holds the shared contract."""

from jepa_lightning.tokenizers.audio import LogMelPatchTokenizer
from jepa_lightning.tokenizers.base import (
    InputSpec,
    ModelInput,
    TabularInput,
    Tokenizer,
    TokenizerFactory,
    TokenLayout,
    Tokens,
    concat_inputs,
    grid_coords,
    input_batch_size,
    model_input,
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
from jepa_lightning.tokenizers.tabular import FeatureTokenizer
from jepa_lightning.tokenizers.time_series import ChannelPatchTokenizer, cross_pattern_attention_mask

__all__ = [
    "ChannelPatchTokenizer",
    "FeatureTokenizer",
    "InputSpec",
    "LogMelPatchTokenizer",
    "MiniPointNet",
    "ModelInput",
    "PatchTokenizer2d",
    "PointPatchTokenizer",
    "TabularInput",
    "TokenLayout",
    "Tokenizer",
    "TokenizerFactory",
    "Tokens",
    "concat_inputs",
    "cross_pattern_attention_mask",
    "farthest_point_sampling",
    "grid_coords",
    "input_batch_size",
    "knn_group",
    "model_input",
    "sequence_order",
    "sincos_embedding",
]
