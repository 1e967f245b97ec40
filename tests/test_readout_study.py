"""``benchmarks/readout_study.py``: its Fashion-MNIST images are ones the quality panel never reads, and a timm
backbone's stages are pooled to the widths they add up to."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import readout_study

from jepa_lightning.nn import TimmBackbone
from tests.conftest import DIGITS_16
from tests.datamodules.test_images import write_idx


def test_the_study_reads_no_image_the_panel_reads() -> None:
    panel = set(range(readout_study.panel.FASHION_TRAIN))  # the panel's training images; its test images: t10k
    study = [set(range(*span)) for span in readout_study.OFF_PANEL.values()]
    assert not study[0] & study[1] and not (study[0] | study[1]) & panel


def test_off_panel_folders(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(readout_study, "OFF_PANEL", {"train": (3, 7), "test": (7, 9)})
    images = np.arange(10, dtype=np.uint8)[:, None, None] * np.ones((10, 4, 4), np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", readout_study.IDX_IMAGES_MAGIC, images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", readout_study.IDX_LABELS_MAGIC, np.arange(10) % 2)
    args = readout_study.off_panel_fashion(tmp_path, tmp_path / "cache")
    assert args == [f"--data.path={tmp_path / 'cache' / 'train'}", f"--data.test_path={tmp_path / 'cache' / 'test'}"]
    files = {split: sorted((tmp_path / "cache" / split).rglob("*.png")) for split in ("train", "test")}
    assert [f.stem for f in files["train"]] == ["00004", "00006", "00003", "00005"]  # class folders 0, 1
    assert [int(np.asarray(Image.open(f)).max()) for f in files["test"]] == [8, 7]
    assert {f.parent.name for f in files["test"]} == {"0", "1"}


def test_stage_features_concatenate_every_stage() -> None:
    backbone = TimmBackbone(DIGITS_16, "resnet18")
    features = readout_study.stage_features(backbone, torch.randn(2, 1, 16, 16))
    assert features["stages_mean"].shape == (2, 64 + 64 + 128 + 256 + 512)
    assert features["stages_max_mean"].shape == (2, 2 * 1024)
    assert torch.equal(features["stages_max_mean"][:, 1024:], features["stages_mean"])
