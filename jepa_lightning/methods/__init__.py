"""LightningModules: the shared base, the generic JEPA, the joint-embedding methods and the paper presets."""

from jepa_lightning.methods.base import SSLMethod
from jepa_lightning.methods.jepa import IJEPA, JEPA, PointJEPA
from jepa_lightning.methods.joint_embedding import (
    BYOL,
    BarlowTwins,
    JointEmbedding,
    LeJEPA,
    SimCLR,
    TiCo,
    VICReg,
    projection_mlp,
)

__all__ = [
    "BYOL",
    "IJEPA",
    "JEPA",
    "BarlowTwins",
    "JointEmbedding",
    "LeJEPA",
    "PointJEPA",
    "SSLMethod",
    "SimCLR",
    "TiCo",
    "VICReg",
    "projection_mlp",
]
