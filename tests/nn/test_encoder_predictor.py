import pytest
import torch

from jepa_lightning.nn import JEPAPredictor, TransformerEncoder, gather_mask_major, gather_tokens
from jepa_lightning.tokenizers import TokenLayout, Tokens, grid_coords, sincos_embedding


def tokens(batch=2, grid=(4, 4), dim=32) -> Tokens:
    coords = grid_coords(grid)
    return Tokens(
        torch.randn(batch, coords.shape[1], dim),
        sincos_embedding(coords, dim),
        TokenLayout("grid", grid, coords),
    )


def test_from_size_uses_standard_vit_shapes():
    encoder = TransformerEncoder.from_size("small", depth=2)
    assert (encoder.embed_dim, len(encoder.blocks), encoder.num_heads) == (384, 2, 6)
    with pytest.raises(ValueError, match="unknown ViT size"):
        TransformerEncoder.from_size("gigantic")


def test_residual_projections_are_scaled_by_layer_depth():
    torch.manual_seed(0)
    encoder = TransformerEncoder(embed_dim=192, depth=8, num_heads=3)
    stds = [block.mlp.fc2.weight.std().item() for block in encoder.blocks]
    for layer, std in enumerate(stds, start=1):
        assert std == pytest.approx(0.02 / (2 * layer) ** 0.5, rel=0.1)


def test_encoder_on_a_subset_is_permutation_equivariant():
    torch.manual_seed(0)
    encoder = TransformerEncoder(embed_dim=32, depth=2, num_heads=4).eval()
    toks = tokens()
    keep = torch.tensor([[0, 5, 9, 3], [15, 2, 7, 1]])
    out = encoder(toks, keep=keep)
    assert out.shape == (2, 4, 32)
    perm = torch.tensor([2, 0, 3, 1])
    torch.testing.assert_close(encoder(toks, keep=keep[:, perm]), out[:, perm], rtol=1e-5, atol=1e-5)


def test_gather_mask_major_matches_a_plain_loop():
    x = torch.randn(3, 10, 4)
    target_idx = torch.randint(0, 10, (3, 2, 5))
    out = gather_mask_major(x, target_idx)
    for m in range(2):
        for b in range(3):
            torch.testing.assert_close(out[m * 3 + b], x[b, target_idx[b, m]])
    shared = gather_tokens(torch.randn(1, 10, 4), target_idx[:, 0])
    assert shared.shape == (3, 5, 4)


def test_predictor_output_rows_follow_the_target_order():
    """Row m * B + b, slot k must be the prediction for token target_idx[b, m, k]."""
    torch.manual_seed(0)
    predictor = JEPAPredictor(embed_dim=32, predictor_dim=16, depth=0, num_heads=2)
    toks = tokens()
    context_idx = torch.tensor([[0, 1, 2], [4, 5, 6]])
    target_idx = torch.tensor([[[8, 9], [12, 13]], [[10, 11], [14, 15]]])
    out = predictor(torch.randn(2, 3, 32), toks.layout, context_idx, target_idx)
    assert out.shape == (4, 2, 32)
    # with no blocks, a query's output depends only on its position: recompute it per token
    positions = sincos_embedding(toks.layout.coords, 16)[0]
    for m in range(2):
        for b in range(2):
            for k in range(2):
                token = target_idx[b, m, k]
                expected = predictor.proj(predictor.norm(predictor.mask_token[0, 0] + positions[token]))
                torch.testing.assert_close(out[m * 2 + b, k], expected)


def test_permuting_targets_permutes_predictions_and_targets_alike():
    torch.manual_seed(0)
    predictor = JEPAPredictor(embed_dim=32, predictor_dim=16, depth=2, num_heads=2).eval()
    toks = tokens()
    context = torch.randn(2, 3, 32)
    context_idx = torch.tensor([[0, 1, 2], [4, 5, 6]])
    target_idx = torch.tensor([[[8, 9, 10], [12, 13, 14]], [[3, 11, 7], [14, 15, 2]]])
    perm = torch.tensor([2, 0, 1])
    pred = predictor(context, toks.layout, context_idx, target_idx)
    pred_perm = predictor(context, toks.layout, context_idx, target_idx[..., perm])
    torch.testing.assert_close(pred_perm, pred[:, perm], rtol=1e-5, atol=1e-5)
    teacher_out = torch.randn(2, 16, 32)
    target = gather_mask_major(teacher_out, target_idx)
    target_perm = gather_mask_major(teacher_out, target_idx[..., perm])
    torch.testing.assert_close(target_perm, target[:, perm])


def test_positions_every_layer_are_added_before_each_block():
    torch.manual_seed(0)
    encoder = TransformerEncoder(embed_dim=32, depth=2, num_heads=4, positions_every_layer=True).eval()
    toks = tokens()
    keep = torch.tensor([[0, 5, 9], [15, 2, 7]])
    positions = gather_tokens(toks.positions, keep)
    x = gather_tokens(toks.features, keep)
    for block in encoder.blocks:
        x = block(x + positions)
    torch.testing.assert_close(encoder(toks, keep=keep), encoder.norm(x))
    once = TransformerEncoder(embed_dim=32, depth=2, num_heads=4).eval()
    once.load_state_dict(encoder.state_dict())
    assert not torch.allclose(once(toks, keep=keep), encoder(toks, keep=keep))


