import sys
from functools import partial
from pathlib import Path

import pytest
import torch
from torch import nn

from datamodules import ImageDataModule
from jepa_lightning.cli import build_cli
from jepa_lightning.losses import intl_loss, lejepa_loss
from jepa_lightning.methods import BYOL, INTL, JEPA, BarlowTwins, LeJEPA, SimCLR, TiCo, VICReg, projection_mlp
from jepa_lightning.nn import JEPAPredictor, PooledTokenBackbone, TimmBackbone, TransformerEncoder
from jepa_lightning.tokenizers import PatchTokenizer2d
from tests.conftest import DIGITS_16, fast_trainer

TINY_BACKBONE = partial(
    PooledTokenBackbone,
    encoder=TransformerEncoder(embed_dim=32, depth=1, num_heads=2),
    tokenizer=partial(PatchTokenizer2d, patch_size=4),
)
SMALL_HEADS = {
    SimCLR: {"projector_dims": [64, 32]},
    BarlowTwins: {"projector_dims": [64, 64]},
    VICReg: {"projector_dims": [64, 64]},
    BYOL: {"projector_dims": [64, 32], "predictor_hidden_dims": [64], "ema_momentum": 0.9},
    # beta=0: the covariance is the current batch's, so the objective does not drift while its running state warms up
    TiCo: {"projector_dims": [64, 32], "ema_momentum": 0.9, "beta": 0.0},
    LeJEPA: {"projector_dims": [64, 32], "num_slices": 64},
    INTL: {"projector_dims": [64, 64]},
}


def build(method, **kwargs):
    torch.manual_seed(0)
    return method(backbone=TINY_BACKBONE, input_spec=DIGITS_16, **{**SMALL_HEADS[method], **kwargs})


def test_projection_mlp_layout():
    mlp = projection_mlp(8, [16, 16, 4])
    kinds = [type(layer).__name__ for layer in mlp]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert mlp[-1].out_features == 4
    assert [type(layer).__name__ for layer in projection_mlp(8, [4], batch_norm=False)] == ["Linear"]
    with pytest.raises(ValueError, match="at least the output width"):
        projection_mlp(8, [])


def two_views(batch: int = 32, seed: int = 0) -> list[torch.Tensor]:
    data = ImageDataModule(image_size=16, batch_size=batch, num_views=2, seed=seed)
    return next(iter(data.train_dataloader()))["views"]


