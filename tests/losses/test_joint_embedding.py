"""Joint-embedding objectives against plainly written references (loops, numpy) and known values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from jepa_lightning import distributed
from jepa_lightning.losses import (
    barlow_twins,
    byol_loss,
    intl_loss,
    intl_trade_off,
    iternorm,
    lejepa_loss,
    nt_xent,
    sigreg,
    slice_directions,
    tico,
    trace_loss,
    vicreg,
    vicreg_covariance,
    vicreg_token_terms,
    vicreg_variance,
)


def _pair(n: int = 12, d: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z1 = torch.randn(n, d, generator=g, dtype=torch.float64)
    return z1, z1 + 0.5 * torch.randn(n, d, generator=g, dtype=torch.float64)


def _orthogonal_unit_variance(n: int, d: int, seed: int = 0) -> torch.Tensor:
    """(n, d) with zero-mean, unit (biased) variance, mutually orthogonal columns."""
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    q, _ = torch.linalg.qr(x - x.mean(0))
    return q * math.sqrt(n)


# ---------------------------------------------------------------- references


def ref_nt_xent(z1: np.ndarray, z2: np.ndarray, temperature: float) -> float:
    z = np.concatenate([z1, z2])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    m = len(z)
    total = 0.0
    for i in range(m):
        positive = (i + m // 2) % m
        denominator = sum(math.exp(z[i] @ z[k] / temperature) for k in range(m) if k != i)
        total -= z[i] @ z[positive] / temperature - math.log(denominator)
    return total / m


def ref_barlow_twins(z1: np.ndarray, z2: np.ndarray, lam: float, eps: float = 1e-5) -> float:
    n, d = z1.shape
    a = (z1 - z1.mean(0)) / np.sqrt(z1.var(0) + eps)
    b = (z2 - z2.mean(0)) / np.sqrt(z2.var(0) + eps)
    loss = 0.0
    for i in range(d):
        for j in range(d):
            c_ij = sum(a[k, i] * b[k, j] for k in range(n)) / n
            loss += (1 - c_ij) ** 2 if i == j else lam * c_ij**2
    return loss


def ref_vicreg_parts(z1: np.ndarray, z2: np.ndarray, eps: float = 1e-4) -> tuple[float, float, float]:
    invariance = float(np.mean((z1 - z2) ** 2))
    variances, covariances = [], []
    for z in (z1, z2):
        std = np.sqrt(z.var(0, ddof=1) + eps)
        variances.append(np.mean(np.maximum(0.0, 1 - std)))
        cov = np.cov(z.T)
        d = z.shape[1]
        covariances.append(sum(cov[i, j] ** 2 for i in range(d) for j in range(d) if i != j) / d)
    return invariance, float(np.mean(variances)), float(np.sum(covariances))


def ref_tico(za: np.ndarray, zb: np.ndarray, c_old: np.ndarray, beta: float, rho: float) -> tuple[float, np.ndarray]:
    za = za / np.linalg.norm(za, axis=1, keepdims=True)
    zb = zb / np.linalg.norm(zb, axis=1, keepdims=True)
    n = len(za)
    c = beta * c_old + (1 - beta) * sum(np.outer(row, row) for row in za) / n
    loss = 1 - np.mean([za[i] @ zb[i] for i in range(n)]) + rho * np.mean([za[i] @ c @ za[i] for i in range(n)])
    return loss, c


def ref_sigreg(z: np.ndarray, directions: np.ndarray, num_knots: int = 17, t_max: float = 3.0) -> float:
    n = len(z)
    knots = np.linspace(0, t_max, num_knots)
    dt = t_max / (num_knots - 1)
    statistics = []
    for m in range(directions.shape[1]):
        x = z @ directions[:, m]
        statistic = 0.0
        for j, t in enumerate(knots):
            trapezoid = dt / 2 if j in (0, num_knots - 1) else dt
            weight = 2 * trapezoid * math.exp(-(t**2) / 2)
            c, s = np.mean(np.cos(t * x)), np.mean(np.sin(t * x))
            statistic += weight * ((c - math.exp(-(t**2) / 2)) ** 2 + s**2)
        statistics.append(n * statistic)
    return float(np.mean(statistics))


def ref_inverse_sqrt(sigma: np.ndarray) -> np.ndarray:
    evals, evecs = np.linalg.eigh(sigma)
    return evecs @ np.diag(evals**-0.5) @ evecs.T


# ---------------------------------------------------------------- distributed helpers, single process


def test_collectives_are_identities_without_a_process_group():
    x = torch.randn(3, 2, requires_grad=True)
    assert not distributed.is_distributed()
    assert (distributed.world_size(), distributed.rank()) == (1, 0)
    assert distributed.gather(x) is x
    assert distributed.all_reduce_sum(x) is x
    assert distributed.all_reduce_mean(x) is x
    copy = distributed.broadcast(x)
    assert torch.equal(copy, x)
    assert not copy.requires_grad


# ---------------------------------------------------------------- NT-Xent


@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_nt_xent_matches_reference(temperature):
    z1, z2 = _pair()
    expected = ref_nt_xent(z1.numpy(), z2.numpy(), temperature)
    assert nt_xent(z1, z2, temperature).item() == pytest.approx(expected, rel=1e-10)


def test_nt_xent_known_values():
    n = 8
    matched = torch.eye(16, dtype=torch.float64)[:n] * 3.0
    assert nt_xent(matched, matched, 0.1).item() == pytest.approx(math.log1p((2 * n - 2) * math.exp(-10)), rel=1e-6)
    assert nt_xent(matched, matched, 0.1).item() < 1e-3
    g = torch.Generator().manual_seed(1)
    random = nt_xent(torch.randn(64, 4096, generator=g), torch.randn(64, 4096, generator=g), 0.5)
    assert random.item() == pytest.approx(math.log(127), abs=0.02)


# ---------------------------------------------------------------- Barlow Twins


def test_barlow_twins_matches_reference():
    z1, z2 = _pair(n=10, d=4)
    expected = ref_barlow_twins(z1.numpy(), z2.numpy(), 0.0051)
    assert barlow_twins(z1, z2).item() == pytest.approx(expected, rel=1e-10)
    assert barlow_twins(z1, z2, lambda_offdiag=0.5).item() == pytest.approx(
        ref_barlow_twins(z1.numpy(), z2.numpy(), 0.5), rel=1e-10
    )


def test_barlow_twins_is_zero_for_standardised_decorrelated_embeddings():
    z = _orthogonal_unit_variance(64, 16)
    assert barlow_twins(z, z).item() < 1e-8
    assert barlow_twins(z, -z).item() == pytest.approx(4 * 16, rel=1e-4)


# ---------------------------------------------------------------- VICReg


def test_vicreg_matches_reference_and_weights_its_parts():
    z1, z2 = _pair(n=10, d=4)
    inv, var, cov = ref_vicreg_parts(z1.numpy(), z2.numpy())
    out = vicreg(z1, z2, sim_weight=2.0, var_weight=3.0, cov_weight=5.0)
    assert out.invariance.item() == pytest.approx(inv, rel=1e-10)
    assert out.variance.item() == pytest.approx(var, rel=1e-10)
    assert out.covariance.item() == pytest.approx(cov, rel=1e-10)
    assert out.loss.item() == pytest.approx(2 * inv + 3 * var + 5 * cov, rel=1e-10)
    assert vicreg_variance(z1).item() == pytest.approx(ref_vicreg_parts(z1.numpy(), z1.numpy())[1], rel=1e-10)
    assert vicreg_covariance(z1).item() == pytest.approx(ref_vicreg_parts(z1.numpy(), z1.numpy())[2] / 2, rel=1e-10)


def test_vicreg_known_values():
    z1, _ = _pair(n=10, d=4)
    assert vicreg(z1, z1).invariance.item() == 0.0
    collapsed = torch.ones(10, 4, dtype=torch.float64)
    assert vicreg_variance(collapsed, eps=1e-4).item() == pytest.approx(1 - math.sqrt(1e-4), rel=1e-12)
    assert vicreg_covariance(collapsed).item() == 0.0
    assert vicreg_covariance(_orthogonal_unit_variance(32, 8)).item() < 1e-20
    assert vicreg_variance(10 * _orthogonal_unit_variance(32, 8)).item() == 0.0


def test_vicreg_token_terms_treat_every_token_as_a_sample():
    g = torch.Generator().manual_seed(3)
    tokens = torch.randn(4, 6, 5, generator=g, dtype=torch.float64) * torch.linspace(0.2, 2.0, 5, dtype=torch.float64)
    variance, covariance = vicreg_token_terms(tokens)
    flat = tokens.reshape(24, 5)
    assert variance.item() == pytest.approx(vicreg_variance(flat).item(), rel=1e-10)
    assert covariance.item() == pytest.approx(vicreg_covariance(flat).item(), rel=1e-10)
    # hand formula: unbiased covariance of the 24 token vectors
    cov = np.cov(flat.numpy(), rowvar=False)
    assert variance.item() == pytest.approx(np.maximum(0, 1 - np.sqrt(np.diag(cov) + 1e-4)).mean(), rel=1e-10)
    assert covariance.item() == pytest.approx((np.square(cov).sum() - np.square(np.diag(cov)).sum()) / 5, rel=1e-10)


def test_vicreg_token_terms_refuse_an_empty_rank():
    with pytest.raises(ValueError, match="at least one token on every rank"):
        vicreg_token_terms(torch.zeros(2, 0, 5))


# ---------------------------------------------------------------- TiCo


def test_tico_matches_reference_over_two_steps():
    z1, z2 = _pair(n=10, d=4)
    z3, z4 = _pair(n=10, d=4, seed=1)
    loss, c = tico(z1, z2, None, beta=0.9, rho=8.0)
    ref_loss, ref_c = ref_tico(z1.numpy(), z2.numpy(), np.zeros((4, 4)), 0.9, 8.0)
    assert loss.item() == pytest.approx(ref_loss, rel=1e-10)
    np.testing.assert_allclose(c.numpy(), ref_c, rtol=1e-10)
    assert not c.requires_grad
    loss, c = tico(z3, z4, c, beta=0.9, rho=8.0)
    ref_loss, ref_c = ref_tico(z3.numpy(), z4.numpy(), ref_c, 0.9, 8.0)
    assert loss.item() == pytest.approx(ref_loss, rel=1e-10)
    np.testing.assert_allclose(c.numpy(), ref_c, rtol=1e-10)


def test_tico_gradient_flows_through_the_current_batch_covariance():
    z1, z2 = _pair(n=10, d=4)
    za = z1.clone().requires_grad_()
    tico(za, z2, torch.zeros(4, 4, dtype=torch.float64), beta=0.0, rho=1.0)[0].backward()

    def detached_covariance_loss(z: torch.Tensor) -> torch.Tensor:
        zn = torch.nn.functional.normalize(z, dim=1)
        c = (zn.T @ zn / len(zn)).detach()
        return 1 - (zn * torch.nn.functional.normalize(z2, dim=1)).sum(1).mean() + ((zn @ c) * zn).sum(1).mean()

    zd = z1.clone().requires_grad_()
    detached_covariance_loss(zd).backward()
    assert not torch.allclose(za.grad, zd.grad)


def test_tico_keeps_float32_state_for_low_precision_embeddings():
    z1, z2 = (z.bfloat16() for z in _pair(n=10, d=4))
    loss, c = tico(z1, z2, torch.zeros(4, 4))
    assert (loss.dtype, c.dtype) == (torch.float32, torch.float32)
    assert tico(z1, z2, None)[1].dtype == torch.float32


# ---------------------------------------------------------------- BYOL


def test_byol_loss_matches_reference_and_detaches_the_target():
    p, z = _pair()
    z = z.clone().requires_grad_()
    p = p.clone().requires_grad_()
    loss = byol_loss(p, z)
    cos = [(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) for a, b in zip(p.detach().numpy(), z.detach().numpy())]
    assert loss.item() == pytest.approx(2 - 2 * np.mean(cos), rel=1e-10)
    loss.backward()
    assert p.grad is not None
    assert z.grad is None
    assert byol_loss(p, 2 * p).item() == pytest.approx(0.0, abs=1e-12)


# ---------------------------------------------------------------- SIGReg / LeJEPA


def test_slice_directions_are_unit_and_reproducible_from_the_seed():
    a = slice_directions(8, 5, seed=3)
    assert a.shape == (8, 5)
    torch.testing.assert_close(a.norm(dim=0), torch.ones(5))
    assert torch.equal(a, slice_directions(8, 5, seed=3))
    assert not torch.equal(a, slice_directions(8, 5, seed=4))


def test_sigreg_matches_reference():
    z = torch.randn(50, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 1.3 + 0.2
    directions = slice_directions(6, 7, seed=11).double()
    expected = ref_sigreg(z.numpy(), directions.numpy())
    assert sigreg(z, num_slices=7, seed=11).item() == pytest.approx(expected, rel=1e-10)
    expected = ref_sigreg(z.numpy(), directions.numpy(), num_knots=9, t_max=4.0)
    assert sigreg(z, num_slices=7, seed=11, num_knots=9, t_max=4.0).item() == pytest.approx(expected, rel=1e-10)


def test_sigreg_is_small_on_gaussians_and_large_on_collapsed_or_low_rank_embeddings():
    g = torch.Generator().manual_seed(0)
    gaussian = torch.randn(2000, 32, generator=g)
    low_rank = torch.randn(2000, 2, generator=g) @ torch.randn(2, 32, generator=g) / math.sqrt(32)
    collapsed = torch.full((2000, 32), 0.3)
    assert sigreg(gaussian, seed=0).item() < 2.0
    assert sigreg(low_rank, seed=0).item() > 50.0
    assert sigreg(collapsed, seed=0).item() > 100.0


def test_sigreg_runs_in_float32_on_low_precision_input():
    z = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    value = sigreg(z.bfloat16(), num_slices=16, seed=0)
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(sigreg(z, num_slices=16, seed=0).item(), rel=0.05)


def test_lejepa_loss_matches_reference():
    g = torch.Generator().manual_seed(0)
    views = [torch.randn(20, 6, generator=g, dtype=torch.float64) for _ in range(3)]
    directions = slice_directions(6, 16, seed=2).double().numpy()
    arrays = [v.numpy() for v in views]
    for num_global in (None, 2):
        centres = np.mean(arrays[: num_global or 3], axis=0)
        invariance = np.mean([np.sum((centres - z) ** 2, axis=1).mean() / 6 for z in arrays])
        reg = np.mean([ref_sigreg(z, directions) for z in arrays])
        out = lejepa_loss(views, lambda_=0.2, num_slices=16, seed=2, num_global_views=num_global)
        assert out.invariance.item() == pytest.approx(invariance, rel=1e-10)
        assert out.sigreg.item() == pytest.approx(reg, rel=1e-10)
        assert out.loss.item() == pytest.approx(0.2 * reg + 0.8 * invariance, rel=1e-10)


# ---------------------------------------------------------------- INTL: IterNorm and trace loss


@pytest.mark.parametrize("axis", ["channel", "batch"])
def test_iternorm_converges_to_zca_whitening(axis):
    """Newton's iterations approach ``S^{-1/2}`` of the covariance along the axis: after 12 of them on a
    well-conditioned batch the result is the eigendecomposition's whitening (numpy). (This uncoupled iteration
    drifts off again after a few dozen: the official code runs 4.)"""
    n, d = (6, 40) if axis == "channel" else (40, 6)
    g = torch.Generator().manual_seed(0)
    z = torch.randn(n, d, generator=g, dtype=torch.float64) + 0.5
    w = iternorm(z, axis, iterations=12).numpy()
    x = z.numpy() - z.numpy().mean(axis=1 if axis == "channel" else 0, keepdims=True)
    x = x.T if axis == "channel" else x
    expected = x @ ref_inverse_sqrt(x.T @ x / (x.shape[0] - 1))
    np.testing.assert_allclose(w, expected.T if axis == "channel" else expected, rtol=0, atol=1e-6)


def test_iternorm_with_few_iterations_only_partly_whitens_and_the_trace_loss_sees_it():
    """4 iterations leave the variances below 1 (the trace loss is positive); 12 drive it to 0."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(40, 6, generator=g, dtype=torch.float64) @ torch.diag(
        torch.linspace(0.5, 2, 6, dtype=torch.float64)
    )
    assert trace_loss(iternorm(z, "batch", 4), "batch").item() > 0.1
    assert trace_loss(iternorm(z, "batch", 12), "batch").item() == pytest.approx(0.0, abs=1e-12)


