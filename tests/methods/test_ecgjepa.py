"""The ECG-JEPA presets: both published recipes (Kim; Weimann and Conrad), trained a few steps through the CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from jepa_lightning.cli import main
from jepa_lightning.masks import SharedTimeSpanMaskSampler, TimeBlockMaskSampler
from jepa_lightning.methods import ECGJEPA, ECGJEPAWeimann
from jepa_lightning.nn import TransformerEncoder
from jepa_lightning.tokenizers import InputSpec
from tests.conftest import FAST_TRAINER_ARGS

TINY = [
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
    *FAST_TRAINER_ARGS,
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
            "--model=jepa_lightning.methods.ECGJEPA",
            *TINY,
            "--model.encoder.attention=cross_pattern",
            "--model.encoder.positions_every_layer=true",
            f"--data.path={record}",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )


def test_weimann_trains_on_the_bundled_record(tmp_path):
    """Weimann's channel-mixing patches of 25 samples (20 per 5 s window at 100 Hz) and block masks."""
    main(["fit", "--model=jepa_lightning.methods.ECGJEPAWeimann", *TINY, f"--trainer.default_root_dir={tmp_path}"])


PRESETS = {"kim": ECGJEPA, "weimann": ECGJEPAWeimann}


def small(variant: str, channels: int) -> ECGJEPA | ECGJEPAWeimann:
    spec = InputSpec("ecg", channels=channels, sample_rate=100.0)
    encoder = TransformerEncoder(16, 1, 2, attention="cross_pattern" if variant == "kim" else "full")
    return PRESETS[variant](encoder=encoder, predictor_dim=8, predictor_depth=1, predictor_heads=2, input_spec=spec)


def test_each_preset_takes_its_recipe():
    kim, weimann = small("kim", 3), small("weimann", 3)
    assert isinstance(kim.mask_sampler, SharedTimeSpanMaskSampler) and kim.mask_sampler.num_targets == 4
    assert kim.mask_sampler.span_ratio == (0.175, 0.225)
    assert (kim.loss_kind, kim.target_norm, kim.lr, kim.weight_decay) == ("smooth_l1", "layer_norm", 5e-5, 0.05)
    assert kim.final_weight_decay is None and kim.weight_decay_at(0) == kim.weight_decay  # constant
    assert (kim.warmup_start_lr, kim.warmup_fraction, kim.betas) == (1e-6, 0.05, (0.9, 0.999))
    assert (kim.teacher.momentum, kim.teacher.final_momentum) == (0.996, 1.0)
    assert kim.predictor.attention == "same_channel" and kim.student.tokenizer.channel_independent
    assert kim.student.tokenizer.patch_length == 50
    assert isinstance(weimann.mask_sampler, TimeBlockMaskSampler)
    assert (weimann.mask_sampler.keep_ratio, weimann.mask_sampler.min_block_length) == ((0.15, 0.25), 10)
    assert (weimann.loss_kind, weimann.target_norm, weimann.betas) == ("l1", "none", (0.9, 0.99))
    assert (weimann.lr, weimann.weight_decay, weimann.final_weight_decay) == (1e-3, 0.01, 0.1)
    assert (weimann.teacher.momentum, weimann.teacher.final_momentum) == (0.998, 0.9995)
    assert weimann.predictor.attention == "full" and not weimann.student.tokenizer.channel_independent
    assert weimann.student.tokenizer.patch_length == 25


@pytest.mark.parametrize(
    ("preset", "encoder", "predictor"),
    [(ECGJEPA, (768, 12, 16), (384, 6, 12)), (ECGJEPAWeimann, (384, 8, 6), (192, 8, 6))],
)
def test_paper_sizes_without_an_encoder(preset, encoder, predictor):
    model = preset(input_spec=InputSpec("ecg", channels=2, sample_rate=100.0))
    built = model.student.encoder
    assert (built.embed_dim, len(built.blocks), built.num_heads) == encoder
    block = model.predictor.blocks[0].attn
    assert (model.predictor.predictor_dim, len(model.predictor.blocks), block.num_heads) == predictor
    assert (built.attention, built.positions_every_layer) == (
        ("cross_pattern", True) if preset is ECGJEPA else ("full", False)
    )


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("ECGJEPA", {"lr": 5.0e-05, "weight_decay": 0.05, "final_weight_decay": None, "patch_length": 50}),
        ("ECGJEPAWeimann", {"lr": 0.001, "weight_decay": 0.01, "final_weight_decay": 0.1, "patch_length": 25}),
    ],
)
def test_print_config_shows_each_recipe_as_real_defaults(preset, expected, capsys):
    with pytest.raises(SystemExit):
        main(
            [
                "fit",
                f"--model=jepa_lightning.methods.{preset}",
                "--data=datamodules.ecg.ECGDataModule",
                "--print_config",
            ]
        )
    init_args = yaml.safe_load(capsys.readouterr().out)["model"]["init_args"]
    assert {key: init_args[key] for key in expected} == expected


@pytest.mark.parametrize(("variant", "tokens"), [("kim", 3 * 10), ("weimann", 20)])
def test_one_step_on_a_batch(variant, tokens):
    model = small(variant, 3)
    x = torch.randn(2, 3, 500)
    loss = model.masked_prediction(x, torch.Generator().manual_seed(0)).loss
    loss.backward()
    assert torch.isfinite(loss) and model.embed(x).shape == (2, 16)
    assert model.student(x).shape == (2, tokens, 16)
