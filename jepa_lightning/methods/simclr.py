"""SimCLR: Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations", ICML 2020."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from jepa_lightning.inputs import ModelInput
from jepa_lightning.losses.joint_embedding import nt_xent
from jepa_lightning.methods.joint_embedding import JointEmbedding


class SimCLR(JointEmbedding):
    """SimCLR (Chen et al., 2020): NT-Xent over the global batch of both views.

    Defaults: projector 2048 -> 128 with BatchNorm (SimCLR v2 style), temperature 0.1, ResNet-18. Deviation:
    AdamW instead of LARS.
    """

    def __init__(self, temperature: float = 0.1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.temperature = temperature

    def objective(self, projections: list[Tensor], views: Sequence[ModelInput]) -> tuple[Tensor, dict[str, Tensor]]:
        return nt_xent(projections[0], projections[1], self.temperature), {}
