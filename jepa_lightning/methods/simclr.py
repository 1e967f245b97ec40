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

    Official code: google-research/simclr@383d4143fd8cf7879ae10f1046a9baeb753ff438 (``tf2/objective.py``
    ``add_contrastive_loss``, ``tf2/model.py``, ``tf2/run.py``). Matches: L2-normalised projections, temperature 0.1,
    each view's positive is the other view of its sample, the negatives are both views of every other sample in the
    global batch (``tests/losses/test_official_parity.py``). Defaults: projector 2048 -> 128 with BatchNorm,
    ResNet-18 (the timm backbone's default).

    Deviations: the loss is the MEAN of the two views' cross-entropies, the official one their SUM (a constant
    factor 2, Lightly's ``NTXentLoss`` convention); the official head (SimCLR v2) has 3 layers as wide as the
    backbone and a BatchNorm on its output, ours 2 layers (SimCLR v1's depth) and a plain output layer; ResNet-18,
    not ResNet-50; AdamW instead of LARS (lr 0.3 x batch / 256, weight decay 1e-6).
    """

    def __init__(self, temperature: float = 0.1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.temperature = temperature

    def objective(self, projections: list[Tensor], views: Sequence[ModelInput]) -> tuple[Tensor, dict[str, Tensor]]:
        return nt_xent(projections[0], projections[1], self.temperature), {}
