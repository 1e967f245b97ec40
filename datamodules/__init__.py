"""The data side of jepa-lightning: one LightningDataModule per modality on a shared seeded base.

The modality-neutral toolkit: :mod:`datamodules.base` (splits, seeding, loaders, views), :mod:`datamodules.recordings`
(multi-channel recordings: channel selection, resampling, filtering, windows, augmentation,
:class:`~datamodules.recordings.RecordingDataModule`), :mod:`datamodules.tables` (CSV / TSV / Parquet readers) and
:mod:`datamodules.ts_format` (the UCR/UEA ``.ts`` reader). Modality modules build on these, never on each other.
"""

from datamodules.audio import AudioDataModule
from datamodules.base import EpochSeededSampler, ResumableLoader, SampleSource, SSLDataModule
from datamodules.ecg import ECGDataModule
from datamodules.eeg import EEGDataModule
from datamodules.graphs import GraphDataModule
from datamodules.images import ImageDataModule
from datamodules.point_clouds import PointCloudDataModule
from datamodules.spoken_words import SpokenWordDataModule
from datamodules.tabular import TabularDataModule
from datamodules.time_series import TimeSeriesDataModule
from datamodules.trajectories import TrajectoryDataModule
from datamodules.video import VideoDataModule

__all__ = [
    "AudioDataModule",
    "ECGDataModule",
    "EEGDataModule",
    "EpochSeededSampler",
    "GraphDataModule",
    "ImageDataModule",
    "PointCloudDataModule",
    "ResumableLoader",
    "SSLDataModule",
    "SampleSource",
    "SpokenWordDataModule",
    "TabularDataModule",
    "TimeSeriesDataModule",
    "TrajectoryDataModule",
    "VideoDataModule",
]
