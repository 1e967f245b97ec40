"""The data side of jepa-lightning: one LightningDataModule per modality on a shared seeded base."""

from datamodules.base import EpochSeededSampler, SampleSource, SSLDataModule
from datamodules.images import ImageDataModule

__all__ = ["EpochSeededSampler", "ImageDataModule", "SSLDataModule", "SampleSource"]
