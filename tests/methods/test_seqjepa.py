"""The seq-JEPA preset: the official forward re-typed and compared with copied weights, rotated views, a CLI fit."""

from __future__ import annotations

import math
import sys

import pytest
import torch
import torch.nn.functional as F

from datamodules import ImageDataModule
from jepa_lightning.cli import main
from jepa_lightning.methods import SeqJEPA
from jepa_lightning.nn import PooledTokenBackbone, TransformerEncoder
from jepa_lightning.tokenizers import InputSpec, PatchTokenizer2d
from tests.conftest import FAST_TRAINER_ARGS

SPEC = InputSpec("images", channels=1, image_size=(16, 16), num_classes=10, condition_dim=1)


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["jepa-lightning"])


def tiny(**kwargs) -> SeqJEPA:
    torch.manual_seed(0)
    backbone = lambda spec: PooledTokenBackbone(  # noqa: E731
        spec, TransformerEncoder(embed_dim=16, depth=1, num_heads=2), lambda s, d: PatchTokenizer2d(s, d, 4)
    )
    defaults = {"backbone": backbone, "action_proj_dim": 8, "predictor_hidden": 32, "input_spec": SPEC}
    return SeqJEPA(**{**defaults, **kwargs})


# official: hafezgh/seq-jepa@73e0550601725de59d2205c5bb192c7f86b04018 seq-jepa/src/models.py::SeqJEPA_Transforms.forward
# (act_cond=1, learn_act_emb=1, ema, rel_latents=None), re-typed with its modules passed in
def official_forward(
    encoder,
    target_encoder,
    action_proj,
    agg_token,
    transformer_encoder,
    norm,
    predictor,
    x_obs,
    x_pred,
    act_obs,
    act_pred,
):
    seq_len, res_out_dim = x_obs.shape[1], agg_token.shape[-1] - action_proj[0].out_features
    enc_obs = encoder(x_obs.reshape(-1, *x_obs.shape[2:])).reshape(-1, seq_len, res_out_dim)
    enc_pred_detached = target_encoder(x_pred).detach().reshape(-1, res_out_dim)
    act_enc_obs = act_obs.reshape(-1, seq_len, act_obs.shape[-1])
    relative_act_enc_obs = torch.zeros_like(act_enc_obs)
    relative_act_enc_obs[:, :-1] = act_enc_obs[:, 1:] - act_enc_obs[:, :-1]
    act_enc_pred = act_pred - act_enc_obs[:, -1]
    act_enc_pred = action_proj(act_enc_pred)
    relative_act_enc_obs = action_proj(relative_act_enc_obs.reshape(-1, act_obs.shape[-1]))
    relative_act_enc_obs = relative_act_enc_obs.reshape(-1, seq_len, action_proj[0].out_features)
    relative_act_enc_obs[:, -1, ...] = 0.0
    enc_obs_concat = torch.cat((enc_obs, relative_act_enc_obs), dim=-1)
    x = torch.cat((agg_token.expand(enc_obs.shape[0], -1, -1), enc_obs_concat), dim=1)
    for layer in transformer_encoder.layers:
        x = layer(x)
    agg_out = norm(x)[:, 0]
    pred_out = predictor(torch.cat((agg_out, act_enc_pred), dim=-1))
    return 1 - F.cosine_similarity(pred_out, enc_pred_detached, dim=1).mean(), agg_out


def test_the_loss_matches_the_official_forward_with_the_same_weights():
    model = tiny(aggregator_dropout=0.0).train()
    torch.manual_seed(1)
    with torch.no_grad():  # a teacher that differs from the student, and a non-zero aggregate token
        for parameter in model.teacher.module.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
        model.agg_token.normal_()
    views = [torch.randn(6, 1, 16, 16) for _ in range(4)]
    actions = torch.rand(6, 4, 1) * math.pi - math.pi / 2
    loss, aggregate = model.sequence_loss(views, actions)
    with model.teacher.frozen() as teacher:
        expected, expected_aggregate = official_forward(
            model.encoder,
            teacher,
            model.action_proj,
            model.agg_token,
            model.aggregator,
            model.aggregator_norm,
            model.predictor,
            torch.stack(views[:-1], dim=1),
            views[-1],
            actions[:, :-1],
            actions[:, -1],
        )
    torch.testing.assert_close(aggregate, expected_aggregate)
    torch.testing.assert_close(loss, expected)
    # the actions matter: other rotations, another loss
    assert abs(float((model.sequence_loss(views, actions * 2)[0] - loss).detach())) > 1e-5


def test_defaults_are_the_official_scripts():
    model = tiny()
    assert (model.seq_len, model.num_views, model.action_proj[0].out_features) == (3, 4, 8)
    assert (len(model.aggregator.layers), model.aggregator.layers[0].self_attn.num_heads) == (3, 4)
    assert model.aggregator.layers[0].dropout.p == 0.1 and not model.aggregator.layers[0].norm_first
    # Adam without decay: the script's --weight-decay reaches only the evaluation probes' AdamW
    assert (model.lr, model.weight_decay, model.final_weight_decay, model.warmup_start_lr) == (4e-4, 0.0, None, 1e-5)
    assert model.teacher.momentum_at(0, 10) == model.teacher.momentum_at(9, 10) == 0.996
    with pytest.raises(ValueError, match="condition_dim"):
        tiny(input_spec=InputSpec("images", channels=1, image_size=(16, 16)))


def test_rotated_views_carry_their_angles_and_rotate_the_same_image():
    datamodule = ImageDataModule(image_size=16, batch_size=4, view_rotations=90, num_views=4, drop_last=False)
    assert datamodule.input_spec.condition_dim == 1
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["cond"].shape == (4, 4, 1) and batch["cond"].abs().max() <= math.pi / 2
    views = datamodule.view_transform()
    sample = datamodule.train_source.load(0)
    views.max_degrees = 0.0  # no rotation: every view is the same resized image
    out = views(sample, 3)
    assert torch.equal(out["views"][0], out["views"][2]) and torch.equal(out["cond"], torch.zeros(3, 1))
    with pytest.raises(ValueError, match="view_rotations"):
        ImageDataModule(view_rotations=30, view_params=True)


def test_fits_through_the_cli_on_rotated_digits(tmp_path):
    main(
        [
            "fit",
            "--model=jepa_lightning.methods.SeqJEPA",
            "--model.backbone=jepa_lightning.nn.PooledTokenBackbone",
            "--model.backbone.encoder=jepa_lightning.nn.TransformerEncoder",
            "--model.backbone.encoder.embed_dim=16",
            "--model.backbone.encoder.depth=1",
            "--model.backbone.encoder.num_heads=2",
            "--model.backbone.tokenizer=jepa_lightning.tokenizers.PatchTokenizer2d",
            "--model.backbone.tokenizer.patch_size=4",
            "--model.action_proj_dim=8",
            "--model.predictor_hidden=32",
            "--data=datamodules.images.ImageDataModule",
            "--data.image_size=16",
            "--data.batch_size=8",
            "--data.view_rotations=90",
            "--trainer.max_steps=2",
            "--trainer.limit_val_batches=1",
            *FAST_TRAINER_ARGS,
            f"--trainer.default_root_dir={tmp_path}",
            "--seed_everything=0",
        ]
    )
