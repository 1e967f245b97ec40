"""V-JEPA's attentive probe head: learned queries cross-attend to a frozen encoder's tokens, then a linear classifier.

The structure, parameter names and initialisation follow ``AttentivePooler`` / ``AttentiveClassifier`` of
facebookresearch/jepa@51c59d5 (src/models/attentive_pooler.py, src/models/utils/modules.py), so official weights load
as they are: ``num_queries`` query tokens, one cross-attention block (LayerNorm on the tokens only, cross-attention,
residual; LayerNorm, GELU MLP, residual), ``depth - 1`` self-attention blocks over the queries, then (classifier) a
linear layer on the first query. Added: ``valid`` ``(B, N)`` (False: padding tokens, see
:class:`~jepa_lightning.tokens.Tokens`), which the queries never attend to.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block
from torch import Tensor, nn


class MLP(nn.Module):
    """``fc2(gelu(fc1(x)))``, the official module's names."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class CrossAttention(nn.Module):
    """Multi-head attention of queries ``(B, n, D)`` over tokens ``(B, N, D)``, keys restricted to ``valid``."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, queries: Tensor, tokens: Tensor, valid: Tensor | None = None) -> Tensor:
        (batch, n, dim), heads = queries.shape, self.num_heads
        q = self.q(queries).reshape(batch, n, heads, dim // heads).transpose(1, 2)
        k, v = self.kv(tokens).reshape(batch, tokens.shape[1], 2, heads, dim // heads).permute(2, 0, 3, 1, 4)
        mask = None if valid is None else valid[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(batch, n, dim))


class CrossAttentionBlock(nn.Module):
    """``q + xattn(q, norm1(x))``, then ``q + mlp(norm2(q))`` (the official block: the queries are not normalised
    before attending)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.xattn = CrossAttention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(self, queries: Tensor, tokens: Tensor, valid: Tensor | None = None) -> Tensor:
        queries = queries + self.xattn(queries, self.norm1(tokens), valid)
        return queries + self.mlp(self.norm2(queries))


class AttentivePooler(nn.Module):
    """``num_queries`` learned queries that cross-attend to tokens ``(B, N, D)`` -> ``(B, num_queries, D)``.

    Defaults are the official ones (one query, depth 1, MLP ratio 4, init std 0.02); V-JEPA's evaluations give it the
    encoder's number of heads. Initialisation: trunc-normal ``init_std`` queries and Linear weights, zero biases, unit
    LayerNorms, and the residual output projections of block ``l`` (1-based) divided by ``sqrt(2 l)``.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        num_queries: int = 1,
        mlp_ratio: float = 4.0,
        depth: int = 1,
        init_std: float = 0.02,
        qkv_bias: bool = True,
    ) -> None:
        super().__init__()
        if depth < 1 or num_queries < 1:
            raise ValueError(f"depth and num_queries must be >= 1, got {depth} and {num_queries}")
        self.query_tokens = nn.Parameter(torch.zeros(1, num_queries, embed_dim))
        self.cross_attention_block = CrossAttentionBlock(embed_dim, num_heads, mlp_ratio, qkv_bias)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, norm_layer=nn.LayerNorm)
            for _ in range(depth - 1)
        )
        nn.init.trunc_normal_(self.query_tokens, std=init_std)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=init_std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        with torch.no_grad():
            self.cross_attention_block.xattn.proj.weight.div_(math.sqrt(2.0))
            self.cross_attention_block.mlp.fc2.weight.div_(math.sqrt(2.0))
            for layer, block in enumerate(self.blocks, 2):
                block.attn.proj.weight.div_(math.sqrt(2.0 * layer))
                block.mlp.fc2.weight.div_(math.sqrt(2.0 * layer))

    def forward(self, tokens: Tensor, valid: Tensor | None = None) -> Tensor:
        queries = self.query_tokens.expand(tokens.shape[0], -1, -1)
        queries = self.cross_attention_block(queries, tokens, valid)
        for block in self.blocks:
            queries = block(queries)
        return queries


class AttentiveClassifier(nn.Module):
    """:class:`AttentivePooler` with one query, then a linear classifier: tokens ``(B, N, D)`` -> logits ``(B, C)``.
    The classifier keeps PyTorch's default Linear initialisation, as the official one does."""

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        num_classes: int,
        mlp_ratio: float = 4.0,
        depth: int = 1,
        init_std: float = 0.02,
        qkv_bias: bool = True,
    ) -> None:
        super().__init__()
        self.pooler = AttentivePooler(embed_dim, num_heads, 1, mlp_ratio, depth, init_std, qkv_bias)
        self.linear = nn.Linear(embed_dim, num_classes)

    def forward(self, tokens: Tensor, valid: Tensor | None = None) -> Tensor:
        return self.linear(self.pooler(tokens, valid).squeeze(1))
