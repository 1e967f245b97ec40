"""Package attributes imported on first use.

torch-geometric costs about 150 MiB of resident memory and a second of import time in every process that imports it
(it pulls numba, pandas and pyarrow with it). Only the graph networks, ConGraT and the graph / point-cloud data modules
need it, so the packages that export them name them here instead of importing them: ``from jepa_lightning.nn import
GATEncoder`` and a config's ``class_path: datamodules.GraphDataModule`` still work, and a process that never builds
one never loads torch-geometric.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


def lazy_exports(package: str, sources: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` (PEP 562) for ``package`` that imports ``name`` from ``sources[name]`` the first time
    it is asked for and keeps it as an ordinary attribute afterwards."""

    def module_getattr(name: str) -> object:
        if name not in sources:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(sources[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    return module_getattr
