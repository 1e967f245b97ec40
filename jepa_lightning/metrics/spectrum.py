"""Second-moment statistics of embeddings: covariance spectrum (stepwise learning) and per-dimension std.

Both accumulate running sums in float64 (``dist_reduce_fx="sum"``), so memory is O(K^2) or O(K) whatever the
number of samples and DDP synchronisation is exact.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric


def _as_matrix(z: Tensor) -> Tensor:
    return z.detach().flatten(1).double()


class EmbeddingSpectrum(Metric):
    """Eigenvalues, in descending order (float64), of the covariance of the accumulated embeddings.

    ``update(z)`` accumulates the covariance of ``z`` (N, K). ``update(z1, z2)`` with two views of the same
    samples accumulates their cross-covariance ``(z1 - mean1)^T (z2 - mean2) / (N - 1)`` instead, symmetrised
    so its eigenvalues are real: the quantity whose eigenvalues rise one by one in the stepwise-learning picture
    of joint-embedding SSL (Simon et al., 2023). With ``z2 = z1`` both forms agree. Use one form per metric.
    """

    is_differentiable = False
    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        zero = torch.tensor(0.0, dtype=torch.float64)
        self.add_state("count", default=zero.clone(), dist_reduce_fx="sum")
        self.add_state("sum1", default=zero.clone(), dist_reduce_fx="sum")
        self.add_state("sum2", default=zero.clone(), dist_reduce_fx="sum")
        self.add_state("cross", default=zero.clone(), dist_reduce_fx="sum")

    def update(self, z1: Tensor, z2: Tensor | None = None) -> None:
        """Add embeddings (N, K), or two views (N, K) each of the same N samples."""
        z1 = _as_matrix(z1)
        z2 = z1 if z2 is None else _as_matrix(z2)
        if z1.shape != z2.shape:
            raise ValueError(f"the two views must have the same shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
        self.count = self.count + z1.shape[0]
        self.sum1 = self.sum1 + z1.sum(0)
        self.sum2 = self.sum2 + z2.sum(0)
        self.cross = self.cross + z1.T @ z2

    def covariance(self) -> Tensor:
        """The (symmetrised cross-) covariance matrix (K, K) of this process's state (no DDP sync)."""
        if self.count < 2:
            raise ValueError(f"the covariance needs at least 2 samples, got {int(self.count)}")
        centred = self.cross - torch.outer(self.sum1, self.sum2) / self.count
        return (centred + centred.T) / (2 * (self.count - 1))

    def compute(self) -> Tensor:
        """The eigenvalues, descending; all NaN when the embeddings held a NaN or an infinity."""
        covariance = self.covariance()
        if not torch.isfinite(covariance).all():
            return torch.full(covariance.shape[:1], float("nan"), dtype=covariance.dtype, device=covariance.device)
        return torch.linalg.eigvalsh(covariance).flip(0)


class EmbeddingStd(Metric):
    """Per-dimension standard deviation (K,) of the accumulated embeddings, float64.

    With ``normalize=True`` rows are L2-normalised first, so the result is scale-free: about ``1 / sqrt(K)``
    per dimension for isotropic embeddings and 0 under collapse (the monitor of SimSiam, Chen & He, 2021).
    """

    is_differentiable = False
    full_state_update = False

    def __init__(self, normalize: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.normalize = normalize
        zero = torch.tensor(0.0, dtype=torch.float64)
        self.add_state("count", default=zero.clone(), dist_reduce_fx="sum")
        self.add_state("total", default=zero.clone(), dist_reduce_fx="sum")
        self.add_state("squares", default=zero.clone(), dist_reduce_fx="sum")

    def update(self, z: Tensor) -> None:
        """Add embeddings (N, K)."""
        z = _as_matrix(z)
        if self.normalize:
            z = torch.nn.functional.normalize(z, dim=1)
        self.count = self.count + z.shape[0]
        self.total = self.total + z.sum(0)
        self.squares = self.squares + z.square().sum(0)

    def compute(self) -> Tensor:
        if self.count < 2:
            raise ValueError(f"the standard deviation needs at least 2 samples, got {int(self.count)}")
        variance = (self.squares - self.total.square() / self.count) / (self.count - 1)
        return variance.clamp_min(0.0).sqrt()