@pytest.mark.parametrize("method", list(SMALL_HEADS))
def test_loss_falls_on_a_fixed_batch(method):
    model = build(method)
    views = two_views()
    optimizer = torch.optim.AdamW(model.parameter_groups(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss, _ = model.objective(model.each_view(model.network, views), views)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if model.teacher is not None:
            model.teacher.update(model.network, 0.9)
        losses.append(loss.item())
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.05 * abs(sum(losses[:3]) / 3)


def test_views_are_encoded_in_one_pass_and_split_back():
    model = build(SimCLR).eval()
    views = two_views(batch=8)
    together = model.each_view(model.network, views)
    separately = [model.network(v) for v in views]
    for a, b in zip(together, separately):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_embed_is_the_online_backbone():
    model = build(BYOL)
    x = torch.randn(4, 1, 16, 16)
    torch.testing.assert_close(model.embed(x), model.backbone(x))
    assert model.embed(x).shape == (4, 32)


def test_ema_teachers_only_where_the_method_has_one():
    assert build(SimCLR).teacher is None
    byol = build(BYOL)
    assert byol.teacher is not None
    assert byol.teacher.schedule == "cosine"
    trainable = {id(p) for group in byol.parameter_groups() for p in group["params"]}
    assert trainable.isdisjoint(id(p) for p in byol.teacher.parameters())


def test_tico_keeps_its_running_covariance_in_the_checkpoint():
    model = build(TiCo)
    views = two_views(batch=16)
    model.objective(model.each_view(model.network, views), views)
    assert model.covariance.abs().sum() > 0
    assert "covariance" in model.state_dict()


def test_missing_views_are_a_clear_error():
    model = build(SimCLR)
    with pytest.raises(ValueError, match=r"needs batch\['views'\] with 2 views; the datamodule gave 0"):
        model.training_step({"x": torch.randn(2, 1, 16, 16), "y": torch.zeros(2)}, 0)
    with pytest.raises(ValueError, match="num_views must be >= 2"):
        build(SimCLR, num_views=1)


def test_timm_backbone_with_small_input_stem():
    backbone = TimmBackbone(DIGITS_16, "resnet18", small_input_stem=True)
    assert backbone(torch.randn(2, 1, 16, 16)).shape == (2, 512)
    assert backbone.model.conv1.stride == (1, 1)
    assert isinstance(backbone.model.maxpool, nn.Identity)
    with pytest.raises(ValueError, match="ResNet-style"):
        TimmBackbone(DIGITS_16, "vit_tiny_patch16_224", small_input_stem=True)


def test_fit_requests_views_from_the_datamodule(tmp_path):
    data = ImageDataModule(image_size=16, batch_size=32)
    model = build(VICReg)
    trainer = fast_trainer(tmp_path, max_epochs=1, limit_train_batches=2, limit_val_batches=1)
    trainer.fit(model, datamodule=data)
    assert data.num_views == 2
    assert trainer.global_step == 2
    assert trainer.callback_metrics["val/embedding_std"] > 0


def jepa(**kwargs) -> JEPA:
    torch.manual_seed(0)
    return JEPA(
        tokenizer=partial(PatchTokenizer2d, patch_size=2),
        encoder=TransformerEncoder(embed_dim=32, depth=1, num_heads=2),
        predictor=partial(JEPAPredictor, predictor_dim=16, depth=1, num_heads=2),
        input_spec=DIGITS_16,
        **kwargs,
    )


@pytest.mark.parametrize("regularizer", ["sigreg", "vicreg"])
def test_jepa_without_teacher_uses_the_student_and_a_regularizer(regularizer, digits_batch):
    from jepa_lightning.masks import mask_generator

    model = jepa(target_encoder="student", regularizer=regularizer)
    assert model.teacher is None
    assert model.target_network is model.student
    torch.testing.assert_close(model.embed(digits_batch), model.student(digits_batch).mean(1))
    loss, stats, *_ = model.masked_prediction(digits_batch, mask_generator(0, 0, 0, "cpu"))
    assert stats["regularizer"] > 0
    loss.backward()
    assert model.student.encoder.blocks[0].attn.qkv.weight.grad is not None


def test_regularizer_adds_its_weighted_penalty(digits_batch):
    from jepa_lightning.masks import mask_generator

    plain, _, *_ = jepa().masked_prediction(digits_batch, mask_generator(0, 0, 0, "cpu"))
    regularised, stats, *_ = jepa(regularizer="vicreg", regularizer_weight=2.0).masked_prediction(
        digits_batch, mask_generator(0, 0, 0, "cpu")
    )
    torch.testing.assert_close(regularised, plain + 2.0 * stats["regularizer"])


def test_token_regularizer_sees_every_context_token(digits_batch, monkeypatch):
    from jepa_lightning.masks import mask_generator
    from jepa_lightning.methods import jepa as jepa_module

    shapes, token_terms = [], jepa_module.vicreg_token_terms
    monkeypatch.setattr(
        jepa_module, "vicreg_token_terms", lambda t, valid: shapes.append(t.shape) or token_terms(t, valid)
    )
    plain, _, *_ = jepa().masked_prediction(digits_batch, mask_generator(0, 0, 0, "cpu"))
    model = jepa(regularizer="vicreg", regularizer_input="tokens", regularizer_weight=2.0)
    regularised, stats, *_ = model.masked_prediction(digits_batch, mask_generator(0, 0, 0, "cpu"))
    (shape,) = shapes
    assert shape[0] == len(digits_batch) and shape[1] > 1 and shape[2] == 32  # (B, context tokens, D)
    torch.testing.assert_close(regularised, plain + 2.0 * stats["regularizer"])
    _, pooled, *_ = jepa(regularizer="vicreg").masked_prediction(digits_batch, mask_generator(0, 0, 0, "cpu"))
    assert not torch.isclose(stats["regularizer"], pooled["regularizer"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"regularizer": "vicreg", "regularizer_input": "context"}, "regularizer_input must be 'pooled' or 'tokens'"),
        ({"regularizer": "sigreg", "regularizer_input": "tokens"}, "needs regularizer='vicreg', got 'sigreg'"),
        ({"regularizer_input": "tokens"}, "needs regularizer='vicreg', got 'none'"),
    ],
)
def test_bad_regularizer_input_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        jepa(**kwargs)


