"""The IWM preset: source and target views, the transformation as the predictor's condition, a fit through the CLI.

No official code is published, so the reference below is the paper's objective written out by hand: the predictor,
conditioned on the transformation, regresses the EMA teacher's layer-normed tokens of the target view at the
positions masked out of the source view.
"""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F

from datamodules import ImageDataModule
from datamodules.images import PHOTOMETRIC_PARAMS
from jepa_lightning.cli import main
from jepa_lightning.masks import MultiBlockMaskSampler
from jepa_lightning.masks.base import mask_generator
from jepa_lightning.methods import IWM
from jepa_lightning.nn import TransformerEncoder, gather_mask_major
from jepa_lightning.tokenizers import InputSpec
from tests.conftest import FAST_TRAINER_ARGS, tiny_ijepa

P = len(PHOTOMETRIC_PARAMS)
SPEC = InputSpec("images", channels=1, image_size=(16, 16), num_classes=10, condition_dim=P)


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["jepa-lightning"])


def tiny(**kwargs) -> IWM:
    torch.manual_seed(0)
    defaults = {
        "encoder": TransformerEncoder(embed_dim=32, depth=2, num_heads=2, init="xavier"),
        "patch_size": 4,
        "predictor_dim": 16,
        "predictor_depth": 2,
        "predictor_heads": 2,
        "mask_sampler": MultiBlockMaskSampler(min_context=2),
        "input_spec": SPEC,
    }
    return IWM(**{**defaults, **kwargs})


def views_batch(batch: int = 4) -> dict:
    torch.manual_seed(1)
    return {
        "x": torch.randn(batch, 1, 16, 16),
        "views": [torch.randn(batch, 1, 16, 16), torch.randn(batch, 1, 16, 16)],
        "cond": torch.randn(batch, 2, P),
    }


def test_defaults_follow_the_paper_and_the_condition_is_both_views_parameters():
    model = IWM(input_spec=SPEC, encoder=TransformerEncoder(embed_dim=32, depth=1, num_heads=2))
    assert (model.predictor.predictor_dim, len(model.predictor.blocks)) == (384, 12)
    assert model.predictor.conditioning == "concat" and model.condition_dim == 2 * P
    assert model.num_views == 2 and isinstance(model.mask_sampler, MultiBlockMaskSampler)
    batch = views_batch()
    x, inputs = model.objective_inputs(batch, "train")
    assert x is batch["views"][0] and inputs["target_x"] is batch["views"][1]
    torch.testing.assert_close(inputs["cond"], torch.cat([batch["cond"][:, 0], batch["cond"][:, 1]], -1))
    x, inputs = model.objective_inputs({"x": batch["x"]}, "val")  # validation: the identity, both views
    assert x is batch["x"] and torch.equal(inputs["cond"], torch.zeros(4, 2 * P))
    with pytest.raises(ValueError, match="view_params=True"):
        model.objective_inputs({"x": batch["x"], "views": batch["views"]}, "train")
    with pytest.raises(ValueError, match="condition_dim"):
        IWM(input_spec=InputSpec("images", channels=1, image_size=(16, 16)), encoder=model.student.encoder)


def test_the_loss_is_the_conditioned_prediction_of_the_target_views_teacher_tokens():
    model = tiny()
    batch = views_batch()
    source, inputs = model.objective_inputs(batch, "train")
    loss = model.masked_prediction(source, mask_generator(0, 0, 0, "cpu"), regularize=False, **inputs).loss
    # by hand
    tokens = model.student.tokenizer(source)
    context_idx, target_idx = model.mask_sampler(tokens.layout, 4, mask_generator(0, 0, 0, "cpu"), "cpu")
    context = model.student.encoder(tokens, keep=context_idx)
    prediction = model.predictor(context, tokens.layout, context_idx, target_idx, cond=inputs["cond"])
    teacher = model.teacher.module
    encoded = teacher.encoder(teacher.tokenizer(batch["views"][1]))
    target = gather_mask_major(F.layer_norm(encoded, encoded.shape[-1:]), target_idx)
    torch.testing.assert_close(loss, F.smooth_l1_loss(prediction, target.detach()))
    # the transformation matters, the source's pixels matter, and the target is the other view
    other_cond = {**inputs, "cond": inputs["cond"] + 1.0}
    moved = model.masked_prediction(source, mask_generator(0, 0, 0, "cpu"), regularize=False, **other_cond).loss
    assert abs(float((moved - loss).detach())) > 1e-5
    same_view = model.masked_prediction(source, mask_generator(0, 0, 0, "cpu"), regularize=False, cond=inputs["cond"])
    assert abs(float((same_view.loss - loss).detach())) > 1e-5


