"""Stepwise learning (Simon et al., 2023) in the linear Barlow-Twins model on digits: see examples/stepwise_learning.py.

Default run: d = 6, W entries of std 1e-8 / sqrt(64), lr = 0.01, 400 full-batch GD steps, Gaussian-noise views
(std 0.3), seed 0. Observed values (the thresholds below leave the stated margins):

- mode-resolved half-rise steps 71.9, 86.5, 100.9, 131.7, 171.1, 205.6: strictly increasing in the order of γ, gaps
  >= 14 steps (threshold: >= 5 steps);
- when mode i reaches 90 % of its final value, mode i+1 is at <= 2.0 % of its own (threshold: < 20 %, 10x margin;
  with large init it is 75-165 %, see the last test);
- final eigenvalues of C within 1e-15 of 1 (threshold 1e-3), loss ~1e-31 (threshold 1e-8); the mode-resolved values
  γ_i ||W v_i||^2 within 3e-4 of 1 (threshold 1e-2; the rest sits in mode 7, γ_7 / γ_6 = 1.08);
- overlap of W's row space with the top-6 eigenvectors of Γ 0.99994 (threshold 0.99), largest principal angle
  1.1 degrees (threshold 5 degrees); with large init the overlap is 0.11;
- logistic-theory half-rise steps within 0.6 steps of the observed ones (threshold 2 steps).
"""

from __future__ import annotations

import math

import pytest
import torch

from examples.stepwise_learning import (
    StepwiseHistory,
    barlow_loss,
    cross_correlation_kernel,
    crossing_steps,
    effective_initial_modes,
    kernel_eigenpairs,
    loss_gradient,
    make_views,
    predicted_step_times,
    separation_margins,
    subspace_overlap,
    train_linear_barlow,
)

DIM, LR, STEPS = 6, 0.01, 400
MIN_GAP_STEPS = 5.0  # observed >= 14
MAX_NEXT_AT_90 = 0.2  # observed <= 0.02
MIN_OVERLAP = 0.99  # observed 0.99994
MAX_ANGLE_DEG = 5.0  # observed 1.1


@pytest.fixture(scope="module")
def views() -> tuple[torch.Tensor, torch.Tensor]:
    return make_views(seed=0)


@pytest.fixture(scope="module")
def kernel_top(views) -> tuple[torch.Tensor, torch.Tensor]:
    gammas, vecs = kernel_eigenpairs(cross_correlation_kernel(*views))
    return gammas[:DIM], vecs[:, :DIM]


@pytest.fixture(scope="module")
def history(views) -> StepwiseHistory:
    return train_linear_barlow(*views, dim=DIM, steps=STEPS, lr=LR, init_scale=1e-8, seed=0)


def stepwise_violations(hist: StepwiseHistory, top: torch.Tensor) -> list[str]:
    """The stepwise-learning criteria that ``hist`` breaks (empty list: all hold)."""
    failures = []
    t_half = crossing_steps(hist.steps, hist.mode_eigenvalues, 0.5)
    if not bool((t_half.diff() >= MIN_GAP_STEPS).all()):
        failures.append(f"order/gap: half-rise steps {t_half.tolist()}")
    margins = separation_margins(hist.steps, hist.mode_eigenvalues, 0.9)
    if not bool((margins < MAX_NEXT_AT_90).all()):
        failures.append(f"separation: next mode at {margins.tolist()} of final when previous at 90%")
    if subspace_overlap(hist.weight, top) < MIN_OVERLAP:
        failures.append("subspace: learned row space is not the top-d kernel subspace")
    return failures


def test_closed_form_gradient_is_full_batch_autograd(views):
    x1, x2 = views
    w = torch.randn(DIM, x1.shape[1], dtype=x1.dtype, generator=torch.Generator().manual_seed(0)) * 0.1
    w.requires_grad_(True)
    (auto,) = torch.autograd.grad(barlow_loss(x1 @ w.T, x2 @ w.T), w)
    w = w.detach()
    wk = w @ cross_correlation_kernel(x1, x2)
    torch.testing.assert_close(loss_gradient(wk @ w.T, wk), auto)


