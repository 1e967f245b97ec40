# ruff: noqa: N803, N806  (the official functions are re-typed with their own names)
"""Joint-embedding losses against their official code (or Lightly's, where there is none), re-typed below in torch,
compared numerically on fixed inputs. Where we deliberately differ, the test says how."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from jepa_lightning.losses import (
    barlow_twins,
    byol_loss,
    intl_loss,
    lejepa_loss,
    nt_xent,
    sigreg,
    slice_directions,
    tico,
    vicreg,
)


def views(num: int = 2, n: int = 16, d: int = 8, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, d, generator=g, dtype=torch.float64)
    return [base + 0.5 * torch.randn(n, d, generator=g, dtype=torch.float64) for _ in range(num)]


# ---------------------------------------------------------------- LeJEPA


# official: rbalestr-lab/lejepa@eddffdd857a19726342ef6526e01021fb3c32cae MINIMAL.md::SIGReg
# (the random directions `A` are passed in instead of drawn from the global RNG, so both sides use the same slices)
class OfficialMinimalSIGReg(torch.nn.Module):
    def __init__(self, knots=17):
        super().__init__()
        t = torch.linspace(0, 3, knots, dtype=torch.float32)
        dt = 3 / (knots - 1)
        weights = torch.full((knots,), 2 * dt, dtype=torch.float32)
        weights[[0, -1]] = dt
        window = torch.exp(-t.square() / 2.0)
        self.register_buffer("t", t)
        self.register_buffer("phi", window)
        self.register_buffer("weights", weights * window)

    def forward(self, proj, A):
        x_t = (proj @ A).unsqueeze(-1) * self.t
        err = (x_t.cos().mean(-3) - self.phi).square() + x_t.sin().mean(-3).square()
        statistic = (err @ self.weights) * proj.size(-2)
        return statistic.mean()


# official: rbalestr-lab/lejepa@eddffdd857a19726342ef6526e01021fb3c32cae MINIMAL.md (training loop)
def official_minimal_lejepa(proj, A, lamb):
    inv_loss = (proj.mean(0) - proj).square().mean()
    sigreg_loss = OfficialMinimalSIGReg().double()(proj, A)
    return sigreg_loss * lamb + inv_loss * (1 - lamb), inv_loss, sigreg_loss


# official: rbalestr-lab/lejepa@eddffdd857a19726342ef6526e01021fb3c32cae
# lejepa/univariate/epps_pulley.py::EppsPulley.forward (one process: all_reduce is the identity, world_size 1)
def official_epps_pulley(x, t_max=3, n_points=17):
    t = torch.linspace(0, t_max, n_points, dtype=torch.float64)
    dt = t_max / (n_points - 1)
    weights = torch.full((n_points,), 2 * dt, dtype=torch.float64)
    weights[[0, -1]] = dt
    phi = t.square().mul_(0.5).neg_().exp_()
    weights = weights * phi
    N = x.size(-2)
    x_t = x.unsqueeze(-1) * t
    cos_mean = torch.cos(x_t).mean(-3)
    sin_mean = torch.sin(x_t).mean(-3)
    err = (cos_mean - phi).square() + sin_mean.square()
    return (err @ weights) * N


def test_sigreg_matches_the_official_minimal_and_library_sigreg():
    z = torch.stack(views(4, n=32, d=8)) * 1.3 + 0.2  # (V, N, K)
    A = slice_directions(8, 64, seed=5).double()
    ours = sigreg(z, num_slices=64, seed=5)
    # the official knots and weights are float32 buffers: agreement to float32 rounding
    assert ours.item() == pytest.approx(OfficialMinimalSIGReg().double()(z, A).item(), rel=1e-6)
    # the library: SlicingUnivariateTest(EppsPulley(), reduction="mean") projects on A, then averages the statistics
    assert ours.item() == pytest.approx(official_epps_pulley(z @ A).mean().item(), rel=1e-10)


@pytest.mark.parametrize("num_views", [2, 4, 8])
def test_lejepa_loss_matches_the_official_minimal_loss_with_v_views(num_views):
    proj = torch.stack(views(num_views, n=24, d=8, seed=num_views))
    A = slice_directions(8, 32, seed=1).double()
    loss, inv, reg = official_minimal_lejepa(proj, A, lamb=0.02)
    ours = lejepa_loss(list(proj), lambda_=0.02, num_slices=32, seed=1)
    assert ours.invariance.item() == pytest.approx(inv.item(), rel=1e-10)
    assert ours.sigreg.item() == pytest.approx(reg.item(), rel=1e-6)  # float32 knots, as above
    assert ours.loss.item() == pytest.approx(loss.item(), rel=1e-6)


# official: galilai-group/stable-pretraining@d15ec96d088a30e220f6fab1539dfb5d854729f0
# stable_pretraining/methods/lejepa.py::LeJEPA._compute_loss (the authors' library; rbalestr-lab/lejepa's MINIMAL.md
# runs one view size only). `sigreg` is SlicedEppsPulley with its directions `A` passed in (EppsPulley.forward, one
# process).
def official_multicrop_compute_loss(all_projected, n_global, sigreg, lamb):
    centers = all_projected[:n_global].mean(0)  # [N, K]
    inv_loss = (centers.unsqueeze(0) - all_projected).square().mean()
    sigreg_loss = sigreg(all_projected.reshape(-1, all_projected.size(-1)))
    loss = inv_loss + lamb * sigreg_loss
    return loss, inv_loss, sigreg_loss


def official_sliced_epps_pulley(x, A, t_max=3.0, n_points=17):
    t = torch.linspace(0, t_max, n_points, dtype=torch.float64)
    dt = t_max / (n_points - 1)
    phi = (-0.5 * t**2).exp()
    weights = torch.full((n_points,), 2 * dt, dtype=torch.float64)
    weights[[0, -1]] = dt
    weights = weights * phi
    proj = x @ A
    N = proj.size(0)
    x_t = proj.unsqueeze(-1) * t
    err = (x_t.cos().mean(0) - phi).square() + x_t.sin().mean(0).square()
    return ((err @ weights) * N).mean()


def test_lejepa_multi_crop_loss_against_the_authors_library():
    """2 global + 6 local views: every view is pulled to the mean of the 2 global projections (identical to the
    authors' library). Kept on purpose from MINIMAL.md (the preset's reference): SIGReg is the mean of each view's
    statistic (the library tests the 8 views pooled as one sample) and the loss is ``(1 - lambda) * invariance +
    lambda * SIGReg`` (the library: ``invariance + lambda * SIGReg``)."""
    proj = views(8, n=20, d=8, seed=3)
    A = slice_directions(8, 32, seed=2).double()
    stacked = torch.stack(proj)
    _, inv, pooled = official_multicrop_compute_loss(stacked, 2, lambda x: official_sliced_epps_pulley(x, A), lamb=0.05)
    ours = lejepa_loss(proj, lambda_=0.05, num_slices=32, seed=2, num_global_views=2)
    assert ours.invariance.item() == pytest.approx(inv.item(), rel=1e-10)
    per_view = torch.stack([official_sliced_epps_pulley(view, A) for view in proj]).mean()
    assert ours.sigreg.item() == pytest.approx(per_view.item(), rel=1e-10)
    assert ours.sigreg.item() != pytest.approx(pooled.item(), rel=1e-3)
    assert ours.loss.item() == pytest.approx((0.95 * inv + 0.05 * per_view).item(), rel=1e-10)


def test_lejepa_invariance_centres_on_the_global_views():
    """README.md's multi-crop: the centres are the mean of the 2 global views, every view is pulled to them."""
    proj = torch.stack(views(8, n=12, d=6))
    centres = proj[:2].mean(0)
    expected = (centres - proj).square().mean()
    ours = lejepa_loss(list(proj), num_slices=8, seed=0, num_global_views=2).invariance
    assert ours.item() == pytest.approx(expected.item(), rel=1e-12)
    assert ours.item() != pytest.approx(lejepa_loss(list(proj), num_slices=8, seed=0).invariance.item(), rel=1e-3)


