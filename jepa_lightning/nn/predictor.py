"""The I-JEPA predictor: from context tokens to predictions at target positions, all groups in one pass."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from jepa_lightning.nn.encoder import (
    Activation,
    AttentionRule,
    NormPlacement,
    attention_mask,
    check_attention_rule,
    restrict_to_valid_keys,
    run_block,
    transformer_blocks,
)
from jepa_lightning.nn.functional import gather_mask_major, gather_tokens
from jepa_lightning.nn.init import WeightInit, check_weight_init, init_transformer
from jepa_lightning.tokens import TokenLayout, sincos_embedding

#: How the predictor places its tokens: fixed sin-cos of the layout's grid coordinates, or learned from continuous
#: coordinates by a small MLP (Point-JEPA's centres).
PredictorPositions = Literal["sincos", "mlp"]


class JEPAPredictor(nn.Module):
    """Narrow transformer that predicts target-token representations from the encoded context.

    Context features are projected to ``predictor_dim`` and given fixed sin-cos positions of their tokens;
    each target group becomes learnable mask tokens plus the targets' positions. The context is repeated
    once per target group along the batch (mask-major: row ``m * B + b``), concatenated with the mask
    tokens, run through the blocks and normalised; the target slots are projected back to the encoder
    width. Output: ``(M * B, Nt, embed_dim)``, aligned with :func:`gather_mask_major`.

    ``positions="sincos"`` encodes the layout's grid coordinates with fixed sin-cos (I-JEPA);
    ``positions="mlp"`` learns them from continuous coordinates of ``coord_dim`` dims (Point-JEPA's centres).
    ``attention`` restricts attention by the layout coordinates of the context tokens and target slots (see
    :data:`~jepa_lightning.nn.encoder.AttentionRule`): ``"same_channel"`` on a (lead, time) grid makes the
    predictor work lead by lead, as ECG-JEPA (Kim)'s predictor does, in one batched pass. ``positions_every_layer``
    adds the positions to the input of every block instead of once (ECG-JEPA Kim's predictor, like its encoder).
    ``init`` picks the weight initialisation (:data:`~jepa_lightning.nn.init.WeightInit`); the mask token is
    trunc-normal 0.02 under both. ``drop_path_rate``, ``dropout`` and ``attention_dropout`` regularise the blocks
    (see :func:`~jepa_lightning.nn.encoder.transformer_blocks`); ``norm_placement``, ``activation`` and ``norm_eps``
    shape the blocks and norms as in :class:`~jepa_lightning.nn.TransformerEncoder`; ``output_head=True`` passes the
    blocks' output through LayerNorm, Linear and LayerNorm before the final norm (T-JEPA's predictor runs a full
    encoder stack, its output head included, then normalises again). ``activation_checkpointing`` as in the encoder.
    ``num_mask_tokens`` learnable mask tokens, one per mask configuration (V-JEPA's ``num_mask_tokens``: one per
    multi-mask configuration); ``forward``'s ``mask_index`` picks one.
    """

    def __init__(
        self,
        embed_dim: int,
        predictor_dim: int = 384,
        depth: int = 6,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.0,
        positions: PredictorPositions = "sincos",
        coord_dim: int = 3,
        attention: AttentionRule = "full",
        init: WeightInit = "ijepa",
        positions_every_layer: bool = False,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        *,
        norm_placement: NormPlacement = "pre",
        activation: Activation = "gelu",
        norm_eps: float = 1e-6,
        output_head: bool = False,
        activation_checkpointing: bool = False,
        num_mask_tokens: int = 1,
    ) -> None:
        super().__init__()
        check_attention_rule(attention)
        check_weight_init(init)
        if predictor_dim % num_heads:
            raise ValueError(f"predictor_dim={predictor_dim} must be divisible by num_heads={num_heads}")
        if positions not in ("sincos", "mlp"):
            raise ValueError(f"positions must be 'sincos' or 'mlp', got {positions!r}")
        self.embed_dim = embed_dim
        self.predictor_dim = predictor_dim
        self.attention = attention
        self.positions_every_layer = positions_every_layer
        self.activation_checkpointing = activation_checkpointing
        self.embed = nn.Linear(embed_dim, predictor_dim)
        if num_mask_tokens < 1:
            raise ValueError(f"num_mask_tokens must be >= 1, got {num_mask_tokens}")
        self.mask_token = nn.Parameter(torch.zeros(num_mask_tokens, 1, predictor_dim))
        self.blocks = transformer_blocks(
            predictor_dim,
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
        self.head = (
            nn.Sequential(
                nn.LayerNorm(predictor_dim, eps=norm_eps),
                nn.Linear(predictor_dim, predictor_dim),
                nn.LayerNorm(predictor_dim, eps=norm_eps),
            )
            if output_head
            else None
        )
        self.norm = nn.LayerNorm(predictor_dim, eps=norm_eps)
        self.proj = nn.Linear(predictor_dim, embed_dim)
        self.position_mlp = (
            nn.Sequential(nn.Linear(coord_dim, 128), nn.GELU(), nn.Linear(128, predictor_dim))
            if positions == "mlp"
            else None
        )
        init_transformer(self, self.blocks, init)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def forward(
        self,
        context: Tensor,
        layout: TokenLayout,
        context_idx: Tensor,
        target_idx: Tensor,
        valid: Tensor | None = None,
        mask_index: int = 0,
    ) -> Tensor:
        """``context`` ``(B, Nc, D)`` encoded at ``context_idx`` ``(B, Nc)``; ``target_idx`` ``(B, M, Nt)``; ``valid``
        ``(B, N)`` (see :class:`~jepa_lightning.tokens.Tokens`) leaves padding context tokens and target slots out
        of attention; ``mask_index`` chooses the mask token (of ``num_mask_tokens``)."""
        groups, per_group = target_idx.shape[1], target_idx.shape[2]
        mask_token = self.mask_token[mask_index : mask_index + 1]
        if self.position_mlp is None:
            positions = sincos_embedding(layout.coords, self.predictor_dim).to(context.dtype)
        else:
            positions = self.position_mlp(layout.coords.to(context.dtype))
        context_positions = gather_tokens(positions, context_idx)
        target_positions = gather_mask_major(positions, target_idx)
        if self.positions_every_layer:  # the sequence's positions, added before each block below
            x = self.embed(context).repeat(groups, 1, 1)
            x = torch.cat([x, mask_token.expand(x.shape[0], per_group, -1)], dim=1)
            sequence_positions = torch.cat([context_positions.repeat(groups, 1, 1), target_positions], dim=1)
        else:
            x = self.embed(context) + context_positions
            x = x.repeat(groups, 1, 1)
            queries = mask_token + target_positions
            x = torch.cat([x, queries], dim=1)
        mask = None
        if self.attention != "full":
            context_coords = gather_tokens(layout.coords, context_idx).repeat(groups, 1, 1)
            coords = torch.cat([context_coords, gather_mask_major(layout.coords, target_idx)], dim=1)
            mask = attention_mask(self.attention, layout, coords)
        if valid is not None:
            keys = valid.unsqueeze(-1)
            context_valid = gather_tokens(keys, context_idx).repeat(groups, 1, 1)
            mask = restrict_to_valid_keys(
                mask, torch.cat([context_valid, gather_mask_major(keys, target_idx)], 1)[..., 0]
            )
        for block in self.blocks:
            inputs = x + sequence_positions if self.positions_every_layer else x
            x = run_block(block, inputs, mask, self.activation_checkpointing)
        if self.head is not None:
            x = self.head(x)
        return self.proj(self.norm(x[:, -per_group:]))
