"""The ECG-JEPA preset: both published recipes, trained a few steps through the CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from jepa_lightning.cli import main
from jepa_lightning.masks import SharedTimeSpanMaskSampler, TimeBlockMaskSampler
from jepa_lightning.methods import ECGJEPA
from jepa_lightning.methods.jepa import ECG_JEPA_RECIPES
from jepa_lightning.nn import TransformerEncoder
from jepa_lightning.tokenizers import InputSpec

TINY = [
    "--model=jepa_lightning.methods.ECGJEPA",
    "--model.encoder=jepa_lightning.nn.TransformerEncoder",
    "--model.encoder.embed_dim=16",
    "--model.encoder.depth=1",
    "--model.encoder.num_heads=2",
    "--model.predictor_dim=8",
    "--model.predictor_depth=1",
    "--model.predictor_heads=2",
    "--data=datamodules.ecg.ECGDataModule",
    "--data.sample_rate=100",
    "--data.window_seconds=5",
    "--data.batch_size=4",
    "--trainer.max_steps=2",
    "--trainer.limit_val_batches=1",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--trainer.logger=false",
    "--trainer.enable_checkpointing=false",
    "--seed_everything=0",
]


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["jepa-lightning"])


def three_lead_record(folder: Path) -> Path:
    """60 s of 3 leads at 100 Hz (a sine per lead plus noise), as an NPZ with its metadata."""
    t = np.arange(6000) / 100
    rng = np.random.default_rng(0)
    signal = np.stack([np.sin(2 * np.pi * (1 + k) * t) + 0.1 * rng.normal(size=t.size) for k in range(3)])
    path = folder / "three_leads.npz"
    np.savez(path, signal=signal, sample_rate=100.0, lead_names=np.array(["I", "II", "V1"]))
    return path


def test_kim_trains_on_three_leads_with_cross_pattern_attention(tmp_path):
    """Kim's grid: 3 leads x 10 patches of 50 samples, masked attention in student, teacher and predictor."""
    record = three_lead_record(tmp_path)
    main(
        [
            "fit",
            *TINY,
            "--model.variant=kim",
            "--model.encoder.attention=cross_pattern",
            "--model.encoder.positions_every_layer=true",
            f"--data.path={record}",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )


def test_weimann_trains_on_the_bundled_record(tmp_path):
    """Weimann's channel-mixing patches of 25 samples (20 per 5 s window at 100 Hz) and block masks."""
    main(["fit", *TINY, "--model.variant=weimann", f"--trainer.default_root_dir={tmp_path}"])


def small(variant: str, channels: int) -> ECGJEPA:
    spec = InputSpec("ecg", channels=channels, sample_rate=100.0)
    encoder = TransformerEncoder(16, 1, 2, attention="cross_pattern" if variant == "kim" else "full")
    return ECGJEPA(
        variant=variant, encoder=encoder, predictor_dim=8, predictor_depth=1, predictor_heads=2, input_spec=spec
    )


def test_variants_take_their_recipe():
    kim, weimann = small("kim", 3), small("weimann", 3)
    assert isinstance(kim.mask_sampler, SharedTimeSpanMaskSampler) and kim.mask_sampler.num_targets == 4
    assert kim.mask_sampler.span_ratio == (0.175, 0.225)
    assert (kim.loss_kind, kim.target_norm, kim.lr, kim.weight_decay) == ("smooth_l1", "layer_norm", 5e-5, 0.05)
    assert (kim.teacher.momentum, kim.teacher.final_momentum) == (0.996, 1.0)
    assert kim.predictor.attention == "same_channel" and kim.student.tokenizer.channel_independent
    assert kim.student.tokenizer.patch_length == 50
    assert isinstance(weimann.mask_sampler, TimeBlockMaskSampler)
    assert (weimann.mask_sampler.keep_ratio, weimann.mask_sampler.min_block_length) == ((0.15, 0.25), 10)
    assert (weimann.loss_kind, weimann.target_norm, weimann.betas) == ("l1", "none", (0.9, 0.99))
    assert (weimann.teacher.momentum, weimann.teacher.final_momentum) == (0.998, 0.9995)
    assert weimann.predictor.attention == "full" and not weimann.student.tokenizer.channel_independent
    assert weimann.student.tokenizer.patch_length == 25
    # paper sizes when no encoder is given: (width, depth, heads)
    assert ECG_JEPA_RECIPES["kim"].encoder_size == (768, 12, 16) and ECG_JEPA_RECIPES["kim"].predictor_size == (
        384,
        6,
        12,
    )
    assert ECG_JEPA_RECIPES["weimann"].encoder_size == (384, 8, 6)
    with pytest.raises(ValueError, match="variant"):
        small("smith", 3)


@pytest.mark.parametrize(("variant", "tokens"), [("kim", 3 * 10), ("weimann", 20)])
def test_one_step_on_a_batch(variant, tokens):
    model = small(variant, 3)
    x = torch.randn(2, 3, 500)
    loss, _ = model.masked_prediction(x, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and model.embed(x).shape == (2, 16)
    assert model.student(x).shape == (2, tokens, 16)
