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
from datamodules.images import ImageDataModule
from datamodules.spoken_words import SpokenWordDataModule
from datamodules.tabular import TabularDataModule
from datamodules.time_series import TimeSeriesDataModule
from datamodules.trajectories import TrajectoryDataModule
from datamodules.video import VideoDataModule
from jepa_lightning.lazy import lazy_exports

# the two data modules that read with torch-geometric are imported on first use (see jepa_lightning.lazy)
__getattr__ = lazy_exports(
    __name__, {"GraphDataModule": "datamodules.graphs", "PointCloudDataModule": "datamodules.point_clouds"}
)

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
