"""LightningModules: the shared base, the generic JEPA, the joint-embedding methods and the paper presets."""

from jepa_lightning.methods.base import SSLMethod
from jepa_lightning.methods.jepa import AJEPA, ECGJEPA, EEGJEPA, IJEPA, JEPA, TJEPA, TSJEPA, PointJEPA
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
    "AJEPA",
    "BYOL",
    "ECGJEPA",
    "EEGJEPA",
    "IJEPA",
    "JEPA",
    "TJEPA",
    "TSJEPA",
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
