"""ECG: WFDB records and NumPy arrays -> fixed-length multi-lead windows ``float (leads, T)`` at ``sample_rate``.

Records go through the recording steps of :mod:`datamodules.recordings` (select leads, check, resample, filter, cut
into windows); what is ECG's own is reading them:

- WFDB (``wfdb.rdrecord``): the physical signal, its sample rate and lead names,
- array files: NPY ``(leads, T)`` (a 1-D array is one lead), or NPZ with an array ``signal`` (or a single array) and
  optional metadata ``sample_rate`` (Hz), ``lead_names`` (strings), ``gain`` and ``baseline`` (scalars or one per
  lead; physical value = ``(signal - baseline) / gain``, as WFDB converts ADC counts; defaults 1 and 0). Metadata
  missing from the file comes from the datamodule (``array_sample_rate``, ``array_lead_names``); a file whose stored
  metadata disagrees with them is an error. The bundled record (MIT-BIH 208) is such an NPZ and takes this path.

Bad input raises a ValueError (FileNotFoundError for a missing path) naming the record: an unreadable, corrupt or
truncated file, and the errors of :mod:`datamodules.recordings` (NaN/inf samples, a missing lead, records whose leads
or sample rates differ, a recording shorter than one window); a record without lead names is told how to name them.
Every record is read while indexing; ``on_bad_file="skip"`` leaves out those that fail to read or process.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import wfdb

from datamodules.base import SampleSource, invalid, require_path
from datamodules.recordings import Recording, RecordingDataModule, RecordWindowSource, agreeing

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
        with path.open("rb") as handle:  # closed even when NumPy fails on a corrupt file
            loaded = np.load(handle, allow_pickle=False)
            if isinstance(loaded, np.ndarray):
                return loaded, {}
            with loaded:
                arrays = {key: loaded[key] for key in loaded.files}
    except Exception as error:  # NumPy and zipfile raise many kinds for corrupt files (BadZipFile, TokenError, ...)
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

    ``path`` takes WFDB records (``.hea`` headers with their signal files; in a list also a record name without
    extension) and ``.npy``/``.npz`` arrays; ``path=None`` reads the bundled MIT-BIH Arrhythmia record 208 (lead MLII,
    360 Hz, 5 minutes, unlabeled). Windows are 10 s by default, in mV unless normalised (``normalize="none"`` by
    default). Common ``bandpass`` choices: ``(0.5, None)`` removes baseline wander (respiration, movement: below
    ~0.5 Hz) while keeping the QRS and T waves; ``(0.5, 40)`` also removes mains hum (50/60 Hz) and muscle noise, the
    usual band for rhythm analysis; diagnostic ST-segment work uses 0.05 Hz as the low cut-off (AHA).

    Args:
        leads: the ECG name of ``channels``: lead names to keep, in this order (e.g. ``["I", "II", "V1", "V2", "V3",
            "V4", "V5", "V6"]``); None keeps every lead. Give ``leads`` or ``channels``, not both.
        array_sample_rate: sample rate of array files that do not store one.
        array_lead_names: lead names of array files that do not store them.
        kwargs: the recording settings of :class:`~datamodules.recordings.RecordingDataModule` (``path``,
            ``test_path``, ``channels``, ``sample_rate``, ``window_seconds``, ``bandpass``, ``normalize``, the view
            augmentation, ...) and, through it, the loader, split and view settings of
            :class:`~datamodules.base.SSLDataModule`.
    """

    modality = "ecg"
    word = "lead"
    record_kinds = f"ECG records ({WFDB_HEADER} {' '.join(ARRAY_EXTENSIONS)})"
    naming = "store 'lead_names' in the NPZ or set array_lead_names=[...]"

    def __init__(
        self,
        *,
        leads: list[str] | None = None,
        array_sample_rate: float | None = None,
        array_lead_names: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if leads is not None:
            if kwargs.get("channels") is not None:
                raise invalid(
                    "leads and channels",
                    "one of them (leads is the ECG name of channels)",
                    f"leads={leads!r} and channels={kwargs['channels']!r}",
                )
            kwargs["channels"] = leads
        super().__init__(**kwargs)
        if array_sample_rate is not None and array_sample_rate <= 0:
            raise invalid("array_sample_rate", "None or a rate > 0 Hz", repr(array_sample_rate))
        self.array_sample_rate = array_sample_rate
        self.array_lead_names = None if array_lead_names is None else list(array_lead_names)

    @property
    def leads(self) -> list[str] | None:
        """The selected leads (``channels``); None: every lead."""
        return self.channels

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
