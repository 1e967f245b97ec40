"""jepa-lightning: JEPA and joint-embedding self-supervised learning for PyTorch Lightning.

Every method of :mod:`jepa_lightning.methods` is importable from the top level (``from jepa_lightning import IJEPA,
JEPA, SimCLR``), and so is :class:`~jepa_lightning.inputs.InputSpec`. They load on first use, so ``import
jepa_lightning`` stays light (no Lightning, timm or torch import until a method is asked for), and a new preset only
needs its line in ``jepa_lightning/methods/__init__.py``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0.dev0"


def __getattr__(name: str) -> Any:
    """Import a method (or ``InputSpec``) on first use."""
    if name.startswith("__"):
        raise AttributeError(name)
    module = importlib.import_module("jepa_lightning.inputs" if name == "InputSpec" else "jepa_lightning.methods")
    if name != "InputSpec" and name not in module.__all__:
        raise AttributeError(f"module 'jepa_lightning' has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value
    return value
