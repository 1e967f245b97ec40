"""The EEG-JEPA preset: paper defaults, channel-group tokens (no channel silently dropped), V-JEPA multi-block masks
on the (channel group, time patch) grid, and a few training steps through the CLI on tiny UEA .ts trials. Parity
tests re-type the official functions of amir-hojjati/eeg-vjepa at ea6a26209403fe44f28fa907f39ef0971af302ff."""

from __future__ import annotations

import inspect
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from jepa_lightning.cli import main
from jepa_lightning.masks import BlockUnionMaskSampler, RandomChoiceMaskSampler, TubeMaskSampler, mask_generator
from jepa_lightning.masks.multiblock import block_size
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


def test_official_defaults():
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
    # configs/pretrain/cluster_vitl16_EEG.yaml: pred_embed_dim 384, pred_depth 6, lr 6.25e-4 from start_lr 2e-4 over
    # 40 of 400 epochs to final_lr 1e-6, weight decay 0.04 -> 0.4, ipe_scale 1.25, ema [0.998, 1.0]
    assert (signature["predictor_dim"].default, signature["predictor_depth"].default) == (384, 6)
    assert (model.lr, model.warmup_start_lr, model.min_lr, model.warmup_fraction) == (6.25e-4, 2e-4, 1e-6, 0.1)
    assert (model.weight_decay, model.final_weight_decay, model.schedule_horizon) == (0.04, 0.4, 1.25)
    default = EEGJEPA(input_spec=InputSpec("eeg", channels=8, sample_rate=250.0))
    assert (len(default.predictor.blocks), default.predictor.predictor_dim) == (6, 384)
    assert default.predictor.blocks[0].attn.num_heads == 6  # num_heads=encoder.backbone.num_heads


def test_default_encoder_is_vit_small(monkeypatch):
    sizes = []

    def from_size(size: str, **kwargs) -> TransformerEncoder:
        sizes.append(size)
        return TransformerEncoder(16, 1, 2)

    monkeypatch.setattr(TransformerEncoder, "from_size", staticmethod(from_size))
    EEGJEPA(input_spec=InputSpec("eeg", channels=8, sample_rate=250.0), predictor_dim=8, predictor_depth=1)
    assert sizes == ["small"]  # model_name: vit_small


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


def test_min_patches_gives_short_trials_shorter_patches_and_leaves_long_ones_alone():
    """The example configs' ``min_patches: 8``: a 0.5 s trial at 128 Hz (64 samples) gets 8-sample patches (a 6 x 8
    grid, not 6 x 2); SCP1's 448 samples keep the 32-sample patches; the preset's default keeps ``patch_length``."""
    options = {"encoder": TransformerEncoder(16, 1, 2), "predictor_dim": 8, "predictor_depth": 1, "predictor_heads": 2}

    def tokenizer(length: int, **kwargs) -> ChannelPatchTokenizer:
        spec = InputSpec("eeg", channels=6, sample_rate=128.0, length=length)
        return EEGJEPA(input_spec=spec, channel_group=1, patch_length=32, **options, **kwargs).student.tokenizer

    assert inspect.signature(EEGJEPA).parameters["min_patches"].default is None
    assert tokenizer(64).patch_length == 32
    assert tokenizer(64, min_patches=8).patch_length == 8
    assert tokenizer(64, min_patches=8)(torch.randn(2, 6, 64)).layout.shape == (6, 8)
    assert tokenizer(448, min_patches=8).patch_length == 32


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
    if blocks == 1:  # a single block is a filled rectangle inside the grid
        rows, cols = one_target[0, 0] // width, one_target[0, 0] % width
        h, w = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert h * w == one_target.shape[-1] and h <= height and w <= width
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


# ------------------------------------------------------------------------------------ parity with the official code
def official_block_size(height: int, width: int, scale: float, aspect: float) -> tuple[int, int]:
    # official: amir-hojjati/eeg-vjepa@ea6a262 src/masks/multiblock3d.py::_MaskGenerator._sample_block_size
    spatial_num_keep = int(height * width * scale)
    h = round(math.sqrt(spatial_num_keep * aspect))
    w = round(math.sqrt(spatial_num_keep / aspect))
    return min(h, height), min(w, width)


