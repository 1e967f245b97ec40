"""I-JEPA under DDP with 2 CPU processes (gloo), launched through the CLI as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest

from tests.conftest import TINY_IJEPA


class RecordReplicaState(L.Callback):
    """Writes, per rank, checksums of the student and teacher weights and the first step's target masks."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.first_target_idx: list[list[int]] | None = None
        self.first_context_length: int | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        """Record the targets the method really draws on its first training step."""
        sampler = pl_module.mask_sampler
        draw = sampler.configurations

        def recording_configurations(*args, **kwargs):
            configurations = draw(*args, **kwargs)
            context_idx, target_idx = configurations[0]
            if self.first_target_idx is None:
                self.first_target_idx = target_idx[0].tolist()
                self.first_context_length = context_idx.shape[1]
            return configurations

        sampler.configurations = recording_configurations

    def on_fit_end(self, trainer, pl_module) -> None:
        record = {
            "student": float(sum(p.double().sum() for p in pl_module.student.parameters())),
            "teacher": float(sum(p.double().sum() for p in pl_module.teacher.parameters())),
            "teacher_requires_grad": any(p.requires_grad for p in pl_module.teacher.parameters()),
            "first_target_idx": self.first_target_idx,
            "first_context_length": self.first_context_length,
            "first_sample": trainer.train_dataloader.sampler.rank,
        }
        (self.folder / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


@pytest.mark.parametrize(
    "regularizer",
    [[], ["--model.regularizer=vicreg", "--model.regularizer_input=tokens"], ["--model.teacher_scope=encoder"]],
    ids=["plain", "token_vicreg", "encoder_teacher"],
)
def test_two_process_ddp_keeps_replicas_identical_and_draws_rank_specific_masks(tmp_path, regularizer):
    """Also with VICReg on every context token, whose token counts differ between the ranks, and with an EMA teacher
    of the encoder only (the shared tokenizer is trained by the student alone)."""
    command = [
        sys.executable,
        "-m",
        "jepa_lightning",
        "fit",
        *TINY_IJEPA,
        *regularizer,
        "--trainer.accelerator=cpu",
        "--trainer.devices=2",
        "--trainer.strategy=ddp",
        "--trainer.max_steps=3",
        "--trainer.limit_val_batches=1",
        "--trainer.logger=false",
        "--trainer.enable_checkpointing=false",
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.callbacks=tests.distributed.test_ddp_fit.RecordReplicaState",
        f"--trainer.callbacks.folder={tmp_path}",
    ]
    subprocess.run(command, check=True, cwd=Path(__file__).parents[2], timeout=300, capture_output=True)
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert rank0["student"] == rank1["student"]
    assert rank0["teacher"] == rank1["teacher"]
    assert rank0["teacher"] != rank0["student"]
    assert not rank0["teacher_requires_grad"]
    assert rank0["first_target_idx"] != rank1["first_target_idx"]
    assert (rank0["first_sample"], rank1["first_sample"]) == (0, 1)
    assert rank0["first_context_length"] != rank1["first_context_length"]
