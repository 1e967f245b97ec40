"""Which tokens are context and which are targets; one file per geometry."""

from jepa_lightning.masks.base import MaskSampler, first_true_indices, mask_generator, to_device
from jepa_lightning.masks.multiblock import MultiBlockMaskSampler
from jepa_lightning.masks.series import ForecastMaskSampler, RandomPatchMaskSampler, SharedTimeSpanMaskSampler
from jepa_lightning.masks.spans import ContiguousSpanMaskSampler
from jepa_lightning.masks.time_frequency import (
    CurriculumMaskSampler,
    FrequencyBandMaskSampler,
    RandomChoiceMaskSampler,
    TimeSpanMaskSampler,
)

__all__ = [
    "ContiguousSpanMaskSampler",
    "CurriculumMaskSampler",
    "ForecastMaskSampler",
    "FrequencyBandMaskSampler",
    "MaskSampler",
    "MultiBlockMaskSampler",
    "RandomChoiceMaskSampler",
    "RandomPatchMaskSampler",
    "SharedTimeSpanMaskSampler",
    "TimeSpanMaskSampler",
    "first_true_indices",
    "mask_generator",
    "to_device",
]
