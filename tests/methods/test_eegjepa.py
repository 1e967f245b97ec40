"""The EEG-JEPA preset: paper defaults, channel-group tokens (no channel silently dropped), V-JEPA multi-block masks
on the (channel group, time patch) grid, and a few training steps through the CLI on tiny UEA .ts trials."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from jepa_lightning.cli import main
from jepa_lightning.masks import BlockUnionMaskSampler, RandomChoiceMaskSampler, TubeMaskSampler, mask_generator
from jepa_lightning.methods import EEGJEPA
from jepa_lightning.nn import TransformerEncoder
from jepa_lightning.tokenizers import ChannelPatchTokenizer, InputSpec, TokenLayout, grid_coords
from tests.conftest import FAST_TRAINER_ARGS

TINY = [
    "--model=jepa_lightning.methods.EEGJEPA",
    "--model.encoder=jepa_lightning.nn.TransformerEncoder",
    "--model.encoder.embed_dim=16",
    "--model.encoder.depth=1",
    "--model.encoder.num_heads=2",
    "--model.patch_length=8",
    "--model.predictor_dim=8",
    "--model.predictor_depth=1",
    "--model.predictor_heads=2",
    "--data=datamodules.eeg.EEGDataModule",
    "--data.ts_sample_rate=32",
    "--data.batch_size=4",
    "--trainer.max_steps=2",
    "--trainer.limit_val_batches=1",
    *FAST_TRAINER_ARGS,
    "--seed_everything=0",
]


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["jepa-lightning"])


def tiny_ts(path: Path, channels: int = 6, trials: int = 12) -> Path:
    """A UEA .ts file of ``trials`` trials of ``channels`` x 64 samples, two classes."""
    rng = np.random.default_rng(0)
    lines = ["@problemName tiny", f"@dimensions {channels}", "@equalLength true", "@classLabel true a b", "@data"]
    for number in range(trials):
        rows = rng.normal(size=(channels, 64)).round(3)
        lines.append(":".join(",".join(map(str, row)) for row in rows) + (":a" if number % 2 else ":b"))
    path.write_text("\n".join(lines) + "\n")
    return path


def small(channels: int = 6, **kwargs) -> EEGJEPA:
    spec = InputSpec("eeg", channels=channels, sample_rate=32.0, num_classes=2)
    options = {"encoder": TransformerEncoder(16, 1, 2), "predictor_dim": 8, "predictor_depth": 1, "predictor_heads": 2}
    return EEGJEPA(input_spec=spec, **{**options, **kwargs})


def test_paper_defaults():
    model = small(channels=8)
    tokenizer = model.student.tokenizer
    assert (tokenizer.patch_length, tokenizer.channel_group, tokenizer.rows) == (30, 4, 2)
    assert tokenizer.channel_independent and not tokenizer.instance_norm
    assert (model.loss_kind, model.target_norm) == ("l1", "layer_norm")
    assert (model.teacher.momentum, model.teacher.final_momentum, model.teacher.horizon) == (0.998, 1.0, 1.25)
    sampler = model.mask_sampler
    assert isinstance(sampler, RandomChoiceMaskSampler)
    assert [(s.num_blocks, s.scale, s.aspect) for s in sampler.samplers] == [
        (8, 0.15, (0.75, 1.5)),
        (2, 0.7, (0.75, 1.5)),
    ]
    signature = inspect.signature(EEGJEPA).parameters
    assert (signature["predictor_dim"].default, signature["predictor_depth"].default) == (384, 12)  # V-JEPA's


def test_default_encoder_is_vit_base(monkeypatch):
    sizes = []

    def from_size(size: str, **kwargs) -> TransformerEncoder:
        sizes.append(size)
        return TransformerEncoder(16, 1, 2)

    monkeypatch.setattr(TransformerEncoder, "from_size", staticmethod(from_size))
    EEGJEPA(input_spec=InputSpec("eeg", channels=8, sample_rate=250.0), predictor_dim=8, predictor_depth=1)
    assert sizes == ["base"]


def test_leftover_channels_are_an_error_or_padded_never_dropped():
    with pytest.raises(ValueError, match=r"6 channels do not split into groups of channel_group=4: the last 2"):
        small(channels=6)
    model = small(channels=6, channel_group=4, pad_channels=True, patch_length=8)
    x = torch.randn(2, 6, 32)
    tokens = model.student.tokenizer(x)
    assert tokens.layout.shape == (2, 4) and tokens.features.shape == (2, 8, 16)
    # the second group holds channels 4 and 5 and two zero channels
    proj = model.student.tokenizer.proj
    patch = torch.cat([x[0, 4, 8:16], x[0, 5, 8:16], torch.zeros(16)])
    torch.testing.assert_close(tokens.features[0, 4 + 1], proj(patch))
    assert model.student(x).shape == (2, 8, 16)


def test_channel_group_tokens_are_channel_major_patches_of_the_group():
    spec = InputSpec("eeg", channels=4, sample_rate=32.0)
    tokenizer = ChannelPatchTokenizer(spec, 8, patch_length=5, instance_norm=False, channel_group=2)
    x = torch.randn(3, 4, 20)
    tokens = tokenizer(x)
    assert tokens.layout.shape == (2, 4) and tokens.layout.coords[0, 5].tolist() == [1.0, 1.0]
    for row in range(2):
        for step in range(4):
            patch = x[:, 2 * row : 2 * row + 2, 5 * step : 5 * step + 5].flatten(1)
            torch.testing.assert_close(tokens.features[:, row * 4 + step], tokenizer.proj(patch))
    with pytest.raises(ValueError, match="channel_independent=False"):
        ChannelPatchTokenizer(spec, 8, channel_independent=False, channel_group=2)


def test_rows_readout_pools_time_per_channel_group_and_concatenates_groups():
    model = small(channel_group=2, patch_length=8, readout="rows")
    x = torch.randn(3, 6, 32)  # 3 channel groups x 4 time patches
    tokens = model.target_network(x)
    expected = torch.cat([tokens[:, group * 4 : group * 4 + 4].mean(dim=1) for group in range(3)], dim=1)
    torch.testing.assert_close(model.embed(x), expected)
    assert model.embed(x).shape == (3, 3 * 16)
    mean = small(channel_group=2, patch_length=8)
    mean.load_state_dict(model.state_dict())
    torch.testing.assert_close(mean.embed(x), expected.unflatten(1, (3, 16)).mean(dim=1))  # default: all tokens
    with pytest.raises(ValueError, match="readout must be one of"):
        small(readout="token")


def grid(shape: tuple[int, int]) -> TokenLayout:
    return TokenLayout("grid", shape, grid_coords(shape))


@pytest.mark.parametrize(("blocks", "scale"), [(8, 0.15), (2, 0.7), (1, 0.3)])
def test_block_union_masks(blocks, scale):
    height, width = 6, 14
    sampler = BlockUnionMaskSampler(blocks, scale)
    context, target = sampler(grid((height, width)), 32, mask_generator(0, 1, 0, "cpu"), "cpu")
    assert target.shape[:2] == (32, 1)
    for b in range(32):
        ctx, tgt = set(context[b].tolist()), set(target[b, 0].tolist())
        assert len(ctx) == context.shape[1] and len(tgt) == target.shape[-1] and ctx.isdisjoint(tgt)
    one_context, one_target = sampler(grid((height, width)), 1, mask_generator(0, 2, 0, "cpu"), "cpu")
    covered = sorted(one_context[0].tolist() + one_target[0, 0].tolist())
    assert covered == list(range(height * width))  # one sample: nothing truncated, context = complement
    if blocks == 1:  # a single block is a filled rectangle strictly inside the grid
        rows, cols = one_target[0, 0] // width, one_target[0, 0] % width
        h, w = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert h * w == one_target.shape[-1] and h < height and w < width
        assert abs(h * w - scale * height * width) <= max(h, w)


def test_block_union_masks_reject_grids_they_cannot_leave_a_context_in():
    sampler = BlockUnionMaskSampler(num_blocks=200, scale=0.5, max_tries=3)  # 1 x 1 blocks: all 4 cells covered
    with pytest.raises(ValueError, match="cover the whole"):
        sampler(grid((2, 2)), 4, mask_generator(0, 0, 0, "cpu"), "cpu")
    with pytest.raises(ValueError, match="2-D token grid"):
        sampler(TokenLayout("sequence", (8,), grid_coords((8,))), 4, mask_generator(0, 0, 0, "cpu"), "cpu")


@pytest.mark.parametrize("mask_sampler", [None, TubeMaskSampler()])
def test_one_step_on_a_batch(mask_sampler):
    model = small(channel_group=2, patch_length=8, mask_sampler=mask_sampler)
    x = torch.randn(4, 6, 128)
    loss, *_ = model.masked_prediction(x, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and model.embed(x).shape == (4, 16)
    assert model.student(x).shape == (4, 3 * 16, 16)


def test_trains_through_the_cli_on_ts_trials_and_probes_the_test_split(tmp_path, capsys):
    train, test = tiny_ts(tmp_path / "tiny_TRAIN.ts"), tiny_ts(tmp_path / "tiny_TEST.ts", trials=4)
    main(
        [
            "fit",
            *TINY,
            "--model.channel_group=3",
            f"--data.path={train}",
            f"--data.test_path={test}",
            "--trainer.callbacks+=jepa_lightning.callbacks.LinearProbeReport",
            "--trainer.callbacks.eval_split=test",
            "--trainer.callbacks.plot=false",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
    assert "probe on the test split" in capsys.readouterr().out
