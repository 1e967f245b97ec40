"""Weight initialisation of the I-JEPA / ViT family."""

from __future__ import annotations

import math
from typing import Literal

from torch import nn

#: How :class:`~jepa_lightning.nn.TransformerEncoder` and :class:`~jepa_lightning.nn.JEPAPredictor` (and, in
#: :class:`~jepa_lightning.methods.IJEPA`, patch embedding and predictor follow the encoder's) start: ``"ijepa"``
#: (the default) trunc-normal std 0.02 weights with each block's residual output projections divided by
#: ``sqrt(2 * layer)``, the init of I-JEPA's model classes (``VisionTransformer._init_weights`` + ``fix_init_weight``,
#: facebookresearch/ijepa@52c1ae9 src/models/vision_transformer.py). Deviation: the official training script then
#: re-initialises every Linear with trunc-normal 0.02 (``src/helper.py::init_model``), which undoes the depth
#: rescale, so the released checkpoints started without it; we keep the model class's rescale (the init it
#: defines, and what every measured number here used); ``tests/nn/test_init_parity.py`` asserts the difference.
#: ``"xavier"`` (MAE, timm / lightly's masked ViT) xavier-uniform weights, a
#: patch / conv embedding initialised as the linear map it is (fan-in = channels x kernel). The two nearly agree
#: at the paper's scale (xavier's std for ViT-H's qkv is 0.0198), but 0.02 ignores the fan-in: in a 96-wide ViT
#: on 4 x 4 grey patches, patch tokens start ~6x weaker than the positions and each block changes the residual
#: stream by only 2-5% (xavier: ~50%), so the random network is nearly linear and its mean-pooled features probe
#: worse (Fashion-MNIST 0.68 vs 0.77), and a 48-wide predictor at 0.02 slows learning (after 600 steps 0.745 vs
#: 0.767 with a xavier predictor; ``benchmarks/quality_fashion_mnist.py``).
WeightInit = Literal["ijepa", "xavier"]
WEIGHT_INITS = ("ijepa", "xavier")

LINEAR_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def check_weight_init(init: str) -> None:
    """Raise a clear error for an unknown :data:`WeightInit`."""
    if init not in WEIGHT_INITS:
        raise ValueError(f"init must be one of {WEIGHT_INITS}, got {init!r}")


def unit_layer_norms(module: nn.Module) -> None:
    """Unit weights and zero biases for every LayerNorm in ``module``."""
    for layer in module.modules():
        if isinstance(layer, nn.LayerNorm):
            if layer.weight is not None:
                nn.init.ones_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def trunc_normal_init(module: nn.Module, std: float = 0.02) -> None:
    """Truncated-normal weights and zero biases for linear and conv layers; unit LayerNorms."""
    for layer in module.modules():
        if isinstance(layer, LINEAR_LAYERS):
            nn.init.trunc_normal_(layer.weight, std=std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    unit_layer_norms(module)


def xavier_init(module: nn.Module) -> None:
    """Xavier-uniform weights (a conv as the linear map ``(out, in * kernel)``: bound ``sqrt(6 / (fan_in +
    out))``) and zero biases for linear and conv layers; unit LayerNorms. MAE's and lightly's ViT init."""
    for layer in module.modules():
        if isinstance(layer, LINEAR_LAYERS):
            nn.init.xavier_uniform_(layer.weight.data.view(layer.weight.shape[0], -1))
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    unit_layer_norms(module)


def rescale_residual_branches(blocks: nn.ModuleList) -> None:
    """Divide each block's residual output projections by ``sqrt(2 * layer)`` (layer counted from 1)."""
    for layer_id, block in enumerate(blocks, start=1):
        block.attn.proj.weight.data.div_(math.sqrt(2.0 * layer_id))
        block.mlp.fc2.weight.data.div_(math.sqrt(2.0 * layer_id))


def init_embedding(module: nn.Module, init: WeightInit) -> None:
    """Initialise a token embedding (patch projection, linear tokenizer) by ``init``: :func:`trunc_normal_init`
    for ``"ijepa"``, :func:`xavier_init` for ``"xavier"``."""
    check_weight_init(init)
    (trunc_normal_init if init == "ijepa" else xavier_init)(module)


def init_transformer(module: nn.Module, blocks: nn.ModuleList, init: WeightInit) -> None:
    """Initialise a transformer ``module`` with residual ``blocks`` by ``init`` (see :data:`WeightInit`)."""
    init_embedding(module, init)
    if init == "ijepa":
        rescale_residual_branches(blocks)
