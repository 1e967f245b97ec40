"""A diverging run stops at once with a message, never saves non-finite weights, and diagnostics report NaN."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from datamodules import ImageDataModule
from jepa_lightning.callbacks import CollapseMonitor
from jepa_lightning.methods.base import DivergenceError, non_finite_on_any_rank
from jepa_lightning.metrics import EmbeddingSpectrum, RankMe, rankme
from tests.conftest import fast_trainer, tiny_ijepa
from tests.distributed import run_on_ranks


def checkpoints_are_finite(folder) -> list[str]:
    found = sorted(folder.glob("*.ckpt"))
    for path in found:
        state = torch.load(path, weights_only=True)["state_dict"]
        assert all(torch.isfinite(value).all() for value in state.values() if value.is_floating_point()), path
    return [path.name for path in found]


def test_a_nan_loss_stops_the_run_before_its_backward_pass(tmp_path):
    L.seed_everything(0)
    model = tiny_ijepa(lr=1e6, warmup_fraction=0.0)
    saver = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=1, save_top_k=-1)
    trainer = fast_trainer(tmp_path, max_epochs=5, limit_val_batches=0, callbacks=[saver], enable_checkpointing=True)
    with pytest.raises(DivergenceError, match=r"Training diverged at step \d+ \(epoch \d+\): the training loss is nan"):
        trainer.fit(model, ImageDataModule(image_size=16, batch_size=32))
    assert trainer.global_step < 5 * 35  # stopped early, not after five epochs on NaN
    assert checkpoints_are_finite(tmp_path / "ckpt")  # every step before the NaN was saved, finite


class BreakWeights(L.Callback):
    """Makes a weight NaN after ``step`` optimizer steps, as a blown-up update would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                next(pl_module.student.parameters()).fill_(float("nan"))


def test_a_checkpoint_with_non_finite_weights_is_never_written(tmp_path):
    model = tiny_ijepa()
    saver = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=1, save_top_k=-1)
    trainer = fast_trainer(
        tmp_path, max_steps=6, limit_val_batches=0, callbacks=[BreakWeights(3), saver], enable_checkpointing=True
    )
    with pytest.raises(DivergenceError, match=r"at step 3 .*the weights student\.\S+ are not finite; no checkpoint"):
        trainer.fit(model, ImageDataModule(image_size=16, batch_size=32))
    assert checkpoints_are_finite(tmp_path / "ckpt") == ["epoch=0-step=1.ckpt", "epoch=0-step=2.ckpt"]


class InfGradient(L.Callback):
    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if trainer.global_step == 1:
            next(pl_module.predictor.parameters()).grad.fill_(float("inf"))


def test_non_finite_gradients_stop_the_run_when_asked(tmp_path):
    data = ImageDataModule(image_size=16, batch_size=32)
    quiet = fast_trainer(tmp_path, max_steps=3, limit_val_batches=0, callbacks=[InfGradient()])
    with pytest.raises(DivergenceError, match=r"at step 2 .*the training loss is nan"):
        quiet.fit(tiny_ijepa(), data)  # off by default: the step runs, its weights turn NaN, the next loss stops it
    trainer = fast_trainer(tmp_path, max_steps=3, limit_val_batches=0, callbacks=[InfGradient()])
    with pytest.raises(DivergenceError, match=r"at step 1 .*the gradients of predictor\.\S+ are not finite"):
        trainer.fit(tiny_ijepa(stop_on_nonfinite_gradients=True), data)


def test_the_message_says_what_to_try():
    model = tiny_ijepa()
    model._trainer = type(
        "T",
        (),
        {"global_step": 7, "current_epoch": 1, "optimizers": [], "precision": "bf16-mixed", "gradient_clip_val": None},
    )()
    message = model._divergence_message("the training loss is nan")
    assert "at step 7 (epoch 1)" in message and "--model.init_args.lr" in message
    assert "--trainer.precision 32-true instead of bf16-mixed" in message and "--trainer.gradient_clip_val" in message


def _one_rank_nan(rank: int) -> bool:
    return non_finite_on_any_rank(torch.tensor(float("nan") if rank == 1 else 0.5))


def test_every_rank_stops_when_one_rank_diverges(tmp_path):
    assert run_on_ranks(_one_rank_nan, tmp_path) == [True, True]


def test_diagnostics_report_non_finite_embeddings_instead_of_failing():
    embeddings = torch.randn(64, 8)
    embeddings[3, 2] = float("nan")
    assert math.isnan(rankme(embeddings))
    metric = RankMe()
    metric.update(embeddings)
    with pytest.warns(UserWarning, match="1 of 64 embeddings hold NaN or inf values"):
        assert math.isnan(metric.compute())
    spectrum = EmbeddingSpectrum()
    spectrum.update(embeddings)
    assert spectrum.compute().isnan().all() and spectrum.compute().shape == (8,)


def test_collapse_monitor_counts_nan_as_collapse():
    signals = CollapseMonitor().signals({"embedding_std": float("nan"), "rankme": 3.0}, {})
    assert signals == ["spread of the normalised val embeddings (embedding_std) nan (not finite)"]
