"""jepa-lightning: JEPA and joint-embedding self-supervised learning for PyTorch Lightning."""

__version__ = "0.1.0.dev0"
