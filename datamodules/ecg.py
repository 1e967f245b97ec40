"""ECG: WFDB records and NumPy arrays -> fixed-length multi-lead windows ``float (leads, T)`` at ``sample_rate``.

Records go through the recording steps of :mod:`datamodules.recordings` (select leads, check, resample, filter, cut
into windows); what is ECG's own is reading them:

- WFDB (``wfdb.rdrecord``): the physical signal, its sample rate and lead names,
- array files: NPY ``(leads, T)`` (a 1-D array is one lead), or NPZ with an array ``signal`` (or a single array) and
  optional metadata ``sample_rate`` (Hz), ``lead_names`` (strings), ``gain`` and ``baseline`` (scalars or one per
  lead; physical value = ``(signal - baseline) / gain``, as WFDB converts ADC counts; defaults 1 and 0). Metadata
  missing from the file comes from the datamodule (``array_sample_rate``, ``array_lead_names``); a file whose stored
  metadata disagrees with them is an error. The bundled record (MIT-BIH 208) is such an NPZ and takes this path.

Bad input raises a ValueError (FileNotFoundError for a missing path) naming the record: an unreadable or corrupt
file, and the errors of :mod:`datamodules.recordings` (NaN/inf samples, a missing lead, records whose leads or
sample rates differ, a recording shorter than one window).
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import wfdb

from datamodules.base import SampleSource, invalid, require_path
from datamodules.recordings import Normalization, Recording, RecordingDataModule, RecordWindowSource, agreeing

ARRAY_EXTENSIONS = (".npy", ".npz")
WFDB_HEADER = ".hea"
#: MIT-BIH Arrhythmia Database record 208, lead MLII, 360 Hz, 5 minutes (see ``datamodules/data/README.md``).
BUNDLED_RECORD = Path(__file__).parent / "data" / "mitbih_208.npz"


# --------------------------------------------------------------------------------------------- readers


def read_wfdb(path: Path) -> Recording:
    """A WFDB record (``path`` is its ``.hea`` header or the record name without extension), physical units."""
    record_name = path.with_suffix("") if path.suffix == WFDB_HEADER else path
    try:
        record = wfdb.rdrecord(str(record_name))
    except Exception as error:  # wfdb raises many kinds (header syntax, short signal files, missing files)
        raise invalid(
            path, "a readable WFDB record (a .hea header and its signal files)", f"{type(error).__name__}: {error}"
        ) from error
    if record.p_signal is None or record.p_signal.ndim != 2:
        raise invalid(path, "a WFDB record with a physical signal", "no signal")
    return Recording(path, record.p_signal.T.astype(np.float64), float(record.fs), tuple(record.sig_name))


def _load_array(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The signal array and the NPZ metadata arrays of an array file."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return loaded, {}
        with loaded:
            arrays = {key: loaded[key] for key in loaded.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise invalid(path, "a readable NPY/NPZ file", f"{type(error).__name__}: {error}") from error
    key = "signal" if "signal" in arrays else (next(iter(arrays)) if len(arrays) == 1 else None)
    if key is None:
        raise invalid(path, "an NPZ with a 'signal' array (or a single array)", f"arrays {sorted(arrays)}")
    return arrays.pop(key), arrays


def read_array(path: Path, sample_rate: float | None, lead_names: Sequence[str] | None) -> Recording:
    """An NPY/NPZ recording (see the module docstring); ``sample_rate`` and ``lead_names`` fill missing metadata."""
    raw, meta = _load_array(path)
    if raw.ndim == 1:
        raw = raw[None]
    if raw.ndim != 2 or not np.issubdtype(raw.dtype, np.number) or np.issubdtype(raw.dtype, np.complexfloating):
        raise invalid(path, "a real numeric (leads, T) array", f"shape {raw.shape}, dtype {raw.dtype}")
    leads = raw.shape[0]
    stored_rate = float(meta["sample_rate"]) if "sample_rate" in meta else None
    rate = agreeing(path, "array_sample_rate", stored_rate, None if sample_rate is None else float(sample_rate))
    if rate is None:
        raise invalid(path, "a sample rate (store 'sample_rate' in the NPZ or set array_sample_rate)", "none")
    stored_names = tuple(str(name) for name in meta["lead_names"].reshape(-1)) if "lead_names" in meta else None
    names = agreeing(path, "array_lead_names", stored_names, None if lead_names is None else tuple(lead_names))
    if names is not None and len(names) != leads:
        raise invalid(path, f"{leads} lead names (one per row of the signal)", f"{len(names)}: {list(names)}")
    scaling = {}
    for key, default in (("gain", 1.0), ("baseline", 0.0)):
        value = np.asarray(meta.get(key, default), dtype=np.float64).reshape(-1)
        if value.size not in (1, leads):
            raise invalid(path, f"'{key}' as a scalar or one value per lead ({leads})", f"{value.size} values")
        scaling[key] = value[:, None]
    if (scaling["gain"] == 0).any():
        raise invalid(path, "a non-zero 'gain'", "0")
    physical = (raw.astype(np.float64) - scaling["baseline"]) / scaling["gain"]
    return Recording(path, physical, rate, names)


def read_recording(path: Path, array_sample_rate: float | None, array_lead_names: Sequence[str] | None) -> Recording:
    """Dispatch on the file type: arrays (.npy/.npz) or WFDB (a .hea header or a record name)."""
    if path.suffix.lower() in ARRAY_EXTENSIONS:
        return read_array(path, array_sample_rate, array_lead_names)
    return read_wfdb(path)


# --------------------------------------------------------------------------------------------- datamodule


class ECGDataModule(RecordingDataModule):
    """ECG windows for self-supervised learning; batches ``{"x": (B, leads, T), "y": (B,), ...}``.

    Args:
        path: a folder of records (WFDB ``.hea`` headers with their signal files, ``.npy``/``.npz`` arrays): class
            sub-folders give labels (sorted names -> 0..K-1), a flat folder is unlabeled (-1); or one record file,
            or a list of record paths (WFDB records also by name without extension), unlabeled. ``None``: the
            bundled MIT-BIH Arrhythmia record 208 (lead MLII, 360 Hz, 5 minutes, unlabeled).
        test_path: an optional held-out test set, in the form of ``path``.
        leads: lead names to keep, in this order (e.g. ``["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]``); None
            keeps every lead, and then all records must have the same leads.
        sample_rate: resample every record to this rate (Hz); None keeps the records' rate, which must then be the
            same in every record.
        window_seconds: length of a window (a sample); records shorter than one window are an error. None takes
            every record whole as one sample (all records must then have the same length).
        stride_seconds: distance between window starts; None: ``window_seconds`` (non-overlapping).
        bandpass: optional zero-phase Butterworth filter ``(low, high)`` in Hz at ``sample_rate``; ``(low, None)``
            is a high-pass, ``(None, high)`` a low-pass. Common choices: ``(0.5, None)`` removes baseline wander
            (respiration, movement: below ~0.5 Hz) while keeping the QRS and T waves; ``(0.5, 40)`` also removes
            mains hum (50/60 Hz) and muscle noise, the usual band for rhythm analysis; diagnostic ST-segment work
            uses 0.05 Hz as the low cut-off (AHA). None: no filtering.
        filter_order: Butterworth order (applied forwards and backwards, so the effective order doubles).
        normalize: per-lead normalisation of every window: ``"window"`` z-scores each window per lead (only its shape
            remains: amplitude differences between records and leads are removed); ``"dataset"`` subtracts each
            lead's mean and divides by its standard deviation over all training records (``path``), which keeps
            amplitude differences; ``"none"`` (default) keeps physical units (mV).
        scale_range, baseline_shift, noise, time_mask: the view augmentation of joint-embedding methods (see
            :class:`~datamodules.recordings.Augment`); ``baseline_shift``/``noise`` 0 and ``time_mask`` 0 disable
            theirs.
        array_sample_rate: sample rate of array files that do not store one.
        array_lead_names: lead names of array files that do not store them.
        cached_records: processed records kept in memory per process.
        kwargs: loader, split and view settings of :class:`~datamodules.base.SSLDataModule`.
    """

    modality = "ecg"
    word = "lead"
    record_kinds = f"ECG records ({WFDB_HEADER} {' '.join(ARRAY_EXTENSIONS)})"

    def __init__(
        self,
        path: str | list[str] | None = None,
        test_path: str | list[str] | None = None,
        leads: list[str] | None = None,
        sample_rate: float | None = None,
        window_seconds: float | None = 10.0,
        stride_seconds: float | None = None,
        bandpass: tuple[float | None, float | None] | None = None,
        filter_order: int = 4,
        normalize: Normalization = "none",
        scale_range: tuple[float, float] = (0.8, 1.2),
        baseline_shift: float = 0.1,
        noise: float = 0.02,
        time_mask: float = 0.1,
        array_sample_rate: float | None = None,
        array_lead_names: list[str] | None = None,
        cached_records: int = 16,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            path=path,
            test_path=test_path,
            channels=leads,
            sample_rate=sample_rate,
            window_seconds=window_seconds,
            stride_seconds=stride_seconds,
            bandpass=bandpass,
            filter_order=filter_order,
            normalize=normalize,
            scale_range=scale_range,
            baseline_shift=baseline_shift,
            noise=noise,
            time_mask=time_mask,
            cached_records=cached_records,
            **kwargs,
        )
        if array_sample_rate is not None and array_sample_rate <= 0:
            raise invalid("array_sample_rate", "None or a rate > 0 Hz", repr(array_sample_rate))
        self.leads = self.channels
        self.array_sample_rate = array_sample_rate
        self.array_lead_names = None if array_lead_names is None else list(array_lead_names)

    def index_sources(self) -> tuple[SampleSource, SampleSource | None]:
        """Read and check every record of ``path`` (or the bundled one) and ``test_path``; index their windows."""
        train = self._index_path(BUNDLED_RECORD if self.path is None else self.path, "path")
        test = None if self.test_path is None else self._index_path(self.test_path, "test_path")
        return train, test

    def _index_path(self, path: str | list[str] | Path, field: str) -> RecordWindowSource:
        files, labels = self.record_files(path, field)
        names = None if self.array_lead_names is None else tuple(self.array_lead_names)
        read = partial(read_recording, array_sample_rate=self.array_sample_rate, array_lead_names=names)
        return self.index_files(files, labels, read, field)

    def is_record(self, path: Path) -> bool:
        return (
            path.is_file() and not path.name.startswith(".") and path.suffix.lower() in (*ARRAY_EXTENSIONS, WFDB_HEADER)
        )

    def record_path(self, entry: str, field: str) -> Path:
        """A listed record: an existing file, or a WFDB record name whose ``.hea`` exists."""
        path = Path(entry).expanduser()
        header = path.with_name(path.name + WFDB_HEADER)
        if not path.exists() and header.exists():
            return header
        return require_path(entry, field)

    @property
    def lead_names(self) -> tuple[str, ...] | None:
        """Names of the leads in ``x`` (None when the records carry none); indexes the data on first use."""
        return self.channel_names
