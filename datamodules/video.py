"""Video: files decoded by PyAV (MP4, AVI, WebM, MKV, MOV), folders of frames, NPY / NPZ arrays, or moving digits
generated from scikit-learn's digits.

Every video is indexed once (video files decoded in full, frames counted, so a corrupt or empty file fails before the
first step: an error naming it, or left out under ``on_bad_file="skip"``) and read lazily: a sample is a
:class:`VideoRef`, and the transform reads only the frames of its clip. Clips are ``frames_per_clip`` frames taken
every ``frame_step`` frames, returned as float ``(C, T, H, W)``; in training from a random start with a random
resized crop and a horizontal flip shared by all frames of the clip, seeded per sample; in evaluation the centre
clip, resized. A video shorter than a clip repeats its last frame (as V-JEPA's loader clips its frame indices).

PyAV is the reader (the ``video`` extra, ``pip install "jepa-lightning[video]"``): it decodes every container and
codec FFmpeg knows, ships FFmpeg in its wheels (no system package), and is what torchvision's own video reader is
built on (torchvision deprecated its reading API).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

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
from datamodules.tables import read_table
from jepa_lightning.inputs import InputSpec

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v")
ARRAY_EXTENSIONS = (".npy", ".npz")
FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
AV_HINT = 'reading video files needs PyAV: pip install "jepa-lightning[video]" (or pip install av)'
MOVING_DIGITS_SOURCE = "moving digits (scikit-learn's digits)"
#: Moving digits: canvas side, digit side (the 8 x 8 scans enlarged 3x), speed range in pixels per frame.
CANVAS, DIGIT, SPEED = 64, 24, (2.0, 4.0)
#: Videos whose centre clip the normalisation statistics are computed from.
STATS_VIDEOS = 64


@dataclass(frozen=True)
class VideoRef:
    """One video of a source: where it is (``kind`` ``"file"``, ``"frames"`` or ``"array"``), its frame count and
    channels; :meth:`read` decodes the frames a clip needs. ``array`` holds in-memory frames ``(T, H, W[, C])``."""

    location: Path | str
    kind: str
    num_frames: int
    channels: int
    array: np.ndarray | None = None

    def read(self, indices: np.ndarray) -> Tensor:
        """Frames ``indices`` (ascending, repeats allowed) as ``(len, C, H, W)``, uint8 or float."""
        if self.kind == "file":
            frames = read_video_frames(Path(self.location), indices, self.channels)
        elif self.kind == "frames":
            files = frame_files(Path(self.location))
            frames = np.stack([read_frame(files[i], self.channels) for i in indices])
        else:
            array = self.array if self.array is not None else load_array(Path(self.location))
            frames = np.asarray(array[indices])
        frames = frames[..., None] if frames.ndim == 3 else frames
        return torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))


def read_video_frames(path: Path, indices: np.ndarray, channels: int) -> np.ndarray:
    """Decode ``path`` up to the last of ``indices`` and keep those frames, ``(len, H, W, C)`` uint8."""
    av = import_av()
    wanted, last, kept = set(indices.tolist()), int(indices.max()), {}
    fmt = "gray" if channels == 1 else "rgb24"
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for position, frame in enumerate(container.decode(stream)):
                if position in wanted:
                    kept[position] = frame.to_ndarray(format=fmt)
                if position >= last:
                    break
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as error:
        raise invalid(path, "a readable video", f"{type(error).__name__}: {error}") from error
    if last not in kept:
        raise invalid(path, f"at least {last + 1} frames (as when it was indexed)", f"{len(kept)} decoded")
    frames = np.stack([kept[int(i)] for i in indices])
    return frames[..., None] if frames.ndim == 3 else frames


def import_av() -> Any:
    """The ``av`` module, or an ImportError saying how to install it (PyAV is an optional extra)."""
    try:
        import av
    except ImportError as error:
        raise ImportError(AV_HINT) from error
    return av


def probe_video(path: Path, channels: int) -> tuple[int, int]:
    """Decode every frame of a video file: ``(frames, channels)``; a ValueError naming the file when it does not open,
    has no video stream or no decodable frame."""
    av = import_av()
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise invalid(path, "a file with a video stream", "none")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            count = sum(1 for _ in container.decode(stream))
    except (av.error.FFmpegError, OSError, IndexError) as error:
        raise invalid(path, "a readable video", f"{type(error).__name__}: {error}") from error
    if count == 0:
        raise invalid(path, "a video with at least one decodable frame", "0 frames")
    return count, channels


def frame_files(folder: Path) -> list[Path]:
    """The image files of a frame folder in name order."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_EXTENSIONS)


