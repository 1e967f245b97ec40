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

    Official code: google-deepmind/deepmind-research@4822a45504cb05042841a358f070bba35c6fbc24 (``byol/``). Matches:
    the loss is ``regression_loss(p1, sg(z2)) + regression_loss(p2, sg(z1))`` averaged over the batch
    (``tests/losses/test_official_parity.py``), the projector and predictor shapes (4096 hidden with BatchNorm,
    256 out), the EMA's cosine from 0.996 to 1 (``configs/byol.py``'s 1000-epoch preset; 0.99 for 100-300 epochs,
    0.97 for 40). Deviation: AdamW instead of LARS (1000 epochs: lr 0.2 x batch / 256, weight decay 1.5e-6; biases
    and norms excluded from both).
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
