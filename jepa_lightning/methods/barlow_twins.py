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

    Defaults: projector 3 x 8192 (BatchNorm + ReLU between), off-diagonal weight 0.0051. Deviation: AdamW
    instead of LARS; use smaller projectors for small data (see the digits config).
    """

    def __init__(
        self, lambda_offdiag: float = 0.0051, projector_dims: Sequence[int] = (8192, 8192, 8192), **kwargs: Any
    ) -> None:
        super().__init__(projector_dims=projector_dims, **kwargs)
        self.lambda_offdiag = lambda_offdiag

    def objective(self, projections: list[Tensor], views: Sequence[ModelInput]) -> tuple[Tensor, dict[str, Tensor]]:
        return barlow_twins(projections[0], projections[1], self.lambda_offdiag), {}
