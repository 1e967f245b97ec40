import math
import warnings

import numpy as np
import pytest
import torch

from jepa_lightning.metrics import RankMe, rankme


def random_matrix(n: int, k: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, k, generator=torch.Generator().manual_seed(seed))


def test_full_rank_isotropic_matrices_reach_the_dimension():
    assert rankme(torch.eye(16)).item() == pytest.approx(16, rel=1e-4)
    q, _ = torch.linalg.qr(random_matrix(64, 64))
    assert rankme(q[:, :10] * 3.0).item() == pytest.approx(10, rel=1e-4)


def test_rank_one_matrix_gives_one():
    z = torch.outer(torch.arange(1.0, 101.0), torch.linspace(-1, 2, 32))
    assert rankme(z).item() == pytest.approx(1.0, abs=1e-3)


def test_invariant_to_scaling_and_bounded_by_min_n_k():
    z = random_matrix(200, 24)
    torch.testing.assert_close(rankme(z * 1e3), rankme(z))
    for n, k in [(5, 40), (40, 5), (300, 32), (2, 2)]:
        value = rankme(random_matrix(n, k, seed=n + k)).item()
        assert 1.0 <= value <= min(n, k) * (1 + 1e-5)


def test_matches_the_formula_in_numpy():
    z = random_matrix(50, 8) @ torch.diag(torch.linspace(0.1, 3, 8))
    s = np.linalg.svd(z.double().numpy(), compute_uv=False)
    p = s / s.sum() + 1e-7
    assert rankme(z).item() == pytest.approx(math.exp(-(p * np.log(p)).sum()), rel=1e-5)


def test_metric_accumulates_batches_and_caps_samples():
    z = random_matrix(120, 10)
    metric = RankMe()
    for part in z.split(32):
        metric.update(part)
    torch.testing.assert_close(metric.compute(), rankme(z))
    capped = RankMe(max_samples=50)
    for part in z.split(32):
        capped.update(part)
    torch.testing.assert_close(capped.compute(), rankme(z[:50]))
    capped.reset()
    capped.update(z[60:])
    torch.testing.assert_close(capped.compute(), rankme(z[60:110]))
    with pytest.raises(ValueError, match="max_samples"):
        RankMe(max_samples=0)


def test_warns_once_when_fewer_samples_than_dimensions():
    metric = RankMe()
    metric.update(random_matrix(8, 32))
    with pytest.warns(UserWarning, match="fewer samples than dimensions"):
        assert metric.compute().item() <= 8
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metric.update(random_matrix(8, 32, seed=1))
        metric.compute()
        enough = RankMe()
        enough.update(random_matrix(64, 32))
        enough.compute()
