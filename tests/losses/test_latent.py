import pytest
import torch

from jepa_lightning.losses import latent_regression, normalize_targets


def test_smooth_l1_matches_the_piecewise_formula():
    prediction = torch.tensor([0.0, 0.0, 0.0, 0.0])
    target = torch.tensor([0.5, -1.5, 3.0, 0.0])
    beta = 2.0
    # |d| < beta: 0.5 d^2 / beta ; else |d| - 0.5 beta
    expected = (0.5 * 0.25 / 2 + 0.5 * 2.25 / 2 + (3.0 - 1.0) + 0.0) / 4
    assert latent_regression(prediction, target, "smooth_l1", beta=beta).item() == pytest.approx(expected)


def test_l1_and_mse():
    prediction, target = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 4.0])
    assert latent_regression(prediction, target, "l1").item() == pytest.approx(1.5)
    assert latent_regression(prediction, target, "mse").item() == pytest.approx(2.5)


def test_no_gradient_flows_into_targets():
    prediction = torch.randn(3, 4, requires_grad=True)
    target = torch.randn(3, 4, requires_grad=True)
    latent_regression(prediction, target).backward()
    assert prediction.grad is not None and target.grad is None


def test_shape_mismatch_and_unknown_kind_are_errors():
    with pytest.raises(ValueError, match=r"prediction \(2, 3\) and target \(3, 2\)"):
        latent_regression(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="unknown regression loss 'huber'"):
        latent_regression(torch.zeros(2), torch.zeros(2), "huber")  # type: ignore[arg-type]


def test_target_normalisations():
    x = torch.randn(5, 7, 16) * 3 + 2
    layer_normed = normalize_targets(x, "layer_norm")
    torch.testing.assert_close(layer_normed.mean(-1), torch.zeros(5, 7), atol=1e-5, rtol=0)
    torch.testing.assert_close(layer_normed.var(-1, unbiased=False), torch.ones(5, 7), atol=1e-3, rtol=0)
    torch.testing.assert_close(normalize_targets(x, "l2").norm(dim=-1), torch.ones(5, 7))
    assert normalize_targets(x, "none") is x
    with pytest.raises(ValueError, match="unknown target normalisation"):
        normalize_targets(x, "batch_norm")  # type: ignore[arg-type]


def test_cosine_is_one_minus_the_cosine_per_token_averaged():
    g = torch.Generator().manual_seed(0)
    prediction, target = torch.randn(2, 5, 8, generator=g), torch.randn(2, 5, 8, generator=g)
    cosines = (prediction * target).sum(-1) / (prediction.norm(dim=-1) * target.norm(dim=-1))
    assert latent_regression(prediction, target, "cosine").item() == pytest.approx(
        (1 - cosines).mean().item(), rel=1e-6
    )
    # scale-free per token, 0 for parallel vectors, 2 for opposite ones
    assert latent_regression(3 * target, target, "cosine").item() == pytest.approx(0.0, abs=1e-6)
    assert latent_regression(-target, 0.5 * target, "cosine").item() == pytest.approx(2.0, rel=1e-6)
    valid = torch.tensor([[True, True, False, False, False], [True, False, False, False, False]])
    expected = (1 - cosines)[valid].mean()
    ours = latent_regression(prediction, target, "cosine", valid=valid)
    assert ours.item() == pytest.approx(expected.item(), rel=1e-6)
