"""The I-JEPA predictor: from context tokens to predictions at target positions, all groups in one pass."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Literal

import torch
from torch import Tensor, nn

from jepa_lightning.nn.encoder import (
    Activation,
    AttentionRule,
    NormPlacement,
    attention_mask,
    check_attention_rule,
    computes_last_rows,
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
#: How the predictor takes a condition (a transformation's parameters, an action): not at all (``"none"``), as one
#: extra token in front of the sequence (``"token"``, IWM's sequence conditioning), concatenated to every mask token
#: and projected back to the predictor's width (``"concat"``, IWM's feature conditioning), or as the shift and scale of
#: every block's layer norms (``"adaln"``, adaptive layer norm; pre-norm blocks only).
PredictorConditioning = Literal["none", "token", "concat", "adaln"]
PREDICTOR_CONDITIONINGS = ("none", "token", "concat", "adaln")
#: How the predictor runs several target groups (I-JEPA's four blocks): one sequence per group, the context repeated
#: for each (``"separate"``, I-JEPA's official code), or every group's mask tokens after one copy of the context in a
#: single sequence (``"joint"``, stable-pretraining's I-JEPA), where the groups see each other.
TargetGroups = Literal["separate", "joint"]


def condition_rows(cond: Tensor, batch: int, groups: int) -> Tensor:
    """A condition per sample ``(B, C)`` or per target group ``(B, M, C)`` as one row per predictor row, mask-major
    ``(M * B, C)`` (row ``m * B + b``, as :func:`~jepa_lightning.nn.functional.gather_mask_major`)."""
    if cond.ndim == 2 and cond.shape[0] == batch:
        return cond.repeat(groups, 1)
    if cond.ndim == 3 and cond.shape[:2] == (batch, groups):
        return cond.transpose(0, 1).reshape(groups * batch, cond.shape[-1])
    raise ValueError(
        f"cond must be (B, C) per sample or (B, M, C) per target group with B={batch}, M={groups}; "
        f"got shape {tuple(cond.shape)}"
    )


def cosine_noise_schedule(levels: int) -> Tensor:
    """``alpha_bar`` of ``levels`` noise levels ``t_k = k / levels`` (k = 0 .. levels - 1) on the cosine schedule of
    improved DDPM (Nichol and Dhariwal, 2021; offset s = 0.008): 1 (clean) at k = 0, falling towards 0 (all noise)."""
    s = 0.008
    t = torch.arange(levels, dtype=torch.float64) / levels
    f = torch.cos((t + s) / (1 + s) * torch.pi / 2).square()
    return (f / f[0]).float()


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

    ``mask_noise_levels`` > 0 (N-JEPA) noises the mask tokens' position embeddings in training, diffusion-style:
    each (sample, target group) draws a level ``k`` uniformly from :func:`cosine_noise_schedule` and its target
    positions become ``sqrt(alpha_bar_k) p + sqrt(1 - alpha_bar_k) eps`` with ``eps ~ N(0, I)`` (global RNG, like
    dropout); in eval mode the positions are clean. 0 (default) leaves them untouched. ``output_dim`` is the width
    of the predictions (default ``embed_dim``; fixed targets of another width set it).

    ``conditioning`` (:data:`PredictorConditioning`) makes the prediction depend on a condition of ``condition_dim``
    values that :meth:`forward` takes as ``cond``: per sample ``(B, C)`` or per target group ``(B, M, C)``. The
    default ``"none"`` builds nothing and ignores ``cond``, so the predictor is the unconditioned one, weights and
    random draws included.

    ``context_every_layer=True`` feeds the context to every block (3D-JEPA's context-aware decoder): each block sees
    the embedded context tokens as they entered the first block, concatenated with the target slots carried from the
    block before, and only the target slots go on; so the mask tokens attend to the encoder's context at every depth,
    and the context tokens themselves are never updated. The default (False) runs the blocks on the whole sequence.

    ``target_groups="joint"`` (:data:`TargetGroups`) predicts every target group in one sequence per sample,
    ``B x (Nc + M Nt)`` tokens instead of ``M B x (Nc + Nt)``: less than half the predictor's work for I-JEPA's four
    blocks, but the groups' mask tokens attend to each other and the context is encoded once, which the paper's
    objective does not do (a different model, as stable-pretraining's I-JEPA). Full attention, no conditioning,
    positions once and unpadded batches only; the default ``"separate"`` is the paper's.
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
        mask_noise_levels: int = 0,
        output_dim: int | None = None,
        activation_checkpointing: bool = False,
        num_mask_tokens: int = 1,
        conditioning: PredictorConditioning = "none",
        condition_dim: int = 0,
        context_every_layer: bool = False,
        target_groups: TargetGroups = "separate",
    ) -> None:
        super().__init__()
        check_attention_rule(attention)
        if target_groups not in ("separate", "joint"):
            raise ValueError(f"target_groups must be 'separate' or 'joint', got {target_groups!r}")
        joint_conflicts = attention != "full" or conditioning != "none" or positions_every_layer or context_every_layer
        if target_groups == "joint" and joint_conflicts:
            raise ValueError(
                "target_groups='joint' takes full attention, no conditioning, positions once and the context once "
                f"(got attention={attention!r}, conditioning={conditioning!r}, "
                f"positions_every_layer={positions_every_layer}, context_every_layer={context_every_layer})"
            )
        self.target_groups = target_groups
        check_weight_init(init)
        if predictor_dim % num_heads:
            raise ValueError(f"predictor_dim={predictor_dim} must be divisible by num_heads={num_heads}")
        if positions not in ("sincos", "mlp"):
            raise ValueError(f"positions must be 'sincos' or 'mlp', got {positions!r}")
        if conditioning not in PREDICTOR_CONDITIONINGS:
            raise ValueError(f"conditioning must be one of {PREDICTOR_CONDITIONINGS}, got {conditioning!r}")
        if conditioning != "none" and condition_dim < 1:
            raise ValueError(f"conditioning={conditioning!r} needs condition_dim >= 1, got {condition_dim}")
        if conditioning == "adaln" and norm_placement != "pre":
            raise ValueError(
                "conditioning='adaln' modulates the pre-norms of the blocks: it needs norm_placement='pre'"
            )
        self.embed_dim = embed_dim
        self.predictor_dim = predictor_dim
        self.attention = attention
        self.positions_every_layer = positions_every_layer
        self.mask_noise_levels = mask_noise_levels
        self.activation_checkpointing = activation_checkpointing
        self.conditioning = conditioning
        self.context_every_layer = context_every_layer
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
        self.proj = nn.Linear(predictor_dim, output_dim or embed_dim)
        self.position_mlp = (
            nn.Sequential(nn.Linear(coord_dim, 128), nn.GELU(), nn.Linear(128, predictor_dim))
            if positions == "mlp"
            else None
        )
        # built last, and only when used, so that an unconditioned predictor draws the same weights as before
        if conditioning == "token":
            self.condition_embed = nn.Linear(condition_dim, predictor_dim)
        elif conditioning == "concat":
            self.condition_embed = nn.Linear(predictor_dim + condition_dim, predictor_dim)
        elif conditioning == "adaln":  # (shift, scale) of norm1 and of norm2, per block
            self.condition_embed = nn.ModuleList(nn.Linear(condition_dim, 4 * predictor_dim) for _ in self.blocks)
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
        cond: Tensor | None = None,
    ) -> Tensor:
        """``context`` ``(B, Nc, D)`` encoded at ``context_idx`` ``(B, Nc)``; ``target_idx`` ``(B, M, Nt)``; ``valid``
        ``(B, N)`` (see :class:`~jepa_lightning.tokens.Tokens`) leaves padding context tokens and target slots out
        of attention; ``mask_index`` chooses the mask token (of ``num_mask_tokens``); ``cond`` ``(B, C)`` or
        ``(B, M, C)`` is the condition (ignored with ``conditioning="none"``)."""
        groups, per_group = target_idx.shape[1], target_idx.shape[2]
        mask_token = self.mask_token[mask_index : mask_index + 1]
        rows = None
        if self.conditioning != "none":
            if cond is None:
                raise ValueError(f"this predictor is conditioned ({self.conditioning!r}): pass cond")
            rows = condition_rows(cond, context.shape[0], groups).to(context.dtype)
        if self.position_mlp is None:
            positions = sincos_embedding(layout.coords, self.predictor_dim).to(context.dtype)
        else:
            positions = self.position_mlp(layout.coords.to(context.dtype))
        context_positions = gather_tokens(positions, context_idx)
        target_positions = gather_mask_major(positions, target_idx)
        if self.training and self.mask_noise_levels > 0:
            target_positions = self.noised(target_positions)
        if self.target_groups == "joint":
            return self.joint(self.embed(context) + context_positions, mask_token + target_positions, groups, valid)
        if self.positions_every_layer:  # the sequence's positions, added before each block below
            x = self.embed(context).repeat(groups, 1, 1)
            x = torch.cat([x, self.condition_queries(mask_token.expand(x.shape[0], per_group, -1), rows)], dim=1)
            sequence_positions = torch.cat([context_positions.repeat(groups, 1, 1), target_positions], dim=1)
        else:
            x = self.embed(context) + context_positions
            x = x.repeat(groups, 1, 1)
            queries = self.condition_queries(mask_token + target_positions, rows)
            x = torch.cat([x, queries], dim=1)
        mask = None
        if self.attention != "full":
            context_coords = gather_tokens(layout.coords, context_idx).repeat(groups, 1, 1)
            coords = torch.cat([context_coords, gather_mask_major(layout.coords, target_idx)], dim=1)
            mask = attention_mask(self.attention, layout, coords)
        if self.conditioning == "token":  # one more token, in front, that every token may attend to and back
            x = torch.cat([self.condition_embed(rows).unsqueeze(1), x], dim=1)
            if self.positions_every_layer:
                sequence_positions = nn.functional.pad(sequence_positions, (0, 0, 1, 0))
            if mask is not None:
                mask = nn.functional.pad(mask, (1, 0, 1, 0), value=True)
        if valid is not None:
            keys = valid.unsqueeze(-1)
            context_valid = gather_tokens(keys, context_idx).repeat(groups, 1, 1)
            key_valid = torch.cat([context_valid, gather_mask_major(keys, target_idx)], 1)[..., 0]
            if self.conditioning == "token":
                key_valid = nn.functional.pad(key_valid, (1, 0), value=True)
            mask = restrict_to_valid_keys(mask, key_valid)
        context_part = x[:, :-per_group]  # the context (and a condition token), as every block sees it
        for index in range(len(self.blocks)):
            if self.context_every_layer and index > 0:
                x = torch.cat([context_part, x[:, -per_group:]], dim=1)
            inputs = x + sequence_positions if self.positions_every_layer else x
            if self.conditioning == "adaln":
                layer = partial(self.modulated_block, index, rows=rows)
            else:
                layer = self.reading_rows(index, per_group)
            x = run_block(layer, inputs, mask, self.activation_checkpointing)
        if self.head is not None:
            x = self.head(x)
        return self.proj(self.norm(x[:, -per_group:]))

    def joint(self, context: Tensor, queries: Tensor, groups: int, valid: Tensor | None) -> Tensor:
        """``target_groups="joint"``: the embedded ``context`` ``(B, Nc, P)`` and every group's mask tokens
        ``queries`` ``(M * B, Nt, P)`` in one sequence per sample; predictions mask-major ``(M * B, Nt, D)``."""
        if valid is not None:
            raise ValueError("target_groups='joint' takes unpadded batches only (valid=None)")
        batch, per_group = context.shape[0], queries.shape[1]
        queries = queries.unflatten(0, (groups, batch)).transpose(0, 1).flatten(1, 2)  # (B, M * Nt, P)
        x = torch.cat([context, queries], dim=1)
        for index in range(len(self.blocks)):
            x = run_block(self.reading_rows(index, queries.shape[1]), x, None, self.activation_checkpointing)
        if self.head is not None:
            x = self.head(x)
        out = self.proj(self.norm(x[:, -groups * per_group :]))
        return out.unflatten(1, (groups, per_group)).transpose(0, 1).flatten(0, 1)

    def reading_rows(self, index: int, rows: int) -> Callable[..., Tensor]:
        """Block ``index``; the last one computing only its last ``rows`` tokens (the mask tokens, all that the
        predictor returns) where it can (:func:`~jepa_lightning.nn.encoder.computes_last_rows`)."""
        block = self.blocks[index]
        if index == len(self.blocks) - 1 and computes_last_rows(block):
            return partial(block, rows=rows)
        return block

    def noised(self, positions: Tensor) -> Tensor:
        """``positions`` ``(M * B, Nt, Dp)`` with one noise level per row (see ``mask_noise_levels``)."""
        alpha_bar = cosine_noise_schedule(self.mask_noise_levels).to(positions.device, positions.dtype)
        level = torch.randint(self.mask_noise_levels, (positions.shape[0], 1, 1), device=positions.device)
        a = alpha_bar[level]
        return a.sqrt() * positions + (1 - a).sqrt() * torch.randn_like(positions)

    def condition_queries(self, queries: Tensor, rows: Tensor | None) -> Tensor:
        """The mask tokens ``(M * B, Nt, P)`` with the condition ``rows`` ``(M * B, C)`` concatenated and projected back
        to the predictor's width (``conditioning="concat"``); unchanged otherwise."""
        if self.conditioning != "concat":
            return queries
        assert rows is not None
        condition = rows.unsqueeze(1).expand(-1, queries.shape[1], -1)
        return self.condition_embed(torch.cat([queries, condition], dim=-1))

    def modulated_block(self, index: int, x: Tensor, attn_mask: Tensor | None = None, *, rows: Tensor) -> Tensor:
        """Block ``index`` with its two pre-norms shifted and scaled by the condition (adaptive layer norm): the
        block's own attention, MLP, layer scales and drop paths, ``norm(x) * (1 + scale) + shift``."""
        block = self.blocks[index]
        shift1, scale1, shift2, scale2 = self.condition_embed[index](rows).unsqueeze(1).chunk(4, dim=-1)
        hidden = block.norm1(x) * (1 + scale1) + shift1
        x = x + block.drop_path1(block.ls1(block.attn(hidden, attn_mask=attn_mask)))
        hidden = block.norm2(x) * (1 + scale2) + shift2
        return x + block.drop_path2(block.ls2(block.mlp(hidden)))
