"""Images: a folder (class sub-folders or flat), an IDX file (MNIST / Fashion-MNIST) or scikit-learn's digits.

Every source is brought to the canonical layout ``uint8 (C, H, W)``; transforms then crop/resize to
``image_size``, scale to [0, 1] and normalise per channel. Channel counts and bit depths are checked, never silently
changed: images are converted to ``channels`` (and 16-bit grey images scaled to 8 bits) only when the user passes
``convert=True``.

Every image of a folder is decoded in full while indexing (in parallel), so a truncated or corrupt file fails before
the first training step, whatever PIL's ``LOAD_TRUNCATED_IMAGES`` says; ``on_bad_file`` decides whether such a file
raises or is left out (see :func:`datamodules.base.check_files`).
"""

from __future__ import annotations

import contextlib
import gzip
import math
import struct
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFile
from torch import Tensor
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F
from tqdm.auto import tqdm

from datamodules.base import (
    CHECK_WORKERS,
    BadFilePolicy,
    MultiViewTransform,
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

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049
DIGITS_SOURCE = "sklearn.datasets.load_digits()"
STATS_SAMPLE_SIZE = 1000

# Channels an 8-bit PIL mode decodes to; palette images are colour (RGB, or RGBA with transparency).
MODE_CHANNELS = {
    "1": 1,
    "L": 1,
    "LA": 2,
    "La": 2,
    "P": 3,
    "PA": 4,
    "RGB": 3,
    "RGBX": 3,
    "RGBA": 4,
    "RGBa": 4,
    "CMYK": 3,
    "YCbCr": 3,
    "LAB": 3,
    "HSV": 3,
}
CHANNELS_MODE = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
#: Grey modes deeper than 8 bits (16-bit PNG / TIFF; PIL may open 16-bit PNGs as 32-bit "I"), read as one channel
#: of values in [0, 65535] and scaled to 8 bits when ``convert=True``.
DEEP_GREY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
DEEP_GREY_MAX = 65535
#: The parameters of a view's photometric transform (:class:`PhotometricTransform`), the last axis of
#: ``batch["cond"]`` with ``view_params=True``: brightness, contrast and saturation factors minus 1, hue shift (in
#: turns), greyscale (0 / 1), blur sigma (0: not blurred) and solarisation (0 / 1). All zero: the identity.
PHOTOMETRIC_PARAMS = ("brightness", "contrast", "saturation", "hue", "grayscale", "blur", "solarize")
#: What PIL's decoders raise for corrupt or truncated files.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, Image.DecompressionBombError)


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read an IDX file (raw or ``.gz``) of unsigned bytes whose big-endian magic number must be ``magic``."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        raise invalid(path, "a readable IDX file (raw or gzip)", f"{type(error).__name__}: {error}") from error
    if len(raw) < 4:
        raise invalid(path, "an IDX file starting with a 4-byte magic number", f"{len(raw)} bytes")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise invalid(path, f"an IDX file with magic number {magic}", f"magic number {found}")
    header_size = 4 + 4 * raw[3]
    if len(raw) < header_size:
        raise invalid(path, f"a {header_size}-byte IDX header", f"{len(raw)} bytes (truncated)")
    shape = tuple(int(size) for size in np.frombuffer(raw, ">u4", count=raw[3], offset=4))
    expected_size = header_size + math.prod(shape)
    if len(raw) != expected_size:
        raise invalid(
            path,
            f"{expected_size} bytes for an IDX array of shape {shape}",
            f"{len(raw)} bytes (truncated or padded)",
        )
    return np.frombuffer(raw, np.uint8, offset=header_size).reshape(shape).copy()


def decode_channels(path: Path) -> tuple[int, bool]:
    """Channel count of an image file and whether it is deep grey (:data:`DEEP_GREY_MODES`), from a full decode:
    a truncated or corrupt file raises a ValueError naming it (call inside :func:`strict_decoding`)."""
    try:
        with Image.open(path) as image:
            image.load()
            mode, transparent = image.mode, "transparency" in image.info
            low, high = image.getextrema() if mode in DEEP_GREY_MODES else (0, 0)
    except DECODE_ERRORS as error:
        raise invalid(path, "a complete, readable image", f"{type(error).__name__}: {error}") from error
    if mode in DEEP_GREY_MODES:
        if low < 0 or high > DEEP_GREY_MAX:
            raise invalid(path, f"grey values in [0, {DEEP_GREY_MAX}] (16 bits)", f"[{low}, {high}] in mode {mode!r}")
        return 1, True
    if mode not in MODE_CHANNELS:
        raise invalid(path, f"an 8- or 16-bit image (modes {', '.join(MODE_CHANNELS)}, I;16)", f"mode {mode!r}")
    return (4 if mode == "P" and transparent else MODE_CHANNELS[mode]), False


@contextlib.contextmanager
def strict_decoding() -> Iterator[None]:
    """PIL raises on truncated images inside this block even when some library turned ``LOAD_TRUNCATED_IMAGES`` on
    (which pads a truncated image with black instead)."""
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def to_8_bit(image: Image.Image) -> Image.Image:
    """A deep grey image (values in [0, 65535]) as 8-bit grey "L", scaled (rounded ``v * 255 / 65535``), not clipped."""
    values = np.asarray(image).astype(np.uint32)
    return Image.fromarray(((values * 255 + DEEP_GREY_MAX // 2) // DEEP_GREY_MAX).astype(np.uint8))


def convert_channels(images: Tensor, channels: int) -> Tensor:
    """Grey <-> RGB for ``uint8 (..., C, H, W)`` tensors; only called when the user asked for conversion."""
    if images.shape[-3] == channels:
        return images
    if images.shape[-3] == 1:
        return images.expand(*images.shape[:-3], channels, *images.shape[-2:]).contiguous()
    return F.rgb_to_grayscale(images)


def channel_moments(batches: Iterable[Tensor]) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of pixels scaled to [0, 1] over ``uint8 (N, C, H, W)`` batches of any size.

    A constant channel gets std 1 so normalising it gives zeros instead of dividing by zero.
    """
    total = squares = 0.0
    count = 0
    for batch in batches:
        values = batch.to(torch.float64).div_(255).transpose(0, 1).reshape(batch.shape[1], -1)
        total = total + values.sum(dim=1)
        squares = squares + values.square().sum(dim=1)
        count += values.shape[1]
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(0).sqrt()
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    return mean.tolist(), std.tolist()


def simclr_augmentation(
    image_size: tuple[int, int], channels: int, flip: bool, crop_scale: tuple[float, float] = (0.2, 1.0)
) -> v2.Compose:
    """SimCLR-style view augmentation sized for small images: ``uint8 (C, H, W)`` in, float in [0, 1] out.

    Random resized crop (area ``crop_scale``, 0.2-1 by default), optional horizontal flip, colour jitter (p=0.8;
    brightness and contrast only for grey, brightness only for 2/4 channels), random greyscale (p=0.2, RGB only),
    Gaussian blur (p=0.5, odd kernel about 10% of the shorter side, at least 3) and solarisation (p=0.2).
    Normalisation follows.
    """
    if channels == 3:
        jitter = v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)
    elif channels == 1:
        jitter = v2.ColorJitter(brightness=0.4, contrast=0.4)
    else:
        jitter = v2.ColorJitter(brightness=0.4)
    kernel = max(3, round(0.1 * min(image_size)) // 2 * 2 + 1)
    steps: list[v2.Transform] = [v2.RandomResizedCrop(image_size, scale=crop_scale, antialias=True)]
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    steps += [v2.ToDtype(torch.float32, scale=True), v2.RandomApply([jitter], p=0.8)]
    if channels == 3:
        steps.append(v2.RandomGrayscale(p=0.2))
    steps += [
        v2.RandomApply([v2.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=0.5),
        v2.RandomSolarize(threshold=0.5, p=0.2),
    ]
    return v2.Compose(steps)


class Speckle(torch.nn.Module):
    """Multiplicative speckle of a ``looks``-look intensity SAR image: ``x * n`` with ``n ~ Gamma(looks, 1 / looks)``
    (mean 1, variance ``1 / looks``), drawn per pixel from the global RNG (each worker's), on [0, 1] intensities."""

    def __init__(self, looks: float) -> None:
        super().__init__()
        self.looks = looks

    def forward(self, image: Tensor) -> Tensor:
        shape = torch.full_like(image, self.looks)
        return image * torch.distributions.Gamma(shape, shape).sample()


class PhotometricTransform:
    """The colour part of :func:`simclr_augmentation` that reports what it drew: float ``(C, H, W)`` in [0, 1] in,
    ``(image, params)`` out, ``params`` the :data:`PHOTOMETRIC_PARAMS` (float ``(7,)``).

    The same distributions: colour jitter with p=0.8 (brightness and contrast factors in [0.6, 1.4], saturation in
    [0.8, 1.2] and hue in [-0.1, 0.1] for RGB; brightness and contrast for grey; brightness only for 2 / 4 channels),
    greyscale p=0.2 (RGB only), Gaussian blur p=0.5 (sigma 0.1-2, kernel about 10% of the shorter side) and
    solarisation p=0.2 (threshold 0.5). One difference: the jitter's four adjustments run in a fixed order
    (brightness, contrast, saturation, hue) rather than torchvision's random one, so the parameters determine the
    transform. Draws come from torch's default generator (seeded per sample by the datamodule), always 9 of them.
    """

    def __init__(self, image_size: tuple[int, int], channels: int) -> None:
        self.channels = channels
        self.kernel = max(3, round(0.1 * min(image_size)) // 2 * 2 + 1)
        jitter = {1: (0.4, 0.4, 0.0, 0.0), 3: (0.4, 0.4, 0.2, 0.1)}
        self.strengths = torch.tensor(jitter.get(channels, (0.4, 0.0, 0.0, 0.0)))

    def __call__(self, image: Tensor) -> tuple[Tensor, Tensor]:
        draws = torch.rand(9)
        jittered = bool(draws[0] < 0.8)
        shifts = self.strengths * (2 * draws[1:5] - 1) if jittered else torch.zeros(4)
        grayscale = self.channels == 3 and bool(draws[5] < 0.2)
        sigma = float(0.1 + 1.9 * draws[7]) if draws[6] < 0.5 else 0.0
        solarize = bool(draws[8] < 0.2)
        brightness, contrast, saturation, hue = shifts.tolist()
        if jittered:
            image = F.adjust_brightness(image, 1 + brightness)
            if self.channels <= 3:
                image = F.adjust_contrast(image, 1 + contrast)
            if self.channels == 3:
                image = F.adjust_hue(F.adjust_saturation(image, 1 + saturation), hue)
        if grayscale:
            image = F.rgb_to_grayscale(image, num_output_channels=3)
        if sigma:
            image = F.gaussian_blur(image, [self.kernel, self.kernel], [sigma, sigma])
        if solarize:
            image = F.solarize(image, 0.5)
        params = torch.tensor([brightness, contrast, saturation, hue, float(grayscale), sigma, float(solarize)])
        return image, params


class PhotometricViews(MultiViewTransform):
    """Views that differ only in colour: one random crop (``geometry``, uint8 in, float [0, 1] out) shared by every
    view, then an independent :class:`PhotometricTransform` per view and normalisation; ``cond`` ``(V, 7)`` holds
    each view's parameters, so a predictor can be told how one view was transformed into another (IWM)."""

    def __init__(self, geometry: Transform, photometric: PhotometricTransform, normalize: Transform) -> None:
        self.geometry = geometry
        self.photometric = photometric
        self.normalize = normalize

    def __call__(self, sample: Tensor, num_views: int) -> dict[str, Any]:
        image = self.geometry(sample)
        views, params = zip(*(self.photometric(image) for _ in range(num_views)), strict=True)
        return {"views": [self.normalize(view) for view in views], "cond": torch.stack(params)}


class RotatedViews(MultiViewTransform):
    """Views that differ only by a rotation, the *action* between them (seq-JEPA's sequences of views): the image
    resized (``resize``, uint8 in, float [0, 1] out), rotated by an angle drawn uniformly in ``[-max_degrees,
    max_degrees]`` per view (bilinear, zero fill), normalised; ``cond`` ``(V, 1)`` holds each view's angle in
    radians, so the action from view ``i`` to view ``j`` is ``cond[j] - cond[i]``."""

    def __init__(self, resize: Transform, max_degrees: float, normalize: Transform) -> None:
        self.resize = resize
        self.max_degrees = max_degrees
        self.normalize = normalize

    def __call__(self, sample: Tensor, num_views: int) -> dict[str, Any]:
        image = self.resize(sample)
        degrees = (2 * torch.rand(num_views) - 1) * self.max_degrees
        views = [
            self.normalize(F.rotate(image, angle, interpolation=v2.InterpolationMode.BILINEAR))
            for angle in degrees.tolist()
        ]
        return {"views": views, "cond": torch.deg2rad(degrees).unsqueeze(-1)}


class ArrayImageSource(SampleSource):
    """Images held in memory as ``uint8 (N, C, H, W)``, converted to ``channels`` on load when they differ."""

    def __init__(self, images: Tensor, labels: Tensor, channels: int) -> None:
        self.images = images
        self.labels = labels
        self.channels = channels

    def batch(self, indices: Tensor) -> Tensor:
        """Several samples at once, for vectorised statistics."""
        return convert_channels(self.images[indices], self.channels)

    def load(self, index: int) -> Tensor:
        return convert_channels(self.images[index], self.channels)


class FileImageSource(SampleSource):
    """Image files decoded lazily to ``uint8 (C, H, W)`` with ``channels`` channels."""

    def __init__(self, files: list[Path], labels: Tensor, channels: int) -> None:
        self.files = files
        self.labels = labels
        self.mode = CHANNELS_MODE[channels]

    def load(self, index: int) -> Tensor:
        path = self.files[index]
        try:
            with Image.open(path) as image:
                pixels = np.array((to_8_bit(image) if image.mode in DEEP_GREY_MODES else image).convert(self.mode))
        except DECODE_ERRORS as error:
            raise invalid(path, "a complete, readable image", f"{type(error).__name__}: {error}") from error
        return torch.from_numpy(pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1).copy())


def _is_image(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS


class ImageDataModule(SSLDataModule):
    """Images for self-supervised learning; batches ``{"x": (B, C, H, W), "y": (B,), "views": [...]}``.

    Args:
        path: where the training images are. ``None``: scikit-learn's bundled digits (1,797 grey 8 x 8 images,
            10 classes). A folder: class sub-folders give labels (sorted names -> 0..K-1), a flat folder of
            images is unlabeled. A file: an IDX image file (``*-images-idx3-ubyte[.gz]``, MNIST /
            Fashion-MNIST) whose labels are read from the ``labels-idx1`` file beside it when present.
        test_path: an optional held-out test set, in any of the forms of ``path``.
        image_size: output ``(H, W)`` (or one int for squares) of every transform.
        channels: required channel count; ``None`` infers it from the data (grey -> 1, RGB -> 3).
        convert: convert images whose channel count differs from ``channels`` instead of raising, and scale 16-bit
            grey images to 8 bits (``round(v * 255 / 65535)``).
        on_bad_file: what indexing a folder does with an image that does not decode in full (corrupt, truncated):
            ``"error"`` raises naming it, ``"skip"`` leaves it out with one warning listing every skipped file. A
            class left without images is an error.
        mean, std: per-channel normalisation on the [0, 1] scale; ``None`` computes them from the train split
            (exactly for in-memory sources, from up to 1,000 images for folders).
        crop_scale: area range of the training RandomResizedCrop (I-JEPA's only augmentation of ``x``).
        view_flip: whether augmented views are randomly flipped horizontally.
        speckle_looks: multiplicative speckle (:class:`Speckle`, ``looks``-look Gamma noise of mean 1) on every image
            of every transform, before normalisation, to make optical images SAR-like; ``None`` (default): none.
        view_params: transformation-aware views (:class:`PhotometricViews`): every view of a sample shares one
            random crop (``crop_scale``, flipped when ``view_flip``) and gets its own photometric transform, whose
            :data:`PHOTOMETRIC_PARAMS` training batches carry as ``batch["cond"]`` ``(B, V, 7)``, seeded like every
            other augmentation; ``input_spec.condition_dim`` is then 7. Off by default (views as
            :func:`simclr_augmentation`, no ``cond``).
        view_rotations: views as rotations of the whole image (:class:`RotatedViews`), angles uniform in
            ``[-view_rotations, view_rotations]`` degrees, which training batches carry as ``batch["cond"]``
            ``(B, V, 1)`` (radians; ``input_spec.condition_dim`` 1): sequences of views with rotations as actions
            (seq-JEPA). 0 (default): off. Not together with ``view_params``.
        local_views: multi-crop: how many of the ``num_views`` views are local crops (the last ones), each a
            ``local_size`` crop of area ``local_crop_scale``; the others are global crops at ``image_size`` of area
            ``global_crop_scale``. Both kinds get the same colour, blur and flip augmentations. 0 (default): every
            view is the single-size view of :meth:`view_augmentation`. LeJEPA's README (rbalestr-lab/lejepa):
            2 global views at 224 px, scale (0.3, 1), and 6 local at 98 px, scale (0.05, 0.3), after DINO.
        local_size: ``(H, W)`` (or one int) of the local crops; ``None``: ``image_size * 98 / 224`` rounded down
            to a multiple of 4 (at least 4), LeJEPA's ratio.
        local_crop_scale, global_crop_scale: area ranges of the local and global crops when ``local_views > 0``.
        kwargs: loader, split and view settings of :class:`~datamodules.base.SSLDataModule` (``batch_size``,
            ``num_workers``, ``val_fraction``, ``seed``, ``num_views``, ``drop_last``, ``predict_split``).
    """

    def __init__(
        self,
        path: str | None = None,
        test_path: str | None = None,
        image_size: int | tuple[int, int] = 32,
        channels: int | None = None,
        convert: bool = False,
        on_bad_file: BadFilePolicy = "error",
        mean: list[float] | None = None,
        std: list[float] | None = None,
        crop_scale: tuple[float, float] = (0.3, 1.0),
        view_flip: bool = True,
        speckle_looks: float | None = None,
        view_params: bool = False,
        view_rotations: float = 0.0,
        local_views: int = 0,
        local_size: int | tuple[int, int] | None = None,
        local_crop_scale: tuple[float, float] = (0.05, 0.3),
        global_crop_scale: tuple[float, float] = (0.3, 1.0),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if len(size) != 2 or min(size) < 1:
            raise invalid("image_size", "a positive int or (height, width)", repr(image_size))
        if channels is not None and channels not in CHANNELS_MODE:
            raise invalid("channels", f"None or one of {tuple(CHANNELS_MODE)}", repr(channels))
        if convert and channels is None:
            raise invalid("convert", "channels to be set when convert=True (the count to convert to)", "channels=None")
        require_bad_file_policy(on_bad_file)
        if (mean is None) != (std is None):
            raise invalid("mean/std", "both or neither", f"mean={mean!r}, std={std!r}")
        if std is not None and min(std) <= 0:
            raise invalid("std", "positive values", repr(std))
        if speckle_looks is not None and speckle_looks <= 0:
            raise invalid("speckle_looks", "None or a positive number of looks", repr(speckle_looks))
        if not 0 < crop_scale[0] <= crop_scale[1] <= 1:
            raise invalid("crop_scale", "(low, high) with 0 < low <= high <= 1", repr(crop_scale))
        for name, scale in (("local_crop_scale", local_crop_scale), ("global_crop_scale", global_crop_scale)):
            if not 0 < scale[0] <= scale[1] <= 1:
                raise invalid(name, "(low, high) with 0 < low <= high <= 1", repr(scale))
        if local_views < 0 or (local_views and (view_params or view_rotations)):
            raise invalid("local_views", "an integer >= 0, and 0 with view_params or view_rotations", repr(local_views))
        if local_size is None:
            local_size = tuple(max(4, int(side * 98 / 224) // 4 * 4) for side in size)
        local = (local_size, local_size) if isinstance(local_size, int) else tuple(local_size)
        if len(local) != 2 or min(local) < 1:
            raise invalid("local_size", "a positive int or (height, width)", repr(local_size))
        self.local_views = local_views
        self.local_size: tuple[int, int] = (int(local[0]), int(local[1]))
        self.local_crop_scale = tuple(local_crop_scale)
        self.global_crop_scale = tuple(global_crop_scale)
        self.path = path
        self.test_path = test_path
        self.image_size: tuple[int, int] = (int(size[0]), int(size[1]))
        self.channels = channels
        self.convert = convert
        self.on_bad_file = on_bad_file
        self.crop_scale = crop_scale
        self.view_flip = view_flip
        self.speckle_looks = speckle_looks
        if view_rotations < 0 or (view_rotations and view_params):
            raise invalid(
                "view_rotations", "an angle >= 0 in degrees, and 0 when view_params=True", repr(view_rotations)
            )
        self.view_params = view_params
        self.view_rotations = view_rotations
        self._user_stats = (list(mean), list(std)) if mean is not None and std is not None else None
        self._stats: tuple[list[float], list[float]] | None = None
        self._inferred_channels: int | None = None
        self._class_names: list[str] | None = None
        self._num_classes: int | None = None
        if channels is not None:
            self._check_stats_length(channels)

    # ----------------------------------------------------------------- indexing

    def index_sources(self) -> tuple[SampleSource, SampleSource | None]:
        """Index ``path`` (or the digits) and ``test_path``, checking every image's channel count."""
        train = self._digits() if self.path is None else self._read(self.path, "path")
        test = None if self.test_path is None else self._read(self.test_path, "test_path")
        self._check_stats_length(self.num_channels)
        return train, test

    @property
    def num_channels(self) -> int:
        """Channels of every batch: ``channels`` when given, else inferred from the data (indexes it)."""
        if self.channels is not None:
            return self.channels
        if self._inferred_channels is None:
            self._indexed_sources()
        assert self._inferred_channels is not None
        return self._inferred_channels

    def _check_channels(self, found: int, where: str | Path) -> None:
        """Accept ``found`` channels for one image or array, or raise naming ``where``."""
        if self.channels is None and self._inferred_channels is None:
            self._inferred_channels = found
            return
        expected = self.channels if self.channels is not None else self._inferred_channels
        if found == expected:
            return
        if self.channels is None:
            hint = "as the first image; pass channels=... and convert=True to convert images"
            raise invalid(where, f"{expected} channel(s) {hint}", f"{found}")
        if not self.convert:
            raise invalid(where, f"{expected} channel(s) (channels={expected}; convert=True converts)", f"{found}")

    def _check_stats_length(self, channels: int) -> None:
        if self._user_stats is not None:
            for name, values in zip(("mean", "std"), self._user_stats):
                if len(values) != channels:
                    raise invalid(name, f"{channels} value(s), one per channel", f"{len(values)}: {values!r}")

    def _digits(self) -> ArrayImageSource:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = torch.from_numpy(np.round(digits.images * (255 / 16))).to(torch.uint8).unsqueeze(1)
        self._num_classes = 10
        return self._array_source(images, torch.from_numpy(digits.target).long(), DIGITS_SOURCE)

    def _array_source(self, images: Tensor, labels: Tensor, where: str | Path) -> ArrayImageSource:
        self._check_channels(images.shape[1], where)
        channels = self.num_channels
        if images.shape[1] != channels and {images.shape[1], channels} != {1, 3}:
            raise invalid(where, "grey <-> RGB conversion for in-memory images", f"{images.shape[1]} -> {channels}")
        return ArrayImageSource(images, labels, channels)

    def _read(self, location: str, field: str) -> SampleSource:
        path = require_path(location, field)
        if path.is_dir():
            return self._folder(path, field)
        return self._idx(path, field)

    def _idx(self, path: Path, field: str) -> ArrayImageSource:
        images = torch.from_numpy(read_idx(path, IDX_IMAGES_MAGIC)).unsqueeze(1)
        labels_path = path.with_name(path.name.replace("images-idx3", "labels-idx1"))
        if labels_path != path and labels_path.exists():
            labels = torch.from_numpy(read_idx(labels_path, IDX_LABELS_MAGIC)).long()
            if len(labels) != len(images):
                raise invalid(labels_path, f"{len(images)} labels, one per image in {path.name}", f"{len(labels)}")
            if field == "path":
                self._num_classes = int(labels.max()) + 1
        else:
            labels = torch.full((len(images),), -1, dtype=torch.long)
        return self._array_source(images, labels, path)

    def _folder(self, folder: Path, field: str) -> FileImageSource:
        """Index a folder once: every image is decoded in full (in parallel) so bad files fail now, not mid-epoch."""
        files, labels, names = index_class_folders(
            folder, _is_image, f"image files ({' '.join(IMAGE_EXTENSIONS)})", self._class_names, field == "test_path"
        )
        if names is not None and field == "path":
            self._class_names = names
            self._num_classes = len(names)
        kept: list[int] = []
        with strict_decoding():
            checked = check_files(
                files, decode_channels, self.on_bad_file, field, labels, self._class_names, CHECK_WORKERS
            )
            for position, (channels, deep) in checked:
                if deep and not self.convert:
                    expected = "an 8-bit image (convert=True, with channels=..., scales 16-bit grey to 8 bits)"
                    raise invalid(files[position], expected, "16-bit grey")
                self._check_channels(channels, files[position])
                kept.append(position)
        return FileImageSource(
            [files[position] for position in kept],
            torch.tensor([labels[position] for position in kept], dtype=torch.long),
            self.num_channels,
        )

    # ----------------------------------------------------------------- what the model sees

    @property
    def input_spec(self) -> InputSpec:
        """Channels, output size and number of classes (None if unlabeled); indexes the data on first use."""
        self._indexed_sources()
        return InputSpec(
            modality="images",
            channels=self.num_channels,
            image_size=self.image_size,
            num_classes=self._num_classes,
            condition_dim=len(PHOTOMETRIC_PARAMS) if self.view_params else 1 if self.view_rotations else None,
        )

    @property
    def class_names(self) -> list[str] | None:
        """Class sub-folder names of an image folder, in label order; None for other sources."""
        self._indexed_sources()
        return self._class_names

    def normalisation(self) -> tuple[list[float], list[float]]:
        """Per-channel (mean, std) on the [0, 1] scale: the user's, or computed once from the train split."""
        if self._user_stats is not None:
            return self._user_stats
        if self._stats is None:
            source, train = self.train_source, self.indices("train")
            if isinstance(source, ArrayImageSource):
                batches: Iterable[Tensor] = (source.batch(chunk) for chunk in train.split(4096))
            else:
                order = torch.randperm(len(train), generator=torch.Generator().manual_seed(self.seed))
                picked = train[order[:STATS_SAMPLE_SIZE]].tolist()
                batches = (source.load(index)[None] for index in tqdm(picked, desc="Image statistics", unit="img"))
            self._stats = channel_moments(batches)
        return self._stats

    def _normalize(self) -> Transform:
        """Speckle (when ``speckle_looks`` is set), then the per-channel normalisation, of [0, 1] float images."""
        mean, std = self.normalisation()
        if self.speckle_looks is None:
            return v2.Normalize(mean, std)
        return v2.Compose([Speckle(self.speckle_looks), v2.Normalize(mean, std)])

    def train_transform(self) -> Transform:
        """I-JEPA's training transform: random resized crop, then normalisation (no flip, no colour)."""
        crop = v2.RandomResizedCrop(self.image_size, scale=self.crop_scale, ratio=(3 / 4, 4 / 3), antialias=True)
        return v2.Compose([crop, v2.ToDtype(torch.float32, scale=True), self._normalize()])

    def eval_transform(self) -> Transform:
        """Resize to exactly ``image_size`` and normalise."""
        resize = v2.Resize(self.image_size, antialias=True)
        return v2.Compose([resize, v2.ToDtype(torch.float32, scale=True), self._normalize()])

    def view_augmentation(self) -> Transform:
        """The random part of a view, ``uint8`` in, float [0, 1] out; override to change the augmentation."""
        return simclr_augmentation(self.image_size, self.num_channels, self.view_flip)

    def view_transform(self) -> Transform | MultiViewTransform:
        if self.view_rotations:
            resize = v2.Compose([v2.Resize(self.image_size, antialias=True), v2.ToDtype(torch.float32, scale=True)])
            return RotatedViews(resize, self.view_rotations, self._normalize())
        if self.view_params:
            crop = v2.RandomResizedCrop(self.image_size, scale=self.crop_scale, antialias=True)
            steps: list[v2.Transform] = [crop, v2.RandomHorizontalFlip()] if self.view_flip else [crop]
            geometry = v2.Compose([*steps, v2.ToDtype(torch.float32, scale=True)])
            return PhotometricViews(
                geometry, PhotometricTransform(self.image_size, self.num_channels), self._normalize()
            )
        return v2.Compose([self.view_augmentation(), self._normalize()])

    def view_transforms(self, num_views: int) -> Transform | MultiViewTransform | list[Transform]:
        """Multi-crop when ``local_views > 0``: ``num_views - local_views`` global crops, then the local ones (both
        :func:`simclr_augmentation` at their own size and crop scale; an override of :meth:`view_augmentation` applies
        only without multi-crop)."""
        if not self.local_views or not num_views:
            return super().view_transforms(num_views)
        if self.local_views >= num_views:
            raise invalid(
                "local_views", f"fewer than num_views={num_views} (at least one global view)", repr(self.local_views)
            )
        channels, normalize = self.num_channels, self._normalize()
        crops = [(self.image_size, self.global_crop_scale), (self.local_size, self.local_crop_scale)]
        global_view, local_view = (
            v2.Compose([simclr_augmentation(size, channels, self.view_flip, scale), normalize]) for size, scale in crops
        )
        return [global_view] * (num_views - self.local_views) + [local_view] * self.local_views
