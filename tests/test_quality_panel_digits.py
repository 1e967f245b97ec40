"""The quality panel's OpenCV digits.png split: stratified, seeded, disjoint, labels from the tile rows."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import quality_panel as panel

SIDE = panel.DIGIT_SIDE


def synthetic_sheet(columns: int = 100, classes: int = 10) -> np.ndarray:
    """A digits.png-shaped sheet whose tile ``i`` is filled with ``i % 251`` (so tiles can be told apart)."""
    rows = classes * panel.DIGIT_ROWS_PER_CLASS
    values = (np.arange(rows * columns) % 251).astype(np.uint8).reshape(rows, columns)
    return np.kron(values, np.ones((SIDE, SIDE), dtype=np.uint8))


def test_split_is_stratified_disjoint_and_deterministic() -> None:
    sheet = synthetic_sheet()
    split = panel.split_digit_sheet(sheet)
    per_class = panel.DIGIT_ROWS_PER_CLASS * 100
    for name, count in (("train", panel.DIGITS_TRAIN_PER_CLASS), ("test", panel.DIGITS_TEST_PER_CLASS)):
        labels = np.array([label for _, label in split[name]])
        assert np.bincount(labels, minlength=10).tolist() == [count] * 10
        assert all(index // per_class == label for index, label in split[name])  # 5 rows of 100 per class
    train, test = {i for i, _ in split["train"]}, {i for i, _ in split["test"]}
    assert len(train) == 2000 and len(test) == 1000 and not train & test
    assert panel.split_digit_sheet(sheet) == split
    assert sorted(train)[:3] != [0, 1, 2]  # shuffled within the class, not its first tiles


def test_tiles_and_folders(tmp_path: Path) -> None:
    sheet = synthetic_sheet()
    tiles = panel.digit_tiles(sheet)
    assert tiles.shape == (5000, SIDE, SIDE) and tiles[1234].min() == tiles[1234].max() == 1234 % 251
    Image.fromarray(sheet).save(tmp_path / "digits.png")
    args = panel.opencv_digits(tmp_path / "digits.png", tmp_path / "cache")
    assert args == [f"--data.path={tmp_path / 'cache' / 'train'}", f"--data.test_path={tmp_path / 'cache' / 'test'}"]
    files = sorted((tmp_path / "cache" / "test" / "7").glob("*.png"))
    assert len(files) == panel.DIGITS_TEST_PER_CLASS
    index = int(files[0].stem)
    assert np.asarray(Image.open(files[0])).max() == index % 251 and index // 500 == 7
    with pytest.raises(FileNotFoundError, match="opencv-doc"):
        panel.opencv_digits(tmp_path / "missing.png", tmp_path / "other")


@pytest.mark.skipif(not panel.OPENCV_DIGITS.exists(), reason="needs Debian's opencv-doc")
def test_real_sheet_shape() -> None:
    sheet = np.asarray(Image.open(panel.OPENCV_DIGITS).convert("L"))
    assert sheet.shape == (50 * SIDE, 100 * SIDE)
    assert panel.digit_tiles(sheet).shape == (5000, SIDE, SIDE)