def test_trace_loss_matches_its_formula():
    w = _pair(n=9, d=4)[0]
    by_channel = ((np.var(w.numpy(), axis=0, ddof=1) - 1) ** 2).sum()
    by_sample = ((np.var(w.numpy(), axis=1, ddof=1) - 1) ** 2).sum()
    assert trace_loss(w, "batch").item() == pytest.approx(by_channel, rel=1e-12)
    assert trace_loss(w, "channel").item() == pytest.approx(by_sample, rel=1e-12)


def test_intl_loss_terms_and_default_trade_off():
    z1, z2 = _pair(n=16, d=5)
    w1, w2 = iternorm(z1), iternorm(z2)
    out = intl_loss(z1, z2)
    cos = torch.nn.functional.cosine_similarity(w1, w2, dim=1).mean()
    assert out.invariance.item() == pytest.approx(2 - 2 * cos.item(), rel=1e-12)
    assert out.trace.item() == pytest.approx((trace_loss(w1) + trace_loss(w2)).item(), rel=1e-12)
    assert intl_trade_off(16, 5, "channel") == pytest.approx(0.01)  # 0.01 * (log2(16) - 3)
    assert intl_trade_off(16, 256, "batch") == pytest.approx(0.05)
    assert out.loss.item() == pytest.approx(out.invariance.item() + 0.01 * out.trace.item(), rel=1e-12)
    assert intl_loss(z1, z1).invariance.item() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="axis"):
        iternorm(z1, "rows")


