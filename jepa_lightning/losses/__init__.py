"""Objectives as pure functions; each docstring states what it communicates under DDP."""

from jepa_lightning.losses.joint_embedding import (
    LeJEPALoss,
    VICRegLoss,
    barlow_twins,
    byol_loss,
    lejepa_loss,
    nt_xent,
    sigreg,
    slice_directions,
    spectral_transform,
    tico,
    vicreg,
    vicreg_covariance,
    vicreg_token_terms,
    vicreg_variance,
    whitened_mse,
    whitening,
)
from jepa_lightning.losses.latent import RegressionLoss, TargetNorm, latent_regression, normalize_targets

__all__ = [
    "LeJEPALoss",
    "RegressionLoss",
    "TargetNorm",
    "VICRegLoss",
    "barlow_twins",
    "byol_loss",
    "latent_regression",
    "lejepa_loss",
    "normalize_targets",
    "nt_xent",
    "sigreg",
    "slice_directions",
    "spectral_transform",
    "tico",
    "vicreg",
    "vicreg_covariance",
    "vicreg_token_terms",
    "vicreg_variance",
    "whitened_mse",
    "whitening",
]
