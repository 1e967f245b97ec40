"""Networks: encoder, predictor, EMA teacher, backbones and the graph / text towers.

The graph tower (:mod:`jepa_lightning.nn.graph`) is imported on first use (see :mod:`jepa_lightning.lazy`)."""

from jepa_lightning.lazy import lazy_exports
from jepa_lightning.nn.attentive import AttentiveClassifier, AttentivePooler
from jepa_lightning.nn.backbones import (
    PooledTokenBackbone,
    TimmBackbone,
    TimmEncoder,
    TokenBackbone,
    TokenEncoder,
)
from jepa_lightning.nn.dense import ConvPredictor, DenseEncoderFactory, SparseResNet
from jepa_lightning.nn.ema import EMATeacher
from jepa_lightning.nn.encoder import VIT_SIZES, TransformerEncoder, cross_pattern_attention_mask, transformer_blocks
from jepa_lightning.nn.functional import gather_mask_major, gather_tokens
from jepa_lightning.nn.predictor import JEPAPredictor
from jepa_lightning.nn.text import TextEncoder

__getattr__ = lazy_exports(__name__, {"GATEncoder": "jepa_lightning.nn.graph", "GATLayer": "jepa_lightning.nn.graph"})

__all__ = [
    "VIT_SIZES",
    "AttentiveClassifier",
    "AttentivePooler",
    "ConvPredictor",
    "DenseEncoderFactory",
    "EMATeacher",
    "GATEncoder",
    "GATLayer",
    "JEPAPredictor",
    "PooledTokenBackbone",
    "SparseResNet",
    "TextEncoder",
    "TimmBackbone",
    "TimmEncoder",
    "TokenBackbone",
    "TokenEncoder",
    "TransformerEncoder",
    "cross_pattern_attention_mask",
    "gather_mask_major",
    "gather_tokens",
    "transformer_blocks",
]