def test_validation_loss_is_the_prediction_loss_alone_even_for_a_single_sample(digits_batch):
    """The regularizer is a batch statistic (undefined for one sample); ``val/loss`` leaves it out."""
    from jepa_lightning.masks import mask_generator
    from jepa_lightning.methods.jepa import VAL_STREAM

    model = jepa(regularizer="vicreg", regularizer_weight=2.0)
    model.log = lambda name, value, **kwargs: logged.__setitem__(name, value)
    logged: dict = {}
    one = digits_batch[:1]
    model.validation_step({"x": one, "y": torch.zeros(1, dtype=torch.long)}, 0)
    expected, _, *_ = jepa().masked_prediction(one, mask_generator(0, 0, 0, "cpu", VAL_STREAM))
    torch.testing.assert_close(logged["val/loss"], expected)


def test_student_targets_without_regularizer_are_refused():
    with pytest.raises(ValueError, match="collapses without a regularizer"):
        jepa(target_encoder="student")
    with pytest.raises(ValueError, match="regularizer must be one of"):
        jepa(regularizer="dropout")


def test_lejepa_defaults_are_the_official_recipe_and_pass_num_global_views():
    model = build(LeJEPA)
    assert (model.num_views, model.num_global_views) == (4, None)
    assert (model.lr, model.min_lr, model.weight_decay, model.final_weight_decay) == (5e-4, 5e-7, 5e-2, None)
    model = build(LeJEPA, num_views=3, num_global_views=1)
    g = torch.Generator().manual_seed(0)
    projections = [torch.randn(8, 32, generator=g) for _ in range(3)]
    _, parts = model.objective(projections, [])
    expected = lejepa_loss(projections, model.lambda_, num_slices=64, seed=0, num_global_views=1)
    torch.testing.assert_close(parts["invariance"], expected.invariance)
    assert not torch.allclose(parts["invariance"], lejepa_loss(projections, num_slices=64, seed=0).invariance)
    with pytest.raises(ValueError, match="num_global_views"):
        build(LeJEPA, num_views=2, num_global_views=3)


def test_tico_preset_passes_its_covariance_gradient_choice():
    views = two_views(batch=8)
    grads = []
    for detach in (False, True):
        model = build(TiCo, detach_batch_covariance=detach)
        loss, _ = model.objective(model.each_view(model.network, views), views)
        loss.backward()
        grads.append(model.projector[-1].weight.grad.clone())
    assert not torch.allclose(grads[0], grads[1])


def test_intl_compares_every_view_with_the_first_as_the_official_forward_does():
    model = build(INTL)
    views = two_views(batch=16) * 2  # views 0, 1, 0, 1: the pair (0, 2) is identical, so its invariance is 0
    projections = model.each_view(model.network, views)
    loss, parts = model.objective(projections, views)
    pairs = [intl_loss(projections[0], z) for z in projections[1:]]
    assert pairs[1].invariance.item() == pytest.approx(0.0, abs=1e-5)
    assert loss.item() == pytest.approx(sum(p.loss.item() for p in pairs) / 3, rel=1e-6)
    assert parts["trace"].item() == pytest.approx(sum(p.trace.item() for p in pairs) / 3, rel=1e-6)
    with pytest.raises(ValueError, match="axis"):
        build(INTL, axis="rows")


# ---------------------------------------------------------------- multi-crop


def multi_crop_views(batch: int = 8, seed: int = 0) -> list[torch.Tensor]:
    data = ImageDataModule(image_size=16, batch_size=batch, num_views=8, local_views=6, local_size=8, seed=seed)
    return next(iter(data.train_dataloader()))["views"]


def test_multi_crop_views_reach_the_loss_at_their_own_sizes(tmp_path, monkeypatch):
    """Through a fit: the backbone encodes the 2 global 16 x 16 views in one pass and the 6 local 8 x 8 ones in
    another, and the objective receives 8 projections with the views at their own sizes."""
    data = ImageDataModule(image_size=16, batch_size=16, local_views=6, local_size=8)
    model = build(LeJEPA, num_views=8, num_global_views=2)
    encoded, seen = [], []
    model.backbone.register_forward_hook(lambda module, args, out: encoded.append((args[0].shape, out.shape)))
    objective = model.objective

    def recording(projections, views):
        seen.append(([p.shape for p in projections], [v.shape for v in views]))
        return objective(projections, views)

    monkeypatch.setattr(model, "objective", recording)
    fast_trainer(tmp_path, max_epochs=1, limit_train_batches=1, limit_val_batches=0).fit(model, datamodule=data)
    assert data.num_views == 8
    assert encoded == [((32, 1, 16, 16), (32, 32)), ((96, 1, 8, 8), (96, 32))]
    projections, views = seen[0]
    assert projections == [(16, 32)] * 8
    assert views == [(16, 1, 16, 16)] * 2 + [(16, 1, 8, 8)] * 6


