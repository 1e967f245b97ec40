"""Latent regression: the JEPA objective of predicting (normalised) teacher representations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch.nn.functional as F
from torch import Tensor

TargetNorm = Literal["layer_norm", "l2", "none"]
RegressionLoss = Literal["smooth_l1", "l1", "mse", "cosine"]


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
    prediction: Tensor,
    target: Tensor,
    kind: RegressionLoss = "smooth_l1",
    beta: float = 1.0,
    valid: Tensor | None = None,
) -> Tensor:
    """Mean element-wise regression loss between predictions and (detached) targets ``(..., N, D)``.

    ``beta`` is the smooth-L1 transition point (I-JEPA 1, Point-JEPA 2). ``"cosine"`` is ``1 - cos(p, t)`` per
    token (scale-free: a token's loss ignores the norms), averaged over the tokens. ``valid`` ``(..., N)`` bool
    leaves out the target tokens that are padding: the mean is then over the valid tokens (0 when there are none).
    Distributed semantics: purely local, no communication; the mean over equal local batches, averaged by DDP's
    gradient all-reduce, equals the mean over the global batch.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")
    if kind not in LOSSES:
        raise ValueError(f"unknown regression loss {kind!r}; expected one of {sorted(LOSSES)}")
    target = target.detach()
    if valid is None:
        return LOSSES[kind](prediction, target, beta)
    elementwise = LOSSES[kind](prediction, target, beta, reduction="none").mean(dim=-1)
    weight = valid.to(elementwise.dtype)
    return (elementwise * weight).sum() / weight.sum().clamp_min(1)


def cosine_distance(prediction: Tensor, target: Tensor, beta: float, reduction: str = "mean") -> Tensor:
    """``1 - cos`` over the last dim: the mean over tokens, or per token ``(..., N, 1)`` (``reduction="none"``, so
    that a mean over the last dim gives the per-token loss as for the element-wise losses); ``beta`` is unused."""
    distance = 1 - F.cosine_similarity(prediction, target, dim=-1)
    return distance.unsqueeze(-1) if reduction == "none" else distance.mean()


#: ``(prediction, target, beta, reduction) -> loss`` of each :data:`RegressionLoss`.
LOSSES: dict[str, Callable[..., Tensor]] = {
    "smooth_l1": lambda p, t, beta, reduction="mean": F.smooth_l1_loss(p, t, beta=beta, reduction=reduction),
    "l1": lambda p, t, beta, reduction="mean": F.l1_loss(p, t, reduction=reduction),
    "mse": lambda p, t, beta, reduction="mean": F.mse_loss(p, t, reduction=reduction),
    "cosine": cosine_distance,
}
