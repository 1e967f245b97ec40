"""LightningModules: the shared base, the generic JEPA and joint-embedding bases, and one module per paper preset."""

from jepa_lightning.methods.ajepa import AJEPA
from jepa_lightning.methods.barlow_twins import BarlowTwins
from jepa_lightning.methods.base import SSLMethod
from jepa_lightning.methods.byol import BYOL
from jepa_lightning.methods.ecgjepa import ECGJEPA
from jepa_lightning.methods.ecgjepa_weimann import ECGJEPAWeimann
from jepa_lightning.methods.eegjepa import EEGJEPA
from jepa_lightning.methods.ijepa import IJEPA
from jepa_lightning.methods.iwm import IWM
from jepa_lightning.methods.jepa import JEPA
from jepa_lightning.methods.joint_embedding import JointEmbedding, projection_mlp
from jepa_lightning.methods.lejepa import LeJEPA
from jepa_lightning.methods.pointjepa import PointJEPA
from jepa_lightning.methods.seqjepa import SeqJEPA
from jepa_lightning.methods.simclr import SimCLR
from jepa_lightning.methods.tico import TiCo
from jepa_lightning.methods.tjepa import TJEPA
from jepa_lightning.methods.tsjepa import TSJEPA
from jepa_lightning.methods.vicreg import VICReg

__all__ = [
    "AJEPA",
    "BYOL",
    "ECGJEPA",
    "EEGJEPA",
    "IJEPA",
    "IWM",
    "JEPA",
    "TJEPA",
    "TSJEPA",
    "BarlowTwins",
    "ECGJEPAWeimann",
    "JointEmbedding",
    "LeJEPA",
    "PointJEPA",
    "SSLMethod",
    "SeqJEPA",
    "SimCLR",
    "TiCo",
    "VICReg",
    "projection_mlp",
]