# official: galilai-group/stable-pretraining@d15ec96d088a30e220f6fab1539dfb5d854729f0
# stable_pretraining/methods/lejepa.py::LeJEPA.forward (training branch, up to the projections)
def official_multicrop_projections(backbone, projector, global_views, local_views):
    g_features = backbone(torch.cat(global_views))
    l_features = backbone(torch.cat(local_views))
    all_features = torch.cat([g_features, l_features])
    all_projected = projector(all_features)
    bs = global_views[0].shape[0]
    n_views = len(global_views) + len(local_views)
    return all_projected.view(n_views, bs, -1)


def test_multi_crop_encodes_each_size_apart_then_projects_every_view_together():
    model = build(LeJEPA, num_views=8, num_global_views=2)
    views = multi_crop_views()
    together = torch.stack(model.each_view(model.network, views))
    official = official_multicrop_projections(model.backbone, model.projector, views[:2], views[2:])
    torch.testing.assert_close(together, official, rtol=0, atol=0)
    # the same as encoding each view alone (up to batching round-off), then projecting all views in one pass
    expected = model.projector(torch.cat([model.backbone(view) for view in views])).view(8, 8, -1)
    torch.testing.assert_close(together, expected, rtol=1e-4, atol=1e-5)
    # the teacher's path (BYOL / TiCo would use it) groups the same way, with the teacher's weights
    byol = build(BYOL, num_views=8)
    assert [p.shape for p in byol.teacher_projections(views)] == [(8, 32)] * 8


def test_multi_crop_loss_is_lejepa_loss_centred_on_the_global_views():
    model = build(LeJEPA, num_views=8, num_global_views=2)
    views = multi_crop_views()
    projections = model.each_view(model.network, views)
    loss, parts = model.objective(projections, views)
    expected = lejepa_loss(projections, model.lambda_, num_slices=64, seed=0, num_global_views=2)
    assert loss.item() == pytest.approx(expected.loss.item(), rel=1e-6)
    assert parts["invariance"].item() != pytest.approx(lejepa_loss(projections, num_slices=64).invariance.item())


def test_lejepa_multi_crop_needs_the_global_views_first():
    views = multi_crop_views()
    projections = [torch.randn(8, 32) for _ in views]
    with pytest.raises(ValueError, match="need num_global_views set"):
        build(LeJEPA, num_views=8).objective(projections, views)
    with pytest.raises(ValueError, match="need num_global_views set"):
        build(LeJEPA, num_views=8, num_global_views=3).objective(projections, views)
    reordered = views[2:] + views[:2]
    with pytest.raises(ValueError, match="need num_global_views set"):
        build(LeJEPA, num_views=8, num_global_views=2).objective(projections, reordered)


@pytest.mark.parametrize("method", [SimCLR, BarlowTwins, VICReg, BYOL, TiCo])
def test_pairwise_methods_refuse_multi_crop_naming_the_method(method):
    model = build(method, num_views=8)
    with pytest.raises(
        ValueError, match=rf"{method.__name__} does not define multi-crop.*sizes \[\(1, 16, 16\), \(1, 8, 8\)\]"
    ):
        model.training_step({"views": multi_crop_views()}, 0)


def test_multi_crop_views_are_never_dropped():
    model = build(LeJEPA, num_views=4, num_global_views=2)
    with pytest.raises(ValueError, match="takes num_views=4 views but the datamodule gave 8 multi-crop views"):
        model.training_step({"views": multi_crop_views()}, 0)


def test_the_multi_crop_config_fits_through_the_cli(tmp_path, monkeypatch):
    """Two steps of the config (its probe callback left out: the run itself prints it)."""
    monkeypatch.setattr(sys, "argv", ["jepa-lightning"])
    config = Path(__file__).parents[2] / "examples" / "configs" / "lejepa_multicrop_digits.yaml"
    args = [f"--config={config}", "--trainer.max_steps=2", "--trainer.limit_val_batches=0", "--trainer.callbacks=[]"]
    args.append("--data.batch_size=16")
    quiet = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", "--trainer.logger=false"]
    cli = build_cli([*args, *quiet, f"--trainer.default_root_dir={tmp_path}"], run=False)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert cli.trainer.global_step == 2
    assert cli.datamodule.num_views == 8 and cli.datamodule.local_views == 6
