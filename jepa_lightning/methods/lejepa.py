"""LeJEPA: Balestriero and LeCun, "LeJEPA: Provable and Scalable Self-Supervised Learning Without the Heuristics",
2025 (official code: rbalestr-lab/lejepa)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from jepa_lightning.inputs import ModelInput
from jepa_lightning.losses.joint_embedding import lejepa_loss
from jepa_lightning.methods.joint_embedding import JointEmbedding


class LeJEPA(JointEmbedding):
    """LeJEPA (Balestriero & LeCun, 2025): SIGReg pushes projections towards an isotropic Gaussian, plus view
    invariance to the mean projection; no teacher, no stop-gradient. ``lambda_`` 0.05, ``num_slices`` random
    directions per step, identical on every rank (seeded by the optimizer step). Projections are not
    L2-normalised. Default projector 2048 -> 2048 -> 128 with BatchNorm (unconfirmed widths).
    """

    def __init__(
        self,
        lambda_: float = 0.05,
        num_slices: int = 256,
        projector_dims: Sequence[int] = (2048, 2048, 128),
        **kwargs: Any,
    ) -> None:
        super().__init__(projector_dims=projector_dims, **kwargs)
        self.lambda_ = lambda_
        self.num_slices = num_slices

    def objective(self, projections: list[Tensor], views: Sequence[ModelInput]) -> tuple[Tensor, dict[str, Tensor]]:
        seed = self.trainer.global_step if self._trainer is not None else 0
        parts = lejepa_loss(projections, self.lambda_, num_slices=self.num_slices, seed=seed)
        return parts.loss, {"invariance": parts.invariance, "sigreg": parts.sigreg}
