"""Latent regression: the JEPA objective of predicting (normalised) teacher representations."""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor

TargetNorm = Literal["layer_norm", "l2", "none"]
RegressionLoss = Literal["smooth_l1", "l1", "mse"]


def normalize_targets(targets: Tensor, kind: TargetNorm) -> Tensor:
    """Normalise target features over the last dim: parameter-free LayerNorm, L2, or nothing."""
    if kind == "layer_norm":
        return F.layer_norm(targets, targets.shape[-1:])
    if kind == "l2":
        return F.normalize(targets, dim=-1)
    if kind == "none":
        return targets
    raise ValueError(f"unknown target normalisation {kind!r}; expected 'layer_norm', 'l2' or 'none'")


def latent_regression(
    prediction: Tensor, target: Tensor, kind: RegressionLoss = "smooth_l1", beta: float = 1.0
) -> Tensor:
    """Mean element-wise regression loss between predictions and (detached) targets.

    ``beta`` is the smooth-L1 transition point (I-JEPA 1, Point-JEPA 2, TS-JEPA 0.5). Distributed semantics:
    purely local, no communication; the mean over equal local batches, averaged by DDP's gradient all-reduce,
    equals the mean over the global batch.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")
    target = target.detach()
    if kind == "smooth_l1":
        return F.smooth_l1_loss(prediction, target, beta=beta)
    if kind == "l1":
        return F.l1_loss(prediction, target)
    if kind == "mse":
        return F.mse_loss(prediction, target)
    raise ValueError(f"unknown regression loss {kind!r}; expected 'smooth_l1', 'l1' or 'mse'")
