"""Networks: encoder, predictor, EMA teacher, backbones and the graph / text towers."""

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
from jepa_lightning.nn.graph import GATEncoder, GATLayer, TextEncoder
from jepa_lightning.nn.predictor import JEPAPredictor

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
