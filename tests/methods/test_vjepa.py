"""The VJEPA preset: the official recipe's defaults and its multi-mask loss (official ``loss_fn`` re-typed below)."""

from __future__ import annotations

import inspect
from pathlib import Path

import torch
import torch.nn.functional as F

from jepa_lightning.cli import build_cli
from jepa_lightning.masks import MultiMaskSampler, RandomChoiceMaskSampler, vjepa_multiblock
from jepa_lightning.methods import VJEPA
from jepa_lightning.nn.functional import gather_mask_major
from tests.conftest import tiny_video


def small(**kwargs) -> VJEPA:
    return tiny_video(VJEPA, **kwargs)


# official: facebookresearch/jepa@51c59d518fc63c08464af6de585f78ac0c7ed4d5
#   app/vjepa/train.py::main.loss_fn (loss_exp=1.0)
def official_loss(z, h, loss_exp=1.0):
    loss = 0.0
    for zi, hi in zip(z, h):
        loss += torch.mean(torch.abs(zi - hi) ** loss_exp) / loss_exp
    loss /= len(z)
    return loss


def test_defaults_are_the_official_vitl16_recipe():
    defaults = {name: p.default for name, p in inspect.signature(VJEPA).parameters.items()}
    assert defaults["patch_size"] == 16 and defaults["tubelet_size"] == 2
    assert defaults["predictor_dim"] == 384 and defaults["predictor_depth"] == 12
    assert defaults["loss"] == "l1" and defaults["target_norm"] == "layer_norm"
    assert (defaults["ema_momentum"], defaults["final_ema_momentum"], defaults["ema_horizon"]) == (0.998, 1.0, 1.25)
    assert (defaults["lr"], defaults["warmup_start_lr"], defaults["min_lr"]) == (6.25e-4, 2e-4, 1e-6)
    assert defaults["warmup_fraction"] == 40 / 300 and defaults["schedule_horizon"] == 1.25
    assert (defaults["weight_decay"], defaults["final_weight_decay"]) == (0.04, 0.4)
    model = small()
    assert isinstance(model.mask_sampler, MultiMaskSampler)
    assert [(s.num_blocks, s.scale, s.aspect, s.temporal_scale) for s in model.mask_sampler.samplers] == [
        (8, 0.15, (0.75, 1.5), 1.0),
        (2, 0.7, (0.75, 1.5), 1.0),
    ]
    assert model.predictor.mask_token.shape == (2, 1, 24)  # one mask token per configuration
    assert model.student.tokenizer.grid_shape == (4, 4, 4)


def test_the_loss_is_the_official_mean_over_both_configurations():
    model = small()
    with torch.no_grad():
        model.predictor.mask_token[1].add_(1.0)  # distinct tokens, so a mix-up of mask_index would show
    x = torch.randn(3, 3, 8, 32, 32)
    loss = model.masked_prediction(x, torch.Generator().manual_seed(5)).loss
    tokens = model.student.tokenizer(x)
    pairs = model.mask_sampler.configurations(tokens.layout, 3, torch.Generator().manual_seed(5), "cpu")
    z, h = [], []
    with torch.no_grad():
        teacher = F.layer_norm(model.teacher.module(x), (48,))
        for index, (context_idx, target_idx) in enumerate(pairs):
            context = model.student.encoder(tokens, keep=context_idx)
            z.append(model.predictor(context, tokens.layout, context_idx, target_idx, mask_index=index))
            h.append(gather_mask_major(teacher, target_idx))
    torch.testing.assert_close(loss, official_loss(z, h))
    assert abs(float(loss) - float(official_loss([z[0], z[0]], [h[0], h[0]]))) > 1e-4  # both configurations count


def test_one_configuration_per_batch_keeps_one_mask_token_and_trains():
    model = small(mask_sampler=vjepa_multiblock())
    assert isinstance(model.mask_sampler, RandomChoiceMaskSampler) and model.predictor.mask_token.shape == (1, 1, 24)
    loss = model.masked_prediction(torch.randn(2, 3, 8, 32, 32), torch.Generator().manual_seed(0)).loss
    loss.backward()
    assert model.predictor.mask_token.grad is not None and torch.isfinite(loss)
    assert model.embed(torch.randn(2, 3, 8, 32, 32)).shape == (2, 48)


def test_the_moving_digits_config_builds_and_links_the_clip_size_into_the_tokenizer():
    config = Path(__file__).parents[2] / "examples" / "configs" / "vjepa_moving_digits.yaml"
    cli = build_cli(["--config", str(config), "--trainer.logger=false"], run=False)
    assert type(cli.model).__name__ == "VJEPA" and type(cli.datamodule).__name__ == "VideoDataModule"
    assert cli.model.input_spec == cli.datamodule.input_spec and cli.model.input_spec.frames == 8
    assert cli.model.student.tokenizer.grid_shape == (4, 4, 4)
    assert cli.model.mask_sampler.num_configurations == 2
