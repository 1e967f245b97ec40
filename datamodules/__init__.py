"""The data side of jepa-lightning: one LightningDataModule per modality on a shared seeded base."""

from datamodules.base import EpochSeededSampler, SampleSource, SSLDataModule
from datamodules.images import ImageDataModule
from datamodules.point_clouds import PointCloudDataModule

__all__ = ["EpochSeededSampler", "ImageDataModule", "PointCloudDataModule", "SSLDataModule", "SampleSource"]
