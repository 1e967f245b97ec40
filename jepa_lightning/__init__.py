"""jepa-lightning: JEPA and joint-embedding self-supervised learning for PyTorch Lightning.

The methods are importable from the top level (``from jepa_lightning import IJEPA, JEPA, SimCLR``); they load on
first use, so ``import jepa_lightning`` stays light (no Lightning, timm or torch import until a method is asked for).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0.dev0"

#: Names importable from ``jepa_lightning`` and the module that defines each.
_EXPORTS = {
    "SSLMethod": "jepa_lightning.methods.base",
    "JEPA": "jepa_lightning.methods.jepa",
    "JointEmbedding": "jepa_lightning.methods.joint_embedding",
    "AJEPA": "jepa_lightning.methods.ajepa",
    "ECGJEPA": "jepa_lightning.methods.ecgjepa",
    "ECGJEPAWeimann": "jepa_lightning.methods.ecgjepa_weimann",
    "EEGJEPA": "jepa_lightning.methods.eegjepa",
    "IJEPA": "jepa_lightning.methods.ijepa",
    "PointJEPA": "jepa_lightning.methods.pointjepa",
    "TJEPA": "jepa_lightning.methods.tjepa",
    "TSJEPA": "jepa_lightning.methods.tsjepa",
    "BarlowTwins": "jepa_lightning.methods.barlow_twins",
    "BYOL": "jepa_lightning.methods.byol",
    "LeJEPA": "jepa_lightning.methods.lejepa",
    "SimCLR": "jepa_lightning.methods.simclr",
    "TiCo": "jepa_lightning.methods.tico",
    "VICReg": "jepa_lightning.methods.vicreg",
    "InputSpec": "jepa_lightning.inputs",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import an exported name on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'jepa_lightning' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
