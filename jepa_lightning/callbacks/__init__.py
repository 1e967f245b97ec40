"""Lightning callbacks: evaluation reports and embedding export."""

from jepa_lightning.callbacks.embeddings import EmbeddingWriter
from jepa_lightning.callbacks.linear_probe import (
    LinearProbeReport,
    embed_loader,
    linear_probe_accuracy,
)

__all__ = ["EmbeddingWriter", "LinearProbeReport", "embed_loader", "linear_probe_accuracy"]
