"""Generic time series: UCR/UEA ``.ts``, CSV/Parquet (wide or long) and NPY/NPZ arrays -> ``float (C, T)`` series.

Every file is read whole into memory (archive-sized data sets) as a list of ``(channels, length)`` series:

- ``.ts`` (UCR/UEA archives, aeon's bundled data sets): :func:`datamodules.ts_format.read_ts`, without aeon so
  reading stays fast; labels from ``@classLabel`` (classes in their declared order); univariate or
  multivariate, variable length, missing values ``?`` (with ``@missing true``).
- CSV / TSV (optionally compressed) / Parquet, **wide**: one row per series, the value columns in time order (every
  column but ``label_column`` and ``id_column``, or ``value_columns``), one channel; **long** (``time_column``
  set): one row per (series, time step), ``id_column`` names the series, ``value_columns`` are the channels
  (default: every other column), rows sorted by time within a series (series in order of first appearance).
- NPY ``(N, C, T)`` or ``(N, T)``; NPZ with ``x`` (that shape) and optional labels ``y`` ``(N,)``.

Labels of tables and arrays become classes in sorted order (numerically for numbers). Then, per sample: optional
windowing of long recordings (``window`` / ``stride``), cropping to at most ``length`` samples, per-series
(per-channel) normalisation over the observed values, or z-scoring with the training file's per-channel mean and
standard deviation (``normalize="dataset"``), missing values set to 0 (the channel mean after normalisation).
Batches are zero-padded to the longest series of the batch (or to ``length``) with the valid lengths in
``batch["lengths"]``.

Bad input raises a ValueError naming the file (and line, column or series): an unreadable or corrupt file, an
unknown column, text in a value column (missing-value markers such as ``NA`` or ``n/a`` are NaN, see
:mod:`datamodules.tables`), NaN/inf values (NaN allowed with ``allow_missing``), series with differing
channel counts (within a file or between train and test files), a series shorter than ``window`` or
``min_length``, test labels the training file does not have. Nothing is dropped silently: the samples after a
recording's last full window and those beyond ``length`` are left out by definition.
"""

from __future__ import annotations

import importlib.util
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset

from datamodules.base import SampleSource, SSLDataModule, Transform, invalid, require_path
from datamodules.recordings import NORM_EPS, Augment, Standardize, normalize_window, window_starts
from datamodules.tables import TABLE_FORMATS, category_strings, numeric_values, read_table, table_format
from datamodules.ts_format import read_ts
from jepa_lightning.inputs import InputSpec, SeriesInput

# --------------------------------------------------------------------------------------------- series files

#: Formats and their suffixes; tables also take compressed suffixes (``.csv.gz``), see :func:`table_format`.
SERIES_FORMATS = ("ts", "npy", "npz", *sorted(set(TABLE_FORMATS.values())))
#: The default data set, from aeon's bundled ``.ts`` files (read by path: importing aeon is slow).
DEFAULT_DATASET = "GunPoint"


@dataclass(frozen=True)
class SeriesFile:
    """The series of one file: ``float32 (C, T_i)`` arrays (NaN = missing), their label strings (None when the file
    has none), its classes (in label order) and channel names (None when the file names none)."""

    path: Path
    series: list[np.ndarray]
    labels: list[str] | None
    class_names: tuple[str, ...] | None
    channel_names: tuple[str, ...] | None


@dataclass(frozen=True)
class TableLayout:
    """Which columns of a table hold what (see the module docstring): long layout when ``time_column`` is set."""

    label_column: str | None = None
    id_column: str | None = None
    time_column: str | None = None
    value_columns: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.time_column is not None and self.id_column is None:
            raise invalid("id_column", "the column naming each series of a long table (time_column is set)", "None")

    @property
    def named(self) -> dict[str, list[str]]:
        """The columns named by each field, for error messages."""
        fields = {"label_column": self.label_column, "id_column": self.id_column, "time_column": self.time_column}
        named = {name: [value] for name, value in fields.items() if value is not None}
        return named | ({"value_columns": list(self.value_columns)} if self.value_columns is not None else {})


