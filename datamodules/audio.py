"""Audio: WAV / FLAC / OGG files -> fixed-length mono waveforms ``float (1, T)`` at ``sample_rate``.

Every file goes through the same steps, in this order:

1. read with ``soundfile`` (``float32``, every channel),
2. check: readable, complete (as many frames as the header declares; a WAV file's ``data`` chunk all there), not
   empty, finite samples, not silent (all zeros), at least ``min_seconds`` long,
3. mix down to mono (the mean of the channels),
4. resample to ``sample_rate`` (polyphase, :func:`datamodules.recordings.resample`; the duration is kept).

Transforms then bring a clip to ``clip_seconds``: a random crop for training and views, a centre crop for
evaluation; a clip shorter than that is zero-padded at the end. The log-mel front end is not here: it runs in
the tokenizer (:class:`~jepa_lightning.tokenizers.LogMelPatchTokenizer`), on the device.

Every file is read and checked while indexing (in parallel), before the first training step. Bad files (step 2, or
a listed file that does not exist) are handled as ``on_bad_file`` says (:func:`datamodules.base.check_files`):
``"error"`` (the default) raises a ValueError naming the file and what is wrong; ``"skip"`` leaves them out and warns
once, listing every skipped file with its reason. Nothing else is dropped or repaired.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch
from torch import Tensor

from datamodules.base import (
    CHECK_WORKERS,
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
from datamodules.recordings import Augment, resample
from jepa_lightning.inputs import InputSpec

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
MANIFEST_EXTENSION = ".csv"
#: Debian's ``klettres-data``: spoken letters and syllables, ``<language>/{alpha,syllab}/*.ogg``.
KLETTRES_ROOT = Path("/usr/share/klettres")
#: A WAV data chunk size that streaming writers leave when they cannot seek back to fill it in.
WAV_UNKNOWN_SIZE = 0xFFFFFFFF


# --------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class ClipReader:
    """Reads one file and runs steps 1-4 of the module docstring; picklable, for DataLoader workers."""

    sample_rate: int
    min_seconds: float

    def __call__(self, path: Path) -> np.ndarray:
        """The mono clip ``float32 (1, T)`` at ``sample_rate``; a ValueError naming ``path`` when it is bad."""
        if not path.is_file():
            raise invalid(path, "an existing audio file", "nothing there")
        try:
            with soundfile.SoundFile(path) as handle:
                declared, rate = handle.frames, handle.samplerate
                frames = handle.read(dtype="float32", always_2d=True)
        except (RuntimeError, OSError) as error:  # soundfile.LibsndfileError is a RuntimeError
            raise invalid(path, "a readable WAV/FLAC/OGG file", f"{type(error).__name__}: {error}") from error
        if frames.shape[0] < declared:
            raise invalid(path, f"{declared} frames as its header declares", f"{frames.shape[0]} (truncated)")
        check_wav_data(path)
        if frames.shape[0] == 0:
            raise invalid(path, "at least one audio frame", "an empty file")
        if not np.isfinite(frames).all():
            raise invalid(path, "finite samples", f"{int((~np.isfinite(frames)).sum())} NaN/inf value(s)")
        if not frames.any():
            raise invalid(path, "a clip with sound", "silence (every sample is 0)")
        if frames.shape[0] < self.min_seconds * rate:
            raise invalid(
                path, f"a clip of at least min_seconds={self.min_seconds} s", f"{frames.shape[0] / rate:.3f} s"
            )
        mono = frames.mean(axis=1, dtype=np.float32)[None]
        return np.ascontiguousarray(resample(mono, rate, self.sample_rate), dtype=np.float32)


def check_wav_data(path: Path) -> None:
    """Raise naming ``path`` when a WAV file holds fewer bytes of audio than its ``data`` chunk declares.

    libsndfile reads a truncated WAV as a shorter clip without an error; this compares the header with the file size.
    Other files (FLAC, Ogg, RIFF variants such as RF64) are left to their decoders.
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        header = handle.read(12)
        if header[:4] != b"RIFF" or header[8:] != b"WAVE":
            return
        while handle.tell() + 8 <= size:
            chunk, length = handle.read(4), int.from_bytes(handle.read(4), "little")
            if chunk == b"data":
                present = size - handle.tell()
                if length != WAV_UNKNOWN_SIZE and present < length:
                    raise invalid(
                        path, f"{length} bytes of audio data as its WAV header declares", f"{present} (truncated)"
                    )
                return
            handle.seek(length + length % 2, 1)


