"""Which tokens are context and which are targets; one file per geometry."""

from jepa_lightning.masks.base import MaskSampler, first_true_indices, mask_generator
from jepa_lightning.masks.multiblock import MultiBlockMaskSampler
from jepa_lightning.masks.spans import ContiguousSpanMaskSampler

__all__ = ["ContiguousSpanMaskSampler", "MaskSampler", "MultiBlockMaskSampler", "first_true_indices", "mask_generator"]