# ---------------------------------------------------------------- SimCLR

LARGE_NUM = 1e9


# official: google-research/simclr@383d4143fd8cf7879ae10f1046a9baeb753ff438 tf2/objective.py::add_contrastive_loss
# (re-typed in torch for one replica; tf.nn.softmax_cross_entropy_with_logits with one-hot labels is cross_entropy)
def official_simclr_loss(hidden, hidden_norm=True, temperature=1.0):
    if hidden_norm:
        hidden = F.normalize(hidden, dim=-1)
    hidden1, hidden2 = hidden.chunk(2, 0)
    batch_size = hidden1.shape[0]
    labels = torch.arange(batch_size)
    masks = F.one_hot(torch.arange(batch_size), batch_size).to(hidden.dtype)
    logits_aa = hidden1 @ hidden1.T / temperature - masks * LARGE_NUM
    logits_bb = hidden2 @ hidden2.T / temperature - masks * LARGE_NUM
    logits_ab = hidden1 @ hidden2.T / temperature
    logits_ba = hidden2 @ hidden1.T / temperature
    loss_a = F.cross_entropy(torch.cat([logits_ab, logits_aa], 1), labels, reduction="none")
    loss_b = F.cross_entropy(torch.cat([logits_ba, logits_bb], 1), labels, reduction="none")
    return (loss_a + loss_b).mean()


