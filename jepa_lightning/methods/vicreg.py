"""VICReg: Bardes, Ponce and LeCun, "VICReg: Variance-Invariance-Covariance Regularization for Self-Supervised
Learning", ICLR 2022."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from jepa_lightning.inputs import ModelInput
from jepa_lightning.losses.joint_embedding import vicreg
from jepa_lightning.methods.joint_embedding import JointEmbedding


class VICReg(JointEmbedding):
    """VICReg (Bardes et al., 2022): invariance + variance + covariance, weights 25 / 25 / 1.

    Official code: facebookresearch/vicreg@4e12602fd495af83efd1631fbe82523e6db092e0 (``main_vicreg.py``). Matches:
    the MSE invariance on the local batch, the variance hinge (unbiased, eps 1e-4) averaged and the covariance
    penalty summed over the two views, both on the gathered global batch, weights 25 / 25 / 1, projector 3 x 8192
    with BatchNorm + ReLU between (``tests/losses/test_official_parity.py``).

    Deviations: the projector's output layer has a bias (the official one has none); AdamW instead of LARS (base lr
    0.2 x batch / 256, weight decay 1e-6).
    """

    def __init__(
        self,
        sim_weight: float = 25.0,
        var_weight: float = 25.0,
        cov_weight: float = 1.0,
        projector_dims: Sequence[int] = (8192, 8192, 8192),
        **kwargs: Any,
    ) -> None:
        super().__init__(projector_dims=projector_dims, **kwargs)
        self.weights = {"sim_weight": sim_weight, "var_weight": var_weight, "cov_weight": cov_weight}

    def objective(self, projections: list[Tensor], views: Sequence[ModelInput]) -> tuple[Tensor, dict[str, Tensor]]:
        parts = vicreg(projections[0], projections[1], **self.weights)
        return parts.loss, {"invariance": parts.invariance, "variance": parts.variance, "covariance": parts.covariance}
