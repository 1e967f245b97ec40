"""FSDP2 through Lightning's ``ModelParallelStrategy`` (``JEPA.shard``), launched through the CLI on 2 CPU processes
(gloo): the sharded run must train exactly as DDP does on the same data, masks and seeds, EMA teacher included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from jepa_lightning.methods.base import DTensor
from tests.conftest import TINY_IJEPA

MODEL_PARALLEL = [
    "--trainer.strategy=lightning.pytorch.strategies.ModelParallelStrategy",
    "--trainer.strategy.data_parallel_size=2",
    "--trainer.strategy.tensor_parallel_size=1",
]


class SaveWeights(L.Callback):
    """Writes, per rank, the whole student and teacher weights at the end of the fit (gathered from FSDP2 shards)
    and whether the parameters were sharded."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def on_fit_end(self, trainer, pl_module) -> None:
        def whole(module: torch.nn.Module) -> list[torch.Tensor]:
            return [(p.full_tensor() if isinstance(p, DTensor) else p).detach() for p in module.parameters()]

        record = {
            "student": whole(pl_module.student),
            "teacher": whole(pl_module.teacher),
            "predictor": whole(pl_module.predictor),
            "sharded": [isinstance(p, DTensor) for p in pl_module.parameters()],
        }
        torch.save(record, self.folder / f"rank{trainer.global_rank}.pt")


def fit_on_two_processes(folder: Path, strategy: list[str]) -> list[dict]:
    folder.mkdir()
    command = [
        sys.executable,
        "-m",
        "jepa_lightning",
        "fit",
        *TINY_IJEPA,
        "--trainer.accelerator=cpu",
        "--trainer.devices=2",
        *strategy,
        "--trainer.max_steps=3",
        "--trainer.limit_val_batches=1",
        "--trainer.logger=false",
        "--trainer.enable_checkpointing=false",
        "--diagnostics=false",
        f"--trainer.default_root_dir={folder}",
        "--trainer.callbacks=tests.distributed.test_model_parallel_fit.SaveWeights",
        f"--trainer.callbacks.folder={folder}",
    ]
    run = subprocess.run(command, cwd=Path(__file__).parents[2], timeout=300, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    return [torch.load(folder / f"rank{rank}.pt") for rank in (0, 1)]


@pytest.mark.distributed
def test_model_parallel_strategy_shards_every_parameter_and_trains_as_ddp_does(tmp_path):
    sharded = fit_on_two_processes(tmp_path / "fsdp", MODEL_PARALLEL)
    replicated = fit_on_two_processes(tmp_path / "ddp", ["--trainer.strategy=ddp"])
    for rank in (0, 1):
        assert all(sharded[rank]["sharded"]) and not any(replicated[rank]["sharded"])
        for name in ("student", "teacher", "predictor"):
            for fsdp, ddp in zip(sharded[rank][name], replicated[rank][name], strict=True):
                torch.testing.assert_close(fsdp, ddp, rtol=1e-4, atol=1e-5)
    moved = max(float((s - t).abs().max()) for s, t in zip(sharded[0]["student"], sharded[0]["teacher"]))
    assert moved > 0  # the teacher trails the student: the three steps trained both