def aeon_dataset(name: str, split: str) -> Path:
    """``<aeon>/datasets/data/<name>/<name>_<split>.ts``, found without importing aeon."""
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        raise invalid("path", f"a file, or aeon installed for the default {name} data set", "no aeon")
    return require_path(
        Path(spec.submodule_search_locations[0]) / "datasets" / "data" / name / f"{name}_{split}.ts", "path"
    )


def series_format(path: Path, file_format: str) -> str:
    """The format of ``path``: ``file_format`` unless "auto", else from the suffix."""
    if file_format != "auto":
        if file_format not in SERIES_FORMATS:
            raise invalid("file_format", f"'auto' or one of {list(SERIES_FORMATS)}", repr(file_format))
        return file_format
    suffix = path.suffix.lower()
    if suffix in (".ts", ".npy", ".npz"):
        return suffix[1:]
    try:
        return table_format(path, "auto")
    except ValueError:
        raise invalid(
            path, f"a series file (.ts .npy .npz {' '.join(TABLE_FORMATS)}) or file_format=", "another suffix"
        ) from None


def classes_of(values: pd.Series, where: str) -> tuple[list[str], tuple[str, ...]]:
    """Label strings of ``values`` and the sorted classes (numerically for numbers); missing labels are an error."""
    if values.isna().any():
        raise invalid(where, "a label for every series", f"{int(values.isna().sum())} missing")
    text = category_strings(values).tolist()
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        classes = category_strings(pd.Series(np.unique(values.to_numpy())))
        return text, tuple(classes.tolist())
    return text, tuple(sorted(set(text)))


def read_ts_file(path: Path) -> SeriesFile:
    """A ``.ts`` file; labels only from ``@classLabel`` (a regression ``@targetLabel`` file reads as unlabeled)."""
    data = read_ts(path)
    labels = data.labels if data.class_names is not None else None
    series = [values.astype(np.float32) for values in data.series]
    return SeriesFile(path, series, labels, data.class_names, None)


