"""Which tokens are context and which are targets; one file per geometry."""

from jepa_lightning.masks.base import MaskSampler, first_true_indices, mask_generator, to_device
from jepa_lightning.masks.combinators import CurriculumMaskSampler, MultiMaskSampler, RandomChoiceMaskSampler
from jepa_lightning.masks.features import FeatureSubsetMaskSampler
from jepa_lightning.masks.frames import FutureFrameMaskSampler
from jepa_lightning.masks.multiblock import BlockUnionMaskSampler, MultiBlockMaskSampler, vjepa_multiblock
from jepa_lightning.masks.neighbourhoods import NeighbourhoodBlockMaskSampler
from jepa_lightning.masks.random import RandomMaskSampler
from jepa_lightning.masks.saliency import SaliencyRankedMaskSampler, saliency_groups, sequential_masks
from jepa_lightning.masks.series import (
    AxisSpanMaskSampler,
    ForecastMaskSampler,
    RandomPatchMaskSampler,
    SharedTimeSpanMaskSampler,
    TimeBlockMaskSampler,
    TimeSpanUnionMaskSampler,
    TubeMaskSampler,
)
from jepa_lightning.masks.spans import ContiguousSpanMaskSampler
from jepa_lightning.masks.time_frequency import FrequencyBandMaskSampler, TimeSpanMaskSampler
from jepa_lightning.masks.windows import LocalWindowMaskSampler

__all__ = [
    "AxisSpanMaskSampler",
    "BlockUnionMaskSampler",
    "ContiguousSpanMaskSampler",
    "CurriculumMaskSampler",
    "FeatureSubsetMaskSampler",
    "ForecastMaskSampler",
    "FrequencyBandMaskSampler",
    "FutureFrameMaskSampler",
    "LocalWindowMaskSampler",
    "MaskSampler",
    "MultiBlockMaskSampler",
    "MultiMaskSampler",
    "NeighbourhoodBlockMaskSampler",
    "RandomChoiceMaskSampler",
    "RandomMaskSampler",
    "RandomPatchMaskSampler",
    "SaliencyRankedMaskSampler",
    "SharedTimeSpanMaskSampler",
    "TimeBlockMaskSampler",
    "TimeSpanMaskSampler",
    "TimeSpanUnionMaskSampler",
    "TubeMaskSampler",
    "first_true_indices",
    "mask_generator",
    "saliency_groups",
    "sequential_masks",
    "to_device",
    "vjepa_multiblock",
]
