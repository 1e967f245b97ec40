import numpy as np
import pytest
import torch

from jepa_lightning.metrics import EmbeddingSpectrum, EmbeddingStd


def samples(n: int = 400, seed: int = 0) -> np.ndarray:
    """Samples of a known covariance: eigenvalues 9, 4, 1, 0.25 in a rotated basis, shifted mean."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    covariance = basis @ np.diag([9.0, 4.0, 1.0, 0.25]) @ basis.T
    return rng.multivariate_normal(np.arange(4.0), covariance, size=n)


def test_eigenvalues_match_numpy_on_the_sample_covariance_in_descending_order():
    z = samples()
    metric = EmbeddingSpectrum()
    for part in torch.from_numpy(z).float().split(64):
        metric.update(part)
    eigenvalues = metric.compute()
    expected = np.sort(np.linalg.eigvalsh(np.cov(z.astype(np.float32).T)))[::-1]
    assert eigenvalues.dtype == torch.float64
    np.testing.assert_allclose(eigenvalues.numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(eigenvalues.numpy(), [9, 4, 1, 0.25], rtol=0.2)  # near the true spectrum


def test_two_view_form_is_the_symmetrised_cross_covariance():
    z1 = torch.from_numpy(samples()).double()
    z2 = z1 @ torch.tensor([[1.0, 0.2, 0, 0], [0, 1, 0, 0], [0, 0, 0.5, 0], [0.1, 0, 0, 1]], dtype=torch.float64)
    metric = EmbeddingSpectrum()
    metric.update(z1, z2)
    c1, c2 = (z1 - z1.mean(0)).numpy(), (z2 - z2.mean(0)).numpy()
    cross = c1.T @ c2 / (len(c1) - 1)
    expected = np.sort(np.linalg.eigvalsh((cross + cross.T) / 2))[::-1]
    np.testing.assert_allclose(metric.compute().numpy(), expected, rtol=1e-10)
    same = EmbeddingSpectrum()
    same.update(z1, z1)
    single = EmbeddingSpectrum()
    single.update(z1)
    torch.testing.assert_close(same.compute(), single.compute())


def test_spectrum_rejects_mismatched_views_and_too_few_samples():
    with pytest.raises(ValueError, match="same shape"):
        EmbeddingSpectrum().update(torch.zeros(4, 3), torch.zeros(4, 2))
    metric = EmbeddingSpectrum()
    metric.update(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="at least 2 samples"):
        metric.compute()


def test_std_matches_numpy_and_normalised_std_is_scale_free():
    z = samples()
    metric = EmbeddingStd()
    for part in torch.from_numpy(z).split(100):
        metric.update(part)
    np.testing.assert_allclose(metric.compute().numpy(), z.std(axis=0, ddof=1), rtol=1e-10)
    normalised = EmbeddingStd(normalize=True)
    normalised.update(torch.from_numpy(z) * 1e4)
    unit = z / np.linalg.norm(z, axis=1, keepdims=True)
    np.testing.assert_allclose(normalised.compute().numpy(), unit.std(axis=0, ddof=1), rtol=1e-8)
    constant = EmbeddingStd(normalize=True)
    constant.update(torch.full((10, 4), 3.0))
    assert constant.compute().abs().max() < 1e-6