def test_modes_rise_one_at_a_time_in_gamma_order(history, kernel_top):
    gammas, _ = kernel_top
    assert bool((gammas.diff() < 0).all())
    t_half = crossing_steps(history.steps, history.mode_eigenvalues, 0.5)
    assert not t_half.isnan().any()
    assert bool((t_half.diff() >= MIN_GAP_STEPS).all()), t_half  # strictly later for each smaller γ
    # The sorted eigenvalues of C (plotted without knowing Γ) are those same modes, rising at the same steps.
    t_half_sorted = crossing_steps(history.steps, history.eigenvalues, 0.5)
    torch.testing.assert_close(t_half_sorted, t_half, atol=1.0, rtol=0.0)


def test_consecutive_steps_are_separated(history):
    # Logistic steps: a mode goes from 10 % to 90 % in ~log(81) / (8 lr γ) steps, while consecutive modes start
    # log(1/λ(0)) (1/γ_{i+1} - 1/γ_i) / (8 lr) steps apart, which is larger for this small init.
    for curves in (history.mode_eigenvalues, history.eigenvalues):
        margins = separation_margins(history.steps, curves, 0.9)
        assert bool((margins < MAX_NEXT_AT_90).all()), margins
    # When mode 1 reaches 10 %, every other mode is still near its tiny initial value (observed 3e-4).
    t10 = crossing_steps(history.steps, history.mode_eigenvalues, 0.1)
    first = int(t10[0])
    assert float(history.mode_eigenvalues[first, 1:].max()) < 0.01


def test_final_eigenvalues_are_one(history):
    assert float(history.losses[-1]) < 1e-8
    torch.testing.assert_close(history.eigenvalues[-1], torch.ones(DIM, dtype=torch.float64), atol=1e-3, rtol=0.0)
    torch.testing.assert_close(history.mode_eigenvalues[-1], torch.ones(DIM, dtype=torch.float64), atol=1e-2, rtol=0)


def test_learned_subspace_is_top_kernel_eigenspace(history, kernel_top):
    _, top = kernel_top
    assert subspace_overlap(history.weight, top) > MIN_OVERLAP
    q, _ = torch.linalg.qr(history.weight.T)
    cosines = torch.linalg.svdvals(top.T @ q).clamp(max=1.0)
    assert math.degrees(float(torch.arccos(cosines.min()))) < MAX_ANGLE_DEG


def test_step_times_match_logistic_theory(history, kernel_top):
    gammas, top = kernel_top
    predicted = predicted_step_times(gammas, effective_initial_modes(history.initial_weight, gammas, top), LR)
    observed = crossing_steps(history.steps, history.mode_eigenvalues, 0.5)
    torch.testing.assert_close(observed, predicted, atol=2.0, rtol=0.0)
    # Order of the steps = order of 1/γ (Spearman rank correlation 1).
    assert torch.equal(torch.argsort(observed), torch.argsort(1 / gammas))


def test_criteria_hold_at_small_init(history, kernel_top):
    assert stepwise_violations(history, kernel_top[1]) == []


def test_large_init_is_not_stepwise(views, kernel_top):
    # Sanity check that the criteria can fail: W entries of std 1/sqrt(p) start every mode at λ(0) ~ 0.1-1, so all
    # modes move at once and the final W keeps its random orientation on the C = I manifold (overlap ~0.11).
    hist = train_linear_barlow(*views, dim=DIM, steps=STEPS, lr=LR, init_scale=1.0, seed=0)
    torch.testing.assert_close(hist.eigenvalues[-1], torch.ones(DIM, dtype=torch.float64), atol=1e-3, rtol=0.0)
    failures = stepwise_violations(hist, kernel_top[1])
    assert len(failures) == 3, failures
