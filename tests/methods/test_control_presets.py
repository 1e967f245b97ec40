"""The control presets on trajectory windows: ACT-JEPA (action chunk + future embeddings) and TS-JEPA for predictive
control (command-conditioned prediction of the next window + a semantic actor), and their report.

Neither paper publishes code, so the references below are the papers' objectives written out by hand: the predictor
regresses the EMA target encoder's layer-normed tokens of the future steps from the context of the observed steps
(told the actions when conditioned), and the action head's L1 error on the expert's actions is added.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from jepa_lightning.callbacks import ControlReport
from jepa_lightning.cli import main
from jepa_lightning.masks.base import mask_generator
from jepa_lightning.methods import ACTJEPA, TSJEPAControl
from jepa_lightning.methods.trajectory import ActionDecoder, ActionMLP
from jepa_lightning.nn import TransformerEncoder
from jepa_lightning.tokenizers import InputSpec
from tests.conftest import FAST_TRAINER_ARGS

SPEC = InputSpec("trajectory", channels=3, length=4, horizon=4, condition_dim=1)


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["jepa-lightning"])


def tiny(preset: type, **kwargs):
    torch.manual_seed(0)
    defaults = {
        "encoder": TransformerEncoder(embed_dim=16, depth=1, num_heads=2),
        "predictor_dim": 8,
        "predictor_depth": 1,
        "predictor_heads": 2,
        "input_spec": SPEC,
    }
    return preset(**{**defaults, **kwargs})


def windows(batch: int = 5) -> dict:
    torch.manual_seed(1)
    return {
        "x": torch.randn(batch, 3, 4),
        "future": torch.randn(batch, 3, 4),
        "cond": torch.randn(batch, 4, 1),
        "y": torch.full((batch,), -1),
    }


def test_defaults_and_shapes():
    act = tiny(ACTJEPA)
    assert (act.target_scope, act.conditioned, act.action_steps, act.detach_action_head) == (
        "sequence",
        False,
        4,
        False,
    )
    assert isinstance(act.action_head, ActionDecoder) and act.loss_kind == "smooth_l1"
    assert (act.history_tokens, act.future_tokens) == (4, 4)
    control = tiny(TSJEPAControl)
    assert (control.target_scope, control.conditioned, control.action_steps) == ("future", True, 1)
    assert isinstance(control.action_head, ActionMLP) and control.detach_action_head and control.loss_kind == "l1"
    assert (control.history_tokens, control.future_tokens) == (2, 2)  # patches of 2 steps
    assert control.predictor.conditioning == "concat" and control.predictor.condition_embed.in_features == 8 + 4
    batch = windows()
    for model, tokens, steps in ((act, 4, 4), (control, 2, 1)):
        context, prediction = model.predict_future(
            batch["x"], batch["future"], batch["cond"], mask_generator(0, 0, 0, "cpu")
        )
        assert context.shape == (5, tokens, 16) and prediction.shape == (5, tokens, 16)
        assert model.decode_actions(context).shape == (5, steps, 1)
        assert model.future_targets(batch["x"], batch["future"]).shape == (5, tokens, 16)
        assert model.embed(batch["x"]).shape == (5, 16)
    with pytest.raises(ValueError, match="patch_length=3 must divide"):
        tiny(TSJEPAControl, patch_length=3)
    with pytest.raises(ValueError, match="horizon"):
        tiny(ACTJEPA, input_spec=InputSpec("trajectory", channels=3, length=4, condition_dim=1))
    with pytest.raises(ValueError, match="action_steps"):
        tiny(ACTJEPA, action_steps=5)
    with pytest.raises(ValueError, match=r"batch\['future'\]"):
        act.trajectory_objective({"x": batch["x"]}, mask_generator(0, 0, 0, "cpu"))


@pytest.mark.parametrize("preset", [ACTJEPA, TSJEPAControl])
def test_the_loss_is_the_future_prediction_plus_the_action_error_by_hand(preset):
    model = tiny(preset, action_weight=0.5)
    with torch.no_grad():  # a teacher that differs from the student
        for parameter in model.teacher.module.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    batch = windows()
    step = model.trajectory_objective(batch, mask_generator(0, 0, 0, "cpu"), regularize=False)
    x, future, actions = batch["x"], batch["future"], batch["cond"]
    sequence = torch.cat([x, future], dim=-1)
    tokens = model.student.tokenizer(sequence)
    observed = model.history_tokens
    context_idx = torch.arange(observed).expand(5, -1)
    target_idx = torch.arange(observed, tokens.features.shape[1]).expand(5, 1, -1)
    context = model.student.encoder(tokens, keep=context_idx)
    conditioned = {"cond": actions.flatten(1)} if preset is TSJEPAControl else {}
    prediction = model.predictor(context, tokens.layout, context_idx, target_idx, **conditioned)
    teacher = model.teacher.module
    if preset is ACTJEPA:  # the target encoder sees the observed and future steps, the targets are the future tokens
        encoded = teacher.encoder(teacher.tokenizer(sequence))[:, observed:]
        latent = F.smooth_l1_loss(prediction, F.layer_norm(encoded, encoded.shape[-1:]))
        decoded = model.action_head(context)
    else:  # the next window, encoded alone; the actor predicts the current command from the mean context token
        encoded = teacher.encoder(teacher.tokenizer(future))
        latent = F.l1_loss(prediction, F.layer_norm(encoded, encoded.shape[-1:]))
        decoded = model.action_head.mlp(context.mean(1)).unsqueeze(1)
    action = F.l1_loss(decoded, actions[:, : decoded.shape[1]])
    torch.testing.assert_close(step.loss, latent + 0.5 * action)
    torch.testing.assert_close(step.stats["action_loss"], action.detach())


def test_the_condition_changes_the_prediction_only_when_conditioned():
    batch, generator = windows(), mask_generator(0, 0, 0, "cpu")
    other = batch["cond"] + 1.0
    control = tiny(TSJEPAControl)
    _, told = control.predict_future(batch["x"], batch["future"], batch["cond"], generator)
    _, moved = control.predict_future(batch["x"], batch["future"], other, generator)
    assert (told - moved).abs().max() > 1e-4
    for conditioning in ("token", "adaln"):
        model = tiny(TSJEPAControl, predictor_conditioning=conditioning)
        _, told = model.predict_future(batch["x"], batch["future"], batch["cond"], generator)
        _, moved = model.predict_future(batch["x"], batch["future"], other, generator)
        assert (told - moved).abs().max() > 1e-6  # small weights at initialisation: a small change
    act = tiny(ACTJEPA)  # the paper's predictor sees the context only
    _, told = act.predict_future(batch["x"], batch["future"], batch["cond"], generator)
    _, moved = act.predict_future(batch["x"], batch["future"], other, generator)
    torch.testing.assert_close(told, moved)
    # the detached semantic actor sends no gradient into the encoder; ACT-JEPA's decoder does
    for model, reaches in ((control, False), (act, True)):
        model.zero_grad()
        context, _ = model.predict_future(batch["x"], batch["future"], batch["cond"], generator)
        F.l1_loss(model.decode_actions(context), batch["cond"][:, : model.action_steps]).backward()
        grad = model.student.encoder.blocks[0].attn.qkv.weight.grad
        assert (grad is not None and grad.abs().sum() > 0) == reaches


def test_control_metrics_and_their_baselines():
    model = tiny(TSJEPAControl).eval()
    batch = windows()
    metrics = model.control_metrics(batch)
    x, future, actions = batch["x"], batch["future"], batch["cond"]
    targets = model.future_targets(x, future)
    generator = mask_generator(0, 0, 0, "cpu")
    _, prediction = model.predict_future(x, future, actions, generator)
    _, blind = model.predict_future(x, future, torch.zeros_like(actions), generator)
    still = x[..., -1:].repeat(1, 1, 4)  # nothing moves: the last observation, four times
    torch.testing.assert_close(metrics["next_state_mse"], F.mse_loss(prediction, targets))
    torch.testing.assert_close(metrics["no_action_mse"], F.mse_loss(blind, targets))
    torch.testing.assert_close(metrics["persistence_mse"], F.mse_loss(model.future_targets(x, still), targets))
    torch.testing.assert_close(metrics["no_action_mae"], actions[:, :1].abs().mean())
    assert "no_action_mse" not in tiny(ACTJEPA).control_metrics(batch)


def test_both_presets_fit_through_the_cli_and_report(tmp_path, capsys):
    log = tmp_path / "log.npz"
    rng = np.random.default_rng(0)
    np.savez(log, observations=rng.normal(size=(60, 3)), actions=rng.normal(size=60), episode=np.repeat([0, 1, 2], 20))
    for preset, patch in (("ACTJEPA", 1), ("TSJEPAControl", 2)):
        main(
            [
                "fit",
                f"--model=jepa_lightning.methods.{preset}",
                "--model.encoder=jepa_lightning.nn.TransformerEncoder",
                "--model.encoder.embed_dim=16",
                "--model.encoder.depth=1",
                "--model.encoder.num_heads=2",
                "--model.predictor_dim=8",
                "--model.predictor_depth=1",
                "--model.predictor_heads=2",
                f"--model.patch_length={patch}",
                "--data=datamodules.TrajectoryDataModule",
                f"--data.path={log}",
                "--data.history=4",
                "--data.horizon=4",
                "--data.batch_size=8",
                "--data.val_fraction=0.34",
                "--trainer.max_steps=2",
                "--trainer.limit_val_batches=1",
                "--trainer.callbacks+=jepa_lightning.callbacks.ControlReport",
                "--diagnostics=false",
                *FAST_TRAINER_ARGS,
                f"--trainer.default_root_dir={tmp_path}",
                "--seed_everything=0",
            ]
        )
        report = capsys.readouterr().out
        assert "Control report on the val split" in report and "action MAE (action head)" in report
        assert ("actions zeroed" in report) == (preset == "TSJEPAControl")
    with pytest.raises(ValueError, match="trajectory JEPA"):
        ControlReport().on_fit_end(type("T", (), {"datamodule": None})(), torch.nn.Linear(1, 1))