# ---------------------------------------------------------------- errors and gradients


@pytest.mark.parametrize("loss", [nt_xent, barlow_twins, vicreg, byol_loss, intl_loss])
def test_mismatched_views_raise(loss):
    with pytest.raises(ValueError, match="equal shape"):
        loss(torch.randn(4, 3), torch.randn(5, 3))


def test_too_small_batches_raise():
    with pytest.raises(ValueError, match="at least 2 samples"):
        vicreg_variance(torch.randn(1, 3))
    with pytest.raises(ValueError, match="at least 2 entries"):
        iternorm(torch.randn(1, 3), "batch")
    with pytest.raises(ValueError, match=r"\(\.\.\., N, K\)"):
        sigreg(torch.randn(5))
    with pytest.raises(ValueError, match="one shape"):
        lejepa_loss([torch.randn(4, 3), torch.randn(5, 3)])


@pytest.mark.parametrize(
    "loss",
    [
        lambda a, b: nt_xent(a, b, 0.3),
        barlow_twins,
        lambda a, b: vicreg(a, b).loss,
        lambda a, b: tico(a, b, None)[0],
        lambda a, b: lejepa_loss([a, b], num_slices=8, seed=0).loss,
        lambda a, b: intl_loss(a, b).loss,
    ],
    ids=["nt_xent", "barlow_twins", "vicreg", "tico", "lejepa", "intl"],
)
def test_gradients_match_finite_differences(loss):
    z1, z2 = _pair(n=6, d=3)
    torch.autograd.gradcheck(loss, (z1.requires_grad_(), z2.requires_grad_()))


@pytest.mark.parametrize("loss", [barlow_twins, vicreg_variance, vicreg_covariance])
def test_statistics_losses_run_in_float32_under_bf16_autocast(loss):
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(64, 256, generator=g), torch.randn(64, 256, generator=g)
    args = (z1, z2) if loss is barlow_twins else (z1,)
    reference = loss(*args)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(*(z.bfloat16() for z in args))
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(reference.item(), rel=2e-2)


def test_vicreg_total_is_float32_under_bf16_autocast():
    z1, z2 = _pair(n=32, d=16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        parts = vicreg(z1.float().bfloat16(), z2.float().bfloat16())
    assert parts.loss.dtype == torch.float32
