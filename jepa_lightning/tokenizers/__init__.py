"""Modality -> token sequence, one file per modality. The contracts they implement live in the leaf modules
:mod:`jepa_lightning.inputs` (what a batch holds) and :mod:`jepa_lightning.tokens` (what a tokenizer returns); their
names are re-exported here for convenience."""

from jepa_lightning.inputs import InputSpec, ModelInput, TabularInput, concat_inputs, input_batch_size, model_input
from jepa_lightning.tokenizers.audio import LogMelPatchTokenizer
from jepa_lightning.tokenizers.gradients import GradientTargets, ratio_gradient_magnitude
from jepa_lightning.tokenizers.images import ImageCellTokenizer, PatchTokenizer2d
from jepa_lightning.tokenizers.point_clouds import (
    MiniPointNet,
    PointPatchTokenizer,
    farthest_point_sampling,
    knn_group,
    sequence_order,
)
from jepa_lightning.tokenizers.tabular import FeatureTokenizer
from jepa_lightning.tokenizers.time_series import ChannelPatchTokenizer
from jepa_lightning.tokenizers.video import TubeletTokenizer
from jepa_lightning.tokens import Tokenizer, TokenizerFactory, TokenLayout, Tokens, grid_coords, sincos_embedding

__all__ = [
    "ChannelPatchTokenizer",
    "FeatureTokenizer",
    "GradientTargets",
    "ImageCellTokenizer",
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
    "TubeletTokenizer",
    "concat_inputs",
    "farthest_point_sampling",
    "grid_coords",
    "input_batch_size",
    "knn_group",
    "model_input",
    "ratio_gradient_magnitude",
    "sequence_order",
    "sincos_embedding",
]
