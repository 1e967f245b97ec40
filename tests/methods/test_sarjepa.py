"""Fixed targets in JEPA (SAR-JEPA): no teacher, targets a deterministic function of the input, no gradient into
them; the preset trains."""

from functools import partial

import pytest
import torch

from datamodules import ImageDataModule
from jepa_lightning.inputs import InputSpec
from jepa_lightning.masks import LocalWindowMaskSampler, mask_generator
from jepa_lightning.methods import JEPA, SARJEPA
from jepa_lightning.nn import TransformerEncoder
from jepa_lightning.tokenizers import GradientTargets, PatchTokenizer2d
from tests.conftest import fast_trainer

SPEC = InputSpec("images", channels=1, image_size=(16, 16), num_classes=10)


def tiny_sarjepa(**kwargs) -> SARJEPA:
    torch.manual_seed(0)
    defaults = {
        "encoder": TransformerEncoder(embed_dim=32, depth=1, num_heads=2),
        "patch_size": 2,
        "radii": (1, 2),
        "window_size": 4,
        "num_windows": 3,
        "predictor_dim": 16,
        "predictor_depth": 1,
        "predictor_heads": 2,
        "input_spec": SPEC,
    }
    return SARJEPA(**{**defaults, **kwargs})


@pytest.fixture
def images(digits_batch) -> torch.Tensor:
    return digits_batch.clamp_min(0)  # intensities in [0, 1], as the official code feeds them


def test_fixed_targets_build_no_teacher_and_save_none():
    model = tiny_sarjepa()
    assert model.teacher is None
    trainable = {id(p) for group in model.parameter_groups() for p in group["params"]}
    assert trainable == {id(p) for p in model.student.parameters()} | {id(p) for p in model.predictor.parameters()}
    assert all(key.split(".")[0] in ("student", "predictor") for key in model.state_dict())
    assert model.predictor.proj.out_features == 2 * 2 * 2  # radii x patch pixels, not the encoder width


def test_targets_are_a_deterministic_function_of_the_input_without_gradient(images):
    model = tiny_sarjepa()
    x = images.clone().requires_grad_()
    tokens = model.student.tokenizer(x)
    first = model.fixed_targets(x, tokens)
    assert not first.requires_grad
    assert torch.equal(first, GradientTargets(2, (1, 2))(images))
    assert torch.equal(model.fixed_targets(x, tokens), first)
    model.train()  # training mode changes nothing: no dropout, no statistics
    assert torch.equal(model.fixed_targets(x, tokens), first)


def test_the_loss_is_the_mse_to_the_gathered_fixed_targets_and_no_gradient_reaches_them(images, monkeypatch):
    model = tiny_sarjepa()
    seen = {}
    original = model.fixed_targets

    def spy(x, tokens):
        seen["targets"] = original(x, tokens)
        return seen["targets"]

    monkeypatch.setattr(model, "fixed_targets", spy)
    context_idx, target_idx = model.mask_sampler(
        model.student.tokenizer(images).layout, images.shape[0], mask_generator(0, 0, 0, "cpu"), "cpu"
    )
    step = model.masked_prediction(images, mask_generator(0, 0, 0, "cpu"))
    tokens = model.student.tokenizer(images)
    prediction = model.predictor(
        model.student.encoder(tokens, keep=context_idx), tokens.layout, context_idx, target_idx
    )
    target = torch.cat([seen["targets"].gather(1, idx[:, :, None].expand(-1, -1, 8)) for idx in target_idx.unbind(1)])
    assert step.loss.item() == pytest.approx(torch.nn.functional.mse_loss(prediction, target).item(), rel=1e-5)
    step.loss.backward()
    assert seen["targets"].grad is None and not seen["targets"].requires_grad


def test_loss_falls_on_a_fixed_batch(images):
    model = tiny_sarjepa()
    optimizer = torch.optim.AdamW(model.parameter_groups(), lr=3e-3)
    losses = []
    for step in range(30):
        loss, *_ = model.masked_prediction(images, mask_generator(0, step % 4, 0, "cpu"))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5


def test_fixed_targets_need_their_features_and_a_student_readout():
    common = {
        "tokenizer": partial(PatchTokenizer2d, patch_size=4),
        "encoder": TransformerEncoder(embed_dim=16, depth=1, num_heads=2),
        "input_spec": SPEC,
        "mask_sampler": LocalWindowMaskSampler(2, 2),
    }
    with pytest.raises(ValueError, match="go together"):
        JEPA(target_encoder="fixed", readout_network="student", **common)
    with pytest.raises(ValueError, match="go together"):
        JEPA(target_features=GradientTargets(4), **common)
    with pytest.raises(ValueError, match="readout_network='student'"):
        JEPA(target_encoder="fixed", target_features=GradientTargets(4), **common)
    model = JEPA(target_encoder="fixed", target_features=GradientTargets(2, (1,)), readout_network="student", **common)
    with pytest.raises(ValueError, match="one row per token"):
        model.masked_prediction(torch.rand(2, 1, 16, 16), mask_generator(0, 0, 0, "cpu"))


def test_fit_on_speckled_unnormalised_digits_validates_and_embeds_with_the_student(tmp_path):
    data = ImageDataModule(image_size=16, batch_size=32, mean=[0.0], std=[1.0], speckle_looks=4.0)
    model = tiny_sarjepa(input_spec=data.input_spec)
    trainer = fast_trainer(tmp_path, max_epochs=1, limit_train_batches=3, limit_val_batches=1)
    trainer.fit(model, datamodule=data)
    assert trainer.global_step == 3
    assert torch.isfinite(trainer.callback_metrics["val/loss"])
    assert model.embed(torch.rand(2, 1, 16, 16)).shape == (2, 32)
