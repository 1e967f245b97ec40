"""The TS-JEPA preset: defaults, random and forecast masks, a step on a batch, a few steps through the CLI."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from jepa_lightning.cli import main
from jepa_lightning.masks import ForecastMaskSampler, RandomPatchMaskSampler
from jepa_lightning.methods import TSJEPA
from jepa_lightning.nn import TransformerEncoder
from jepa_lightning.tokenizers import InputSpec
from tests.conftest import FAST_TRAINER_ARGS

TINY = [
    "--model=jepa_lightning.methods.TSJEPA",
    "--model.encoder=jepa_lightning.nn.TransformerEncoder",
    "--model.encoder.embed_dim=16",
    "--model.encoder.depth=1",
    "--model.encoder.num_heads=2",
    "--model.encoder.attention=same_channel",
    "--model.predictor_dim=8",
    "--model.predictor_depth=1",
    "--model.predictor_heads=2",
    "--data=datamodules.time_series.TimeSeriesDataModule",
    "--data.batch_size=4",
    "--trainer.max_steps=2",
    "--trainer.limit_val_batches=1",
    *FAST_TRAINER_ARGS,
    "--seed_everything=0",
]


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["jepa-lightning"])


def small(channels: int = 3, **kwargs) -> TSJEPA:
    spec = InputSpec("time_series", channels=channels)
    encoder = TransformerEncoder(16, 1, 2, attention="same_channel")
    return TSJEPA(
        encoder=encoder,
        patch_length=8,
        predictor_dim=8,
        predictor_depth=1,
        predictor_heads=2,
        input_spec=spec,
        **kwargs,
    )


def test_paper_defaults():
    model = TSJEPA(input_spec=InputSpec("time_series", channels=2))
    tokenizer = model.student.tokenizer
    assert (tokenizer.patch_length, tokenizer.channel_independent, tokenizer.instance_norm) == (24, True, True)
    assert isinstance(model.mask_sampler, RandomPatchMaskSampler)
    assert (model.mask_sampler.target_ratio, model.mask_sampler.share_channels) == (0.5, False)
    assert (model.loss_kind, model.loss_beta, model.target_norm) == ("smooth_l1", 0.5, "layer_norm")
    assert (model.teacher.momentum, model.teacher.final_momentum) == (0.996, 1.0)
    encoder = model.student.encoder
    assert (encoder.embed_dim, len(encoder.blocks), encoder.num_heads, encoder.attention) == (
        128,
        3,
        16,
        "same_channel",
    )
    assert model.predictor.attention == "same_channel" and model.regularizer == "none"


def test_forecast_mask_and_vicreg():
    model = small(mask_sampler=ForecastMaskSampler(0.25), regularizer="vicreg")
    assert isinstance(model.mask_sampler, ForecastMaskSampler) and model.mask_sampler.target_ratio == 0.25
    assert model.regularizer == "vicreg" and model.regularizer_weight == 1.0
    loss, stats, *_ = model.masked_prediction(torch.randn(2, 3, 64), torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and "regularizer" in stats


def test_random_masks_differ_per_channel_and_step_runs():
    model = small()
    x = torch.randn(2, 3, 64)  # 3 channels x 8 patches
    tokens = model.student.tokenizer(x)
    context, target = model.mask_sampler(tokens.layout, 2, torch.Generator().manual_seed(0), "cpu")
    assert context.shape == (2, 12) and target.shape == (2, 1, 12)  # 4 of 8 patches per channel
    per_channel = (target[0, 0] % 8).reshape(3, 4)
    assert not all(torch.equal(per_channel[0], row) for row in per_channel[1:])
    assert ((target[0, 0] // 8).bincount() == 4).all()  # every channel masks half its patches
    loss, *_ = model.masked_prediction(x, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and model.embed(x).shape == (2, 16)


def test_trains_on_gunpoint_through_the_cli(tmp_path):
    main(["fit", *TINY, "--model.patch_length=10", "--data.length=150", f"--trainer.default_root_dir={tmp_path}"])


def test_trains_on_a_multivariate_npz_with_forecast_masks(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "x.npz", x=rng.normal(size=(12, 2, 100)), y=np.arange(12) % 3)
    main(
        [
            "fit",
            *TINY,
            "--model.patch_length=20",
            "--model.mask_sampler=jepa_lightning.masks.ForecastMaskSampler",
            f"--data.path={tmp_path / 'x.npz'}",
            "--data.window=80",
            "--data.stride=20",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
