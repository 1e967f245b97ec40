"""Activation checkpointing of the encoder and predictor blocks: same loss and gradients, fewer saved tensors."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from jepa_lightning.masks import mask_generator
from jepa_lightning.nn import JEPAPredictor, TransformerEncoder
from jepa_lightning.tokenizers import TokenLayout, Tokens, grid_coords, sincos_embedding
from tests.conftest import tiny_ijepa


def grid_tokens(batch: int = 2, grid: tuple[int, int] = (4, 4), dim: int = 32) -> Tokens:
    coords = grid_coords(grid)
    valid = torch.ones(batch, coords.shape[1], dtype=torch.bool)
    valid[0, -3:] = False  # padding: the masked attention path
    return Tokens(
        torch.randn(batch, coords.shape[1], dim),
        sincos_embedding(coords, dim),
        TokenLayout("grid", grid, coords),
        valid,
    )


def saved_tensors_and_grads(module: nn.Module, loss_of: Callable[[], Tensor]) -> tuple[Tensor, int, list[Tensor]]:
    """The loss, how many tensors autograd saved for the backward pass, and the parameters' gradients."""
    count = 0

    def pack(tensor: Tensor) -> Tensor:
        nonlocal count
        count += 1
        return tensor

    module.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        torch.manual_seed(1)  # dropout and drop-path draw the same masks in both runs
        loss = loss_of()
    loss.backward()
    return loss.detach(), count, [p.grad.clone() for p in module.parameters() if p.grad is not None]


def block_calls(blocks: nn.ModuleList) -> list[int]:
    """Counts runs of each block's attention (a checkpointed block runs again in the backward pass; forward hooks
    do not fire during that re-run, so the method itself is wrapped; the attention, not the block's ``forward``,
    because an adaptive-layer-norm predictor runs the block's parts itself)."""
    calls = [0] * len(blocks)
    for i, block in enumerate(blocks):

        def counted(*args, i=i, forward=block.attn.forward, **kwargs):
            calls[i] += 1
            return forward(*args, **kwargs)

        block.attn.forward = counted
    return calls


def assert_same_and_cheaper(plain: nn.Module, checkpointed: nn.Module, loss_of: Callable[[nn.Module], Tensor]) -> None:
    plain_calls, checkpointed_calls = block_calls(plain.blocks), block_calls(checkpointed.blocks)
    loss, saved, grads = saved_tensors_and_grads(plain, lambda: loss_of(plain))
    loss_ckpt, saved_ckpt, grads_ckpt = saved_tensors_and_grads(checkpointed, lambda: loss_of(checkpointed))
    torch.testing.assert_close(loss_ckpt, loss, rtol=0, atol=0)
    assert len(grads) == len(grads_ckpt) == len(list(plain.parameters()))
    for grad, grad_ckpt in zip(grads, grads_ckpt, strict=True):
        torch.testing.assert_close(grad_ckpt, grad, rtol=1e-6, atol=1e-7)
    assert saved_ckpt < saved / 2, (saved_ckpt, saved)  # activations inside the blocks are not kept
    assert plain_calls == [1] * len(plain.blocks) and checkpointed_calls == [2] * len(plain.blocks)  # re-run


def test_encoder_checkpointing_keeps_loss_and_gradients():
    torch.manual_seed(0)
    options = {"embed_dim": 32, "depth": 3, "num_heads": 4, "dropout": 0.1, "drop_path_rate": 0.2}
    plain = TransformerEncoder(**options)
    checkpointed = TransformerEncoder(**options, activation_checkpointing=True)
    checkpointed.load_state_dict(plain.state_dict())
    tokens = grid_tokens()
    keep = torch.tensor([[0, 5, 9, 3, 15], [15, 2, 7, 1, 4]])
    assert_same_and_cheaper(plain, checkpointed, lambda encoder: encoder(tokens, keep=keep).square().mean())
    with torch.no_grad():  # nothing to recompute without gradients: one pass, same output
        torch.testing.assert_close(checkpointed.eval()(tokens), plain.eval()(tokens), rtol=0, atol=0)


@pytest.mark.parametrize("conditioning", ["none", "token", "concat", "adaln"])
def test_predictor_checkpointing_keeps_loss_and_gradients(conditioning):
    torch.manual_seed(0)
    options = {"embed_dim": 32, "predictor_dim": 16, "depth": 2, "num_heads": 2, "dropout": 0.1}
    if conditioning != "none":
        options |= {"conditioning": conditioning, "condition_dim": 3}
    plain = JEPAPredictor(**options)
    checkpointed = JEPAPredictor(**options, activation_checkpointing=True)
    checkpointed.load_state_dict(plain.state_dict())
    tokens = grid_tokens()
    context = torch.randn(2, 6, 32)
    context_idx = torch.tensor([[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
    target_idx = torch.tensor([[[12, 13], [8, 9]], [[0, 1], [14, 15]]])

    def loss_of(predictor: nn.Module) -> Tensor:
        cond = torch.randn(2, 3) if conditioning != "none" else None
        return predictor(context, tokens.layout, context_idx, target_idx, valid=tokens.valid, cond=cond).square().mean()

    assert_same_and_cheaper(plain, checkpointed, loss_of)


def test_jepa_keyword_checkpoints_the_student_and_predictor(digits_batch):
    torch.manual_seed(0)
    plain = tiny_ijepa()
    checkpointed = tiny_ijepa(activation_checkpointing=True)
    checkpointed.load_state_dict(plain.state_dict())
    assert checkpointed.student.encoder.activation_checkpointing and checkpointed.predictor.activation_checkpointing
    assert not plain.student.encoder.activation_checkpointing and not plain.predictor.activation_checkpointing

    def loss_of(model: nn.Module) -> Tensor:
        return model.masked_prediction(digits_batch[:8], mask_generator(0, 0, 0, "cpu")).loss

    losses, counts, grads = zip(*(saved_tensors_and_grads(m, lambda m=m: loss_of(m)) for m in (plain, checkpointed)))
    torch.testing.assert_close(losses[1], losses[0], rtol=0, atol=0)
    for grad, grad_ckpt in zip(*grads, strict=True):
        torch.testing.assert_close(grad_ckpt, grad, rtol=1e-6, atol=1e-7)
    assert counts[1] < counts[0]
