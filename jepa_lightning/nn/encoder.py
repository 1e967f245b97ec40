"""Modality-agnostic transformer encoder (timm ViT blocks) that can run on a subset of tokens."""

from __future__ import annotations

from functools import partial

from timm.models.vision_transformer import Block
from torch import Tensor, nn

from jepa_lightning.nn.functional import gather_tokens
from jepa_lightning.nn.init import rescale_residual_branches, trunc_normal_init
from jepa_lightning.tokenizers.base import Tokens

#: (width, depth, heads) of the standard ViT sizes.
VIT_SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (192, 12, 3),
    "small": (384, 12, 6),
    "base": (768, 12, 12),
    "large": (1024, 24, 16),
    "huge": (1280, 32, 16),
}


def transformer_blocks(dim: int, depth: int, num_heads: int, mlp_ratio: float, drop_path_rate: float) -> nn.ModuleList:
    """Pre-norm ViT blocks (qkv bias, LayerNorm eps 1e-6) with a linearly increasing drop-path rate."""
    norm = partial(nn.LayerNorm, eps=1e-6)
    return nn.ModuleList(
        Block(
            dim,
            num_heads,
            mlp_ratio=mlp_ratio,
            qkv_bias=True,
            drop_path=drop_path_rate * i / max(depth - 1, 1),
            norm_layer=norm,
        )
        for i in range(depth)
    )


class TransformerEncoder(nn.Module):
    """ViT encoder over tokens: add positions, optionally keep a subset of tokens, run blocks, final norm.

    Positions are added once at the input (ViT, I-JEPA) or, with ``positions_every_layer``, before every block
    (Point-BERT / Point-JEPA). Use :meth:`from_size` for the standard ViT sizes (tiny, small, base, large, huge).
    """

    def __init__(
        self,
        embed_dim: int = 192,
        depth: int = 12,
        num_heads: int = 3,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.0,
        positions_every_layer: bool = False,
    ) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} must be divisible by num_heads={num_heads}")
        self.embed_dim = embed_dim
        self.positions_every_layer = positions_every_layer
        self.num_heads = num_heads
        self.blocks = transformer_blocks(embed_dim, depth, num_heads, mlp_ratio, drop_path_rate)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        trunc_normal_init(self)
        rescale_residual_branches(self.blocks)

    @classmethod
    def from_size(cls, size: str, **overrides: float) -> TransformerEncoder:
        """A standard ViT size by name; ``overrides`` replace any constructor argument."""
        if size not in VIT_SIZES:
            raise ValueError(f"unknown ViT size {size!r}; expected one of {sorted(VIT_SIZES)}")
        embed_dim, depth, num_heads = VIT_SIZES[size]
        return cls(**{"embed_dim": embed_dim, "depth": depth, "num_heads": num_heads, **overrides})

    def forward(self, tokens: Tokens, keep: Tensor | None = None) -> Tensor:
        """Encode ``tokens``; with ``keep`` ``(B, K)`` only those token indices are seen -> ``(B, K, D)``."""
        x, positions = tokens.features, tokens.positions.expand_as(tokens.features)
        if keep is not None:
            x, positions = gather_tokens(x, keep), gather_tokens(positions, keep)
        if not self.positions_every_layer:
            x = x + positions
        for block in self.blocks:
            x = block(x + positions if self.positions_every_layer else x)
        return self.norm(x)