def official_masked_count(height: int, width: int, npred: int, size: tuple[int, int]) -> int:
    # official: amir-hojjati/eeg-vjepa@ea6a262 src/masks/multiblock3d.py::_MaskGenerator.__call__ (one frame, one
    # sample: the union of npred blocks at independent positions; redrawn when it leaves no context)
    h, w = size
    while True:
        mask_e = torch.ones((height, width), dtype=torch.int32)
        for _ in range(npred):
            top = torch.randint(0, height - h + 1, (1,))
            left = torch.randint(0, width - w + 1, (1,))
            mask = torch.ones((height, width), dtype=torch.int32)
            mask[top : top + h, left : left + w] = 0
            mask_e *= mask
        if mask_e.sum() > 0:
            return int((mask_e == 0).sum())


@pytest.mark.parametrize(("height", "width"), [(4, 16), (6, 14), (2, 8)])
def test_block_sizes_match_vjepa_multiblock3d(height, width):
    """EEG-VJEPA's 19 x 500 frames in 4 x 30 patches make a 4 x 16 grid, where the long-range blocks span all rows."""
    for scale in (0.15, 0.7):
        for aspect in torch.linspace(0.75, 1.5, 31).tolist():
            ours = block_size((height, width), scale, aspect, shrink_to_fit_strictly=False)
            assert ours == official_block_size(height, width, scale, aspect)
    assert official_block_size(4, 16, 0.7, 1.0)[0] == 4  # the full height, which I-JEPA's strict shrinking forbids


@pytest.mark.parametrize(("blocks", "scale"), [(8, 0.15), (2, 0.7)])
def test_masked_fraction_matches_vjepa_multiblock3d(blocks, scale):
    height, width, draws = 4, 16, 400
    sampler = BlockUnionMaskSampler(blocks, scale)
    torch.manual_seed(0)
    generator = mask_generator(0, 0, 0, "cpu")
    ours, official = [], []
    for step in range(draws):
        _, target = sampler(grid((height, width)), 1, mask_generator(0, step, 0, "cpu"), "cpu")
        ours.append(target.shape[-1])
        aspect = 0.75 + 0.75 * float(torch.rand(1, generator=generator))
        size = official_block_size(height, width, scale, aspect)
        official.append(official_masked_count(height, width, blocks, size))
    ours_mean, official_mean = np.mean(ours), np.mean(official)
    assert abs(ours_mean - official_mean) / (height * width) < 0.03, (ours_mean, official_mean)


def official_momentum_schedule(ema: tuple[float, float], ipe: int, num_epochs: int, ipe_scale: float) -> list[float]:
    # official: amir-hojjati/eeg-vjepa@ea6a262 app/vjepa/train.py::main (momentum_scheduler)
    return [
        ema[0] + i * (ema[1] - ema[0]) / (ipe * num_epochs * ipe_scale)
        for i in range(int(ipe * num_epochs * ipe_scale) + 1)
    ]


