"""The TS-JEPA preset: defaults, random and forecast masks, a step on a batch, a few steps through the CLI."""

from __future__ import annotations

import random
import sys

import lightning as L
import numpy as np
import pytest
import torch

from datamodules.time_series import TimeSeriesDataModule
from jepa_lightning.cli import main
from jepa_lightning.losses.latent import latent_regression, normalize_targets
from jepa_lightning.masks import ForecastMaskSampler, RandomPatchMaskSampler
from jepa_lightning.methods import TSJEPA
from jepa_lightning.nn import TransformerEncoder
from jepa_lightning.nn.functional import gather_mask_major
from jepa_lightning.tokenizers import InputSpec
from tests.conftest import FAST_TRAINER_ARGS, fast_trainer

TINY = [
    "--model=jepa_lightning.methods.TSJEPA",
    "--model.encoder=jepa_lightning.nn.TransformerEncoder",
    "--model.encoder.embed_dim=16",
    "--model.encoder.depth=1",
    "--model.encoder.num_heads=2",
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
    attention = "same_channel" if kwargs.get("channel_independent") else "full"
    encoder = TransformerEncoder(16, 1, 2, attention=attention)
    return TSJEPA(
        encoder=encoder,
        patch_length=8,
        predictor_dim=8,
        predictor_depth=1,
        predictor_heads=2,
        input_spec=spec,
        **kwargs,
    )


def test_min_patches_reaches_the_tokenizer_of_student_and_teacher():
    """``min_patches`` sizes the patches to the datamodule's batch width: 20 samples give 5 patches of 4, not 2 of 10;
    off by default."""
    spec = InputSpec("time_series", channels=1, padded_length=20)
    encoder = TransformerEncoder(16, 1, 2)
    model = TSJEPA(encoder=encoder, patch_length=10, min_patches=5, predictor_dim=8, input_spec=spec)
    assert model.student.tokenizer.patch_length == 4 and model.teacher.module.tokenizer.patch_length == 4
    assert model.embed(torch.randn(2, 1, 20)).shape == (2, 16)
    assert TSJEPA(encoder=encoder, patch_length=10, input_spec=spec).student.tokenizer.patch_length == 10


def test_batch_width_in_the_spec_changes_nothing_without_min_patches():
    """The datamodule's ``padded_length`` is read only by ``min_patches``: the same seed builds the same weights."""
    weights = []
    for spec in (InputSpec("time_series", channels=1), InputSpec("time_series", channels=1, padded_length=20)):
        torch.manual_seed(0)
        model = TSJEPA(encoder=TransformerEncoder(16, 1, 2), patch_length=10, predictor_dim=8, input_spec=spec)
        weights.append(model.state_dict())
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])


