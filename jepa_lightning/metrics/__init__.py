"""torchmetrics Metrics on embeddings: RankMe, covariance spectrum, per-dimension std (all DDP-aware)."""

from jepa_lightning.metrics.rankme import RankMe, rankme
from jepa_lightning.metrics.spectrum import EmbeddingSpectrum, EmbeddingStd

__all__ = ["EmbeddingSpectrum", "EmbeddingStd", "RankMe", "rankme"]