@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_nt_xent_is_half_the_official_simclr_loss(temperature):
    """Deviation (a constant factor): the official loss sums the two views' cross-entropies, ours averages them
    (Lightly's NTXentLoss convention), so ours is exactly half of it."""
    z1, z2 = views(2)
    official = official_simclr_loss(torch.cat([z1, z2]), temperature=temperature)
    assert nt_xent(z1, z2, temperature).item() == pytest.approx(official.item() / 2, rel=1e-10)


# ---------------------------------------------------------------- Barlow Twins


# official: facebookresearch/barlowtwins@8e8d284ca0bc02f88b92328e53f9b901e86b4a3c main.py::BarlowTwins.forward
# (one process: all_reduce is the identity; self.bn is BatchNorm1d(affine=False) in training mode)
def official_barlow_twins(z1, z2, lambd=0.0051):
    bn = torch.nn.BatchNorm1d(z1.shape[1], affine=False).double().train()
    c = bn(z1).T @ bn(z2)
    c.div_(z1.shape[0])
    on_diag = torch.diagonal(c).add_(-1).pow_(2).sum()
    n, _ = c.shape
    off_diag = c.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten().pow_(2).sum()
    return on_diag + lambd * off_diag


def test_barlow_twins_matches_the_official_loss():
    z1, z2 = views(2, n=32, d=12)
    for lambd in (0.0051, 0.1):
        expected = official_barlow_twins(z1, z2, lambd).item()
        assert barlow_twins(z1, z2, lambd).item() == pytest.approx(expected, rel=1e-10)


# ---------------------------------------------------------------- VICReg


# official: facebookresearch/vicreg@4e12602fd495af83efd1631fbe82523e6db092e0 main_vicreg.py::VICReg.forward
# (after the projector; one process: FullGatherLayer is the identity)
def official_vicreg(x, y, sim_coeff=25.0, std_coeff=25.0, cov_coeff=1.0):
    batch_size, num_features = x.shape

    def off_diagonal(m):
        n, _ = m.shape
        return m.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()

    repr_loss = F.mse_loss(x, y)
    x = x - x.mean(dim=0)
    y = y - y.mean(dim=0)
    std_x = torch.sqrt(x.var(dim=0) + 0.0001)
    std_y = torch.sqrt(y.var(dim=0) + 0.0001)
    std_loss = torch.mean(F.relu(1 - std_x)) / 2 + torch.mean(F.relu(1 - std_y)) / 2
    cov_x = (x.T @ x) / (batch_size - 1)
    cov_y = (y.T @ y) / (batch_size - 1)
    cov_loss = off_diagonal(cov_x).pow_(2).sum().div(num_features) + off_diagonal(cov_y).pow_(2).sum().div(num_features)
    loss = sim_coeff * repr_loss + std_coeff * std_loss + cov_coeff * cov_loss
    return loss, repr_loss, std_loss, cov_loss


def test_vicreg_matches_the_official_loss_and_its_parts():
    z1, z2 = (0.3 * z for z in views(2, n=32, d=12))  # std below 1: the variance hinge is active
    loss, inv, var, cov = official_vicreg(z1, z2)
    ours = vicreg(z1, z2)
    assert var.item() > 0
    for a, b in zip(ours, (loss, inv, var, cov)):
        assert a.item() == pytest.approx(b.item(), rel=1e-10)


# ---------------------------------------------------------------- BYOL


