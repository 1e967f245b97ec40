"""The VJVCR preset: no teacher, future frames predicted from the past, VICReg's variance and covariance terms
(official ``VICReg.forward`` re-typed below; VJ-VCR itself has no released code), and the optional latent variable;
compared with Meta's nearest released code, EB-JEPA's video JEPA (its VC and prediction losses re-typed below)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from jepa_lightning.cli import build_cli, main
from jepa_lightning.masks import FutureFrameMaskSampler
from jepa_lightning.methods import VJVCR
from jepa_lightning.methods.vjvcr import gaussian_kl
from jepa_lightning.nn.functional import gather_mask_major
from tests.conftest import FAST_TRAINER_ARGS, tiny_video


def small(**kwargs) -> VJVCR:
    return tiny_video(VJVCR, **kwargs)


# official: facebookresearch/vicreg@4e12602fd495af83efd1631fbe82523e6db092e0 main_vicreg.py::VICReg.forward
# (the variance and covariance terms of one branch; one process)
def official_variance_covariance(x):
    batch_size, num_features = x.shape

    def off_diagonal(m):
        n, _ = m.shape
        return m.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()

    x = x - x.mean(dim=0)
    std_x = torch.sqrt(x.var(dim=0) + 0.0001)
    std_loss = torch.mean(F.relu(1 - std_x))
    cov_x = (x.T @ x) / (batch_size - 1)
    cov_loss = off_diagonal(cov_x).pow_(2).sum().div(num_features)
    return std_loss, cov_loss


# official: facebookresearch/eb_jepa@966e61e9285b3a876f49b9774e9720d9a99a7925 eb_jepa/losses.py::VCLoss.forward
# (with HingeStdLoss.forward and CovarianceLoss.forward; proj=None; x is (B, C, T, H, W))
def eb_jepa_vc_loss(x, std_coeff, cov_coeff):
    x = x.transpose(0, 1).flatten(1).transpose(0, 1)  # [B*T*H*W, C]
    centred = x - x.mean(dim=0, keepdim=True)
    std_loss = torch.mean(F.relu(1.0 - torch.sqrt(centred.var(dim=0) + 0.0001)))
    batch_size, n = x.shape
    centred = x - x.mean(dim=0, keepdim=True)
    cov = (centred.T @ centred) / (batch_size - 1)
    cov_loss = cov.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten().pow(2).mean()
    return std_coeff * std_loss + cov_coeff * cov_loss, std_loss, cov_loss


# official: facebookresearch/eb_jepa@966e61e9285b3a876f49b9774e9720d9a99a7925 eb_jepa/losses.py::SquareLossSeq.forward
# (proj=None; state and predi are (B, C, T, H, W))
def eb_jepa_square_loss_seq(state, predi):
    state = state.transpose(0, 1).flatten(1).transpose(0, 1)
    predi = predi.transpose(0, 1).flatten(1).transpose(0, 1)
    return F.mse_loss(state, predi)


def test_defaults_no_teacher_future_frames_mse_and_vicreg():
    model = small()
    assert model.teacher is None and model.hparams.target_encoder == "student"
    assert isinstance(model.mask_sampler, FutureFrameMaskSampler) and model.mask_sampler.context_ratio == (0.5, 0.5)
    assert (model.loss_kind, model.target_norm, model.regularizer, model.regularizer_input) == (
        "mse",
        "none",
        "vicreg",
        "tokens",
    )
    assert model.latent_encoder is None and model.predictor.conditioning == "none"
    assert model.student.tokenizer.grid_shape == (4, 4, 4)


def test_the_loss_is_mse_to_the_future_plus_the_official_variance_covariance_of_the_context():
    model = small().eval()  # no dropout: the target pass must be the one re-computed here
    x = torch.randn(4, 3, 8, 32, 32)
    loss = model.masked_prediction(x, torch.Generator().manual_seed(3)).loss
    tokens = model.student.tokenizer(x)
    context_idx, target_idx = model.mask_sampler(tokens.layout, 4, torch.Generator().manual_seed(3), "cpu")
    assert context_idx.shape == (4, 32) and int(context_idx.max()) == 31 and int(target_idx.min()) == 32
    with torch.no_grad():
        context = model.student.encoder(tokens, keep=context_idx)
        prediction = model.predictor(context, tokens.layout, context_idx, target_idx)
        target = gather_mask_major(model.student.encoder(tokens), target_idx)
    std_loss, cov_loss = official_variance_covariance(context.reshape(-1, 48))
    assert std_loss > 0
    expected = F.mse_loss(prediction, target) + 1.0 * (std_loss + 0.04 * cov_loss)
    torch.testing.assert_close(loss, expected)


def test_the_loss_against_eb_jepa_video_jepa_losses():
    """EB-JEPA's video JEPA (examples/video_jepa/main.py: ``VCLoss(std_coeff=10, cov_coeff=100, proj=projector)``,
    ``SquareLossSeq(projector)``, ``JEPA.unroll``) on the same tokens, laid out as its (B, C, T, H, W) maps. Same
    variance hinge; its covariance is the MEAN of the squared off-diagonals (ours VICReg's sum / D, so D - 1 times
    larger): our default equals its VC loss with ``std_coeff=1, cov_coeff=0.04 (D - 1)``, not its (10, 100). Its
    prediction MSE runs over the whole clip with the context frames re-fed as their own prediction (zero error), so
    it is ours times the future share of the clip."""
    model = small().eval()
    x = torch.randn(4, 3, 8, 32, 32)
    loss = model.masked_prediction(x, torch.Generator().manual_seed(3)).loss
    tokens = model.student.tokenizer(x)
    context_idx, target_idx = model.mask_sampler(tokens.layout, 4, torch.Generator().manual_seed(3), "cpu")
    with torch.no_grad():
        context = model.student.encoder(tokens, keep=context_idx)
        prediction = model.predictor(context, tokens.layout, context_idx, target_idx)
        state = model.student.encoder(tokens).view(4, 4, 4, 4, 48).permute(0, 4, 1, 2, 3)  # (B, D, T, H, W)
    dim = 48

    def maps(t):  # (B, 2 * 4 * 4, D) tokens of two tubelet steps -> (B, D, 2, 4, 4)
        return t.reshape(4, 2, 4, 4, dim).permute(0, 4, 1, 2, 3)

    official_vc, std_loss, cov_loss = eb_jepa_vc_loss(maps(context), 1.0, 0.04 * (dim - 1))
    torch.testing.assert_close(model.regularization(context), official_vc)
    official_default, _, _ = eb_jepa_vc_loss(maps(context), 10.0, 100.0)
    assert not torch.allclose(model.regularizer_weight * model.regularization(context), official_default)
    official_prediction = eb_jepa_square_loss_seq(state[:, :, 2:], maps(prediction))
    torch.testing.assert_close(loss, official_prediction + official_vc)
    # the rollout's loss over the whole clip, context steps re-fed (one step, as in JEPA.unroll): half of ours here
    rolled = torch.cat((state[:, :, :2], maps(prediction)), dim=2)
    torch.testing.assert_close(eb_jepa_square_loss_seq(state, rolled), 0.5 * official_prediction)
    assert std_loss > 0 and cov_loss > 0


def test_targets_take_no_gradient_and_the_encoder_trains_through_the_context():
    model = small()
    loss = model.masked_prediction(torch.randn(2, 3, 8, 32, 32), torch.Generator().manual_seed(0)).loss
    loss.backward()
    assert model.student.tokenizer.proj.weight.grad is not None and model.predictor.mask_token.grad is not None
    assert model.embed(torch.randn(2, 3, 8, 32, 32)).shape == (2, 48)


def test_the_latent_variable_conditions_the_predictor_and_adds_its_kl():
    model = small(latent_dim=4, latent_weight=0.5)
    assert model.predictor.conditioning == "concat" and model.latent_encoder.out_features == 8
    x = torch.randn(3, 3, 8, 32, 32)
    tokens = model.student.tokenizer(x)
    _, target_idx = model.mask_sampler(tokens.layout, 3, torch.Generator().manual_seed(0), "cpu")
    model.eval()
    z, penalty = model.prediction_condition(tokens, target_idx, None)
    pooled = tokens.features[:, 32:].mean(dim=1)  # the future tubelets' embeddings, averaged
    mean, log_var = model.latent_encoder(pooled).chunk(2, dim=-1)
    torch.testing.assert_close(z, mean.unsqueeze(1))  # eval: the posterior mean, one z per sample and group
    torch.testing.assert_close(penalty, 0.5 * gaussian_kl(mean, log_var))
    expected_kl = 0.5 * (mean**2 + log_var.exp() - 1 - log_var).sum(-1).mean()
    torch.testing.assert_close(gaussian_kl(mean, log_var), expected_kl)
    model.train()
    torch.manual_seed(1)
    sampled, _ = model.prediction_condition(tokens, target_idx, None)
    assert not torch.allclose(sampled, z)  # training samples z
    step = model.masked_prediction(x, torch.Generator().manual_seed(0))
    assert "latent_penalty" in step.stats and float(step.stats["latent_penalty"]) > 0
    step.loss.backward()
    assert model.latent_encoder.weight.grad is not None and model.latent_encoder.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="clash"):
        model.prediction_condition(tokens, target_idx, torch.zeros(3, 2))


def test_the_prediction_depends_on_z():
    model = small(latent_dim=4).eval()
    x = torch.randn(2, 3, 8, 32, 32)
    tokens = model.student.tokenizer(x)
    context_idx, target_idx = model.mask_sampler(tokens.layout, 2, torch.Generator().manual_seed(0), "cpu")
    context = model.student.encoder(tokens, keep=context_idx)
    a = model.predictor(context, tokens.layout, context_idx, target_idx, cond=torch.zeros(2, 1, 4))
    b = model.predictor(context, tokens.layout, context_idx, target_idx, cond=torch.ones(2, 1, 4))
    assert (a - b).abs().max() > 1e-4


def test_bad_latent_settings_are_refused():
    with pytest.raises(ValueError, match="latent_dim"):
        small(latent_dim=-1)
    with pytest.raises(ValueError, match="predictor_conditioning"):
        small(latent_dim=2, predictor_conditioning="token")


def test_the_moving_digits_config_builds():
    config = Path(__file__).parents[2] / "examples" / "configs" / "vjvcr_moving_digits.yaml"
    cli = build_cli(["--config", str(config), "--trainer.logger=false"], run=False)
    assert type(cli.model).__name__ == "VJVCR" and cli.model.teacher is None
    assert cli.model.student.tokenizer.grid_shape == (4, 4, 4)
    latent = build_cli(["--config", str(config), "--trainer.logger=false", "--model.latent_dim=8"], run=False)
    assert latent.model.latent_encoder.out_features == 16


def test_fits_through_the_cli_with_the_latent_variable(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["jepa-lightning"])
    main(
        [
            "fit",
            "--model=jepa_lightning.methods.VJVCR",
            "--model.encoder=jepa_lightning.nn.TransformerEncoder",
            "--model.encoder.embed_dim=24",
            "--model.encoder.depth=1",
            "--model.encoder.num_heads=2",
            "--model.patch_size=8",
            "--model.predictor_dim=12",
            "--model.predictor_depth=1",
            "--model.predictor_heads=2",
            "--model.latent_dim=2",
            "--data=datamodules.video.VideoDataModule",
            "--data.image_size=16",
            "--data.frames_per_clip=4",
            "--data.batch_size=8",
            "--trainer.max_steps=2",
            "--trainer.limit_val_batches=1",
            f"--trainer.default_root_dir={tmp_path}",
            *FAST_TRAINER_ARGS,
            "--seed_everything=0",
        ]
    )