def read_array_file(path: Path, kind: str) -> SeriesFile:
    """NPY ``(N, C, T)`` / ``(N, T)``, or NPZ with ``x`` of that shape and optional labels ``y`` ``(N,)``."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            arrays = {"x": loaded}
        else:
            with loaded:
                arrays = {key: loaded[key] for key in loaded.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise invalid(path, f"a readable {kind.upper()} file", f"{type(error).__name__}: {error}") from error
    if "x" not in arrays:
        raise invalid(path, "an NPZ with an array 'x' (and optional labels 'y')", f"arrays {sorted(arrays)}")
    x = arrays["x"]
    if x.ndim == 2:
        x = x[:, None]
    if x.ndim != 3 or not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise invalid(path, "a real numeric (N, C, T) or (N, T) array 'x'", f"shape {x.shape}, dtype {x.dtype}")
    labels, classes = None, None
    if "y" in arrays:
        y = arrays["y"]
        if y.shape != (x.shape[0],):
            raise invalid(path, f"labels 'y' of shape ({x.shape[0]},), one per series", f"shape {y.shape}")
        labels, classes = classes_of(pd.Series(y), f"{path}: y")
    values = x.astype(np.float32)
    return SeriesFile(path, list(values), labels, classes, None)


def table_columns(path: Path, frame: pd.DataFrame, layout: TableLayout) -> list[str]:
    """The value columns of ``frame``; an error naming the field for a column the table does not have."""
    columns = list(frame.columns)
    for name, wanted in layout.named.items():
        unknown = [column for column in wanted if column not in columns]
        if unknown:
            raise invalid(name, f"column names of {path} {columns}", f"unknown column(s) {unknown}")
    if layout.value_columns is not None:
        values = list(layout.value_columns)
    else:
        other = {layout.label_column, layout.id_column, layout.time_column}
        values = [column for column in columns if column not in other]
    if not values:
        raise invalid(path, "at least one value column", "none")
    return values


def read_table_file(path: Path, kind: str, layout: TableLayout) -> SeriesFile:
    """A wide or long table (see the module docstring)."""
    frame = read_table(path, kind)
    columns = table_columns(path, frame, layout)
    values = np.stack([numeric_values(frame[column], f"{path}: column {column!r}") for column in columns], axis=1)
    if layout.time_column is None:
        if layout.id_column is not None and frame[layout.id_column].duplicated().any():
            duplicated = frame[layout.id_column][frame[layout.id_column].duplicated()].tolist()[:3]
            raise invalid(
                f"{path}: column {layout.id_column!r}", "one row per series (wide layout)", f"repeated ids {duplicated}"
            )
        labels, classes = None, None
        if layout.label_column is not None:
            labels, classes = classes_of(frame[layout.label_column], f"{path}: column {layout.label_column!r}")
        return SeriesFile(path, list(values.astype(np.float32)[:, None, :]), labels, classes, None)
    assert layout.id_column is not None  # TableLayout checks it
    ids, first = pd.factorize(frame[layout.id_column])
    times = frame[layout.time_column]
    if times.isna().any():
        raise invalid(
            f"{path}: column {layout.time_column!r}", "a time for every row", f"{int(times.isna().sum())} missing"
        )
    order = np.lexsort((times.to_numpy(), ids))
    ids, times = ids[order], times.to_numpy()[order]
    repeated = (ids[1:] == ids[:-1]) & (times[1:] == times[:-1])
    if repeated.any():
        at = int(np.argmax(repeated))
        raise invalid(
            f"{path}: columns {layout.id_column!r}, {layout.time_column!r}",
            "one row per (series, time)",
            f"series {first[ids[at]]!r} repeats time {times[at]!r}",
        )
    bounds = np.flatnonzero(np.diff(ids)) + 1
    series = [part.T.copy() for part in np.split(values[order].astype(np.float32), bounds)]
    labels, classes = None, None
    if layout.label_column is not None:
        per_series = frame[layout.label_column].iloc[order].groupby(ids, sort=True)
        varying = np.flatnonzero(per_series.nunique(dropna=False).to_numpy() > 1)
        if varying.size:
            raise invalid(
                f"{path}: column {layout.label_column!r}",
                "one label per series",
                f"several in series {first[varying[0]]!r}",
            )
        labels, classes = classes_of(
            per_series.first().reset_index(drop=True), f"{path}: column {layout.label_column!r}"
        )
    return SeriesFile(path, series, labels, classes, tuple(columns))


def read_series_file(path: Path, file_format: str, layout: TableLayout) -> SeriesFile:
    """Dispatch on the format; table-only options on another format are an error (they would be ignored)."""
    kind = series_format(path, file_format)
    if kind in ("ts", "npy", "npz"):
        named = layout.named
        if named:
            raise invalid(path, f"no table options for a .{kind} file", f"{sorted(named)}")
        return read_ts_file(path) if kind == "ts" else read_array_file(path, kind)
    return read_table_file(path, kind, layout)


def check_values(data: SeriesFile, allow_missing: bool) -> None:
    """Raise naming the file, series and channel of the first NaN (unless ``allow_missing``) or inf value."""
    for number, series in enumerate(data.series):
        bad = np.isinf(series) if allow_missing else ~np.isfinite(series)
        if bad.any():
            channel, sample = np.argwhere(bad)[0]
            hint = "; set allow_missing=True to read NaN as missing" if np.isnan(series[channel, sample]) else ""
            raise invalid(
                f"{data.path}: series {number}",
                f"finite values{hint}",
                f"{int(bad.sum())} non-finite value(s), first {series[channel, sample]} in channel {channel} "
                f"at sample {sample}",
            )


# --------------------------------------------------------------------------------------------- samples and batches


class SeriesSource(SampleSource):
    """Series in memory; item ``i`` is ``items[i] = (series, start)``: ``float32 (C, window)`` from ``start``, or the
    whole series when ``window`` is None."""

    def __init__(self, series: list[np.ndarray], items: Tensor, labels: Tensor, window: int | None) -> None:
        self.series = series
        self.items = items
        self.labels = labels
        self.window = window

    def load(self, index: int) -> Tensor:
        number, start = (int(value) for value in self.items[index])
        values = self.series[number]
        end = values.shape[1] if self.window is None else start + self.window
        return torch.from_numpy(values[:, start:end].copy())


class SeriesTransform:
    """Crop to the first ``length`` samples (when set), an optional normalisation (per series:
    :func:`~datamodules.recordings.normalize_window`; with fixed statistics:
    :class:`~datamodules.recordings.Standardize`), missing values (NaN) to 0, then an optional
    :class:`~datamodules.recordings.Augment`."""

    def __init__(self, length: int | None, normalize: Transform | None, augment: Augment | None = None) -> None:
        self.length = length
        self.normalize = normalize
        self.augment = augment

    def __call__(self, series: Tensor) -> Tensor:
        x = series if self.length is None else series[:, : self.length]
        x = torch.nan_to_num(x if self.normalize is None else self.normalize(x), nan=0.0)
        return x if self.augment is None else self.augment(x)


def pad_series(series: Sequence[Tensor], length: int) -> Tensor:
    """``(B, C, length)``: each ``(C, T_i)`` zero-padded at the end to ``length >= max T_i``."""
    padded = pad_sequence([values.T for values in series], batch_first=True).transpose(1, 2)
    return torch.nn.functional.pad(padded, (0, length - padded.shape[-1]))


class PadCollate:
    """Batch items of different lengths: ``x`` zero-padded to the batch's longest series (at least ``pad_to``),
    ``lengths`` long ``(B,)`` the valid samples of each; every view a :class:`~jepa_lightning.inputs.SeriesInput`
    padded the same way (views keep their series' length)."""

    def __init__(self, pad_to: int | None = None) -> None:
        self.pad_to = pad_to

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        lengths = torch.tensor([item["x"].shape[-1] for item in items], dtype=torch.long)
        length = max(int(lengths.max()), self.pad_to or 0)
        batch = {
            "x": pad_series([item["x"] for item in items], length),
            "y": torch.tensor([item["y"] for item in items], dtype=torch.long),
            "lengths": lengths,
        }
        if "views" in items[0]:
            batch["views"] = [
                SeriesInput(pad_series(views, length), lengths) for views in zip(*(item["views"] for item in items))
            ]
        return batch


# --------------------------------------------------------------------------------------------- datamodule


class TimeSeriesDataModule(SSLDataModule):
    """Generic time series for self-supervised learning; batches ``{"x": (B, C, T), "y": (B,), "lengths": (B,), ...}``.

    Args:
        path: the training file (``.ts``, CSV / TSV / Parquet, NPY / NPZ; see the module docstring). ``None``:
            GunPoint (UCR; 50 train / 150 test series of 1 x 150, 2 classes) from aeon's bundled ``.ts`` files,
            with its official test split as the test set.
        test_path: an optional held-out test file in the same form (e.g. the archive's official test split): the
            ``test`` split, so ``LinearProbeReport(eval_split="test")`` probes on it.
        file_format: "auto" (from the suffix) or one of ``ts npy npz csv tsv parquet``.
        label_column, id_column, time_column, value_columns: the columns of a table (see the module docstring);
            ``time_column`` set means the long layout.
        length: crop every sample to its first ``length`` samples and pad shorter ones to it, so every batch is
            ``(B, C, length)`` (what a patch tokenizer needs: make it a multiple of the patch length). None: each
            batch is padded to its longest series.
        window: cut every series into windows of ``window`` samples (long recordings), ``stride`` apart (default
            ``window``); a series shorter than one window is an error. Not combined with ``length``.
        stride: samples between window starts.
        min_length: the shortest series accepted (e.g. the model's patch length); shorter ones are an error.
        normalize: ``True`` / ``"series"``: zero mean and unit variance per channel of every sample (over its
            observed values); ``"dataset"``: every channel z-scored with the mean and standard deviation of all
            observed values of the training file (``path``, before windowing and cropping; train and val splits),
            as TS-JEPA's official code does with its CSV's; ``False``: the values as read.
        allow_missing: read NaN (``?`` in ``.ts`` files with ``@missing true``) as missing values, set to 0 after
            normalisation; otherwise a NaN is an error.
        scale_range, noise, crop_scale, time_mask: the view augmentation of joint-embedding methods: amplitude
            scaling, jitter, a random crop resized back to the series' length and time masking (see
            :class:`~datamodules.recordings.Augment`); ``noise=0``, ``crop_scale=None``, ``time_mask=0`` disable theirs.
        kwargs: loader, split and view settings of :class:`~datamodules.base.SSLDataModule`.
    """

    def __init__(
        self,
        path: str | None = None,
        test_path: str | None = None,
        file_format: str = "auto",
        label_column: str | None = None,
        id_column: str | None = None,
        time_column: str | None = None,
        value_columns: list[str] | None = None,
        length: int | None = None,
        window: int | None = None,
        stride: int | None = None,
        min_length: int = 1,
        normalize: bool | Literal["series", "dataset"] = True,
        allow_missing: bool = False,
        scale_range: tuple[float, float] = (0.8, 1.2),
        noise: float = 0.05,
        crop_scale: tuple[float, float] | None = (0.8, 1.0),
        time_mask: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if path is None and test_path is not None:
            raise invalid(
                "test_path", f"None with the default data set ({DEFAULT_DATASET}), or set path", repr(test_path)
            )
        if file_format != "auto" and file_format not in SERIES_FORMATS:
            raise invalid("file_format", f"'auto' or one of {list(SERIES_FORMATS)}", repr(file_format))
        for name, value in (("length", length), ("window", window), ("stride", stride)):
            if value is not None and value < 1:
                raise invalid(name, "None or an integer >= 1", repr(value))
        if length is not None and window is not None:
            raise invalid("length", "None when window is set (windows already have a fixed length)", repr(length))
        if stride is not None and window is None:
            raise invalid("stride", "None without a window", repr(stride))
        if min_length < 1:
            raise invalid("min_length", "an integer >= 1", repr(min_length))
        if normalize not in (True, False, "series", "dataset"):
            raise invalid("normalize", "True, False, 'series' or 'dataset'", repr(normalize))
        if not 0 < scale_range[0] <= scale_range[1]:
            raise invalid("scale_range", "(low, high) with 0 < low <= high", repr(scale_range))
        if noise < 0:
            raise invalid("noise", "a standard deviation >= 0", repr(noise))
        if not 0 <= time_mask < 1:
            raise invalid("time_mask", "a fraction in [0, 1)", repr(time_mask))
        self.path = path
        self.test_path = test_path
        self.file_format = file_format
        self.layout = TableLayout(
            label_column, id_column, time_column, None if value_columns is None else tuple(value_columns)
        )
        self.length = length
        self.window = window
        self.stride = stride or window
        self.min_length = min_length
        self.normalize = normalize
        self.allow_missing = allow_missing
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.noise = noise
        self.crop_scale = None if crop_scale is None else (float(crop_scale[0]), float(crop_scale[1]))
        self.time_mask = time_mask
        self.augmentation()  # checks crop_scale
        self._train_file: SeriesFile | None = None

    # ----------------------------------------------------------------- indexing

    def _read(self, path: str | Path, field: str) -> SeriesFile:
        resolved = require_path(path, field)
        data = read_series_file(resolved, self.file_format, self.layout)
        check_values(data, self.allow_missing)
        channels = {series.shape[0] for series in data.series}
        if len(channels) > 1:
            number = next(i for i, series in enumerate(data.series) if series.shape[0] != data.series[0].shape[0])
            raise invalid(
                f"{resolved}: series {number}",
                f"{data.series[0].shape[0]} channels as series 0",
                str(data.series[number].shape[0]),
            )
        return data

    def index_sources(self) -> tuple[SampleSource, SampleSource | None]:
        """Read and check the training file (GunPoint by default) and the test file; index their samples."""
        if self.path is None:
            train_path, test_path = aeon_dataset(DEFAULT_DATASET, "TRAIN"), aeon_dataset(DEFAULT_DATASET, "TEST")
        else:
            train_path, test_path = self.path, self.test_path
        train = self._read(train_path, "path")
        self._train_file = train
        test = None if test_path is None else self._read(test_path, "test_path")
        return self._index(train, train.class_names), None if test is None else self._index(test, train.class_names)

    def _index(self, data: SeriesFile, classes: tuple[str, ...] | None) -> SeriesSource:
        """Labels as class indices of the training file, the channel count of the training file, the windows."""
        reference = self._train_file
        assert reference is not None
        channels = reference.series[0].shape[0]
        if data.series[0].shape[0] != channels:
            raise invalid(data.path, f"{channels} channels as in {reference.path}", str(data.series[0].shape[0]))
        labels = np.full(len(data.series), -1, dtype=np.int64)
        if data.labels is not None:
            if classes is None:
                raise invalid(data.path, f"no labels, as the training file {reference.path} has none", "labels")
            unknown = sorted(set(data.labels) - set(classes))
            if unknown:
                raise invalid(data.path, f"labels among the training classes {list(classes)}", f"unknown {unknown[:5]}")
            lookup = {name: index for index, name in enumerate(classes)}
            labels = np.array([lookup[label] for label in data.labels], dtype=np.int64)
        lengths = np.array([series.shape[1] for series in data.series])
        shortest = max(self.min_length, self.window or 1)
        if (lengths < shortest).any():
            number = int(np.argmax(lengths < shortest))
            what = (
                f"a window of {self.window}"
                if self.window and self.window >= self.min_length
                else f"min_length={self.min_length}"
            )
            raise invalid(
                f"{data.path}: series {number}", f"at least {shortest} samples ({what})", f"{lengths[number]} samples"
            )
        if self.window is None:
            items = np.stack([np.arange(len(lengths)), np.zeros_like(lengths)], axis=1)
        else:
            assert self.stride is not None
            starts = [window_starts(int(length), self.window, self.stride) for length in lengths]
            items = np.stack(
                [np.repeat(np.arange(len(lengths)), [len(s) for s in starts]), np.concatenate(starts)], axis=1
            )
        labels = labels[items[:, 0]]
        return SeriesSource(data.series, torch.from_numpy(items).long(), torch.from_numpy(labels), self.window)

    # ----------------------------------------------------------------- what the model sees

    @property
    def train_file(self) -> SeriesFile:
        """The training file as read (indexes the data on first use)."""
        self._indexed_sources()
        assert self._train_file is not None
        return self._train_file

    @property
    def class_names(self) -> list[str] | None:
        """Classes of the training file in label order; None when unlabeled."""
        names = self.train_file.class_names
        return None if names is None else list(names)

    @property
    def input_spec(self) -> InputSpec:
        """Channels (and their names for long tables), the number of classes and the width every batch has
        (``padded_length``: ``length`` or ``window``, when set); indexes the data."""
        data = self.train_file
        return InputSpec(
            modality="time_series",
            channels=data.series[0].shape[0],
            num_classes=None if data.class_names is None else len(data.class_names),
            channel_names=data.channel_names,
            padded_length=self.length or self.window,
        )

    @cached_property
    def channel_statistics(self) -> tuple[Tensor, Tensor]:
        """Per-channel mean and standard deviation ``(channels, 1)`` of every observed value of the training file
        (population variance; a constant channel gets std 1); indexes the data on first use, and is computed once
        for the train, eval and view transforms that all normalise with it."""
        values = np.concatenate([series.astype(np.float64) for series in self.train_file.series], axis=1)
        mean = np.nanmean(values, axis=1)
        std = np.nanstd(values, axis=1)
        std = np.where(std > NORM_EPS, std, 1.0)
        return torch.from_numpy(mean[:, None].astype(np.float32)), torch.from_numpy(std[:, None].astype(np.float32))

    def normalizer(self) -> Transform | None:
        """Per-series z-scoring (``normalize`` True or "series"), the training file's statistics ("dataset"), or
        none."""
        if self.normalize == "dataset":
            return Standardize(*self.channel_statistics)
        return normalize_window if self.normalize in (True, "series") else None

    def augmentation(self) -> Augment:
        """The random part of view transforms; override to change it."""
        return Augment(self.scale_range, 0.0, self.noise, self.time_mask, self.crop_scale)

    def train_transform(self) -> Transform:
        """The sample cropped / normalised only: JEPA's randomness is in its masks."""
        return SeriesTransform(self.length, self.normalizer())

    def eval_transform(self) -> Transform:
        return SeriesTransform(self.length, self.normalizer())

    def view_transform(self) -> Transform:
        """Crop to ``length``, normalise, then crop-resize, scale, jitter and time-mask."""
        return SeriesTransform(self.length, self.normalizer(), self.augmentation())

    def _loader(self, dataset: Dataset, **kwargs: Any) -> DataLoader:
        return super()._loader(dataset, collate_fn=PadCollate(self.length), **kwargs)
