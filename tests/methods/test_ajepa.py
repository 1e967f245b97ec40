"""The A-JEPA preset: paper defaults, curriculum masking over training, a few steps through the CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from datamodules.audio import AudioDataModule
from jepa_lightning.cli import main
from jepa_lightning.masks import (
    CurriculumMaskSampler,
    FrequencyBandMaskSampler,
    MaskSampler,
    MultiBlockMaskSampler,
    RandomChoiceMaskSampler,
    TimeSpanMaskSampler,
)
from jepa_lightning.methods import AJEPA
from jepa_lightning.methods.ajepa import audio_curriculum
from jepa_lightning.nn import TransformerEncoder
from jepa_lightning.tokenizers import InputSpec, TokenLayout
from jepa_lightning.tokens import grid_coords
from tests.conftest import FAST_TRAINER_ARGS, fast_trainer

RATE = 8000
SPEC = InputSpec("audio", channels=1, sample_rate=RATE)


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["jepa-lightning"])


def audio_folder(root: Path) -> Path:
    """Two classes of 1 s clips at 8 kHz: low and high chirps, 4 files each, as FLAC and OGG."""
    t = np.arange(RATE) / RATE
    for number, (name, base) in enumerate((("low", 200.0), ("high", 1500.0))):
        (root / name).mkdir(parents=True)
        for k in range(4):
            wave = (0.3 * np.sin(2 * np.pi * (base + 50 * k) * t * (1 + t))).astype(np.float32)
            options = {"subtype": "PCM_16"} if number == 0 else {"format": "OGG", "subtype": "VORBIS"}
            soundfile.write(root / name / f"{k}.{'flac' if number == 0 else 'ogg'}", wave, RATE, **options)
    return root


def tiny(**kwargs) -> AJEPA:
    """32 mels in 4 x 8 patches: an 8 x 12 (frequency, time) grid for a 1 s clip at 8 kHz."""
    defaults = {
        "encoder": TransformerEncoder(embed_dim=16, depth=1, num_heads=2),
        "n_mels": 32,
        "patch_size": (4, 8),
        "predictor_dim": 8,
        "predictor_depth": 1,
        "predictor_heads": 2,
        "input_spec": SPEC,
    }
    return AJEPA(**{**defaults, **kwargs})


def test_preset_takes_the_paper_defaults():
    model = AJEPA(encoder=TransformerEncoder(embed_dim=32, depth=1, num_heads=2), input_spec=SPEC)
    tokenizer = model.student.tokenizer
    assert (tokenizer.n_mels, tokenizer.patch_size, tokenizer.hop_length) == (128, (16, 16), RATE // 100)
    assert (model.loss_kind, model.target_norm) == ("mse", "layer_norm")
    assert (model.teacher.momentum, model.teacher.final_momentum) == (0.996, 1.0)
    assert (model.predictor.predictor_dim, len(model.predictor.blocks)) == (384, 6)
    sampler = model.mask_sampler
    assert isinstance(sampler, CurriculumMaskSampler) and (sampler.start, sampler.end) == (0.0, 1.0)
    assert isinstance(sampler.early, MultiBlockMaskSampler) and isinstance(sampler.late, RandomChoiceMaskSampler)
    assert [type(late) for late in sampler.late.samplers] == [TimeSpanMaskSampler, FrequencyBandMaskSampler]
    with pytest.raises(ValueError, match="start < end"):
        audio_curriculum(0.5, 0.5)


def family(target_idx: torch.Tensor, grid: tuple[int, int]) -> str:
    """'time' when every target group is whole time columns, 'frequency' when whole rows, else 'block'."""
    rows, cols = grid
    kinds = set()
    for group in target_idx.reshape(-1, target_idx.shape[-1]):
        cells = torch.zeros(rows * cols, dtype=torch.bool)
        cells[group] = True
        cells = cells.view(rows, cols)
        whole_columns = torch.equal(cells.any(0), cells.all(0))
        whole_rows = torch.equal(cells.any(1), cells.all(1))
        kinds.add("time" if whole_columns and not whole_rows else "frequency" if whole_rows else "block")
    assert len(kinds) == 1, kinds
    return kinds.pop()


def test_curriculum_moves_from_blocks_to_time_frequency_masks():
    grid = (8, 10)
    layout = TokenLayout("grid", grid, grid_coords(grid))
    sampler = tiny().mask_sampler

    def families(progress: float) -> set[str]:
        return {
            family(sampler(layout, 4, torch.Generator().manual_seed(seed), "cpu", progress)[1], grid)
            for seed in range(12)
        }

    assert families(0.0) == {"block"}
    assert families(1.0) == {"time", "frequency"}
    assert families(0.5) == {"block", "time", "frequency"}


class Recording(MaskSampler):
    """Forwards to ``sampler`` and notes ``name`` in ``calls`` each time it is used."""

    def __init__(self, sampler: MaskSampler, name: str, calls: list[str]) -> None:
        self.sampler, self.name, self.calls = sampler, name, calls

    def __call__(self, layout, batch_size, generator, device, progress=0.0):
        self.calls.append(self.name)
        return self.sampler(layout, batch_size, generator, device, progress)


def test_curriculum_switches_mask_family_during_training(tmp_path):
    """With the switch over the first quarter of 4 steps, step 0 uses blocks and steps 1-3 the late masks."""
    model = tiny(mask_sampler=audio_curriculum(0.0, 0.25))
    calls: list[str] = []
    model.mask_sampler.early = Recording(model.mask_sampler.early, "block", calls)
    model.mask_sampler.late = Recording(model.mask_sampler.late, "time-frequency", calls)
    datamodule = AudioDataModule(path=str(audio_folder(tmp_path / "audio")), sample_rate=RATE, clip_seconds=1.0)
    datamodule.batch_size = 2
    trainer = fast_trainer(tmp_path, max_steps=4, limit_val_batches=0)
    trainer.fit(model, datamodule=datamodule)
    assert calls == ["block", "time-frequency", "time-frequency", "time-frequency"]


def test_one_step_on_a_batch():
    model = tiny()
    x = torch.randn(2, 1, RATE)
    loss, *_ = model.masked_prediction(x, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and model.embed(x).shape == (2, 16)
    assert model.student(x).shape == (2, 8 * 12, 16)


def test_rows_readout_averages_time_within_each_frequency_row():
    model = tiny(readout="rows")
    x = torch.randn(2, 1, RATE)
    tokens = model.target_network(x)  # (2, 8 * 12, 16), frequency-major
    expected = torch.cat([tokens[:, row * 12 : (row + 1) * 12].mean(dim=1) for row in range(8)], dim=1)
    torch.testing.assert_close(model.embed(x), expected)
    assert model.embed(x).shape == (2, 8 * 16)
    with pytest.raises(ValueError, match="readout"):
        tiny(readout="max")


def test_trains_through_the_cli_on_an_audio_folder(tmp_path):
    folder = audio_folder(tmp_path / "audio")
    main(
        [
            "fit",
            "--model=jepa_lightning.methods.AJEPA",
            "--model.encoder=jepa_lightning.nn.TransformerEncoder",
            "--model.encoder.embed_dim=16",
            "--model.encoder.depth=1",
            "--model.encoder.num_heads=2",
            "--model.n_mels=32",
            "--model.patch_size=[4, 8]",
            "--model.predictor_dim=8",
            "--model.predictor_depth=1",
            "--model.predictor_heads=2",
            "--model.readout=rows",
            "--data=datamodules.audio.AudioDataModule",
            f"--data.path={folder}",
            f"--data.sample_rate={RATE}",
            "--data.clip_seconds=1.0",
            "--data.batch_size=2",
            "--trainer.max_steps=2",
            "--trainer.limit_val_batches=1",
            *FAST_TRAINER_ARGS,
            f"--trainer.default_root_dir={tmp_path}",
            "--seed_everything=0",
        ]
    )


def test_silence_db_keeps_silent_columns_out_of_the_readout_and_the_step():
    """A 0.5 s chirp then 0.5 s of zeros: the rows readout averages the sound columns only."""
    model = tiny(readout="rows", silence_db=30)
    assert model.student.tokenizer.silence_db == 30
    t = torch.arange(RATE // 2) / RATE
    x = torch.cat([0.3 * torch.sin(2 * torch.pi * 300 * t * (1 + t)), torch.zeros(RATE // 2)]).expand(2, 1, -1)
    encoded, valid = model.embed_tokens(x)
    columns = valid.view(2, 8, 12)[:, 0]
    assert columns[:, :6].all() and not columns[:, 8:].any()  # 80 ms columns: the chirp ends within column 6
    grid, keep = encoded.view(2, 8, 12, 16), valid.view(2, 8, 12, 1).float()
    expected = ((grid * keep).sum(2) / keep.sum(2)).flatten(1)
    torch.testing.assert_close(model.embed(x), expected)
    assert not torch.allclose(model.embed(x), grid.mean(2).flatten(1))
    loss, *_ = model.masked_prediction(x, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss)