def test_paper_defaults():
    model = TSJEPA(input_spec=InputSpec("time_series", channels=1))
    tokenizer = model.student.tokenizer
    assert (tokenizer.patch_length, tokenizer.channel_independent, tokenizer.instance_norm) == (32, False, False)
    assert tokenizer.embedding == "conv" and tokenizer.proj.conv.kernel_size == (3,)
    assert isinstance(model.mask_sampler, RandomPatchMaskSampler) and model.mask_sampler.target_ratio == 0.7
    assert (model.loss_kind, model.target_norm, model.readout, model.regularizer) == (
        "l1",
        "layer_norm",
        "mean",
        "none",
    )
    teacher = model.teacher
    assert (teacher.momentum, teacher.final_momentum, teacher.horizon, teacher.interval) == (0.998, 1.0, 1.25, "epoch")
    encoder = model.student.encoder
    assert (encoder.embed_dim, len(encoder.blocks), encoder.num_heads, encoder.attention) == (384, 3, 6, "full")
    predictor = model.predictor
    assert (predictor.predictor_dim, len(predictor.blocks), predictor.attention) == (128, 1, "full")
    assert (model.lr, model.warmup_fraction, model.min_lr) == (6e-5, 0.0, 3e-5)
    assert (model.weight_decay, model.final_weight_decay) == (0.01, None)
    x = torch.randn(2, 1, 320)  # the official window: 10 patches of 32 samples
    assert model.student.tokenizer(x).layout.shape == (10,)
    loss, *_ = model.masked_prediction(x, torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and model.embed(x).shape == (2, 384)


def test_channel_independent_option_keeps_the_patchtst_layout():
    model = small(channel_independent=True, instance_norm=True, embedding="linear")
    assert model.predictor.attention == "same_channel" and model.mask_sampler.share_channels is False
    tokens = model.student.tokenizer(torch.randn(2, 3, 64))
    assert tokens.layout.shape == (3, 8) and model.student.tokenizer.instance_norm


def test_forecast_mask_and_vicreg():
    model = small(mask_sampler=ForecastMaskSampler(0.25), regularizer="vicreg")
    assert isinstance(model.mask_sampler, ForecastMaskSampler) and model.mask_sampler.target_ratio == 0.25
    assert model.regularizer == "vicreg" and model.regularizer_weight == 1.0
    loss, stats, *_ = model.masked_prediction(torch.randn(2, 3, 64), torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and "regularizer" in stats


def test_random_masks_differ_per_channel_and_step_runs():
    model = small(channel_independent=True)
    x = torch.randn(2, 3, 64)  # 3 channels x 8 patches
    tokens = model.student.tokenizer(x)
    context, target = model.mask_sampler(tokens.layout, 2, torch.Generator().manual_seed(0), "cpu")
    assert context.shape == (2, 6) and target.shape == (2, 1, 18)  # round(0.7 * 8) = 6 of 8 patches per channel
    per_channel = (target[0, 0] % 8).reshape(3, 6)
    assert not all(torch.equal(per_channel[0], row) for row in per_channel[1:])
    assert ((target[0, 0] // 8).bincount() == 6).all()  # every channel draws its own targets
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


# official: Sennadir/TS_JEPA@830ee5c3a7d4e85623bd5a07992732be7fda9bc2
#   src/data_loaders/data_class.py::CSVDataLoader.__getitem__
def official_mask(num_patches, mask_ratio):
    num_masked_patches = int(num_patches * mask_ratio)
    mask_indices = random.sample(range(num_patches), num_masked_patches)
    non_mask_indices = [i for i in range(num_patches) if i not in mask_indices]
    return torch.tensor(mask_indices), torch.tensor(non_mask_indices)


def test_random_targets_match_the_official_mask_statistics():
    """320 samples -> 10 patches: 7 targets and 3 context patches per sample, every patch a target 70% of the time."""
    model = TSJEPA(input_spec=InputSpec("time_series", channels=1))
    layout = model.student.tokenizer(torch.randn(1, 1, 320)).layout
    context, target = model.mask_sampler(layout, 4000, torch.Generator().manual_seed(0), "cpu")
    random.seed(0)
    official = [official_mask(10, 0.7) for _ in range(4000)]
    assert target.shape == (4000, 1, 7) and context.shape == (4000, 3)
    assert {len(m) for m, _ in official} == {7} and {len(k) for _, k in official} == {3}
    ours_rate = torch.zeros(10).index_add_(0, target.flatten(), torch.ones(target.numel())) / 4000
    official_rate = torch.zeros(10).index_add_(0, torch.cat([m for m, _ in official]), torch.ones(28000)) / 4000
    assert torch.allclose(ours_rate, torch.full((10,), 0.7), atol=0.03)
    assert torch.allclose(official_rate, torch.full((10,), 0.7), atol=0.03)
    assert all(sorted(set(c.tolist()) | set(t.tolist())) == list(range(10)) for c, t in zip(context, target[:, 0]))


# official: Sennadir/TS_JEPA@830ee5c3a7d4e85623bd5a07992732be7fda9bc2 pretrain.py::loss_pred and the target lines of
# its training loop (F.layer_norm of the EMA encoder's output, then apply_mask from src/models/utils/mask_utils.py)
def official_loss(pred, target_ema_full, masks):
    target_ema = torch.nn.functional.layer_norm(target_ema_full, (target_ema_full.size(-1),))
    target_ema = torch.gather(target_ema, 1, masks.unsqueeze(-1).repeat(1, 1, target_ema.size(-1)))
    loss = 0.0
    for pred_i, target_ema_i in zip([pred], [target_ema]):
        loss = loss + torch.mean(torch.abs(pred_i - target_ema_i))
    return loss / 1


def test_loss_matches_the_official_l1_on_layer_normed_teacher_targets():
    generator = torch.Generator().manual_seed(0)
    encoded = 3 * torch.randn(4, 10, 16, generator=generator) + 1
    masks = torch.stack([torch.randperm(10, generator=generator)[:7].sort().values for _ in range(4)])
    prediction = torch.randn(4, 7, 16, generator=generator)
    model = small(channels=1)
    target = gather_mask_major(normalize_targets(encoded, model.target_norm), masks.unsqueeze(1))
    ours = latent_regression(prediction, target, model.loss_kind, model.loss_beta)
    torch.testing.assert_close(ours, official_loss(prediction, encoded, masks))


class MomentumLog:
    """Records (epoch, momentum) of every teacher update."""

    def __init__(self, model: TSJEPA) -> None:
        self.values: list[tuple[int, float]] = []
        update = model.teacher.update

        def logged(student, momentum):
            self.values.append((model.trainer.current_epoch, momentum))
            update(student, momentum)

        model.teacher.update = logged


class StopAfter(L.Callback):
    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch + 1 == self.epochs:
            trainer.should_stop = True


def test_ema_is_stepped_once_per_epoch_as_the_official_generator_and_resumes_the_same(tmp_path):
    """GunPoint's 50 series in batches of 10: 5 steps per epoch, 4 epochs; the official momentum of epoch ``e`` is
    ``0.998 + e * 0.002 / (1.25 * epochs)`` (pretrain.py's ``ema_scheduler``, one ``next`` per epoch)."""

    def data():
        return TimeSeriesDataModule(length=144, batch_size=10, val_fraction=0)

    torch.manual_seed(0)
    full = small(channels=1)
    log = MomentumLog(full)
    fast_trainer(tmp_path / "full", max_epochs=4, limit_val_batches=0).fit(full, data())
    # official: Sennadir/TS_JEPA@830ee5c3a7d4e85623bd5a07992732be7fda9bc2 pretrain.py (ema_scheduler)
    official = [0.998 + i * (1 - 0.998) / (4 * 1.25) for i in range(int(4 * 1.25) + 1)]
    assert [epoch for epoch, _ in log.values] == [e for e in range(4) for _ in range(5)]
    assert [m for _, m in log.values] == pytest.approx([official[e] for e in range(4) for _ in range(5)], abs=1e-12)

    torch.manual_seed(0)
    first = small(channels=1)
    trainer = fast_trainer(tmp_path / "first", max_epochs=4, limit_val_batches=0, callbacks=[StopAfter(2)])
    trainer.fit(first, data())
    trainer.save_checkpoint(tmp_path / "half.ckpt")
    resumed = small(channels=1)
    log = MomentumLog(resumed)
    fast_trainer(tmp_path / "resumed", max_epochs=4, limit_val_batches=0).fit(
        resumed, data(), ckpt_path=tmp_path / "half.ckpt"
    )
    assert [m for _, m in log.values] == pytest.approx([official[e] for e in (2, 3) for _ in range(5)], abs=1e-12)


def test_step_interval_is_the_default_of_the_generic_jepa():
    model = small(ema_interval="step")
    assert model.teacher.interval == "step"
    with pytest.raises(ValueError, match="interval"):
        small(ema_interval="batch")
