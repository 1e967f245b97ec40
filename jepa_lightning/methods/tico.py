"""TiCo: Zhu, Moraes, Karakulak, Sobol, Canziani and LeCun, "TiCo: Transformation Invariance and Covariance
Contrast for Self-Supervised Visual Representation Learning", 2022 (no official code)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from jepa_lightning.inputs import ModelInput
from jepa_lightning.losses.joint_embedding import tico
from jepa_lightning.methods.joint_embedding import JointEmbedding


class TiCo(JointEmbedding):
    """TiCo (Zhu et al., 2022): transformation invariance + a running-covariance contrast term.

    ``z_a`` is the online projection of one view, ``z_b`` the momentum branch's projection of the other;
    the covariance ``C`` is a detached running state (``beta`` 0.9), saved in the checkpoint. Defaults:
    rho 8, projector 4096 -> 256, momentum branch 0.99 -> 1 (unconfirmed). The momentum branch's BatchNorm layers
    normalise with the batch's statistics during training, like BYOL's target network (see
    :class:`~jepa_lightning.nn.EMATeacher`).

    No official code is published (sayannag/TiCo-pytorch, which Lightly's loss started from, calls itself
    unofficial). The paper's pseudo-code and its figure read differently on one point: whether the gradient flows
    through the current batch's covariance ``B`` inside ``C``. We follow the pseudo-code as Lightly's first
    implementation (pull request #1016, 2023) read it: only the stored ``C`` is detached
    (``detach_batch_covariance=False``), so the gradient is that of the loss the paper writes down. Lightly's
    ``TiCoLoss`` detaches ``B`` since v1.5.0 (pull request #1484 reads the figure that way);
    ``detach_batch_covariance=True`` gives that reading. The loss value is the same either way;
    ``tests/losses/test_official_parity.py`` checks both against Lightly's re-typed loss.
    Deviation: AdamW.
    """

    def __init__(
        self,
        beta: float = 0.9,
        rho: float = 8.0,
        projector_dims: Sequence[int] = (4096, 256),
        ema_momentum: float = 0.99,
        detach_batch_covariance: bool = False,
        **kwargs: Any,
    ) -> None:
        """``detach_batch_covariance``: no gradient through the current batch's covariance (Lightly's reading);
        ``kwargs``: the arguments of :class:`JointEmbedding`."""
        super().__init__(projector_dims=projector_dims, ema_momentum=ema_momentum, **kwargs)
        self.beta = beta
        self.rho = rho
        self.detach_batch_covariance = detach_batch_covariance
        self.register_buffer("covariance", torch.zeros(projector_dims[-1], projector_dims[-1]))

    def objective(self, projections: list[Tensor], views: Sequence[ModelInput]) -> tuple[Tensor, dict[str, Tensor]]:
        targets = self.teacher_projections(views)
        loss, covariance = tico(
            projections[0],
            targets[1],
            self.covariance,
            beta=self.beta,
            rho=self.rho,
            detach_batch_covariance=self.detach_batch_covariance,
        )
        self.covariance.copy_(covariance)
        return loss, {}