def read_frame(path: Path, channels: int) -> np.ndarray:
    """One frame image as ``(H, W)`` (grey) or ``(H, W, 3)`` uint8."""
    try:
        with Image.open(path) as image:
            return np.array(image.convert("L" if channels == 1 else "RGB"))
    except (OSError, SyntaxError, ValueError) as error:
        raise invalid(path, "a complete, readable image", f"{type(error).__name__}: {error}") from error


def probe_frames(folder: Path, channels: int) -> tuple[int, int]:
    """Decode every frame of a frame folder (all of one size): ``(frames, channels)``."""
    files = frame_files(folder)
    if not files:
        raise invalid(folder, f"a folder of frame images ({' '.join(FRAME_EXTENSIONS)})", "no frames")
    sizes = {read_frame(path, channels).shape[:2] for path in files}
    if len(sizes) > 1:
        raise invalid(folder, "frames of one size", f"sizes {sorted(sizes)}")
    return len(files), channels


def load_array(path: Path) -> np.ndarray:
    """The frames of an NPY file (memory-mapped) or NPZ file (its only array, or its ``video`` array)."""
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, mmap_mode="r")
        with np.load(path) as archive:
            names = list(archive.files)
            if len(names) != 1 and "video" not in names:
                raise invalid(path, "an NPZ archive of one array or with a 'video' array", f"arrays {names}")
            return archive["video" if "video" in names else names[0]]
    except (OSError, EOFError, ValueError) as error:
        if isinstance(error, ValueError) and str(error).startswith(str(path)):
            raise
        raise invalid(path, "a readable NPY / NPZ file", f"{type(error).__name__}: {error}") from error


def probe_array(path: Path) -> tuple[int, int]:
    """Check a video array, ``(T, H, W)`` or ``(T, H, W, C)``, uint8 or finite floats in [0, 1]:
    ``(frames, channels)``."""
    array = load_array(path)
    if array.ndim not in (3, 4) or array.shape[0] == 0 or min(array.shape) == 0:
        raise invalid(path, "frames (T, H, W) or (T, H, W, C) with T >= 1", f"shape {array.shape}")
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.floating):
            raise invalid(path, "uint8 frames or floats in [0, 1]", f"dtype {array.dtype}")
        values = np.asarray(array)
        if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
            raise invalid(path, "finite float frames in [0, 1]", f"values in [{values.min()}, {values.max()}]")
    return array.shape[0], 1 if array.ndim == 3 else array.shape[3]


def video_kind(path: Path) -> str | None:
    """``"file"``, ``"array"`` or ``"frames"`` (a folder holding frame images) for a video entry, else None."""
    if path.name.startswith("."):
        return None
    if path.is_file():
        suffix = path.suffix.lower()
        return "file" if suffix in VIDEO_EXTENSIONS else "array" if suffix in ARRAY_EXTENSIONS else None
    if path.is_dir() and frame_files(path):
        return "frames"
    return None


