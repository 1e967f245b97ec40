"""BYOL: Grill et al., "Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning", NeurIPS 2020."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from torch import Tensor

from jepa_lightning.inputs import ModelInput
from jepa_lightning.losses.joint_embedding import byol_loss
from jepa_lightning.methods.joint_embedding import JointEmbedding, projection_mlp


class BYOL(JointEmbedding):
    """BYOL (Grill et al., 2020): an online predictor regresses the EMA target network's projection of the
    other view; ``2 - 2 cos``, symmetrised. Defaults: projector 4096 -> 256, predictor 4096 -> (projector
    output), EMA 0.996 -> 1 on a cosine. The target network's BatchNorm layers normalise with the batch's statistics
    during training, as in BYOL's official implementation (see :class:`~jepa_lightning.nn.EMATeacher`).
    Deviation: AdamW instead of LARS.
    """

    def __init__(
        self,
        predictor_hidden_dims: Sequence[int] = (4096,),
        projector_dims: Sequence[int] = (4096, 256),
        ema_momentum: float = 0.996,
        ema_schedule: Literal["linear", "cosine"] = "cosine",
        **kwargs: Any,
    ) -> None:
        super().__init__(projector_dims=projector_dims, ema_momentum=ema_momentum, ema_schedule=ema_schedule, **kwargs)
        self.predictor = projection_mlp(projector_dims[-1], [*predictor_hidden_dims, projector_dims[-1]])

    def objective(self, projections: list[Tensor], views: Sequence[ModelInput]) -> tuple[Tensor, dict[str, Tensor]]:
        predictions = [self.predictor(z) for z in projections]
        targets = self.teacher_projections(views)
        loss = byol_loss(predictions[0], targets[1]) + byol_loss(predictions[1], targets[0])
        return loss, {}
