"""Barlow Twins: Zbontar et al., "Barlow Twins: Self-Supervised Learning via Redundancy Reduction", ICML 2021."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from jepa_lightning.inputs import ModelInput
from jepa_lightning.losses.joint_embedding import barlow_twins
from jepa_lightning.methods.joint_embedding import JointEmbedding


class BarlowTwins(JointEmbedding):
    """Barlow Twins (Zbontar et al., 2021): drive the cross-correlation of the two views to the identity.

    Official code: facebookresearch/barlowtwins@8e8d284ca0bc02f88b92328e53f9b901e86b4a3c (``main.py``). Matches:
    each view batch-normalised without affine parameters over the global batch (SyncBatchNorm), the
    cross-correlation divided by the global batch, ``on_diag + lambd * off_diag`` with ``lambd`` 0.0051, projector
    3 x 8192 with BatchNorm + ReLU between (``tests/losses/test_official_parity.py``).

    Deviations: the projector's output layer has a bias (the official one has none; the batch normalisation in the
    loss removes it anyway); AdamW instead of LARS (lr 0.2 for weights, 0.0048 for biases, weight decay 1e-6); use
    smaller projectors for small data (see the digits config).
    """

    def __init__(
        self, lambda_offdiag: float = 0.0051, projector_dims: Sequence[int] = (8192, 8192, 8192), **kwargs: Any
    ) -> None:
        super().__init__(projector_dims=projector_dims, **kwargs)
        self.lambda_offdiag = lambda_offdiag

    def objective(self, projections: list[Tensor], views: Sequence[ModelInput]) -> tuple[Tensor, dict[str, Tensor]]:
        return barlow_twins(projections[0], projections[1], self.lambda_offdiag), {}
