"""Shared fixtures: tiny models and data so the suite stays fast on 2 CPU cores."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import lightning as L
import pytest
import torch

from jepa_lightning.masks import MultiBlockMaskSampler
from jepa_lightning.methods import IJEPA
from jepa_lightning.nn import TransformerEncoder
from jepa_lightning.tokenizers import InputSpec

T = TypeVar("T")

DIGITS_16 = InputSpec("images", channels=1, image_size=(16, 16), num_classes=10)
#: Eight 32 x 32 RGB frames: the clips of the video presets' tests.
CLIP_8x32 = InputSpec("video", channels=3, image_size=(32, 32), frames=8)
#: The command line's tiny I-JEPA on the bundled digits (arguments for `jepa-lightning fit` / `probe`).
TINY_IJEPA = [
    "--model=jepa_lightning.methods.IJEPA",
    "--model.encoder=jepa_lightning.nn.TransformerEncoder",
    "--model.encoder.embed_dim=32",
    "--model.encoder.depth=1",
    "--model.encoder.num_heads=2",
    "--model.patch_size=2",
    "--model.predictor_dim=16",
    "--model.predictor_depth=1",
    "--model.predictor_heads=2",
    "--data=datamodules.images.ImageDataModule",
    "--data.image_size=16",
    "--data.batch_size=64",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--seed_everything=0",
]

#: What every test fit leaves out (logging, checkpoints, progress bar, model summary) and where it runs.
FAST_TRAINER: dict[str, Any] = {
    "accelerator": "cpu",
    "devices": 1,
    "logger": False,
    "enable_checkpointing": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
}
#: The same settings as command-line arguments, for tests that fit through ``jepa-lightning fit``.
FAST_TRAINER_ARGS = [f"--trainer.{key}={str(value).lower()}" for key, value in FAST_TRAINER.items()]


def fast_trainer(root: Path | str | None = None, **overrides: Any) -> L.Trainer:
    """A quiet CPU Trainer (:data:`FAST_TRAINER`) writing only under ``root``; ``overrides`` set the rest."""
    return L.Trainer(**{**FAST_TRAINER, "default_root_dir": root, **overrides})


def tiny_ijepa(**kwargs) -> IJEPA:
    """A two-layer I-JEPA on 16 x 16 images with 2 x 2 patches (an 8 x 8 grid)."""
    defaults = {
        "encoder": TransformerEncoder(embed_dim=32, depth=2, num_heads=2),
        "patch_size": 2,
        "predictor_dim": 16,
        "predictor_depth": 1,
        "predictor_heads": 2,
        "mask_sampler": MultiBlockMaskSampler(min_context=4),
        "input_spec": DIGITS_16,
    }
    return IJEPA(**{**defaults, **kwargs})


def tiny_video(method: type[T], **kwargs: Any) -> T:
    """A two-layer video JEPA of class ``method`` on :data:`CLIP_8x32` with 8 x 8 patches."""
    torch.manual_seed(0)
    defaults = {
        "encoder": TransformerEncoder(embed_dim=48, depth=2, num_heads=4),
        "patch_size": 8,
        "predictor_dim": 24,
        "predictor_depth": 1,
        "input_spec": CLIP_8x32,
    }
    return method(**{**defaults, **kwargs})


@pytest.fixture(scope="session", autouse=True)
def _repository_stays_clean():
    """The suite writes only under its temporary folders: nothing new appears in the repository root."""
    root = Path(__file__).resolve().parents[1]
    before = {path.name for path in root.iterdir()}
    yield
    added = sorted({path.name for path in root.iterdir()} - before - {".pytest_cache", "__pycache__"})
    assert not added, f"the test suite wrote {added} into the repository root {root}"


@pytest.fixture
def digits_batch() -> torch.Tensor:
    from sklearn.datasets import load_digits

    images = torch.tensor(load_digits().images[:32], dtype=torch.float32).unsqueeze(1) / 16.0
    return torch.nn.functional.interpolate(images, size=(16, 16), mode="bilinear")