def test_without_conditioning_the_loss_ignores_the_transformation():
    model = tiny(predictor_conditioning="none")
    assert model.condition_dim is None
    batch = views_batch()
    source, inputs = model.objective_inputs(batch, "train")
    loss = model.masked_prediction(source, mask_generator(0, 0, 0, "cpu"), **inputs).loss
    inputs["cond"] = inputs["cond"] * 10
    torch.testing.assert_close(model.masked_prediction(source, mask_generator(0, 0, 0, "cpu"), **inputs).loss, loss)


def test_a_training_step_on_the_datamodules_transformation_aware_views():
    datamodule = ImageDataModule(image_size=16, batch_size=8, view_params=True, num_views=2)
    model = tiny(input_spec=datamodule.input_spec)
    batch = next(iter(datamodule.train_dataloader()))
    source, inputs = model.objective_inputs(batch, "train")
    step = model.masked_prediction(source, mask_generator(0, 0, 0, "cpu"), **inputs)
    assert torch.isfinite(step.loss) and step.encoded.shape == (8, 16, 32)


@pytest.mark.parametrize("conditioning", ["token", "adaln"])
def test_fits_through_the_cli_with_each_conditioning(tmp_path, conditioning):
    main(
        [
            "fit",
            "--model=jepa_lightning.methods.IWM",
            "--model.encoder=jepa_lightning.nn.TransformerEncoder",
            "--model.encoder.embed_dim=16",
            "--model.encoder.depth=1",
            "--model.encoder.num_heads=2",
            "--model.patch_size=4",
            "--model.predictor_dim=8",
            "--model.predictor_depth=1",
            "--model.predictor_heads=2",
            f"--model.predictor_conditioning={conditioning}",
            "--data=datamodules.images.ImageDataModule",
            "--data.image_size=16",
            "--data.batch_size=8",
            "--data.view_params=true",
            "--trainer.max_steps=2",
            "--trainer.limit_val_batches=1",
            *FAST_TRAINER_ARGS,
            f"--trainer.default_root_dir={tmp_path}",
            "--seed_everything=0",
        ]
    )


def test_the_generic_jepa_hands_the_batchs_condition_to_a_conditioned_predictor():
    spec = InputSpec("images", channels=1, image_size=(16, 16), condition_dim=3)
    batch = {"x": torch.randn(4, 1, 16, 16), "cond": torch.randn(4, 3)}
    encoder = TransformerEncoder(embed_dim=32, depth=2, num_heads=2, init="xavier")  # a visible effect at init
    model = tiny_ijepa(input_spec=spec, predictor_conditioning="adaln", encoder=encoder)
    assert model.predictor.conditioning == "adaln" and model.predictor.condition_embed[0].in_features == 3
    x, inputs = model.objective_inputs(batch, "train")
    assert x is batch["x"] and inputs["cond"] is batch["cond"]
    loss = model.masked_prediction(x, mask_generator(0, 0, 0, "cpu"), **inputs).loss
    moved = model.masked_prediction(x, mask_generator(0, 0, 0, "cpu"), cond=batch["cond"] + 1).loss
    assert abs(float((moved - loss).detach())) > 1e-6
    # unconditioned (the default): the same batch's condition changes nothing
    plain = tiny_ijepa(input_spec=spec)
    reference = plain.masked_prediction(x, mask_generator(0, 0, 0, "cpu")).loss
    torch.testing.assert_close(plain.masked_prediction(x, mask_generator(0, 0, 0, "cpu"), **inputs).loss, reference)
