"""The data side of jepa-lightning: one LightningDataModule per modality on a shared seeded base."""

from datamodules.audio import AudioDataModule
from datamodules.base import EpochSeededSampler, SampleSource, SSLDataModule
from datamodules.ecg import ECGDataModule
from datamodules.eeg import EEGDataModule
from datamodules.images import ImageDataModule
from datamodules.point_clouds import PointCloudDataModule
from datamodules.tabular import TabularDataModule
from datamodules.time_series import TimeSeriesDataModule

__all__ = [
    "AudioDataModule",
    "ECGDataModule",
    "EEGDataModule",
    "EpochSeededSampler",
    "ImageDataModule",
    "PointCloudDataModule",
    "SSLDataModule",
    "SampleSource",
    "TabularDataModule",
    "TimeSeriesDataModule",
]
