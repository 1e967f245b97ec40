"""Every series modality's views train a joint-embedding method through the CLI (a tokenizer + ViT backbone)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from jepa_lightning.cli import main
from tests.conftest import FAST_TRAINER_ARGS

RUN = [
    "fit",
    "--model=jepa_lightning.methods.VICReg",
    "--model.projector_dims=[32, 32]",
    "--model.backbone=jepa_lightning.nn.PooledTokenBackbone",
    "--model.backbone.encoder=jepa_lightning.nn.TransformerEncoder",
    "--model.backbone.encoder.embed_dim=16",
    "--model.backbone.encoder.depth=1",
    "--model.backbone.encoder.num_heads=2",
    "--trainer.max_steps=2",
    "--trainer.limit_val_batches=1",
    *FAST_TRAINER_ARGS,
    "--seed_everything=0",
]
CHANNEL_PATCHES = "--model.backbone.tokenizer=jepa_lightning.tokenizers.ChannelPatchTokenizer"


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["jepa-lightning"])


def two_class_ts(path: Path, channels: int, length: int, trials: int = 10) -> Path:
    """A UEA .ts file of ``trials`` random trials of ``channels`` x ``length``, labels a / b."""
    rng = np.random.default_rng(0)
    lines = ["@problemName tiny", f"@dimensions {channels}", "@equalLength true", "@classLabel true a b", "@data"]
    for number in range(trials):
        rows = rng.normal(size=(channels, length)).round(3)
        lines.append(":".join(",".join(map(str, row)) for row in rows) + (":a" if number % 2 else ":b"))
    path.write_text("\n".join(lines) + "\n")
    return path


def fit(tmp_path: Path, *args: str) -> None:
    main([*RUN, *args, "--data.batch_size=4", f"--trainer.default_root_dir={tmp_path}"])


def test_time_series(tmp_path: Path) -> None:
    data = two_class_ts(tmp_path / "train.ts", channels=2, length=48)
    tokens = "--model.backbone.tokenizer.patch_length=8"
    fit(tmp_path, CHANNEL_PATCHES, tokens, "--data=datamodules.TimeSeriesDataModule", f"--data.path={data}")


def test_eeg(tmp_path: Path) -> None:
    data = two_class_ts(tmp_path / "train.ts", channels=3, length=64)
    tokens = "--model.backbone.tokenizer.patch_length=16"
    fit(tmp_path, CHANNEL_PATCHES, tokens, "--data=datamodules.EEGDataModule", f"--data.path={data}",
        "--data.ts_sample_rate=32")  # fmt: skip


def test_ecg_on_the_bundled_record(tmp_path: Path) -> None:
    tokens = "--model.backbone.tokenizer.patch_length=50"
    fit(tmp_path, CHANNEL_PATCHES, tokens, "--data=datamodules.ECGDataModule", "--data.sample_rate=100",
        "--data.window_seconds=5")  # fmt: skip


def test_tables_with_scarf_views(tmp_path: Path) -> None:
    fit(
        tmp_path,
        "--model.backbone.tokenizer=jepa_lightning.tokenizers.FeatureTokenizer",
        "--data=datamodules.TabularDataModule",
    )