class OfficialWarmupCosine:
    # official: amir-hojjati/eeg-vjepa@ea6a262 src/utils/schedulers.py::WarmupCosineSchedule
    def __init__(self, warmup_steps, start_lr, ref_lr, T_max, final_lr=0.0):  # noqa: N803
        self.start_lr, self.ref_lr, self.final_lr = start_lr, ref_lr, final_lr
        self.warmup_steps, self.T_max, self._step = warmup_steps, T_max - warmup_steps, 0.0

    def step(self) -> float:
        self._step += 1
        if self._step < self.warmup_steps:
            progress = float(self._step) / float(max(1, self.warmup_steps))
            return self.start_lr + progress * (self.ref_lr - self.start_lr)
        progress = float(self._step - self.warmup_steps) / float(max(1, self.T_max))
        return max(
            self.final_lr, self.final_lr + (self.ref_lr - self.final_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
        )


class OfficialCosineWD:
    # official: amir-hojjati/eeg-vjepa@ea6a262 src/utils/schedulers.py::CosineWDSchedule
    def __init__(self, ref_wd, T_max, final_wd=0.0):  # noqa: N803
        self.ref_wd, self.final_wd, self.T_max, self._step = ref_wd, final_wd, T_max, 0.0

    def step(self) -> float:
        self._step += 1
        progress = self._step / self.T_max
        new_wd = self.final_wd + (self.ref_wd - self.final_wd) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return max(self.final_wd, new_wd) if self.final_wd <= self.ref_wd else min(self.final_wd, new_wd)


def test_ema_lr_and_weight_decay_schedules_match_the_official_over_one_and_a_quarter_runs(monkeypatch):
    ipe, epochs = 10, 40  # 400 steps, warmup 4 epochs (the official 40 of 400)
    total = ipe * epochs
    monkeypatch.setattr(EEGJEPA, "total_steps", property(lambda self: total))
    model = small(channels=8)
    momentum = official_momentum_schedule((0.998, 1.0), ipe, epochs, 1.25)
    ours = [model.teacher.momentum_at(step, total) for step in range(total)]
    np.testing.assert_allclose(ours, momentum[:total], rtol=0, atol=1e-12)
    assert ours[-1] < 1.0  # the run ends before the momentum reaches 1

    # init_opt: warmup_steps=int(warmup * ipe), T_max=int(ipe_scale * num_epochs * ipe), for lr and weight decay
    lr = OfficialWarmupCosine(int(4 * ipe), 2e-4, 6.25e-4, int(1.25 * total), final_lr=1e-6)
    wd = OfficialCosineWD(0.04, int(1.25 * total), final_wd=0.4)
    official_lr = [lr.step() for _ in range(total)]  # value used by optimizer step k: the (k + 1)-th step()
    official_wd = [wd.step() for _ in range(total)]
    scheduler = model.configure_optimizers()["lr_scheduler"]["scheduler"]
    ours_lr = [model.lr * scheduler.lr_lambdas[0](step) for step in range(total)]
    ours_wd = [model.weight_decay_at(step) for step in range(total)]
    # ours for step k is the official value of step k - 1 (the official scheduler steps before the update)
    np.testing.assert_allclose(ours_lr[1:], official_lr[:-1], rtol=1e-12)
    np.testing.assert_allclose(ours_wd[1:], official_wd[:-1], rtol=1e-12)
    assert ours_lr[0] == pytest.approx(2e-4) and ours_wd[0] == pytest.approx(0.04)
    assert official_lr[-1] > 5e-5 and official_wd[-1] < 0.39  # stretched: the run ends before the final values
    with pytest.raises(ValueError, match="schedule_horizon"):
        small(channels=8, schedule_horizon=0.5)


class OfficialPatchEmbed(torch.nn.Module):
    # official: amir-hojjati/eeg-vjepa@ea6a262 src/models/utils/patch_embed.py::PatchEmbed (in_chans=1 for EEG, as
    # src/models/vision_transformer.py::VisionTransformer sets it)
    def __init__(self, patch_size=(4, 30), in_chans=1, embed_dim=16):
        super().__init__()
        self.proj = torch.nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


def test_channel_group_tokens_match_the_official_patch_embedding_with_copied_weights():
    spec = InputSpec("eeg", channels=8, sample_rate=250.0)
    ours = ChannelPatchTokenizer(spec, 16, patch_length=30, instance_norm=False, channel_group=4)
    official = OfficialPatchEmbed()
    with torch.no_grad():
        ours.proj.weight.copy_(official.proj.weight.flatten(1))
        ours.proj.bias.copy_(official.proj.bias)
    x = torch.randn(3, 8, 120)  # a 2 x 4 grid of (channel group, time patch)
    torch.testing.assert_close(ours(x).features, official(x[:, None]), rtol=1e-5, atol=1e-5)
