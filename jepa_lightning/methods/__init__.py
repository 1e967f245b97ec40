"""LightningModules: the shared base, the generic JEPA and joint-embedding bases, and one module per paper preset."""

from jepa_lightning.lazy import lazy_exports
from jepa_lightning.methods.acoustic_word import AcousticWordEmbedding
from jepa_lightning.methods.actjepa import ACTJEPA
from jepa_lightning.methods.ajepa import AJEPA
from jepa_lightning.methods.barlow_twins import BarlowTwins
from jepa_lightning.methods.base import SSLMethod
from jepa_lightning.methods.byol import BYOL
from jepa_lightning.methods.cnnjepa import CNNJEPA
from jepa_lightning.methods.dseqjepa import DSeqJEPA
from jepa_lightning.methods.ecgjepa import ECGJEPA
from jepa_lightning.methods.ecgjepa_weimann import ECGJEPAWeimann
from jepa_lightning.methods.eegjepa import EEGJEPA
from jepa_lightning.methods.eegvjepa import EEGVJEPA
from jepa_lightning.methods.finetune import FineTune
from jepa_lightning.methods.ijepa import IJEPA
from jepa_lightning.methods.intl import INTL
from jepa_lightning.methods.item_ssl import ItemSSL
from jepa_lightning.methods.iwm import IWM
from jepa_lightning.methods.jepa import JEPA
from jepa_lightning.methods.jepa3d import JEPA3D
from jepa_lightning.methods.joint_embedding import JointEmbedding, projection_mlp
from jepa_lightning.methods.lejepa import LeJEPA
from jepa_lightning.methods.njepa import NJEPA
from jepa_lightning.methods.pointjepa import PointJEPA
from jepa_lightning.methods.sarjepa import SARJEPA
from jepa_lightning.methods.seqjepa import SeqJEPA
from jepa_lightning.methods.simclr import SimCLR
from jepa_lightning.methods.tico import TiCo
from jepa_lightning.methods.tjepa import TJEPA
from jepa_lightning.methods.trajectory import TrajectoryJEPA
from jepa_lightning.methods.tsjepa import TSJEPA
from jepa_lightning.methods.tsjepa_control import TSJEPAControl
from jepa_lightning.methods.two_tower import TwoTower
from jepa_lightning.methods.vicreg import VICReg
from jepa_lightning.methods.vjepa import VJEPA
from jepa_lightning.methods.vjvcr import VJVCR

# ConGraT builds its graph tower with torch-geometric: imported on first use (see jepa_lightning.lazy)
__getattr__ = lazy_exports(__name__, {"ConGraT": "jepa_lightning.methods.congrat"})

__all__ = [
    "ACTJEPA",
    "AJEPA",
    "BYOL",
    "CNNJEPA",
    "ECGJEPA",
    "EEGJEPA",
    "EEGVJEPA",
    "IJEPA",
    "INTL",
    "IWM",
    "JEPA",
    "JEPA3D",
    "NJEPA",
    "SARJEPA",
    "TJEPA",
    "TSJEPA",
    "VJEPA",
    "VJVCR",
    "AcousticWordEmbedding",
    "BarlowTwins",
    "ConGraT",
    "DSeqJEPA",
    "ECGJEPAWeimann",
    "FineTune",
    "ItemSSL",
    "JointEmbedding",
    "LeJEPA",
    "PointJEPA",
    "SSLMethod",
    "SeqJEPA",
    "SimCLR",
    "TSJEPAControl",
    "TiCo",
    "TrajectoryJEPA",
    "TwoTower",
    "VICReg",
    "projection_mlp",
]