# official: google-deepmind/deepmind-research@4822a45504cb05042841a358f070bba35c6fbc24 byol/utils/helpers.py
# ::l2_normalize, ::regression_loss and byol/byol_experiment.py::ByolExperiment.loss_fn (repr_loss), in torch
def official_byol_repr_loss(p1, p2, z1, z2):
    def l2_normalize(x, axis=None, epsilon=1e-12):
        square_sum = torch.sum(torch.square(x), dim=axis, keepdim=True)
        return x * torch.rsqrt(torch.clamp(square_sum, min=epsilon))

    def regression_loss(x, y):
        normed_x, normed_y = l2_normalize(x, axis=-1), l2_normalize(y, axis=-1)
        return torch.sum((normed_x - normed_y) ** 2, dim=-1)

    repr_loss = regression_loss(p1, z2.detach())
    repr_loss = repr_loss + regression_loss(p2, z1.detach())
    return torch.mean(repr_loss)


def test_byol_symmetrised_loss_matches_the_official_repr_loss():
    p1, p2, z1, z2 = views(4)
    ours = byol_loss(p1, z2) + byol_loss(p2, z1)  # what BYOL.objective computes
    assert ours.item() == pytest.approx(official_byol_repr_loss(p1, p2, z1, z2).item(), rel=1e-10)


# ---------------------------------------------------------------- TiCo (no official code: Lightly's loss)


# official (none published; the reference is Lightly's): lightly-ai/lightly@e8d317fc5a87f4387a85a35e689869039ec249ee
# lightly/loss/tico_loss.py::TiCoLoss.forward (one process). `detach_b=False` is the same function before
# lightly-ai/lightly#1484 (6bd7553b), which added the `.detach()` on B.
class LightlyTiCoLoss:
    def __init__(self, beta=0.9, rho=20.0, detach_b=True):
        self.beta, self.rho, self.detach_b, self.C = beta, rho, detach_b, None

    def __call__(self, z_a, z_b, update_covariance_matrix=True):
        z_a = torch.nn.functional.normalize(z_a, dim=1)
        z_b = torch.nn.functional.normalize(z_b, dim=1)
        B = torch.mm(z_a.T, z_a) / z_a.shape[0]
        if self.detach_b:
            B = B.detach()
        if self.C is None:
            self.C = B.new_zeros(B.shape).detach()
        C = self.beta * self.C + (1 - self.beta) * B
        transformative_invariance_loss = 1.0 - (z_a * z_b).sum(dim=1).mean()
        covariance_contrast_loss = self.rho * (torch.mm(z_a, C) * z_a).sum(dim=1).mean()
        loss = transformative_invariance_loss + covariance_contrast_loss
        if update_covariance_matrix:
            self.C = C.detach()
        return loss


def tico_grads(detach: bool, steps: int = 3) -> tuple[list[torch.Tensor], list[torch.Tensor], list[float]]:
    """Gradients of ours and of Lightly's loss (with or without the detach) over ``steps`` steps of running state."""
    lightly = LightlyTiCoLoss(beta=0.9, rho=8.0, detach_b=detach)
    covariance, ours_grads, lightly_grads, diffs = None, [], [], []
    for step in range(steps):
        z_a, z_b = views(2, n=16, d=6, seed=step)
        a1, a2 = z_a.clone().requires_grad_(), z_a.clone().requires_grad_()
        loss, covariance = tico(a1, z_b, covariance, beta=0.9, rho=8.0, detach_batch_covariance=detach)
        expected = lightly(a2, z_b)
        assert loss.item() == pytest.approx(expected.item(), rel=1e-10)
        torch.testing.assert_close(covariance, lightly.C)
        loss.backward()
        expected.backward()
        ours_grads.append(a1.grad)
        lightly_grads.append(a2.grad)
        diffs.append((a1.grad - a2.grad).abs().max().item())
    return ours_grads, lightly_grads, diffs


@pytest.mark.parametrize("detach", [False, True])
def test_tico_matches_lightly_in_value_and_gradient_for_each_reading(detach):
    ours, lightly, _ = tico_grads(detach)
    for a, b in zip(ours, lightly):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_tico_default_keeps_the_gradient_through_the_batch_covariance_that_lightly_detaches():
    ours, _, _ = tico_grads(detach=False)
    lightly_now = LightlyTiCoLoss(beta=0.9, rho=8.0, detach_b=True)
    for step, grad in enumerate(ours):
        z_a, z_b = views(2, n=16, d=6, seed=step)
        a = z_a.clone().requires_grad_()
        lightly_now(a, z_b).backward()
        assert not torch.allclose(grad, a.grad, rtol=1e-3)
        # the difference is exactly the gradient through (1 - beta) * rho * mean_n z_n B z_n^T's B
        zn = z_a.clone().requires_grad_()
        normed = F.normalize(zn, dim=1)
        fixed = normed.detach()
        extra = 8.0 * 0.1 * ((fixed @ (normed.T @ normed / len(normed))) * fixed).sum(1).mean()
        extra.backward()
        torch.testing.assert_close(grad - a.grad, zn.grad, rtol=1e-8, atol=1e-10)


