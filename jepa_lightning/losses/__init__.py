"""Objectives as pure functions; each docstring states what it communicates under DDP."""

from jepa_lightning.losses.latent import RegressionLoss, TargetNorm, latent_regression, normalize_targets

__all__ = ["RegressionLoss", "TargetNorm", "latent_regression", "normalize_targets"]
