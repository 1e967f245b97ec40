"""LightningModules: the shared base, the generic JEPA and the paper presets."""

from jepa_lightning.methods.base import SSLMethod
from jepa_lightning.methods.jepa import IJEPA, JEPA

__all__ = ["IJEPA", "JEPA", "SSLMethod"]