# ---------------------------------------------------------------- INTL

INTL = "winci-ai/INTL@0aa69af20a263d1d714e45bc835925a84dc11956"


# official: winci-ai/INTL@0aa69af20a263d1d714e45bc835925a84dc11956 methods/whitening.py::Whitening2d.forward and
# Whitening2dIterNorm.whiten_matrix (one process: FullGatherLayer is the identity)
def official_iternorm(x, axis, iterations=4):
    w_dim = x.size(-1)
    m = x.mean(0 if axis == 1 else 1)
    m = m.view(1, -1) if axis == 1 else m.view(-1, 1)
    xn = x - m
    if axis == 1:
        eye = torch.eye(w_dim).type(xn.type()).reshape(1, w_dim, w_dim).repeat(1, 1, 1)
        xn_g = xn.reshape(-1, 1, w_dim).permute(1, 0, 2)
    else:
        eye = torch.eye(x.size(0)).type(xn.type()).reshape(1, x.size(0), x.size(0)).repeat(1, 1, 1)
        xn_g = xn.reshape(-1, 1, w_dim).permute(1, 2, 0)
    sigma = torch.bmm(xn_g.permute(0, 2, 1), xn_g) / (xn_g.shape[1] - 1)
    trace = sigma.diagonal(offset=0, dim1=-1, dim2=-2).sum(-1)
    trace = trace.reshape(sigma.size(0), 1, 1)
    sigma_norm = sigma * trace.reciprocal()
    projection = eye
    for _ in range(iterations):
        projection = torch.baddbmm(projection, torch.matrix_power(projection, 3), sigma_norm, beta=1.5, alpha=-0.5)
    matrix = projection.mul_(trace.reciprocal().sqrt())
    decorrelated = torch.bmm(xn_g, matrix)
    if axis == 1:
        return decorrelated.permute(1, 0, 2).reshape(-1, w_dim)
    return decorrelated.permute(2, 0, 1).reshape(-1, w_dim)


# official: winci-ai/INTL@0aa69af20a263d1d714e45bc835925a84dc11956 methods/intl.py::TL
def official_trace_loss(x, axis):
    if axis == 0:
        x = x.T
    N, _ = x.size()
    x = x - x.mean(dim=0)
    d = torch.pow(x, 2).sum(axis=0) / (N - 1)
    return d.add_(-1).pow_(2).sum()


# official: winci-ai/INTL@0aa69af20a263d1d714e45bc835925a84dc11956 methods/intl.py::INTL.forward (projections given),
# methods/base.py::norm_mse_loss and cal_trade_off (bs: the global batch, emb: the projection width)
def official_intl(projections, axis, bs, emb):
    trade_off = (math.log2(bs) - 3) * 0.01 if axis == 0 else (math.log2(emb) - 3) * 0.01
    t = [official_iternorm(p, axis) for p in projections]
    tl = [official_trace_loss(x, axis) for x in t]
    loss = 0
    for i in range(1, len(projections)):
        x0, x1 = F.normalize(t[i]), F.normalize(t[0])
        loss += 2 - 2 * (x0 * x1).sum(dim=-1).mean() + trade_off * (tl[i] + tl[0])
    return loss / (len(projections) - 1)


@pytest.mark.parametrize(("axis", "official_axis", "n", "d"), [("channel", 0, 16, 64), ("batch", 1, 64, 16)])
def test_intl_matches_the_official_loss_and_gradient(axis, official_axis, n, d):
    z1, z2 = (v.requires_grad_() for v in views(2, n=n, d=d))
    ours = intl_loss(z1, z2, axis=axis)
    ours.loss.backward()
    grads = z1.grad.clone(), z2.grad.clone()
    z1.grad = z2.grad = None
    reference = official_intl([z1, z2], official_axis, n, d)
    reference.backward()
    assert ours.loss.item() == pytest.approx(reference.item(), rel=1e-10)
    torch.testing.assert_close(grads, (z1.grad, z2.grad), rtol=1e-8, atol=1e-12)
