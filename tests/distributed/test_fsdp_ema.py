"""FSDP2 (``torch.distributed.fsdp.fully_shard``) with the EMA teacher, on 2 CPU processes (gloo).

Lightning's ``FSDPStrategy`` refuses ``accelerator="cpu"``, so the check uses torch's own FSDP2: a tiny V-JEPA's
student, predictor and EMA teacher are sharded over both ranks, every parameter becoming a DTensor that holds half of
it; two training steps (every rank on the same global batch, so the averaged gradients are those of one process) and
the library's EMA update run on the shards. The sharded loss, student and teacher must equal an unsharded copy of the
model trained alongside in the same process.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor

from jepa_lightning.inputs import InputSpec
from jepa_lightning.methods import VJEPA
from jepa_lightning.nn import TransformerEncoder
from tests.distributed import run_on_ranks

pytestmark = pytest.mark.distributed

SPEC = InputSpec("video", channels=3, image_size=(16, 16), frames=4)
MOMENTA = (0.9, 0.5)


def shard_backbone(backbone: nn.Module, mesh) -> None:
    """Shard what JEPA calls on its own: the tokenizer, each encoder block and the encoder."""
    fully_shard(backbone.tokenizer, mesh=mesh)
    for block in backbone.encoder.blocks:
        fully_shard(block, mesh=mesh)
    fully_shard(backbone.encoder, mesh=mesh)


def full(module: nn.Module) -> list[torch.Tensor]:
    return [p.full_tensor() if isinstance(p, DTensor) else p.detach() for p in module.parameters()]


def train_two_steps(model: VJEPA, x: torch.Tensor) -> list[torch.Tensor]:
    """Two SGD steps, each followed by the library's EMA update of the teacher; the losses."""
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    losses = []
    for step, momentum in enumerate(MOMENTA):
        loss = model.masked_prediction(x, torch.Generator().manual_seed(step)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        model.teacher.update(model.ema_source, momentum)
        losses.append(loss.detach())
    return losses


def sharded_vs_unsharded(rank: int) -> dict[str, object]:
    mesh = init_device_mesh("cpu", (2,))
    torch.manual_seed(0)
    model = VJEPA(
        encoder=TransformerEncoder(embed_dim=24, depth=2, num_heads=2),
        patch_size=8,
        predictor_dim=12,
        predictor_depth=1,
        predictor_heads=2,
        input_spec=SPEC,
    )
    with torch.no_grad():  # a student away from its teacher, so that every EMA update moves the teacher
        for parameter in model.student.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    reference = copy.deepcopy(model)
    shard_backbone(model.student, mesh)
    shard_backbone(model.teacher.module, mesh)
    fully_shard(model.predictor, mesh=mesh)
    sharded = [isinstance(p, DTensor) for p in model.teacher.module.parameters()]
    x = torch.randn(4, 3, 4, 16, 16, generator=torch.Generator().manual_seed(1))  # the same batch on both ranks
    teacher_before = full(model.teacher.module)
    losses, reference_losses = train_two_steps(model, x), train_two_steps(reference, x)
    return {
        "all_sharded": all(sharded),
        "share": [(p.to_local().numel(), p.numel()) for p in model.teacher.module.parameters()],
        "losses": (torch.stack(losses), torch.stack(reference_losses)),
        "teacher": (full(model.teacher.module), full(reference.teacher.module)),
        "student": (full(model.student), full(reference.student)),
        "teacher_moved": max(float((a - b).abs().max()) for a, b in zip(full(model.teacher.module), teacher_before)),
    }


def test_the_ema_update_on_fsdp2_shards_equals_the_unsharded_update(tmp_path):
    for result in run_on_ranks(sharded_vs_unsharded, tmp_path):
        assert result["all_sharded"]
        torch.testing.assert_close(*result["losses"], rtol=1e-5, atol=1e-6)
        for name in ("student", "teacher"):
            ours, reference = result[name]
            for a, b in zip(ours, reference, strict=True):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        assert result["teacher_moved"] > 1e-3  # the updates did something
        assert sum(local for local, _ in result["share"]) * 2 <= sum(n + 2 for _, n in result["share"])  # a half