def read_manifest(manifest: Path) -> tuple[list[Path], list[str | None]]:
    """Files and label names (None where a row has none) of a CSV with a ``path`` and an optional ``label`` column.

    Relative paths resolve against the CSV's folder. An empty manifest or an empty ``path`` cell is an error.
    """
    try:
        with manifest.open(newline="", encoding="utf-8") as handle:
            table = csv.DictReader(handle)
            rows = list(table)
            columns = list(table.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise invalid(manifest, "a readable UTF-8 CSV manifest", f"{type(error).__name__}: {error}") from error
    if "path" not in columns:
        raise invalid(manifest, "a header row naming a 'path' column (and optionally 'label')", f"columns {columns}")
    if not rows:
        raise invalid(manifest, "at least one file listed", "a header row only")
    files: list[Path] = []
    names: list[str | None] = []
    for line, row in enumerate(rows, start=2):
        entry = (row["path"] or "").strip()
        if not entry:
            raise invalid(f"{manifest}, line {line}", "a file in the 'path' column", "an empty cell")
        path = Path(entry).expanduser()
        files.append(path if path.is_absolute() else manifest.parent / path)
        names.append((row.get("label") or "").strip() or None)
    return files, names


def label_indices(
    names: list[str | None], known: list[str] | None, held_out: bool, where: Path
) -> tuple[list[int], list[str] | None]:
    """Labels (sorted distinct names -> 0..K-1, None -> -1) and the class names (None when nothing is labeled).

    A held-out set (``held_out``) uses the training set's classes ``known``.
    """
    found = sorted({name for name in names if name is not None})
    if not found:
        return [-1] * len(names), None
    classes = known if held_out else found
    if classes is None:
        raise invalid(where, "no labels, as the training set has none", f"labels {found}")
    unknown = [name for name in found if name not in classes]
    if unknown:
        raise invalid(where, f"labels of the training set {classes}", f"unknown label(s) {unknown}")
    return [-1 if name is None else classes.index(name) for name in names], classes


def is_audio(path: Path) -> bool:
    """A visible WAV / FLAC / OGG file."""
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in AUDIO_EXTENSIONS


def index_klettres(root: Path) -> tuple[list[Path], list[int], list[str]]:
    """Files, language labels and language names of klettres-data: every top-level folder holding audio files
    is a language (the package also has folders of pictures and languages without recordings, left out)."""
    languages = {
        folder.name: sorted(entry for entry in folder.rglob("*") if is_audio(entry))
        for folder in sorted(root.iterdir())
        if folder.is_dir()
    }
    names = [name for name, files in languages.items() if files]
    if not names:
        raise invalid(root, "klettres-data's <language>/{alpha,syllab}/*.ogg recordings", "no audio files")
    files = [file for name in names for file in languages[name]]
    labels = [number for number, name in enumerate(names) for _ in languages[name]]
    return files, labels, names


# --------------------------------------------------------------------------------------------- transforms


def crop_or_pad(clip: Tensor, length: int, start: int) -> Tensor:
    """``length`` samples of ``clip`` ``(1, T)`` from ``start``; zeros after the end of a shorter clip."""
    window = clip[:, start : start + length]
    if window.shape[-1] == length:
        return window
    return torch.nn.functional.pad(window, (0, length - window.shape[-1]))


def time_shift(clip: Tensor, shift: int) -> Tensor:
    """``clip`` ``(1, T)`` delayed by ``shift`` samples (advanced when negative), zeros filling the gap."""
    shifted = torch.zeros_like(clip)
    if shift >= 0:
        shifted[:, shift:] = clip[:, : clip.shape[-1] - shift]
    else:
        shifted[:, :shift] = clip[:, -shift:]
    return shifted


def zero_band(clip: Tensor, start: int, width: int) -> Tensor:
    """``clip`` ``(1, T)`` without rfft bins ``start .. start + width - 1`` (bin ``k`` is ``k / T`` cycles per
    sample): the spectrum zeroed there and transformed back to ``T`` samples of the clip's dtype."""
    spectrum = torch.fft.rfft(clip)
    spectrum[..., start : start + width] = 0
    return torch.fft.irfft(spectrum, n=clip.shape[-1]).to(clip.dtype)


class ClipTransform:
    """A clip brought to ``length`` samples: a random crop (``random_crop``; torch's global RNG, which the base
    seeds per (seed, epoch, sample)) or the centre crop, then an optional random time shift of up to
    ``max_shift`` samples either way, an optional :class:`~datamodules.recordings.Augment` (gain, noise, time mask) and
    optional frequency masking (SpecAugment-style, on the waveform): a contiguous band of ``round(u * bins)`` of
    the clip's rfft bins, ``u ~ U(0, frequency_mask)``, at a uniform position, zeroed (:func:`zero_band`)."""

    def __init__(
        self,
        length: int,
        random_crop: bool,
        max_shift: int = 0,
        augment: Augment | None = None,
        frequency_mask: float = 0.0,
    ) -> None:
        self.length = length
        self.random_crop = random_crop
        self.max_shift = max_shift
        self.augment = augment
        self.frequency_mask = frequency_mask

    def __call__(self, clip: Tensor) -> Tensor:
        spare = max(clip.shape[-1] - self.length, 0)
        start = int(torch.randint(spare + 1, ())) if self.random_crop else spare // 2
        x = crop_or_pad(clip, self.length, start)
        if self.max_shift > 0:
            x = time_shift(x, int(torch.randint(-self.max_shift, self.max_shift + 1, ())))
        if self.augment is not None:
            x = self.augment(x)
        if self.frequency_mask > 0:
            bins = self.length // 2 + 1
            width = round(float(torch.rand(())) * self.frequency_mask * bins)
            start = int(torch.randint(bins - width + 1, ()))
            if width > 0:
                x = zero_band(x, start, width)
        return x


# --------------------------------------------------------------------------------------------- source


class AudioClipSource(SampleSource):
    """Whole processed clips ``float32 (1, T)``, read on demand, or kept in memory once read when ``cache``."""

    def __init__(self, files: list[Path], labels: Tensor, reader: ClipReader, cache: bool) -> None:
        self.files = files
        self.labels = labels
        self.reader = reader
        self.cache = cache
        self._clips: dict[int, np.ndarray] = {}

    def remember(self, index: int, clip: np.ndarray) -> None:
        """Keep a processed clip (when caching), so indexing's read is not repeated."""
        if self.cache:
            self._clips[index] = clip

    def load(self, index: int) -> Tensor:
        clip = self._clips.get(index)
        if clip is None:
            clip = self.reader(self.files[index])
            self.remember(index, clip)
        return torch.from_numpy(clip)


# --------------------------------------------------------------------------------------------- datamodule


class AudioDataModule(SSLDataModule):
    """Audio clips for self-supervised learning; batches ``{"x": (B, 1, T), "y": (B,), ...}``, ``T`` =
    ``clip_seconds * sample_rate``.

    Args:
        path: a folder of WAV/FLAC/OGG files (class sub-folders give labels, sorted names -> 0..K-1, searched
            recursively; a flat folder is unlabeled, -1) or a CSV manifest (a ``path`` column, relative paths
            resolving against the CSV's folder, and an optional ``label`` column of class names; an empty cell is
            unlabeled). ``None``: Debian's ``klettres-data`` (``/usr/share/klettres``: 1,836 spoken letters and
            syllables, labeled by their language, 20 languages).
        test_path: an optional held-out test set, in the form of ``path`` (with the training set's classes).
        sample_rate: every clip is resampled to this rate (Hz).
        clip_seconds: length of ``x``: longer clips are cropped (randomly for training, centred for evaluation),
            shorter ones zero-padded at the end.
        min_seconds: clips shorter than this (before padding) are bad files.
        on_bad_file: ``"error"`` raises naming the file; ``"skip"`` leaves bad files out with one warning listing
            them and why. Bad: unreadable, truncated, empty, NaN/inf samples, silent (all zeros), shorter than
            ``min_seconds``, or (manifests) missing. A class left without a usable file is an error.
        gain_range: view augmentation: the clip is scaled by ``U(gain_range)``.
        noise: view augmentation: standard deviation of added Gaussian noise (full scale is 1); 0 disables it.
        max_shift_seconds: view augmentation: a random delay or advance of up to this much, filled with zeros.
        time_mask: view augmentation: a random run of this fraction of the clip set to 0 (SpecAugment-style time
            masking, on the waveform); 0 disables it.
        frequency_mask: view augmentation: a random contiguous band of up to this fraction of the clip's spectrum
            (its rfft bins, uniform width in [0, frequency_mask]) set to 0 (SpecAugment-style frequency masking, on
            the waveform); 0 disables it.
        cache: keep every processed clip in memory after its first read (made during indexing): no decoding or
            resampling after that, at the cost of ``4 * sample_rate`` bytes per second of audio per process.
        kwargs: loader, split and view settings of :class:`~datamodules.base.SSLDataModule`.
    """

    def __init__(
        self,
        path: str | None = None,
        test_path: str | None = None,
        sample_rate: int = 16_000,
        clip_seconds: float = 10.0,
        min_seconds: float = 0.0,
        on_bad_file: BadFilePolicy = "error",
        gain_range: tuple[float, float] = (0.5, 1.5),
        noise: float = 0.005,
        max_shift_seconds: float = 0.1,
        time_mask: float = 0.0,
        frequency_mask: float = 0.15,
        cache: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if sample_rate <= 0:
            raise invalid("sample_rate", "a rate > 0 Hz", repr(sample_rate))
        if clip_seconds <= 0 or round(clip_seconds * sample_rate) < 1:
            raise invalid("clip_seconds", "a duration of at least one sample", repr(clip_seconds))
        if min_seconds < 0:
            raise invalid("min_seconds", "a duration >= 0", repr(min_seconds))
        require_bad_file_policy(on_bad_file)
        if not 0 < gain_range[0] <= gain_range[1]:
            raise invalid("gain_range", "(low, high) with 0 < low <= high", repr(gain_range))
        if noise < 0:
            raise invalid("noise", "a standard deviation >= 0", repr(noise))
        if not 0 <= max_shift_seconds < clip_seconds:
            raise invalid(
                "max_shift_seconds", f"a duration in [0, clip_seconds={clip_seconds})", f"{max_shift_seconds}"
            )
        if not 0 <= time_mask < 1:
            raise invalid("time_mask", "a fraction in [0, 1)", repr(time_mask))
        if not 0 <= frequency_mask <= 1:
            raise invalid("frequency_mask", "a fraction in [0, 1]", repr(frequency_mask))
        self.path = path
        self.test_path = test_path
        self.sample_rate = int(sample_rate)
        self.clip_seconds = float(clip_seconds)
        self.min_seconds = float(min_seconds)
        self.on_bad_file = on_bad_file
        self.gain_range = (float(gain_range[0]), float(gain_range[1]))
        self.noise = noise
        self.max_shift_seconds = float(max_shift_seconds)
        self.time_mask = time_mask
        self.frequency_mask = frequency_mask
        self.cache = cache
        self._class_names: list[str] | None = None

    # ----------------------------------------------------------------- indexing

    @property
    def reader(self) -> ClipReader:
        """What reads and processes one file with this datamodule's settings."""
        return ClipReader(self.sample_rate, self.min_seconds)

    def index_sources(self) -> tuple[SampleSource, SampleSource | None]:
        """Read and check every file of ``path`` (or klettres-data) and ``test_path``."""
        train = self._index(*self._files(self.path, "path"), "path")
        test = None if self.test_path is None else self._index(*self._files(self.test_path, "test_path"), "test_path")
        return train, test

    def _files(self, path: str | None, field: str) -> tuple[list[Path], list[int]]:
        """Files and labels of a folder, a manifest or (``path=None``) klettres-data; sets the class names."""
        held_out = field == "test_path"
        if path is None:
            if not KLETTRES_ROOT.is_dir():
                raise FileNotFoundError(
                    f"path=None uses Debian's spoken letters in {KLETTRES_ROOT}, which is not there: install them "
                    "with `apt-get install klettres-data`, or pass path= (a folder of WAV/FLAC/OGG files or a CSV "
                    "manifest)"
                )
            files, labels, names = index_klettres(KLETTRES_ROOT)
        else:
            resolved = require_path(path, field)
            if resolved.is_dir():
                files, labels, names = index_class_folders(
                    resolved, is_audio, f"audio files ({' '.join(AUDIO_EXTENSIONS)})", self._class_names, held_out
                )
            elif resolved.suffix.lower() == MANIFEST_EXTENSION:
                files, label_names = read_manifest(resolved)
                labels, names = label_indices(label_names, self._class_names, held_out, resolved)
            else:
                raise invalid(f"{field}={path!r}", "a folder of audio files or a .csv manifest", "another file")
        if not held_out:
            self._class_names = names
        return files, labels

    def _index(self, files: list[Path], labels: list[int], field: str) -> AudioClipSource:
        """Read every file once, in parallel (a bad one raises or is skipped, see ``on_bad_file``); cache clips when
        asked."""
        reader = self.reader

        def read(file: Path) -> np.ndarray | None:
            clip = reader(file)
            return clip if self.cache else None

        kept = list(check_files(files, read, self.on_bad_file, field, labels, self._class_names, CHECK_WORKERS))
        source = AudioClipSource(
            [files[position] for position, _ in kept],
            torch.tensor([labels[position] for position, _ in kept], dtype=torch.long),
            reader,
            self.cache,
        )
        for index, (_, cached) in enumerate(kept):
            if cached is not None:
                source.remember(index, cached)
        return source

    # ----------------------------------------------------------------- what the model sees

    @property
    def clip_length(self) -> int:
        """Samples per clip (``T`` of ``x``)."""
        return round(self.clip_seconds * self.sample_rate)

    @property
    def class_names(self) -> list[str] | None:
        """Class names in label order (languages for klettres-data); None when unlabeled. Indexes the data."""
        self._indexed_sources()
        return self._class_names

    @property
    def input_spec(self) -> InputSpec:
        """Mono audio at ``sample_rate``, the clip length in samples (every clip is cropped or padded to it) and the
        number of classes; indexes the data."""
        names = self.class_names
        return InputSpec(
            modality="audio",
            channels=1,
            sample_rate=float(self.sample_rate),
            num_classes=None if names is None else len(names),
            length=self.clip_length,
        )

    def augmentation(self) -> Augment:
        """The gain / noise / time-mask part of view transforms (no baseline shift); override to change it."""
        return Augment(self.gain_range, 0.0, self.noise, self.time_mask)

    def train_transform(self) -> Transform:
        """A random crop: JEPA's other randomness is in its masks."""
        return ClipTransform(self.clip_length, random_crop=True)

    def eval_transform(self) -> Transform:
        """The centre crop."""
        return ClipTransform(self.clip_length, random_crop=False)

    def view_transform(self) -> Transform:
        """A random crop, time shift, gain, noise, time masking and frequency masking."""
        return ClipTransform(
            self.clip_length,
            random_crop=True,
            max_shift=round(self.max_shift_seconds * self.sample_rate),
            augment=self.augmentation(),
            frequency_mask=self.frequency_mask,
        )
