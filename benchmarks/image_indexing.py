"""Indexing time of an image folder: every image decoded in full (1 thread and the default pool) vs header reads only.

    python benchmarks/image_indexing.py --images 2000 --size 32 --rounds 5

Writes ``--images`` random RGB PNGs of ``--size`` x ``--size`` pixels in two class folders (a temporary directory),
then times ``ImageDataModule(path).setup("fit")``, which decodes every image so that a truncated file fails before
training, with 1 checking thread and with ``CHECK_WORKERS``; the baseline is the same indexing with each file's header
read instead (what indexing did before full decoding). Medians over ``--rounds``. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from harness import print_table
from PIL import Image

import datamodules.images as images
from datamodules.base import CHECK_WORKERS
from datamodules.images import ImageDataModule


def write_pngs(root: Path, count: int, size: int) -> None:
    """``count`` random RGB PNGs of ``size`` x ``size`` in class folders ``a`` and ``b``."""
    rng = np.random.default_rng(0)
    for number in range(count):
        folder = root / ("a" if number % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{number:05d}.png")


def median_seconds(run: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def header_channels(path: Path) -> tuple[int, bool]:
    """The baseline check: the channel count from the header alone, nothing decoded."""
    with Image.open(path) as image:
        return images.MODE_CHANNELS[image.mode], False


def index_with(root: Path, workers: int, check: Callable[[Path], tuple[int, bool]]) -> Callable[[], object]:
    def run() -> object:
        images.CHECK_WORKERS = workers
        images.decode_channels = check
        return ImageDataModule(str(root)).setup("fit")

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_pngs(root, args.images, args.size)
        decode = images.decode_channels
        rows = [
            ["header reads only (before)", 1, median_seconds(index_with(root, 1, header_channels), args.rounds)],
            ["full decode", 1, median_seconds(index_with(root, 1, decode), args.rounds)],
            ["full decode", CHECK_WORKERS, median_seconds(index_with(root, CHECK_WORKERS, decode), args.rounds)],
        ]
    title = f"Indexing {args.images} PNGs of {args.size} x {args.size}"
    print_table(title, ["check", "threads", "median seconds"], rows)


if __name__ == "__main__":
    main()
