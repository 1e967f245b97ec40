"""Weight initialisation of the I-JEPA / ViT family."""

from __future__ import annotations

import math

from torch import nn


def trunc_normal_init(module: nn.Module, std: float = 0.02) -> None:
    """Truncated-normal weights and zero biases for linear and conv layers; unit LayerNorms."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            nn.init.trunc_normal_(layer.weight, std=std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.LayerNorm):
            if layer.weight is not None:
                nn.init.ones_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def rescale_residual_branches(blocks: nn.ModuleList) -> None:
    """Divide each block's residual output projections by ``sqrt(2 * layer)`` (layer counted from 1)."""
    for layer_id, block in enumerate(blocks, start=1):
        block.attn.proj.weight.data.div_(math.sqrt(2.0 * layer_id))
        block.mlp.fc2.weight.data.div_(math.sqrt(2.0 * layer_id))