@lru_cache(maxsize=2)
def moving_digits(num_frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Moving digits: for every scan of scikit-learn's digits (1,797, 10 classes), a clip ``(num_frames, 64, 64)``
    uint8 of that scan and another scan of the same class, each enlarged 3x to 24 x 24, moving in straight lines at
    2-4 pixels per frame and bouncing off the borders (overlaps keep the brighter pixel); the label is the class.
    Generated deterministically from ``seed`` (under a second) and kept in memory (cached per process)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    scans = np.kron(np.round(digits.images * (255 / 16)).astype(np.uint8), np.ones((1, 3, 3), np.uint8))
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    partners = np.empty(len(labels), dtype=np.int64)
    for label in range(10):
        members = np.flatnonzero(labels == label)
        partners[members] = rng.permutation(members)
    count, limit = len(labels), CANVAS - DIGIT
    position = rng.uniform(0, limit, size=(count, 2, 2))
    angle = rng.uniform(0, 2 * math.pi, size=(count, 2))
    speed = rng.uniform(*SPEED, size=(count, 2))
    velocity = np.stack([np.sin(angle), np.cos(angle)], axis=-1) * speed[..., None]
    clips = np.zeros((count, num_frames, CANVAS, CANVAS), dtype=np.uint8)
    index, offsets = np.arange(count)[:, None, None], np.arange(DIGIT)
    for frame in range(num_frames):
        corners = np.round(position).astype(np.int64)  # (N, 2 digits, (top, left))
        for which, scan in enumerate((scans, scans[partners])):
            rows = (corners[:, which, 0, None] + offsets)[:, :, None]
            cols = (corners[:, which, 1, None] + offsets)[:, None, :]
            canvas = clips[:, frame]
            canvas[index, rows, cols] = np.maximum(canvas[index, rows, cols], scan)
        position += velocity
        low, high = position < 0, position > limit
        position = np.where(low, -position, np.where(high, 2 * limit - position, position))
        velocity = np.where(low | high, -velocity, velocity)
    return clips, labels


class VideoSource(SampleSource):
    """Videos as :class:`VideoRef` samples (read lazily by the clip transform)."""

    def __init__(self, videos: list[VideoRef], labels: Tensor) -> None:
        self.videos = videos
        self.labels = labels

    def load(self, index: int) -> VideoRef:
        return self.videos[index]


class ClipTransform:
    """A video -> one clip, float ``(C, T, H, W)``, normalised per channel.

    ``train``: a uniformly random start, a random resized crop (``crop_scale``, ``crop_ratio``) and, with ``flip``,
    a horizontal flip with probability 0.5, all shared by every frame of the clip (drawn from torch's generator, which
    the data module seeds per sample); otherwise the centre clip resized to ``image_size``.
    """

    def __init__(
        self,
        frames_per_clip: int,
        frame_step: int,
        image_size: tuple[int, int],
        mean: list[float],
        std: list[float],
        train: bool,
        crop_scale: tuple[float, float] = (0.3, 1.0),
        crop_ratio: tuple[float, float] = (0.75, 1.35),
        flip: bool = True,
    ) -> None:
        self.frames_per_clip = frames_per_clip
        self.frame_step = frame_step
        self.train = train
        self.spatial: Callable[[Tensor], Tensor] = (
            v2.Compose(
                [v2.RandomResizedCrop(image_size, scale=crop_scale, ratio=crop_ratio, antialias=True)]
                + ([v2.RandomHorizontalFlip()] if flip else [])
            )
            if train
            else v2.Resize(image_size, antialias=True)
        )
        self.normalize = v2.Normalize(mean, std)

    def frame_indices(self, num_frames: int) -> np.ndarray:
        """The clip's frame indices in a video of ``num_frames`` (the last frame repeated when it is too short)."""
        span = (self.frames_per_clip - 1) * self.frame_step + 1
        latest = max(0, num_frames - span)
        start = int(torch.randint(0, latest + 1, (1,))) if self.train else latest // 2
        return np.minimum(start + np.arange(self.frames_per_clip) * self.frame_step, num_frames - 1)

    def __call__(self, video: VideoRef) -> Tensor:
        frames = video.read(self.frame_indices(video.num_frames))  # (T, C, H, W)
        frames = F.to_dtype(frames, torch.float32, scale=True)
        return self.normalize(self.spatial(frames)).transpose(0, 1).contiguous()


class VideoDataModule(SSLDataModule):
    """Video clips for self-supervised learning; batches ``{"x": (B, C, T, H, W), "y": (B,), "views": [...]}``.

    Args:
        path: the training videos. ``None``: moving digits (:func:`moving_digits`: 1,797 clips of two scans of one
            digit class bouncing in 64 x 64, 16 frames, labels the 10 classes; nothing to download). A folder:
            video files (``.mp4 .avi .webm .mkv .mov .m4v``, decoded by PyAV), NPY / NPZ arrays (``(T, H, W)`` or
            ``(T, H, W, C)``, uint8 or floats in [0, 1]) and frame folders (a sub-folder of frame images in name
            order is one video), flat (unlabeled) or in class sub-folders (sorted names -> labels 0..K-1). A CSV
            manifest: a ``path`` column (relative to the CSV's folder, or absolute) and optionally a ``label``
            column (integers, or class names -> sorted -> 0..K-1; empty: unlabeled).
        test_path: an optional held-out test set, in any of the forms of ``path`` (its classes must be the training
            set's).
        frames_per_clip: frames of every clip (V-JEPA: 16).
        frame_step: take every ``frame_step``-th frame (V-JEPA's ``sampling_rate``: 4; moving digits: 1).
        image_size: output ``(H, W)`` (or one int for squares) of every clip.
        channels: 1 (grey) or 3 (RGB) for decoded videos and frames; ``None``: the arrays' channel count, 3 for
            decoded videos, 1 for moving digits. Arrays must have this many channels (any count).
        on_bad_file: what indexing does with a video that does not decode, holds no frame or has the wrong shape:
            ``"error"`` raises naming it, ``"skip"`` leaves it out with one warning listing every skipped file.
        mean, std: per-channel normalisation on the [0, 1] scale; ``None``: computed from the centre clips of up to
            64 training videos.
        crop_scale, crop_ratio: area and aspect ranges of the training random resized crop, shared by the frames of
            a clip (V-JEPA: (0.3, 1.0) and (0.75, 1.35)).
        flip: random horizontal flip of training clips.
        kwargs: loader, split and view settings of :class:`~datamodules.base.SSLDataModule`.
    """

    def __init__(
        self,
        path: str | None = None,
        test_path: str | None = None,
        frames_per_clip: int = 16,
        frame_step: int = 1,
        image_size: int | tuple[int, int] = 64,
        channels: int | None = None,
        on_bad_file: BadFilePolicy = "error",
        mean: list[float] | None = None,
        std: list[float] | None = None,
        crop_scale: tuple[float, float] = (0.3, 1.0),
        crop_ratio: tuple[float, float] = (0.75, 1.35),
        flip: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if len(size) != 2 or min(size) < 1:
            raise invalid("image_size", "a positive int or (height, width)", repr(image_size))
        if frames_per_clip < 1:
            raise invalid("frames_per_clip", "an integer >= 1", repr(frames_per_clip))
        if frame_step < 1:
            raise invalid("frame_step", "an integer >= 1", repr(frame_step))
        if channels is not None and channels < 1:
            raise invalid("channels", "None or an integer >= 1", repr(channels))
        require_bad_file_policy(on_bad_file)
        if (mean is None) != (std is None):
            raise invalid("mean/std", "both or neither", f"mean={mean!r}, std={std!r}")
        if std is not None and min(std) <= 0:
            raise invalid("std", "positive values", repr(std))
        if not 0 < crop_scale[0] <= crop_scale[1] <= 1:
            raise invalid("crop_scale", "(low, high) with 0 < low <= high <= 1", repr(crop_scale))
        if not 0 < crop_ratio[0] <= crop_ratio[1]:
            raise invalid("crop_ratio", "(low, high) with 0 < low <= high", repr(crop_ratio))
        self.path = path
        self.test_path = test_path
        self.frames_per_clip = frames_per_clip
        self.frame_step = frame_step
        self.image_size: tuple[int, int] = (int(size[0]), int(size[1]))
        self.channels = channels
        self.on_bad_file = on_bad_file
        self.crop_scale = crop_scale
        self.crop_ratio = crop_ratio
        self.flip = flip
        self._user_stats = (list(mean), list(std)) if mean is not None and std is not None else None
        self._stats: tuple[list[float], list[float]] | None = None
        self._class_names: list[str] | None = None
        self._num_classes: int | None = None
        self._channels: int | None = channels

    # ----------------------------------------------------------------- indexing

    def index_sources(self) -> tuple[SampleSource, SampleSource | None]:
        """Index ``path`` (or generate moving digits) and ``test_path``, decoding every video once."""
        train = self._moving_digits() if self.path is None else self._read(self.path, "path")
        test = None if self.test_path is None else self._read(self.test_path, "test_path")
        if self._user_stats is not None:
            for name, values in zip(("mean", "std"), self._user_stats):
                if len(values) != self.num_channels:
                    raise invalid(name, f"{self.num_channels} value(s), one per channel", f"{len(values)}")
        return train, test

    @property
    def num_channels(self) -> int:
        """Channels of every clip (indexes the data when they are inferred)."""
        if self._channels is None:
            self._indexed_sources()
        return self._channels or 3

    def _moving_digits(self) -> VideoSource:
        if self.channels not in (None, 1):
            raise invalid("channels", f"None or 1 for {MOVING_DIGITS_SOURCE} (grey)", repr(self.channels))
        clips, labels = moving_digits(max(16, (self.frames_per_clip - 1) * self.frame_step + 1))
        self._channels, self._num_classes = 1, 10
        videos = [VideoRef(MOVING_DIGITS_SOURCE, "array", clip.shape[0], 1, clip) for clip in clips]
        return VideoSource(videos, torch.from_numpy(labels))

    def _read(self, location: str, field: str) -> VideoSource:
        path = require_path(location, field)
        held_out = field == "test_path"
        if path.is_dir():
            entries, labels, names = self._index_folder(path, held_out)
        elif path.suffix.lower() in (".csv", ".tsv"):
            entries, labels, names = self._index_manifest(path, held_out)
        else:
            raise invalid(path, "a folder of videos or a CSV manifest (.csv / .tsv)", f"a {path.suffix or ''} file")
        if names is not None and not held_out:
            self._class_names, self._num_classes = names, len(names)
        elif not held_out and any(label >= 0 for label in labels):
            self._num_classes = max(labels) + 1
        kinds = [video_kind(entry) for entry in entries]

        def probe(entry: Path) -> tuple[int, int]:
            kind = video_kind(entry)
            if kind in ("file", "frames") and channels not in (1, 3):
                raise invalid(entry, f"an array, as decoded videos have 1 or 3 channels, not {channels}", kind)
            if kind == "file":
                return probe_video(entry, channels)
            if kind == "frames":
                return probe_frames(entry, channels)
            if kind == "array":
                return probe_array(entry)
            raise invalid(entry, "a video file, an NPY / NPZ array or a folder of frames", "none of these")

        if self._channels is None and "array" in kinds:  # infer from the first good array
            for position, kind in enumerate(kinds):
                if kind == "array":
                    try:
                        self._channels = probe_array(entries[position])[1]
                        break
                    except ValueError:
                        continue
        channels = self._channels or 3
        videos: list[VideoRef] = []
        kept: list[int] = []
        checked = check_files(entries, probe, self.on_bad_file, field, labels, self._class_names, CHECK_WORKERS)
        for position, (frames, found) in checked:
            if found != channels:
                raise invalid(
                    entries[position],
                    f"{channels} channel(s) (channels={self.channels}, or the first array's)",
                    f"{found}",
                )
            videos.append(VideoRef(entries[position], kinds[position] or "", frames, channels))
            kept.append(position)
        if self._channels is None:
            self._channels = channels
        return VideoSource(videos, torch.tensor([labels[position] for position in kept], dtype=torch.long))

    def _index_folder(self, folder: Path, held_out: bool) -> tuple[list[Path], list[int], list[str] | None]:
        """Videos of a flat folder (labels -1) or of class sub-folders (sub-folders that are not frame folders)."""
        return index_class_folders(
            folder,
            lambda entry: video_kind(entry) is not None,
            f"videos ({' '.join(VIDEO_EXTENSIONS + ARRAY_EXTENSIONS)}, frame folders)",
            self._class_names,
            held_out,
            is_class_dir=lambda entry: entry.is_dir() and video_kind(entry) is None,
            recursive=False,
        )

    def _index_manifest(self, manifest: Path, held_out: bool) -> tuple[list[Path], list[int], list[str] | None]:
        """Videos listed by a CSV / TSV manifest: a ``path`` column and an optional ``label`` column."""
        table = read_table(manifest)
        if "path" not in table.columns:
            raise invalid(manifest, "a 'path' column (and optionally 'label')", f"columns {list(table.columns)}")
        paths = []
        for row, value in enumerate(table["path"]):
            if not isinstance(value, str) or not value:
                raise invalid(f"{manifest}: row {row + 1}", "a path in column 'path'", repr(value))
            entry = Path(value).expanduser()
            paths.append(entry if entry.is_absolute() else manifest.parent / entry)
        if "label" not in table.columns:
            return paths, [-1] * len(paths), None
        raw = list(table["label"])
        given = [value for value in raw if not _missing(value)]
        if all(_number(value) and float(value).is_integer() for value in given):
            labels = [-1 if _missing(value) else int(value) for value in raw]
            if min(labels) < -1:
                raise invalid(manifest, "labels >= 0 in column 'label' (empty or -1: unlabeled)", f"min {min(labels)}")
            return paths, labels, None
        names = sorted({str(value) for value in given})
        known = self._class_names if held_out else names
        if known is None:
            raise invalid(manifest, "integer labels, as the training manifest has integer labels", "class names")
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise invalid(manifest, f"classes of the training set {known}", f"unknown classes {unknown}")
        labels = [-1 if _missing(value) else known.index(str(value)) for value in raw]
        return paths, labels, names

    # ----------------------------------------------------------------- what the model sees

    @property
    def input_spec(self) -> InputSpec:
        """Channels, clip size (frames and image size) and number of classes; indexes the data on first use."""
        self._indexed_sources()
        return InputSpec(
            modality="video",
            channels=self.num_channels,
            image_size=self.image_size,
            num_classes=self._num_classes,
            frames=self.frames_per_clip,
        )

    @property
    def class_names(self) -> list[str] | None:
        """Class names (sub-folders or manifest labels) in label order; None otherwise."""
        self._indexed_sources()
        return self._class_names

    def normalisation(self) -> tuple[list[float], list[float]]:
        """Per-channel (mean, std) on the [0, 1] scale: the user's, or from the centre clips of up to 64 training
        videos (seeded choice), computed once."""
        if self._user_stats is not None:
            return self._user_stats
        if self._stats is None:
            channels = self.num_channels
            clip = ClipTransform(
                self.frames_per_clip, self.frame_step, self.image_size, [0.0] * channels, [1.0] * channels, False
            )
            train = self.indices("train")
            order = torch.randperm(len(train), generator=torch.Generator().manual_seed(self.seed))
            clips = torch.stack([clip(self.train_source.load(int(train[i]))) for i in order[:STATS_VIDEOS]])
            values = clips.transpose(0, 1).reshape(channels, -1).double()
            std = values.std(dim=1, unbiased=False)
            std = torch.where(std > 1e-8, std, torch.ones_like(std))
            self._stats = (values.mean(dim=1).tolist(), std.tolist())
        return self._stats

    def _clips(self, train: bool) -> ClipTransform:
        mean, std = self.normalisation()
        return ClipTransform(
            self.frames_per_clip,
            self.frame_step,
            self.image_size,
            mean,
            std,
            train,
            self.crop_scale,
            self.crop_ratio,
            self.flip,
        )

    def train_transform(self) -> Transform:
        """A random clip with a random resized crop and flip shared over its frames."""
        return self._clips(train=True)

    def eval_transform(self) -> Transform:
        """The centre clip, resized to ``image_size``."""
        return self._clips(train=False)

    def view_transform(self) -> Transform:
        """Another random clip of the same video, cropped and flipped independently."""
        return self._clips(train=True)


def _missing(value: object) -> bool:
    """Whether a manifest cell is empty (read as None or NaN)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _number(value: object) -> bool:
    """Whether a manifest cell is a number (pandas reads an integer column with empty cells as floats)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