def test_predictor_learns_positions_from_continuous_coordinates():
    torch.manual_seed(0)
    predictor = JEPAPredictor(embed_dim=32, predictor_dim=16, depth=1, num_heads=2, positions="mlp", coord_dim=3)
    centres = torch.randn(2, 10, 3)
    layout = TokenLayout("sequence", (10,), centres)
    context_idx = torch.tensor([[0, 1, 2], [3, 4, 5]])
    target_idx = torch.tensor([[[6, 7]], [[8, 9]]])
    context = torch.randn(2, 3, 32)
    out = predictor(context, layout, context_idx, target_idx)
    assert out.shape == (2, 2, 32)
    moved = TokenLayout("sequence", (10,), centres + torch.tensor([0.0, 0.0, 1.0]))
    assert not torch.allclose(predictor(context, moved, context_idx, target_idx), out)
    out.sum().backward()
    assert predictor.position_mlp[0].weight.grad is not None
    with pytest.raises(ValueError, match="positions must be"):
        JEPAPredictor(embed_dim=32, positions="learned")


def test_predictor_positions_every_layer_are_added_before_each_block():
    torch.manual_seed(0)
    grid, dim = (2, 4), 16
    layout = TokenLayout("grid", grid, grid_coords(grid))
    context_idx, target_idx = torch.tensor([[0, 1, 4, 5]]), torch.tensor([[[2, 3], [6, 7]]])
    context = torch.randn(1, 4, dim)
    every = JEPAPredictor(dim, 8, depth=2, num_heads=2, positions_every_layer=True).eval()
    positions = sincos_embedding(layout.coords, 8)
    sequence = torch.cat(
        [gather_tokens(positions, context_idx).repeat(2, 1, 1), gather_mask_major(positions, target_idx)], 1
    )
    x = torch.cat([every.embed(context).repeat(2, 1, 1), every.mask_token.expand(2, 2, -1)], dim=1)
    for block in every.blocks:
        x = block(x + sequence)
    expected = every.proj(every.norm(x[:, -2:]))
    torch.testing.assert_close(every(context, layout, context_idx, target_idx), expected)
    once = JEPAPredictor(dim, 8, depth=2, num_heads=2).eval()
    once.load_state_dict(every.state_dict())
    assert not torch.allclose(once(context, layout, context_idx, target_idx), expected)
    # with one block both add the positions exactly once
    every.blocks, once.blocks = every.blocks[:1], once.blocks[:1]
    torch.testing.assert_close(
        every(context, layout, context_idx, target_idx), once(context, layout, context_idx, target_idx)
    )


def test_dropout_options_reach_every_block_and_default_to_none():
    encoder = TransformerEncoder(embed_dim=32, depth=2, num_heads=2, dropout=0.1, attention_dropout=0.05)
    predictor = JEPAPredictor(32, predictor_dim=16, depth=2, num_heads=2, dropout=0.1, attention_dropout=0.05)
    for block in [*encoder.blocks, *predictor.blocks]:
        assert (block.attn.attn_drop.p, block.attn.proj_drop.p, block.mlp.drop1.p, block.mlp.drop2.p) == (
            0.05,
            0.1,
            0.1,
            0.1,
        )
    x = tokens()
    encoder.eval()
    torch.testing.assert_close(encoder(x), encoder(x))  # no dropout in evaluation
    encoder.train()
    assert not torch.allclose(encoder(x), encoder(x))
    default = TransformerEncoder(embed_dim=32, depth=2, num_heads=2)
    assert all(block.attn.attn_drop.p == block.mlp.drop1.p == 0.0 for block in default.blocks)


def test_joint_target_groups_are_one_sequence_of_all_targets():
    """target_groups="joint" equals the paper's predictor given one group holding every target (then split back
    mask-major); with a single group it is the paper's predictor exactly. Invalid combinations are refused."""
    torch.manual_seed(0)
    layout = TokenLayout("grid", (4, 4), grid_coords((4, 4)))
    separate = JEPAPredictor(32, predictor_dim=16, depth=2, num_heads=2)
    joint = JEPAPredictor(32, predictor_dim=16, depth=2, num_heads=2, target_groups="joint")
    joint.load_state_dict(separate.state_dict())
    batch, groups, per_group = 3, 4, 2
    context_idx = torch.stack([torch.randperm(16)[:5] for _ in range(batch)])
    target_idx = torch.stack([torch.randperm(16)[: groups * per_group] for _ in range(batch)]).view(batch, groups, -1)
    context = torch.randn(batch, 5, 32)
    out = joint(context, layout, context_idx, target_idx)
    assert out.shape == (groups * batch, per_group, 32)
    whole = separate(context, layout, context_idx, target_idx.flatten(1).unsqueeze(1))  # (B, M * Nt, D)
    expected = whole.unflatten(1, (groups, per_group)).transpose(0, 1).flatten(0, 1)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(out, separate(context, layout, context_idx, target_idx), atol=1e-4)
    one = target_idx[:, :1]
    assert torch.equal(joint(context, layout, context_idx, one), separate(context, layout, context_idx, one))
    with pytest.raises(ValueError, match="target_groups"):
        JEPAPredictor(32, predictor_dim=16, num_heads=2, target_groups="joint", attention="same_channel")
    with pytest.raises(ValueError, match="target_groups"):
        JEPAPredictor(32, predictor_dim=16, num_heads=2, target_groups="mixed")
    with pytest.raises(ValueError, match="context_every_layer=True"):
        JEPAPredictor(32, predictor_dim=16, num_heads=2, target_groups="joint", context_every_layer=True)
