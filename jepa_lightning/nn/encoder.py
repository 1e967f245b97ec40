"""Modality-agnostic transformer encoder (timm ViT blocks) that can run on a subset of tokens."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from jepa_lightning.nn.functional import gather_tokens
from jepa_lightning.nn.init import WeightInit, check_weight_init, init_transformer
from jepa_lightning.tokens import RecordsArguments, TokenLayout, Tokens, grid_coords

#: Which tokens may attend to which, decided from their layout coordinates:
#: ``"full"`` every token (no mask: plain SDPA); ``"cross_pattern"`` (ECG-JEPA, Kim) tokens that share a lead or a
#: time step of a ``(lead, time)`` grid; ``"same_channel"`` tokens of the same lead (Kim's per-lead predictor).
AttentionRule = Literal["full", "cross_pattern", "same_channel"]
ATTENTION_RULES = ("full", "cross_pattern", "same_channel")

#: Where each block normalises: ``"pre"`` before attention and MLP (ViT, timm), ``"post"`` after each residual sum
#: (the original Transformer; PyTorch's ``nn.TransformerEncoderLayer(norm_first=False)``, T-JEPA's layers).
NormPlacement = Literal["pre", "post"]
NORM_PLACEMENTS = ("pre", "post")
#: The MLP's activation.
Activation = Literal["gelu", "relu"]
ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU}

#: (width, depth, heads) of the standard ViT sizes.
VIT_SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (192, 12, 3),
    "small": (384, 12, 6),
    "base": (768, 12, 12),
    "large": (1024, 24, 16),
    "huge": (1280, 32, 16),
}


class PreNormBlock(Block):
    """A timm ViT block (same parameters, names and computation) that can also compute only its last ``rows`` tokens:
    ``block(x, rows=r)`` is ``block(x)[:, -r:]`` up to rounding, with every token's keys and values but the queries,
    attention, projection and MLP of those rows alone (a predictor's last block, whose other rows nobody reads).
    Without dropout only (see :func:`computes_last_rows`); the drop path draws the same per-sample numbers."""

    def forward(
        self, x: Tensor, attn_mask: Tensor | None = None, is_causal: bool = False, *, rows: int | None = None
    ) -> Tensor:
        if rows is None:
            return super().forward(x, attn_mask=attn_mask, is_causal=is_causal)
        if is_causal:
            raise ValueError("rows= computes full (non-causal) attention rows only")
        attn = self.attn
        batch, length, _ = x.shape
        heads, head_dim, width = attn.num_heads, attn.head_dim, attn.attn_dim
        hidden = self.norm1(x)
        weight, bias = attn.qkv.weight, attn.qkv.bias
        queries = F.linear(hidden[:, -rows:], weight[:width], None if bias is None else bias[:width])
        keys_values = F.linear(hidden, weight[width:], None if bias is None else bias[width:])
        queries = attn.q_norm(queries.reshape(batch, rows, heads, head_dim).transpose(1, 2))
        keys, values = keys_values.reshape(batch, length, 2, heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        mask = None if attn_mask is None else attn_mask[..., -rows:, :]
        attended = F.scaled_dot_product_attention(queries, attn.k_norm(keys), values, attn_mask=mask)
        attended = attn.proj(attn.norm(attended.transpose(1, 2).reshape(batch, rows, width)))
        x = x[:, -rows:] + self.drop_path1(self.ls1(attended))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


def computes_last_rows(block: nn.Module) -> bool:
    """Whether ``block(x, rows=r)`` may compute only the last rows: a :class:`PreNormBlock`, ungated, without dropout
    anywhere (dropout would draw other random numbers on fewer rows)."""
    if not isinstance(block, PreNormBlock) or block.attn.gate is not None:
        return False
    return not any(module.p for module in block.modules() if isinstance(module, nn.Dropout))


class PostNormBlock(Block):
    """A timm ViT block (same parameters and names) that normalises after each residual sum, as the original
    Transformer and PyTorch's ``nn.TransformerEncoderLayer(norm_first=False)`` do:
    ``x = norm1(x + attn(x)); x = norm2(x + mlp(x))``."""

    def forward(self, x: Tensor, attn_mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
        x = self.norm1(x + self.drop_path1(self.ls1(self.attn(x, attn_mask=attn_mask, is_causal=is_causal))))
        return self.norm2(x + self.drop_path2(self.ls2(self.mlp(x))))


def check_block_options(norm_placement: str, activation: str) -> None:
    """Raise a clear error for an unknown :data:`NormPlacement` or :data:`Activation`."""
    if norm_placement not in NORM_PLACEMENTS:
        raise ValueError(f"norm_placement must be one of {NORM_PLACEMENTS}, got {norm_placement!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {activation!r}")


def transformer_blocks(
    dim: int,
    depth: int,
    num_heads: int,
    mlp_ratio: float,
    drop_path_rate: float,
    *,
    dropout: float = 0.0,
    attention_dropout: float = 0.0,
    norm_placement: NormPlacement = "pre",
    activation: Activation = "gelu",
    norm_eps: float = 1e-6,
) -> nn.ModuleList:
    """ViT blocks (qkv bias) with a linearly increasing drop-path rate, pre-norm GELU with LayerNorm eps 1e-6 by
    default; ``dropout`` on the attention projection and the MLP's hidden and output features, ``attention_dropout``
    on the attention weights (Point-JEPA: 0.1 and 0.05); ``norm_placement="post"`` gives :class:`PostNormBlock`,
    ``activation`` the MLP's nonlinearity."""
    check_block_options(norm_placement, activation)
    norm = partial(nn.LayerNorm, eps=norm_eps)
    block = PreNormBlock if norm_placement == "pre" else PostNormBlock
    return nn.ModuleList(
        block(
            dim,
            num_heads,
            mlp_ratio=mlp_ratio,
            qkv_bias=True,
            proj_drop=dropout,
            attn_drop=attention_dropout,
            drop_path=drop_path_rate * i / max(depth - 1, 1),
            norm_layer=norm,
            act_layer=ACTIVATIONS[activation],
        )
        for i in range(depth)
    )


def run_block(block: Callable[..., Tensor], x: Tensor, mask: Tensor | None, checkpointed: bool = False) -> Tensor:
    """``block(x)`` (with ``attn_mask=mask`` when given); ``checkpointed`` keeps none of its activations for the
    backward pass, which runs the block again (``torch.utils.checkpoint``, non-reentrant, the random state of dropout
    and drop-path replayed, so loss and gradients are unchanged), only where gradients are being recorded."""
    kwargs = {} if mask is None else {"attn_mask": mask}
    if checkpointed and torch.is_grad_enabled():
        return checkpoint(block, x, use_reentrant=False, **kwargs)
    return block(x, **kwargs)


def check_attention_rule(rule: str) -> None:
    """Raise a clear error for an unknown :data:`AttentionRule`."""
    if rule not in ATTENTION_RULES:
        raise ValueError(f"attention must be one of {ATTENTION_RULES}, got {rule!r}")


def attention_mask(rule: AttentionRule, layout: TokenLayout, coords: Tensor) -> Tensor | None:
    """Boolean attention mask ``(B or 1, 1, K, K)`` (True: may attend) among tokens at layout ``coords``
    ``(B or 1, K, 2)``, the (lead, time) coordinates of the tokens actually in the sequence; None when every token
    may attend to every other, so attention stays unmasked (and as fast): always for ``"full"``, and for the other
    rules when the grid has a single lead (``"cross_pattern"`` also with a single time step).
    """
    if rule == "full":
        return None
    if len(layout.shape) != 2:
        raise ValueError(f"{rule!r} attention needs a 2-D (lead, time) token grid, got layout shape {layout.shape}")
    leads, steps = layout.shape
    if leads == 1 or (rule == "cross_pattern" and steps == 1):
        return None
    return allowed_pairs(rule, coords).unsqueeze(1)


def restrict_to_valid_keys(mask: Tensor | None, valid: Tensor | None) -> Tensor | None:
    """``mask`` (None: every pair) with the keys of padding tokens (``valid`` ``(B, K)`` False) taken out,
    ``(B, 1, K, K)``; every token may still attend to itself, so no row is empty (a padding token's output is
    computed and ignored). None when ``valid`` is None."""
    if valid is None:
        return mask
    keys = valid[:, None, None, :]
    allowed = keys if mask is None else mask & keys
    return allowed | torch.eye(valid.shape[1], dtype=torch.bool, device=valid.device)


def allowed_pairs(rule: Literal["cross_pattern", "same_channel"], coords: Tensor) -> Tensor:
    """``(B, K, K)`` bool: may token i attend to token j, for tokens at (lead, time) ``coords`` ``(B, K, 2)``."""
    same = coords.unsqueeze(2) == coords.unsqueeze(1)  # (B, K, K, 2)
    return same.any(dim=-1) if rule == "cross_pattern" else same[..., 0]


def cross_pattern_attention_mask(
    num_channels: int, num_patches: int, device: torch.device | str | None = None
) -> Tensor:
    """ECG-JEPA (Kim) cross-pattern attention over a channel-major ``(C, P)`` token grid: ``(N, N)`` bool,
    True where token i may attend to token j, i.e. they share a lead or a time step. The encoder applies the same
    rule itself with ``TransformerEncoder(attention="cross_pattern")``, also to a subset of tokens."""
    return allowed_pairs("cross_pattern", grid_coords((num_channels, num_patches), device=device))[0]


class TransformerEncoder(RecordsArguments, nn.Module):
    """ViT encoder over tokens: add positions, optionally keep a subset of tokens, run blocks, final norm.

    Positions are added once at the input (ViT, I-JEPA) or, with ``positions_every_layer``, before every block
    (Point-BERT / Point-JEPA / ECG-JEPA). ``attention`` restricts which tokens attend to which (see
    :data:`AttentionRule`); the mask is built from the layout coordinates of the tokens in the sequence, so it is
    right for a kept subset (the student's context) as for all tokens (the teacher). ``init`` picks the weight
    initialisation (:data:`~jepa_lightning.nn.init.WeightInit`: I-JEPA's trunc-normal by default, or xavier).
    ``dropout`` / ``attention_dropout`` regularise the blocks (see :func:`transformer_blocks`; an EMA teacher runs
    without them). ``norm_placement``, ``activation`` and ``norm_eps`` shape the blocks (pre-norm GELU, eps 1e-6 by
    default); ``output_head=True`` follows the final norm with a linear layer and another LayerNorm (T-JEPA's
    encoder: post-norm layers, then LayerNorm, Linear, LayerNorm). ``activation_checkpointing=True`` recomputes each
    block's activations in the backward pass instead of keeping them (less memory, one more forward of the blocks;
    see :func:`run_block`). Use :meth:`from_size` for the standard ViT sizes (tiny, small, base, large, huge).
    """

    def __init__(
        self,
        embed_dim: int = 192,
        depth: int = 12,
        num_heads: int = 3,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.0,
        positions_every_layer: bool = False,
        attention: AttentionRule = "full",
        init: WeightInit = "ijepa",
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        *,
        norm_placement: NormPlacement = "pre",
        activation: Activation = "gelu",
        norm_eps: float = 1e-6,
        output_head: bool = False,
        activation_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        check_attention_rule(attention)
        check_weight_init(init)
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} must be divisible by num_heads={num_heads}")
        self.embed_dim = embed_dim
        self.positions_every_layer = positions_every_layer
        self.attention = attention
        self.init = init
        self.num_heads = num_heads
        self.activation_checkpointing = activation_checkpointing
        self.blocks = transformer_blocks(
            embed_dim,
            depth,
            num_heads,
            mlp_ratio,
            drop_path_rate,
            dropout=dropout,
            attention_dropout=attention_dropout,
            norm_placement=norm_placement,
            activation=activation,
            norm_eps=norm_eps,
        )
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        self.head = (
            nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.LayerNorm(embed_dim, eps=norm_eps))
            if output_head
            else None
        )
        init_transformer(self, self.blocks, init)

    @classmethod
    def from_size(cls, size: str, **overrides: float) -> TransformerEncoder:
        """A standard ViT size by name; ``overrides`` replace any constructor argument."""
        if size not in VIT_SIZES:
            raise ValueError(f"unknown ViT size {size!r}; expected one of {sorted(VIT_SIZES)}")
        embed_dim, depth, num_heads = VIT_SIZES[size]
        return cls(**{"embed_dim": embed_dim, "depth": depth, "num_heads": num_heads, **overrides})

    def forward(
        self, tokens: Tokens, keep: Tensor | None = None, *, final_norm: bool = True, num_blocks: int | None = None
    ) -> Tensor:
        """Encode ``tokens``; with ``keep`` ``(B, K)`` only those token indices are seen -> ``(B, K, D)``. Tokens
        that ``tokens.valid`` marks as padding are left out of every token's attention. ``final_norm=False`` returns
        the last block's output without the final norm (and output head; Point-JEPA's targets). ``num_blocks`` runs
        only the first blocks, ``self.blocks[:num_blocks]`` (negative: all but the last ``-num_blocks``), before the
        final norm: an intermediate block's tokens (DSeq-JEPA's saliency); None (default) runs them all."""
        x, positions, mask = self.sequence(tokens, keep)
        x = self.run_blocks(x, positions, mask, self.blocks[:num_blocks])
        return self.finish(x) if final_norm else x

    def forward_with_intermediate(
        self, tokens: Tokens, num_blocks: int | None, *, final_norm: bool = True
    ) -> tuple[Tensor, Tensor]:
        """``(self(tokens, final_norm=final_norm), self(tokens, num_blocks=num_blocks))`` from one pass through the
        blocks: the output and an intermediate block's tokens through the final norm (DSeq-JEPA's targets and
        saliency, one teacher forward instead of two)."""
        x, positions, mask = self.sequence(tokens, None)
        split = len(self.blocks[:num_blocks])
        x = self.run_blocks(x, positions, mask, self.blocks[:split])
        intermediate = self.finish(x)
        x = self.run_blocks(x, positions, mask, self.blocks[split:])
        return (self.finish(x) if final_norm else x), intermediate

    def sequence(self, tokens: Tokens, keep: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """The blocks' input: the kept tokens' features (positions added unless added before every block), their
        positions and the attention mask (None: every token may attend to every other)."""
        x, positions = tokens.features, tokens.positions.expand_as(tokens.features)
        mask = None
        if self.attention != "full":
            coords = tokens.layout.coords if keep is None else gather_tokens(tokens.layout.coords, keep)
            mask = attention_mask(self.attention, tokens.layout, coords)
        valid = tokens.valid
        if valid is not None:  # padding tokens are never attended to
            mask = restrict_to_valid_keys(mask, valid if keep is None else torch.gather(valid, 1, keep))
        if keep is not None:
            x, positions = gather_tokens(x, keep), gather_tokens(positions, keep)
        if not self.positions_every_layer:
            x = x + positions
        return x, positions, mask

    def run_blocks(self, x: Tensor, positions: Tensor, mask: Tensor | None, blocks: nn.ModuleList) -> Tensor:
        """``x`` through ``blocks`` (positions added before each with ``positions_every_layer``)."""
        for block in blocks:
            inputs = x + positions if self.positions_every_layer else x
            x = run_block(block, inputs, mask, self.activation_checkpointing)
        return x

    def finish(self, x: Tensor) -> Tensor:
        """The blocks' output through the final norm (and the output head, when built)."""
        x = self.norm(x)
        return x if self.head is None else self.head(x)
