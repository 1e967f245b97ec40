"""The predictor's last block computes only the rows the predictor returns (its mask tokens): the same predictions
and gradients as running the whole block, for every predictor option, and the whole block where it cannot."""

import pytest
import torch

from jepa_lightning.nn import JEPAPredictor
from jepa_lightning.nn import predictor as predictor_module
from jepa_lightning.nn.encoder import computes_last_rows, transformer_blocks
from jepa_lightning.tokenizers import TokenLayout, grid_coords

LAYOUT = TokenLayout("grid", (4, 4), grid_coords((4, 4)))


def test_the_last_rows_of_a_block_equal_the_whole_blocks_rows_with_their_gradients():
    torch.manual_seed(0)
    block = transformer_blocks(16, 1, 2, 4.0, 0.0)[0]
    x = torch.randn(3, 9, 16, requires_grad=True)
    allowed = (torch.rand(3, 1, 9, 9) > 0.4) | torch.eye(9, dtype=torch.bool)
    for mask in (None, allowed):
        whole = block(x, attn_mask=mask)[:, -4:]
        rows = block(x, attn_mask=mask, rows=4)
        torch.testing.assert_close(rows, whole, rtol=1e-5, atol=1e-6)
        upstream = torch.randn_like(whole)
        inputs = [x, *block.parameters()]
        expected = torch.autograd.grad(whole, inputs, upstream)
        for got, want in zip(torch.autograd.grad(rows, inputs, upstream), expected):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def masks(batch: int = 3, groups: int = 4, per_group: int = 2, context: int = 5):
    generator = torch.Generator().manual_seed(1)
    order = torch.stack([torch.randperm(16, generator=generator) for _ in range(batch)])
    return order[:, :context], order[:, context : context + groups * per_group].reshape(batch, groups, per_group)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"target_groups": "joint"},
        {"attention": "same_channel"},
        {"conditioning": "token", "condition_dim": 3},
        {"conditioning": "concat", "condition_dim": 3},
        {"context_every_layer": True},
        {"positions_every_layer": True},
        {"activation_checkpointing": True},
        {"drop_path_rate": 0.5},
        {"output_head": True},
    ],
    ids=lambda options: ",".join(options) or "default",
)
def test_predictions_and_gradients_equal_the_whole_last_blocks(options, monkeypatch):
    torch.manual_seed(0)
    predictor = JEPAPredictor(32, predictor_dim=16, depth=2, num_heads=2, **options).train()
    context_idx, target_idx = masks()
    context = torch.randn(3, 5, 32)
    extra = {"cond": torch.randn(3, 3)} if "condition_dim" in options else {}
    valid = None if options else torch.rand(3, 16) > 0.2  # padding too, on the default predictor

    seen = []
    predictor.blocks[-1].mlp.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape[1]))

    def run() -> tuple[torch.Tensor, list[torch.Tensor]]:
        torch.manual_seed(5)  # the same drop-path draws for both
        out = predictor(context, LAYOUT, context_idx, target_idx, valid=valid, **extra)
        grads = torch.autograd.grad(out.square().sum(), list(predictor.parameters()), allow_unused=True)
        return out, grads

    pruned, pruned_grads = run()
    monkeypatch.setattr(predictor_module, "computes_last_rows", lambda block: False)
    whole, whole_grads = run()
    targets = 4 * 2 if options.get("target_groups") == "joint" else 2
    assert seen[0] == targets and seen[-1] > targets  # the last block's MLP saw the mask tokens only, then all
    torch.testing.assert_close(pruned, whole, rtol=1e-5, atol=1e-6)
    for got, want in zip(pruned_grads, whole_grads):
        if want is None:
            assert got is None
        else:
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_blocks_it_cannot_compute_in_part_run_whole():
    """Dropout would draw other numbers on fewer rows, post-norm blocks and adaptive layer norm compute otherwise;
    causal attention is refused."""
    assert computes_last_rows(transformer_blocks(16, 1, 2, 4.0, 0.0)[0])
    assert not computes_last_rows(transformer_blocks(16, 1, 2, 4.0, 0.0, dropout=0.1)[0])
    assert not computes_last_rows(transformer_blocks(16, 1, 2, 4.0, 0.0, attention_dropout=0.1)[0])
    assert not computes_last_rows(transformer_blocks(16, 1, 2, 4.0, 0.0, norm_placement="post")[0])
    with pytest.raises(ValueError, match="causal"):
        transformer_blocks(16, 1, 2, 4.0, 0.0)[0](torch.randn(1, 3, 16), is_causal=True, rows=1)
    torch.manual_seed(0)
    predictor = JEPAPredictor(32, predictor_dim=16, depth=2, num_heads=2, conditioning="adaln", condition_dim=3)
    seen = []
    predictor.blocks[-1].mlp.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape[1]))
    context_idx, target_idx = masks()
    predictor(torch.randn(3, 5, 32), LAYOUT, context_idx, target_idx, cond=torch.randn(3, 3))
    assert seen == [5 + 2]
