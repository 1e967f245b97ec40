"""Attention rules of the encoder and predictor: cross-pattern (ECG-JEPA Kim) and per-lead, against references."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from jepa_lightning.nn import JEPAPredictor, TokenBackbone, TransformerEncoder, gather_tokens
from jepa_lightning.nn.encoder import attention_mask, cross_pattern_attention_mask
from jepa_lightning.tokenizers import ChannelPatchTokenizer, InputSpec, TokenLayout, Tokens, grid_coords

LEADS, STEPS, WIDTH = 3, 5, 16


def grid_tokens(batch: int = 2, leads: int = LEADS, steps: int = STEPS) -> Tokens:
    torch.manual_seed(0)
    coords = grid_coords((leads, steps))
    features = torch.randn(batch, leads * steps, WIDTH)
    positions = torch.randn(1, leads * steps, WIDTH)
    return Tokens(features, positions, TokenLayout("grid", (leads, steps), coords))


def encoder(attention: str = "full", depth: int = 2) -> TransformerEncoder:
    torch.manual_seed(1)
    return TransformerEncoder(WIDTH, depth, 2, attention=attention).eval()


def reference_block(block, x: Tensor, allowed: Tensor) -> Tensor:
    """One timm block by hand, each query token attending only to the keys ``allowed[b, i]`` (a Python loop)."""
    attn = block.attn
    batch, count, width = x.shape
    heads, head_dim = attn.num_heads, width // attn.num_heads
    h = block.norm1(x)
    q, k, v = attn.qkv(h).reshape(batch, count, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
    out = torch.zeros(batch, heads, count, head_dim)
    for b in range(batch):
        for i in range(count):
            keys = allowed[b, i].nonzero().squeeze(1)
            scores = (q[b, :, i : i + 1] @ k[b, :, keys].transpose(-1, -2)) * head_dim**-0.5
            out[b, :, i] = (scores.softmax(dim=-1) @ v[b, :, keys])[:, 0]
    x = x + attn.proj(out.transpose(1, 2).reshape(batch, count, width))
    return x + block.mlp(block.norm2(x))


def cross_pattern_pairs(coords: Tensor) -> Tensor:
    """(B, K, 2) coords -> (B, K, K): same lead or same time step, by a loop."""
    return torch.tensor(
        [[[a[0] == b[0] or a[1] == b[1] for b in sample] for a in sample] for sample in coords.tolist()]
    )


def reference_encoder(model: TransformerEncoder, tokens: Tokens, keep: Tensor | None) -> Tensor:
    x, positions, coords = tokens.features, tokens.positions.expand_as(tokens.features), tokens.layout.coords
    coords = coords.expand(x.shape[0], -1, -1)
    if keep is not None:
        x, positions, coords = gather_tokens(x, keep), gather_tokens(positions, keep), gather_tokens(coords, keep)
    allowed = cross_pattern_pairs(coords)
    x = x + positions
    for block in model.blocks:
        x = reference_block(block, x, allowed)
    return model.norm(x)


def test_attention_mask_matches_a_loop_on_kept_tokens():
    tokens = grid_tokens()
    keep = torch.tensor([[0, 2, 6, 7, 14], [1, 3, 5, 9, 12]])
    coords = gather_tokens(tokens.layout.coords, keep)
    mask = attention_mask("cross_pattern", tokens.layout, coords)
    assert mask.shape == (2, 1, 5, 5) and mask.dtype == torch.bool
    assert torch.equal(mask[:, 0], cross_pattern_pairs(coords))
    per_lead = attention_mask("same_channel", tokens.layout, coords)[:, 0]
    assert torch.equal(per_lead, coords[:, :, None, 0] == coords[:, None, :, 0])


@pytest.mark.parametrize("keep", [None, torch.tensor([[0, 2, 6, 7, 14, 11], [1, 3, 5, 9, 12, 13]])])
def test_cross_pattern_encoder_equals_hand_written_masked_attention(keep):
    tokens, model = grid_tokens(), encoder("cross_pattern")
    with torch.no_grad():
        torch.testing.assert_close(model(tokens, keep=keep), reference_encoder(model, tokens, keep))
        # the mask matters: unmasked attention gives something else
        unmasked = encoder("full")
        assert not torch.allclose(unmasked(tokens, keep=keep), model(tokens, keep=keep), atol=1e-4)


def test_teacher_full_pass_uses_the_mask():
    spec = InputSpec("ecg", channels=LEADS, sample_rate=100.0)
    backbone = TokenBackbone(ChannelPatchTokenizer(spec, WIDTH, patch_length=10), encoder("cross_pattern"))
    x = torch.randn(2, LEADS, 50)
    with torch.no_grad():
        tokens = backbone.tokenizer(x)
        torch.testing.assert_close(backbone(x), reference_encoder(backbone.encoder, tokens, None))


def test_default_path_is_bit_identical_to_plain_blocks():
    tokens, model = grid_tokens(), encoder("full")
    keep = torch.tensor([[0, 4, 8], [1, 2, 3]])
    with torch.no_grad():
        x = gather_tokens(tokens.features, keep) + gather_tokens(tokens.positions.expand_as(tokens.features), keep)
        for block in model.blocks:
            x = block(x)
        assert torch.equal(model(tokens, keep=keep), model.norm(x))


def test_single_lead_grids_run_unmasked_and_equal_full_attention():
    tokens = grid_tokens(leads=1, steps=8)
    assert attention_mask("cross_pattern", tokens.layout, tokens.layout.coords) is None
    assert attention_mask("same_channel", tokens.layout, tokens.layout.coords) is None
    with torch.no_grad():
        assert torch.equal(encoder("cross_pattern")(tokens), encoder("full")(tokens))


def test_rules_need_a_2d_grid_and_a_known_name():
    layout = TokenLayout("sequence", (6,), grid_coords((6,)))
    with pytest.raises(ValueError, match="2-D"):
        attention_mask("cross_pattern", layout, layout.coords)
    with pytest.raises(ValueError, match="attention must be one of"):
        TransformerEncoder(WIDTH, 1, 2, attention="diagonal")


def test_per_lead_predictor_equals_running_each_lead_alone():
    """``same_channel`` attention = the official per-lead predictor (one lead's context predicts its targets)."""
    torch.manual_seed(2)
    predictor = JEPAPredictor(WIDTH, predictor_dim=8, depth=2, num_heads=2, attention="same_channel").eval()
    layout = grid_tokens().layout
    context_steps, target_steps = torch.tensor([0, 1, 3]), torch.tensor([[2], [4]])  # 2 groups of one step
    context_idx = (torch.arange(LEADS)[:, None] * STEPS + context_steps).flatten().expand(2, -1)
    target_idx = (torch.arange(LEADS)[:, None, None] * STEPS + target_steps).permute(1, 0, 2).flatten(1)
    target_idx = target_idx.unsqueeze(0).expand(2, -1, -1)  # (B, M=2, leads)
    context = torch.randn(2, context_idx.shape[1], WIDTH)
    with torch.no_grad():
        together = predictor(context, layout, context_idx, target_idx)  # (M * B, leads, D)
        for lead in range(LEADS):
            own = slice(lead * len(context_steps), (lead + 1) * len(context_steps))
            alone = predictor(context[:, own], layout, context_idx[:, own], target_idx[..., lead : lead + 1])
            torch.testing.assert_close(together[:, lead : lead + 1], alone)


def test_cross_pattern_attention_mask_matches_loop():
    channels, patches = 3, 5
    mask = cross_pattern_attention_mask(channels, patches, "cpu")
    n = channels * patches
    assert mask.shape == (n, n) and mask.dtype == torch.bool
    for i in range(n):
        for j in range(n):
            expected = i // patches == j // patches or i % patches == j % patches
            assert bool(mask[i, j]) == expected
