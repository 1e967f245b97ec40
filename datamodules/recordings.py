"""Recordings: multi-channel signals ``float (channels, T)`` at a sample rate, cut into fixed-length windows.

The toolkit that recording modalities (ECG, EEG, ...) share. A modality reads a file into a :class:`Recording` (its
signal in physical units, sample rate and channel names); every recording then goes through the same steps, in this
order:

1. read: the modality's reader (a :class:`Recording`),
2. select channels by name (``channels``; all channels when None),
3. check that every sample is finite,
4. resample to ``sample_rate`` (polyphase, :func:`scipy.signal.resample_poly`; the duration is kept),
5. filter (optional): a zero-phase Butterworth band-pass / high-pass / low-pass (``bandpass``),
6. cut into windows of ``window_seconds`` every ``stride_seconds`` (``window_seconds=None``: every recording whole).

Windows are then normalised per channel (``normalize``) and, for the views of joint-embedding methods, augmented
(:class:`Augment`). Steps 2-5 are :class:`SignalPipeline`; :class:`RecordingDataModule` indexes the windows,
checks that every recording agrees with the first one and keeps the training statistics. Recordings read from files
stay on disk (the last ``cached_records`` processed ones in memory); recordings given already read stay in memory.

Every recording file is read and processed (steps 1-5) while indexing, before the first training step. Bad input raises
a ValueError naming the recording: an unreadable, corrupt or truncated file, NaN/inf samples, a missing channel (the
error lists the recording's channels), recordings whose channels or sample rates differ, a recording shorter than one
window. A file that fails steps 1-5 may instead be left out with one warning listing it (``on_bad_file="skip"``, see
:func:`datamodules.base.check_files`). Nothing is repaired or dropped silently; the only samples left out are those
after a recording's last full window, which windowing does by definition.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from scipy import signal as scipy_signal
from torch import Tensor

from datamodules.base import (
    BadFilePolicy,
    SampleSource,
    SSLDataModule,
    Transform,
    check_files,
    index_class_folders,
    invalid,
    require_bad_file_policy,
    require_path,
)
from jepa_lightning.inputs import InputSpec

NORM_EPS = 1e-6
#: Per-channel normalisations of recording windows (see :class:`RecordingDataModule` ``normalize``).
Normalization = Literal["dataset", "window", "none"]
NORMALIZATIONS: tuple[str, ...] = ("dataset", "window", "none")


@dataclass(frozen=True)
class Recording:
    """One recording as read: ``signal`` float64 ``(channels, T)`` in physical units, its rate and channel names (or
    None).

    ``path`` names it in errors: its file, or e.g. ``"X.ts, trial 3"`` for one of several trials of a file."""

    path: Path | str
    signal: np.ndarray
    sample_rate: float
    channel_names: tuple[str, ...] | None


def agreeing(path: Path, field: str, stored: Any, given: Any) -> Any:
    """The metadata value stored in a file, or the one configured in ``field``; an error when both exist and differ
    (a file knows its own sample rate or channel names better than a setting that would silently override them)."""
    if stored is not None and given is not None and stored != given:
        raise invalid(path, f"{field}={given!r} as configured", f"{stored!r} stored in the file")
    return stored if stored is not None else given


# --------------------------------------------------------------------------------------------- signal processing


def select_channels(
    recording: Recording, channels: Sequence[str] | None, word: str = "channel", naming: str = "name them"
) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """The rows of ``channels`` (in that order) and their names; every row when ``channels`` is None. ``word`` names
    a row in errors (e.g. "lead" for ECG), ``naming`` says how a record without names gets them."""
    if channels is None:
        return recording.signal, recording.channel_names
    available = recording.channel_names
    if available is None:
        raise invalid(
            recording.path,
            f"{word} names to select {word}s={list(channels)} ({naming}, or set {word}s=None to keep every {word})",
            f"a record without {word} names",
        )
    missing = [name for name in channels if name not in available]
    if missing:
        raise invalid(
            recording.path, f"{word}s {list(channels)}", f"no {missing}; the record's {word}s are {list(available)}"
        )
    return recording.signal[[available.index(name) for name in channels]], tuple(channels)


def check_finite(path: Path | str, signal: np.ndarray, names: Sequence[str] | None, word: str = "channel") -> None:
    """Raise naming ``path``, the row (``word``) and the first sample when ``signal`` holds NaN or inf."""
    bad = ~np.isfinite(signal)
    if bad.any():
        row, sample = np.argwhere(bad)[0]
        name = names[row] if names is not None else str(row)
        raise invalid(path, "finite samples", f"{int(bad.sum())} NaN/inf value(s), first in {word} {name} at {sample}")


def resample(signal: np.ndarray, rate: float, target_rate: float) -> np.ndarray:
    """Polyphase resampling of ``(channels, T)`` from ``rate`` to ``target_rate`` Hz; keeps the duration:
    ``ceil(T * target_rate / rate)`` samples out (the rational ratio is exact for rates with <= 3 decimals)."""
    if rate == target_rate:
        return signal
    ratio = (Fraction(str(target_rate)) / Fraction(str(rate))).limit_denominator(1_000_000)
    return scipy_signal.resample_poly(signal, ratio.numerator, ratio.denominator, axis=-1)


def butterworth(band: tuple[float | None, float | None], rate: float, order: int, where: str | Path) -> np.ndarray:
    """Second-order sections of a Butterworth filter: band-pass ``(low, high)``, high-pass ``(low, None)`` or
    low-pass ``(None, high)``, cut-offs in Hz, checked against the Nyquist rate ``rate / 2``."""
    low, high = band
    nyquist = rate / 2
    if (low is None and high is None) or (low is not None and low <= 0) or (high is not None and high >= nyquist):
        raise invalid(where, f"bandpass cut-offs 0 < low < high < {nyquist} Hz (Nyquist at {rate} Hz)", repr(band))
    if low is not None and high is not None and low >= high:
        raise invalid(where, "bandpass (low, high) with low < high", repr(band))
    if low is None:
        return scipy_signal.butter(order, high, btype="lowpass", fs=rate, output="sos")
    if high is None:
        return scipy_signal.butter(order, low, btype="highpass", fs=rate, output="sos")
    return scipy_signal.butter(order, (low, high), btype="bandpass", fs=rate, output="sos")


def window_starts(length: int, window: int, stride: int) -> np.ndarray:
    """Start samples of every full window of ``window`` samples, ``stride`` apart, in a signal of ``length``."""
    return np.arange(0, length - window + 1, stride)


@dataclass(frozen=True)
class SignalPipeline:
    """Steps 2-5 of the module docstring for one recording as read; picklable, for DataLoader workers.

    ``channels`` selects rows by name (all when None); ``word`` names a row in errors ("channel", "lead") and
    ``naming`` says how a record without names gets them.
    """

    channels: tuple[str, ...] | None
    sample_rate: float | None
    bandpass: tuple[float | None, float | None] | None
    filter_order: int
    word: str = "channel"
    naming: str = "name them"

    def process(self, recording: Recording) -> tuple[np.ndarray, float, tuple[str, ...] | None]:
        """The processed ``float32 (channels, T)`` signal, its sample rate and channel names."""
        where = recording.path
        signal, names = select_channels(recording, self.channels, self.word, self.naming)
        check_finite(where, signal, names, self.word)
        rate = recording.sample_rate if self.sample_rate is None else self.sample_rate
        signal = resample(signal, recording.sample_rate, rate)
        if self.bandpass is not None:
            sos = butterworth(self.bandpass, rate, self.filter_order, where)
            try:
                signal = scipy_signal.sosfiltfilt(sos, signal, axis=-1)
            except ValueError as error:  # shorter than the filter's edge padding
                raise invalid(where, "a recording long enough to filter", str(error)) from error
        return np.ascontiguousarray(signal, dtype=np.float32), rate, names


@dataclass(frozen=True)
class RecordingReader:
    """Steps 1-5 for one file: ``read`` (a modality's reader, e.g. of WFDB or EDF files), then ``pipeline``.

    Picklable when ``read`` is (a module-level function or a :func:`functools.partial` of one), for DataLoader
    workers, which read again the recordings they no longer hold."""

    read: Callable[[Path], Recording]
    pipeline: SignalPipeline

    def __call__(self, path: Path) -> tuple[np.ndarray, float, tuple[str, ...] | None]:
        return self.pipeline.process(self.read(path))


# --------------------------------------------------------------------------------------------- transforms


def normalize_window(window: Tensor) -> Tensor:
    """Zero mean, unit variance per channel over time (``sqrt(var + 1e-6)``, so a flat channel stays finite).

    NaN-aware (generic time series may have missing values): mean and population variance are taken over the
    observed values, and NaN stays NaN.
    """
    mean = window.nanmean(dim=-1, keepdim=True)
    centred = window - mean
    return centred / torch.sqrt(centred.square().nanmean(dim=-1, keepdim=True) + NORM_EPS)


class Standardize:
    """``(window - mean) / std`` with fixed per-channel ``mean`` and ``std`` ``(channels, 1)`` (e.g. dataset
    statistics)."""

    def __init__(self, mean: Tensor, std: Tensor) -> None:
        self.mean = mean
        self.std = std

    def __call__(self, window: Tensor) -> Tensor:
        return (window - self.mean) / self.std


class Augment:
    """A random view of a ``(channels, T)`` window (a recording's, or any time series'), in this order:

    1. cropping (only when ``crop_scale`` is given): a random run of ``max(1, round(s * T))`` samples,
       ``s ~ U(crop_scale)``, linearly interpolated back to ``T`` samples, so a view keeps the input's length,
    2. amplitude scaling (per channel, ``U(scale_range)``),
    3. baseline shift (per channel, ``N(0, baseline_shift)``),
    4. jitter: Gaussian noise (std ``noise``),
    5. time masking: a random run of ``time_mask`` of the window set to 0 in every channel.

    Values are in signal units (e.g. mV for ECG records), or in standard deviations after normalisation. Draws from
    torch's global RNG, which the base seeds per (seed, epoch, sample)."""

    def __init__(
        self,
        scale_range: tuple[float, float],
        baseline_shift: float,
        noise: float,
        time_mask: float,
        crop_scale: tuple[float, float] | None = None,
    ) -> None:
        if crop_scale is not None and not 0 < crop_scale[0] <= crop_scale[1] <= 1:
            raise invalid("crop_scale", "None or (low, high) with 0 < low <= high <= 1", repr(crop_scale))
        self.scale_range = scale_range
        self.baseline_shift = baseline_shift
        self.noise = noise
        self.time_mask = time_mask
        self.crop_scale = crop_scale

    def crop(self, window: Tensor, crop_scale: tuple[float, float]) -> Tensor:
        """Step 1: a random crop of ``U(crop_scale)`` of the samples, resized back to the window's length."""
        length = window.shape[-1]
        low, high = crop_scale
        width = max(1, round((low + (high - low) * float(torch.rand(()))) * length))
        start = int(torch.randint(length - width + 1, ()))
        piece = window[None, :, start : start + width]
        return torch.nn.functional.interpolate(piece, size=length, mode="linear", align_corners=True)[0]

    def __call__(self, window: Tensor) -> Tensor:
        channels, length = window.shape
        if self.crop_scale is not None:
            window = self.crop(window, self.crop_scale)
        low, high = self.scale_range
        x = window * (low + (high - low) * torch.rand(channels, 1, dtype=window.dtype))
        x = x + self.baseline_shift * torch.randn(channels, 1, dtype=window.dtype)
        x = x + self.noise * torch.randn_like(x)
        width = round(self.time_mask * length)
        if width > 0:
            start = int(torch.randint(length - width + 1, ()))
            x[:, start : start + width] = 0.0
        return x


class FrameCrop:
    """A random-resized crop of a ``(channels, T)`` window seen as one image frame, EEG-VJEPA's augmentation (V-JEPA's
    ``random_resized_crop``, amir-hojjati/eeg-vjepa ``app/vjepa/transforms.py``): a box covering ``s ~ U(scale)``
    of the frame's area with aspect ``r`` (width / height, log-uniform in ``ratio``) relative to the frame's own,
    i.e. ``round(channels * sqrt(s / r))`` channels x ``round(T * sqrt(s * r))`` samples (each between 1 and the
    frame's), at a uniformly random position, resized bilinearly back to ``(channels, T)``.

    Relative, not absolute, aspect: the official box has an absolute aspect in ``ratio``, which never fits a frame
    as wide as an EEG window (19 x 500), so it always falls back to one central 19 x 26 crop. Draws from torch's
    global RNG, which the base seeds per (seed, epoch, sample)."""

    def __init__(self, scale: tuple[float, float], ratio: tuple[float, float] = (0.75, 1.35)) -> None:
        if not 0 < scale[0] <= scale[1] <= 1:
            raise invalid("frame_crop", "None or an area range (low, high) with 0 < low <= high <= 1", repr(scale))
        if not 0 < ratio[0] <= ratio[1]:
            raise invalid("frame_crop_ratio", "(low, high) with 0 < low <= high", repr(ratio))
        self.scale = (float(scale[0]), float(scale[1]))
        self.log_ratio = (math.log(ratio[0]), math.log(ratio[1]))

    def box(self, channels: int, length: int) -> tuple[int, int, int, int]:
        """A random box ``(top, left, height, width)`` of a ``channels x length`` frame."""
        low, high = self.scale
        area = low + (high - low) * float(torch.rand(()))
        ratio = math.exp(self.log_ratio[0] + (self.log_ratio[1] - self.log_ratio[0]) * float(torch.rand(())))
        height = min(channels, max(1, round(channels * math.sqrt(area / ratio))))
        width = min(length, max(1, round(length * math.sqrt(area * ratio))))
        top = int(torch.randint(channels - height + 1, ()))
        left = int(torch.randint(length - width + 1, ()))
        return top, left, height, width

    def __call__(self, window: Tensor) -> Tensor:
        """A crop of ``window`` ``(..., channels, T)``: one box for every leading index (every frame of a clip of
        stacked windows, as V-JEPA crops every frame of a clip alike)."""
        *lead, channels, length = window.shape
        top, left, height, width = self.box(channels, length)
        piece = window[..., top : top + height, left : left + width].reshape(-1, 1, height, width)
        resized = torch.nn.functional.interpolate(piece, size=(channels, length), mode="bilinear", align_corners=False)
        return resized.reshape(*lead, channels, length)


class WindowTransform:
    """An optional normalisation (e.g. :func:`normalize_window`, :class:`Standardize`), then an optional
    augmentation (:class:`Augment`, :class:`FrameCrop`)."""

    def __init__(self, normalize: Transform | None, augment: Transform | None = None) -> None:
        self.normalize = normalize
        self.augment = augment

    def __call__(self, window: Tensor) -> Tensor:
        x = window if self.normalize is None else self.normalize(window)
        return x if self.augment is None else self.augment(x)


class StackFrames:
    """A window ``(channels, T)`` as a clip of ``frames`` consecutive pieces of ``T / frames`` samples,
    ``(1, frames, channels, T / frames)`` (one plane, frames, height = channels, width = time): EEG-VJEPA's stacked
    EEG windows for a tubelet tokenizer (amir-hojjati/eeg-vjepa reads clips of consecutive ``channels x time``
    frames)."""

    def __init__(self, frames: int) -> None:
        self.frames = frames

    def __call__(self, window: Tensor) -> Tensor:
        channels, length = window.shape
        return window.reshape(channels, self.frames, length // self.frames).transpose(0, 1).unsqueeze(0).contiguous()


class Steps:
    """The given transforms (None: skipped) one after the other."""

    def __init__(self, *steps: Transform | None) -> None:
        self.steps = [step for step in steps if step is not None]

    def __call__(self, x: Any) -> Any:
        for step in self.steps:
            x = step(x)
        return x


# --------------------------------------------------------------------------------------------- sources


class RecordFiles:
    """Processed records read on demand: ``records[number]`` is ``reader(files[number])[0]``.

    The last ``cached_records`` records used are kept in memory (least-recently-used, per process), so consecutive
    windows of a long record are read and filtered once.
    """

    def __init__(self, files: list[Path], reader: Callable[[Path], tuple[np.ndarray, Any, Any]], cached: int) -> None:
        self.files = files
        self.reader = reader
        self.cached_records = cached
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def __getitem__(self, number: int) -> np.ndarray:
        if number in self._cache:
            self._cache.move_to_end(number)
            return self._cache[number]
        signal = self.reader(self.files[number])[0]
        self.remember(number, signal)
        return signal

    def remember(self, number: int, signal: np.ndarray) -> None:
        """Put a processed record into the cache, evicting the least recently used beyond ``cached_records``."""
        if self.cached_records < 1:
            return
        self._cache[number] = signal
        while len(self._cache) > self.cached_records:
            self._cache.popitem(last=False)


class RecordWindowSource(SampleSource):
    """Windows of numbered records: item ``i`` is ``windows[i] = (record, start)``, ``float32 (channels,
    window_length)``.

    ``records[number]`` gives a processed record ``(channels, T)``: a :class:`RecordFiles` (read from disk on demand)
    or a list of arrays held in memory (e.g. the trials of a UEA ``.ts`` file).
    """

    def __init__(
        self, records: RecordFiles | list[np.ndarray], windows: Tensor, labels: Tensor, window_length: int
    ) -> None:
        self.records = records
        self.windows = windows
        self.labels = labels
        self.window_length = window_length

    def load(self, index: int) -> Tensor:
        number, start = (int(value) for value in self.windows[index])
        return torch.from_numpy(self.records[number][:, start : start + self.window_length].copy())


#: One processed recording for indexing: where it came from (for errors), its signal, sample rate and channel names.
Processed = tuple[Path | str, np.ndarray, float, tuple[str, ...] | None]


# --------------------------------------------------------------------------------------------- datamodules


class RecordingDataModule(SSLDataModule):
    """Windows of multi-channel recordings for self-supervised learning; batches ``{"x": (B, channels, T), "y": (B,),
    ...}``. The base of the recording modalities (e.g. :class:`~datamodules.ecg.ECGDataModule`,
    :class:`~datamodules.eeg.EEGDataModule`).

    Subclasses say how to find and read their recordings (:meth:`index_sources`, :meth:`is_record`,
    :meth:`record_path`, ``record_kinds``), the name of a row (``word``, "channel" unless e.g. "lead") and the
    ``modality`` of their :class:`InputSpec`; they build sources with :meth:`index_files` (recordings read from disk,
    cached) or :meth:`index_in_memory` (recordings already in memory). Every recording is checked against the first
    one (sample rate, channel count and names) and cut into windows; per-channel statistics of the training
    recordings are kept for dataset normalisation.

    Args:
        path: the recordings: a folder (class sub-folders give labels, sorted names -> 0..K-1; a flat folder is
            unlabeled, -1), one file or a list of files (unlabeled); ``None``: the subclass's default data. Which
            files are recordings (``record_kinds``) is the subclass's.
        test_path: an optional held-out test set, in the form of ``path``: the ``test`` split
            (``LinearProbeReport(eval_split="test")`` scores on it).
        channels: channel names to keep, in this order; None keeps every channel, and then all recordings must have
            the same channels.
        sample_rate: resample every recording to this rate (Hz); None keeps the recordings' rate, which must then be
            the same in all.
        window_seconds: length of a window (a sample), cut every ``stride_seconds`` from each recording; recordings
            shorter than one window are an error. None takes every recording whole as one sample (all recordings
            must then have the same length).
        stride_seconds: distance between window starts; None: ``window_seconds`` (non-overlapping).
        bandpass: optional zero-phase Butterworth filter ``(low, high)`` in Hz at ``sample_rate``; ``(low, None)``
            is a high-pass, ``(None, high)`` a low-pass. None: no filtering.
        filter_order: Butterworth order (applied forwards and backwards, so the effective order doubles).
        normalize: per-channel normalisation of every window: ``"dataset"`` subtracts each channel's mean and
            divides by its standard deviation over all training recordings (``path``), which keeps differences in
            amplitude between recordings and windows; ``"window"`` z-scores each window per channel (only its shape
            remains); ``"none"`` keeps the recordings' units.
        scale_range, baseline_shift, noise, time_mask: the view augmentation of joint-embedding methods (see
            :class:`Augment`), in the units of the normalised windows; ``baseline_shift``/``noise`` 0 and
            ``time_mask`` 0 disable theirs.
        frame_crop: the area range of a random-resized crop of the training ``x`` seen as a (channel, time) image
            (:class:`FrameCrop`, EEG-VJEPA's augmentation, e.g. ``(0.3, 1.0)``); None (default): ``x`` as is, JEPA's
            randomness then being in its masks only. Views of joint-embedding methods are not cropped.
        frame_crop_ratio: the range of the crop's width / height relative to the frame's (log-uniform).
        frames: None (default): ``x`` is the window ``(channels, T)``. An integer: the window (``window_seconds``, or
            the whole recording) cut into ``frames`` consecutive pieces stacked as the frames of a clip, ``x``
            ``(1, frames, channels, T / frames)`` (:class:`StackFrames`, EEG-VJEPA's layout for tubelets); the
            :class:`InputSpec` then has ``channels=1``, ``image_size=(channels, T / frames)`` and ``frames``, and the
            window length must be divisible by ``frames``. ``frame_crop`` then crops every frame of a clip alike; views
            are augmented before stacking.
        cached_records: processed recordings read from files kept in memory per process.
        on_bad_file: what indexing does with a recording file that fails steps 1-5 (unreadable, corrupt, truncated,
            NaN/inf samples, a missing channel): ``"error"`` raises naming it, ``"skip"`` leaves it out with one
            warning listing every skipped file (a class left without recordings is an error). Recordings that
            disagree with the first one or are shorter than one window always raise.
        kwargs: loader, split and view settings of :class:`~datamodules.base.SSLDataModule`.
    """

    #: The :class:`InputSpec` modality ("eeg"), the name of a row ("channel", "lead") and of a record file, and how a
    #: record without row names gets them, for errors.
    modality: ClassVar[str]
    word: ClassVar[str] = "channel"
    record_kinds: ClassVar[str]
    naming: ClassVar[str] = "name them"

    def __init__(
        self,
        path: str | list[str] | None = None,
        test_path: str | list[str] | None = None,
        channels: list[str] | None = None,
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
        frame_crop: tuple[float, float] | None = None,
        frame_crop_ratio: tuple[float, float] = (0.75, 1.35),
        frames: int | None = None,
        cached_records: int = 16,
        on_bad_file: BadFilePolicy = "error",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        plural = f"{self.word}s"
        if normalize not in NORMALIZATIONS:
            raise invalid("normalize", f"one of {NORMALIZATIONS}", repr(normalize))
        if channels is not None and (not channels or len(set(channels)) != len(channels)):
            raise invalid(plural, f"None or a non-empty list of distinct {self.word} names", repr(channels))
        if sample_rate is not None and sample_rate <= 0:
            raise invalid("sample_rate", "None or a rate > 0 Hz", repr(sample_rate))
        if window_seconds is not None and window_seconds <= 0:
            raise invalid("window_seconds", "None (whole recordings) or a duration > 0", repr(window_seconds))
        if stride_seconds is not None and stride_seconds <= 0:
            raise invalid("stride_seconds", "None or a duration > 0", repr(stride_seconds))
        if filter_order < 1:
            raise invalid("filter_order", "an integer >= 1", repr(filter_order))
        if bandpass is not None and sample_rate is not None:
            butterworth(tuple(bandpass), sample_rate, filter_order, "bandpass")  # type: ignore[arg-type]
        if not 0 < scale_range[0] <= scale_range[1]:
            raise invalid("scale_range", "(low, high) with 0 < low <= high", repr(scale_range))
        if baseline_shift < 0 or noise < 0:
            raise invalid("baseline_shift/noise", "standard deviations >= 0", repr((baseline_shift, noise)))
        if not 0 <= time_mask < 1:
            raise invalid("time_mask", "a fraction in [0, 1)", repr(time_mask))
        if frames is not None and frames < 1:
            raise invalid("frames", "None (windows as they are) or a number of frames >= 1", repr(frames))
        if cached_records < 0:
            raise invalid("cached_records", "an integer >= 0", repr(cached_records))
        require_bad_file_policy(on_bad_file)
        self.path = path
        self.test_path = test_path
        self.channels = None if channels is None else list(channels)
        self.sample_rate = None if sample_rate is None else float(sample_rate)
        self.window_seconds = None if window_seconds is None else float(window_seconds)
        self.stride_seconds = float(stride_seconds) if stride_seconds is not None else self.window_seconds
        self.bandpass = None if bandpass is None else (bandpass[0], bandpass[1])
        self.filter_order = filter_order
        self.normalize = normalize
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.baseline_shift = baseline_shift
        self.noise = noise
        self.time_mask = time_mask
        self.frame_crop = None if frame_crop is None else (float(frame_crop[0]), float(frame_crop[1]))
        self.frame_crop_ratio = (float(frame_crop_ratio[0]), float(frame_crop_ratio[1]))
        if self.frame_crop is not None:
            FrameCrop(self.frame_crop, self.frame_crop_ratio)  # checks both
        self.frames = frames
        self.cached_records = cached_records
        self.on_bad_file = on_bad_file
        self._rate: float | None = self.sample_rate
        self._names: tuple[str, ...] | None = None
        self._num_channels: int | None = None
        self._first_record: str | None = None
        self._whole_length: int | None = None
        self._class_names: list[str] | None = None
        self._num_classes: int | None = None
        self._moments: tuple[int, np.ndarray, np.ndarray] | None = None  # count, mean, sum of squared deviations

    # ----------------------------------------------------------------- finding records

    @property
    def pipeline(self) -> SignalPipeline:
        """Steps 2-5 (selection, checks, resampling, filtering) with this datamodule's settings."""
        return SignalPipeline(
            channels=None if self.channels is None else tuple(self.channels),
            sample_rate=self.sample_rate,
            bandpass=self.bandpass,
            filter_order=self.filter_order,
            word=self.word,
            naming=self.naming,
        )

    @abstractmethod
    def is_record(self, path: Path) -> bool:
        """Whether a file of a folder is a recording (``record_kinds``)."""

    def record_path(self, entry: str, field: str) -> Path:
        """A listed recording: an existing file."""
        return require_path(entry, field)

    def record_files(self, path: str | list[str] | Path, field: str) -> tuple[list[Path], list[int]]:
        """The recordings of ``path`` (a folder with or without class sub-folders, a file or a list) and labels."""
        if isinstance(path, (list, tuple)):
            if not path:
                raise invalid(field, "a folder, a record file or a non-empty list of records", "an empty list")
            files = [self.record_path(str(entry), field) for entry in path]
            return files, [-1] * len(files)
        resolved = path if isinstance(path, Path) else self.record_path(path, field)
        if not resolved.is_dir():
            return [resolved], [-1]
        files, labels, names = index_class_folders(
            resolved, self.is_record, self.record_kinds, self._class_names, field == "test_path"
        )
        if names is not None and field == "path":
            self.set_classes(names)
        return files, labels

    def set_classes(self, names: list[str]) -> None:
        """The class names of the training data, in label order."""
        self._class_names = names
        self._num_classes = len(names)

    # ----------------------------------------------------------------- indexing windows

    def index_files(
        self, files: list[Path], labels: list[int], read: Callable[[Path], Recording], field: str
    ) -> RecordWindowSource:
        """Read every file with ``read`` (step 1; picklable, see :class:`RecordingReader`), process and check it and
        index its windows; recordings stay on disk, the last ``cached_records`` in memory. Files are read one at a
        time (a whole recording can be large), bad ones handled as ``on_bad_file`` says."""
        reader = RecordingReader(read, self.pipeline)
        kept: list[Path] = []
        records = RecordFiles(kept, reader, self.cached_records)

        def recordings() -> Iterable[tuple[Processed, int]]:
            for position, processed in check_files(files, reader, self.on_bad_file, field, labels, self._class_names):
                kept.append(files[position])  # the record numbers of _index count the kept files
                yield (files[position], *processed), labels[position]

        return self._index(records, recordings(), records.remember, field)

    def index_in_memory(self, recordings: Iterable[tuple[Processed, int]], field: str) -> RecordWindowSource:
        """Check and index the windows of processed recordings, given with their labels; they are kept in memory."""
        records: list[np.ndarray] = []
        return self._index(records, recordings, lambda _, signal: records.append(signal), field)

    def _index(
        self,
        records: RecordFiles | list[np.ndarray],
        recordings: Iterable[tuple[Processed, int]],
        keep: Callable[[int, np.ndarray], None],
        field: str,
    ) -> RecordWindowSource:
        windows: list[np.ndarray] = []
        labels: list[int] = []
        for number, ((where, signal, rate, names), label) in enumerate(recordings):
            self._check_consistent(where, signal, rate, names)
            window, stride = self.window_length, self.stride_length
            if self.window_seconds is None and signal.shape[1] != window:
                raise invalid(
                    where,
                    f"{window} samples like {self._first_record} (window_seconds=None takes every recording whole as "
                    "one sample); set window_seconds to cut windows",
                    f"{signal.shape[1]} samples",
                )
            if signal.shape[1] < window:
                raise invalid(
                    where,
                    f"at least one window of {self.window_seconds} s ({window} samples at {rate} Hz)",
                    f"{signal.shape[1]} samples ({signal.shape[1] / rate:.3f} s)",
                )
            starts = window_starts(signal.shape[1], window, stride)
            windows.append(np.stack([np.full_like(starts, number), starts], axis=1))
            labels += [label] * len(starts)
            if field == "path":
                self._accumulate_moments(signal)
            keep(number, signal)
        if not windows:
            raise invalid(field, "at least one recording", "none")
        return RecordWindowSource(
            records,
            torch.from_numpy(np.concatenate(windows)).long(),
            torch.tensor(labels, dtype=torch.long),
            self.window_length,
        )

    def _check_consistent(
        self, where: Path | str, signal: np.ndarray, rate: float, names: tuple[str, ...] | None
    ) -> None:
        """Every recording must match the first one's sample rate, channel count and channel names."""
        if self._first_record is None:
            self._first_record = where.name if isinstance(where, Path) else where
            self._rate, self._num_channels, self._names = rate, signal.shape[0], names
            self._whole_length = signal.shape[1]
            return
        if rate != self._rate:
            raise invalid(
                where,
                f"the sample rate of {self._first_record} ({self._rate} Hz); set sample_rate to resample all",
                f"{rate} Hz",
            )
        if signal.shape[0] != self._num_channels or names != self._names:
            word, first = self.word, self._first_record
            common = [name for name in self._names or () if name in (names or ())]
            hint = f"set {word}s={common or '[...]'} to keep the same {word}s from every record"
            if names is None or self._names is None:
                unnamed = "this record" if names is None else first
                hint = f"{unnamed} has no {word} names: {self.naming}, then {hint}"
            raise invalid(
                where,
                f"the {word}s of {first}: {self._num_channels} {list(self._names or [])}",
                f"{signal.shape[0]} {list(names or [])}; {hint}",
            )

    def _accumulate_moments(self, signal: np.ndarray) -> None:
        """Merge one training record into the running per-channel count, mean and squared deviations (Chan et al.)."""
        count = signal.shape[1]
        mean = signal.mean(axis=1, dtype=np.float64)
        squares = np.square(signal - mean[:, None], dtype=np.float64).sum(axis=1)
        if self._moments is None:
            self._moments = (count, mean, squares)
            return
        total, total_mean, total_squares = self._moments
        delta = mean - total_mean
        merged = total + count
        self._moments = (
            merged,
            total_mean + delta * count / merged,
            total_squares + squares + delta**2 * total * count / merged,
        )

    # ----------------------------------------------------------------- what the model sees

    @property
    def record_sample_rate(self) -> float:
        """The sample rate of every window (Hz): ``sample_rate``, or the records' own (indexes the data)."""
        if self._rate is None:
            self._indexed_sources()
        assert self._rate is not None
        return self._rate

    @property
    def window_length(self) -> int:
        """Samples per window: ``window_seconds`` at the sample rate, or the recordings' length when None."""
        if self.window_seconds is None:
            if self._whole_length is None:
                self._indexed_sources()
            assert self._whole_length is not None
            return self._whole_length
        return round(self.window_seconds * self.record_sample_rate)

    @property
    def stride_length(self) -> int:
        """Samples between window starts (at least 1)."""
        if self.stride_seconds is None:
            return self.window_length
        return max(1, round(self.stride_seconds * self.record_sample_rate))

    @property
    def channel_names(self) -> tuple[str, ...] | None:
        """Names of the rows of ``x`` (None when the records carry none); indexes the data on first use."""
        self._indexed_sources()
        return self._names

    @property
    def channel_statistics(self) -> tuple[Tensor, Tensor]:
        """Per-channel mean and standard deviation ``(channels, 1)`` over every sample of the training recordings
        (``path``: train and val splits; a constant channel gets std 1); indexes the data on first use."""
        self._indexed_sources()
        assert self._moments is not None
        count, mean, squares = self._moments
        std = np.sqrt(squares / count)
        std = np.where(std > NORM_EPS, std, 1.0)
        return (
            torch.from_numpy(mean[:, None].astype(np.float32)),
            torch.from_numpy(std[:, None].astype(np.float32)),
        )

    @property
    def input_spec(self) -> InputSpec:
        """Channels, their names, the sample rate and the number of classes; indexes the data."""
        self._indexed_sources()
        assert self._num_channels is not None
        if self.frames is None:
            return InputSpec(
                modality=self.modality,
                channels=self._num_channels,
                sample_rate=self.record_sample_rate,
                num_classes=self._num_classes,
                channel_names=self._names,
                length=self.window_length,
            )
        return InputSpec(
            modality=self.modality,
            channels=1,
            image_size=(self._num_channels, self.frame_length),
            frames=self.frames,
            sample_rate=self.record_sample_rate,
            num_classes=self._num_classes,
            channel_names=self._names,
            length=self.frame_length,
        )

    @property
    def frame_length(self) -> int:
        """Samples per frame of a clip (``frames`` set): the window length / ``frames``, which must divide it."""
        assert self.frames is not None
        if self.window_length % self.frames:
            raise invalid(
                "frames",
                f"a number of frames that divides the window of {self.window_length} samples",
                f"{self.frames} (pick a divisor, or change window_seconds / sample_rate)",
            )
        return self.window_length // self.frames

    def stacked(self) -> StackFrames | None:
        """The window -> clip step when ``frames`` is set (checks that it divides the window), else None."""
        if self.frames is None:
            return None
        return StackFrames(self.window_length // self.frame_length)  # frame_length checks that frames divides it

    @property
    def class_names(self) -> list[str] | None:
        """Class names in label order; None when unlabeled."""
        self._indexed_sources()
        return self._class_names

    def normalizer(self) -> Transform | None:
        """Per-channel standardisation with the training statistics (``normalize="dataset"``), per-window z-scoring
        (``"window"``), or none."""
        if self.normalize == "dataset":
            return Standardize(*self.channel_statistics)
        return normalize_window if self.normalize == "window" else None

    def augmentation(self) -> Augment:
        """The random part of view transforms; override to change it."""
        return Augment(self.scale_range, self.baseline_shift, self.noise, self.time_mask)

    def train_transform(self) -> Transform:
        """The window (normalised when asked), randomly frame-cropped when ``frame_crop`` is set; otherwise as is,
        JEPA's randomness being in its masks."""
        crop = None if self.frame_crop is None else FrameCrop(self.frame_crop, self.frame_crop_ratio)
        if self.frames is not None:
            return Steps(self.normalizer(), self.stacked(), crop)
        return WindowTransform(self.normalizer(), crop)

    def eval_transform(self) -> Transform:
        if self.frames is not None:
            return Steps(self.normalizer(), self.stacked())
        return WindowTransform(self.normalizer())

    def view_transform(self) -> Transform:
        """Normalisation (when asked), then scaling, baseline shift, noise and time masking (then the stacking into
        frames, when ``frames`` is set)."""
        if self.frames is not None:
            return Steps(self.normalizer(), self.augmentation(), self.stacked())
        return WindowTransform(self.normalizer(), self.augmentation())
