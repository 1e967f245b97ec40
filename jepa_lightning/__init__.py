"""jepa-lightning: JEPA and joint-embedding self-supervised learning for PyTorch Lightning.

Every method of :mod:`jepa_lightning.methods` is importable from the top level (``from jepa_lightning import IJEPA,
JEPA, SimCLR``), and so are :class:`~jepa_lightning.inputs.InputSpec` and :func:`~jepa_lightning.export.load_encoder`
(an exported encoder, rebuilt without Lightning). They load on first use, so ``import
jepa_lightning`` stays light (no Lightning, timm or torch import until a method is asked for), and a new preset only
needs its line in ``jepa_lightning/methods/__init__.py``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0.dev0"


#: Top-level names that are not methods, and their modules.
MODULE_OF = {"InputSpec": "jepa_lightning.inputs", "load_encoder": "jepa_lightning.export"}


def __getattr__(name: str) -> Any:
    """Import a method (or ``InputSpec``, ``load_encoder``) on first use."""
    if name.startswith("__"):
        raise AttributeError(name)
    module = importlib.import_module(MODULE_OF.get(name, "jepa_lightning.methods"))
    if name not in MODULE_OF and name not in module.__all__:
        raise AttributeError(f"module 'jepa_lightning' has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value
    return value
