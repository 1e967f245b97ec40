"""The ECG-JEPA presets: both published recipes (Kim; Weimann and Conrad), trained a few steps through the CLI."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from jepa_lightning.cli import main
from jepa_lightning.masks import TimeBlockMaskSampler, TimeSpanUnionMaskSampler, mask_generator
from jepa_lightning.masks.series import expand_across
from jepa_lightning.methods import ECGJEPA, ECGJEPAWeimann
from jepa_lightning.methods.base import warmup_cosine
from jepa_lightning.nn import JEPAPredictor, TransformerEncoder
from jepa_lightning.nn.functional import masked_mean
from jepa_lightning.tokenizers import InputSpec, TokenLayout, grid_coords, sincos_embedding
from tests.conftest import FAST_TRAINER_ARGS

TINY = [
    "--model.encoder=jepa_lightning.nn.TransformerEncoder",
    "--model.encoder.embed_dim=16",
    "--model.encoder.depth=1",
    "--model.encoder.num_heads=2",
    "--model.predictor_dim=8",
    "--model.predictor_depth=1",
    "--model.predictor_heads=2",
    "--data=datamodules.ecg.ECGDataModule",
    "--data.sample_rate=100",
    "--data.window_seconds=5",
    "--data.batch_size=4",
    "--trainer.max_steps=2",
    "--trainer.limit_val_batches=1",
    *FAST_TRAINER_ARGS,
    "--seed_everything=0",
]


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["jepa-lightning"])


def three_lead_record(folder: Path) -> Path:
    """60 s of 3 leads at 100 Hz (a sine per lead plus noise), as an NPZ with its metadata."""
    t = np.arange(6000) / 100
    rng = np.random.default_rng(0)
    signal = np.stack([np.sin(2 * np.pi * (1 + k) * t) + 0.1 * rng.normal(size=t.size) for k in range(3)])
    path = folder / "three_leads.npz"
    np.savez(path, signal=signal, sample_rate=100.0, lead_names=np.array(["I", "II", "V1"]))
    return path


def test_kim_trains_on_three_leads_with_cross_pattern_attention(tmp_path):
    """Kim's grid: 3 leads x 10 patches of 50 samples, masked attention in student, teacher and predictor."""
    record = three_lead_record(tmp_path)
    main(
        [
            "fit",
            "--model=jepa_lightning.methods.ECGJEPA",
            *TINY,
            "--model.encoder.attention=cross_pattern",
            "--model.encoder.positions_every_layer=true",
            f"--data.path={record}",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )


def test_weimann_trains_on_the_bundled_record(tmp_path):
    """Weimann's channel-mixing patches of 25 samples (20 per 5 s window at 100 Hz) and block masks."""
    main(["fit", "--model=jepa_lightning.methods.ECGJEPAWeimann", *TINY, f"--trainer.default_root_dir={tmp_path}"])


PRESETS = {"kim": ECGJEPA, "weimann": ECGJEPAWeimann}


def small(variant: str, channels: int) -> ECGJEPA | ECGJEPAWeimann:
    spec = InputSpec("ecg", channels=channels, sample_rate=100.0)
    encoder = TransformerEncoder(16, 1, 2, attention="cross_pattern" if variant == "kim" else "full")
    return PRESETS[variant](encoder=encoder, predictor_dim=8, predictor_depth=1, predictor_heads=2, input_spec=spec)


def test_each_preset_takes_its_recipe():
    kim, weimann = small("kim", 3), small("weimann", 3)
    assert isinstance(kim.mask_sampler, TimeSpanUnionMaskSampler) and kim.mask_sampler.num_spans == 4
    assert kim.mask_sampler.span_ratio == (0.175, 0.225)
    assert kim.predictor.positions_every_layer and kim.predictor.blocks[0].drop_path1.__class__.__name__ == "Identity"
    assert (kim.readout, kim.readout_network, weimann.readout, weimann.readout_network) == (
        "mean",
        "student",
        "mean",
        "target",
    )
    assert (kim.loss_kind, kim.target_norm, kim.lr, kim.weight_decay) == ("smooth_l1", "layer_norm", 5e-5, 0.05)
    assert kim.final_weight_decay is None and kim.weight_decay_at(0) == kim.weight_decay  # constant
    assert (kim.warmup_start_lr, kim.warmup_fraction, kim.betas) == (1e-6, 0.05, (0.9, 0.999))
    assert (kim.teacher.momentum, kim.teacher.final_momentum) == (0.996, 1.0)
    assert kim.predictor.attention == "same_channel" and kim.student.tokenizer.channel_independent
    assert kim.student.tokenizer.patch_length == 50
    assert isinstance(weimann.mask_sampler, TimeBlockMaskSampler)
    assert (weimann.mask_sampler.keep_ratio, weimann.mask_sampler.min_block_length) == ((0.15, 0.25), 10)
    assert (weimann.loss_kind, weimann.target_norm, weimann.betas) == ("l1", "none", (0.9, 0.99))
    assert (weimann.lr, weimann.weight_decay, weimann.final_weight_decay) == (1e-3, 0.01, 0.1)
    assert (weimann.warmup_start_lr, weimann.warmup_fraction) == (1e-6, 0.1)
    assert (weimann.build_optimizer().defaults["eps"], kim.build_optimizer().defaults["eps"]) == (1e-6, 1e-8)
    assert not weimann.predictor.positions_every_layer
    assert (weimann.teacher.momentum, weimann.teacher.final_momentum) == (0.998, 0.9995)
    assert weimann.predictor.attention == "full" and not weimann.student.tokenizer.channel_independent
    assert weimann.student.tokenizer.patch_length == 25


@pytest.mark.parametrize(
    ("preset", "encoder", "predictor"),
    [(ECGJEPA, (768, 12, 16), (384, 6, 12)), (ECGJEPAWeimann, (384, 8, 6), (192, 8, 6))],
)
def test_paper_sizes_without_an_encoder(preset, encoder, predictor):
    model = preset(input_spec=InputSpec("ecg", channels=2, sample_rate=100.0))
    built = model.student.encoder
    assert (built.embed_dim, len(built.blocks), built.num_heads) == encoder
    block = model.predictor.blocks[0].attn
    assert (model.predictor.predictor_dim, len(model.predictor.blocks), block.num_heads) == predictor
    assert (built.attention, built.positions_every_layer) == (
        ("cross_pattern", True) if preset is ECGJEPA else ("full", False)
    )


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("ECGJEPA", {"lr": 5.0e-05, "weight_decay": 0.05, "final_weight_decay": None, "patch_length": 50}),
        ("ECGJEPAWeimann", {"lr": 0.001, "weight_decay": 0.01, "final_weight_decay": 0.1, "patch_length": 25}),
    ],
)
def test_print_config_shows_each_recipe_as_real_defaults(preset, expected, capsys):
    with pytest.raises(SystemExit):
        main(
            [
                "fit",
                f"--model=jepa_lightning.methods.{preset}",
                "--data=datamodules.ecg.ECGDataModule",
                "--print_config",
            ]
        )
    init_args = yaml.safe_load(capsys.readouterr().out)["model"]["init_args"]
    assert {key: init_args[key] for key in expected} == expected


@pytest.mark.parametrize(("variant", "tokens"), [("kim", 3 * 10), ("weimann", 20)])
def test_one_step_on_a_batch(variant, tokens):
    model = small(variant, 3)
    x = torch.randn(2, 3, 500)
    loss = model.masked_prediction(x, torch.Generator().manual_seed(0)).loss
    loss.backward()
    assert torch.isfinite(loss) and model.embed(x).shape == (2, 16)
    assert model.student(x).shape == (2, tokens, 16)


# -- parity with the official code ------------------------------------------------------------------------------
# official: sehunfromdaegu/ECG_JEPA@d937ad2c2c8a1e22856ce7e4a23a30f84a71217c
# ecg_jepa.py::MaskTransformer._make_block_mask
def official_kim_block_mask(p, mask_scale):
    mask = torch.zeros(p, dtype=torch.bool)
    for _ in range(4):
        mask_ratio = mask_scale[0] + (mask_scale[1] - mask_scale[0]) * torch.rand(1).item()
        mask_num = int(p * mask_ratio)
        block_index = torch.randperm(p - mask_num)[0]
        mask[block_index : block_index + mask_num] = True
    return mask


@pytest.mark.parametrize("seed", range(40))
def test_kim_union_mask_is_the_official_mask_for_the_same_seed(seed):
    torch.manual_seed(seed)
    official = official_kim_block_mask(50, (0.175, 0.225))
    grid = (8, 50)
    layout = TokenLayout("grid", grid, grid_coords(grid))
    context, targets = TimeSpanUnionMaskSampler()(layout, 3, torch.Generator().manual_seed(seed), "cpu")
    steps = torch.arange(50)
    assert torch.equal(targets, expand_across(steps[official], 1, grid).expand(3, 1, -1))
    assert torch.equal(context, expand_across(steps[~official], 1, grid).expand(3, -1))


def test_kim_union_mask_statistics_match_the_official_generator():
    """Over many draws from independent seeds (no shared stream): same masked fraction and span-start coverage."""
    layout = TokenLayout("grid", (1, 50), grid_coords((1, 50)))
    ours = torch.zeros(50)
    official = torch.zeros(50)
    for draw in range(400):
        _, targets = TimeSpanUnionMaskSampler()(layout, 1, mask_generator(0, draw, 0, "cpu"), "cpu")
        ours[targets.flatten()] += 1
        torch.manual_seed(10_000 + draw)
        official += official_kim_block_mask(50, (0.175, 0.225)).float()
    assert ours[-1] == official[-1] == 0  # the official start range never reaches the last patch
    assert abs(ours.mean() - official.mean()) / 400 < 0.03  # masked fraction ~0.57
    assert (ours[20:30].mean() / 400) > 0.6 and (official[20:30].mean() / 400) > 0.6  # the middle is masked most


# official: sehunfromdaegu/ECG_JEPA@d937ad2c2c8a1e22856ce7e4a23a30f84a71217c pos_encoding.py::get_2d_sincos_pos_embed
# (with get_2d_sincos_pos_embed_from_grid and get_1d_sincos_pos_embed_from_grid)
def official_2d_sincos(embed_dim, grid_size_h, grid_size_w):
    def one_d(dim, pos):
        omega = np.arange(dim // 2, dtype=float)
        omega /= dim / 2.0
        omega = 1.0 / 10000**omega
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    grid = np.meshgrid(np.arange(grid_size_w, dtype=float), np.arange(grid_size_h, dtype=float))
    grid = np.stack(grid, axis=0).reshape([2, 1, grid_size_h, grid_size_w])
    return np.concatenate([one_d(embed_dim // 2, grid[0]), one_d(embed_dim // 2, grid[1])], axis=1)


# official: sehunfromdaegu/ECG_JEPA@d937ad2c2c8a1e22856ce7e4a23a30f84a71217c
# ecg_jepa.py::Block.forward, Attention.forward
# (qkv_bias=False, torch's LayerNorm eps 1e-5), weights taken from our timm block
def official_kim_block(x, block):
    def attention(x):
        b, n, c = x.shape
        heads = block.attn.num_heads
        qkv = F.linear(x, block.attn.qkv.weight).reshape(b, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * (c // heads) ** -0.5).softmax(dim=-1)
        return block.attn.proj((attn @ v).transpose(1, 2).reshape(b, n, c))

    def norm(layer, x):
        return F.layer_norm(x, (x.shape[-1],), layer.weight, layer.bias, eps=1e-5)

    x = x + attention(norm(block.norm1, x))
    return x + block.mlp.fc2(F.gelu(block.mlp.fc1(norm(block.norm2, x))))


# official: sehunfromdaegu/ECG_JEPA@d937ad2c2c8a1e22856ce7e4a23a30f84a71217c
# ecg_jepa.py::MaskTransformerPredictor.forward
# and the slicing in ecg_jepa.forward; ``pos`` is (c, p, D): the official (p, D) table is the same for every lead, ours
# differs per lead (the documented deviation), so the table is an argument here
def official_kim_predictor(x, mask, pos, predictor, c, p):
    num_mask = mask.sum()
    x = predictor.embed(x)
    bs, _, pred_dim = x.shape
    x = x.reshape(bs * c, -1, pred_dim)
    mask_token = predictor.mask_token.expand(x.size(0), num_mask, pred_dim)
    x = torch.cat([x, mask_token], dim=1)
    vis_idx = (~mask).nonzero(as_tuple=True)[0]
    mask_idx = mask.nonzero(as_tuple=True)[0]
    idx = torch.cat((vis_idx, mask_idx))
    pos = pos[:, idx].repeat(bs, 1, 1)
    for block in predictor.blocks:
        x = official_kim_block(x + pos, block)
    x = F.layer_norm(x, (pred_dim,), predictor.norm.weight, predictor.norm.bias, eps=1e-5)
    z = predictor.proj(x).reshape(bs, -1, predictor.embed_dim)
    z_pred = z.reshape(bs, c, p, -1)[:, :, -num_mask:, :]
    return z_pred.reshape(bs, -1, z.size(-1))


def test_kim_predictor_matches_the_official_forward_with_copied_weights():
    """Per-lead prediction, positions before every block, union targets: ours against the official forward."""
    torch.manual_seed(0)
    leads, patches, dim, width = 3, 10, 16, 8
    predictor = JEPAPredictor(dim, width, depth=2, num_heads=2, attention="same_channel", positions_every_layer=True)
    with torch.no_grad():
        for parameter in predictor.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
        for block in predictor.blocks:
            block.attn.qkv.bias.zero_()  # the official attention has no qkv bias
    predictor.eval()
    grid = (leads, patches)
    layout = TokenLayout("grid", grid, grid_coords(grid))
    mask = torch.zeros(patches, dtype=torch.bool)
    mask[[2, 3, 4, 7]] = True
    steps = torch.arange(patches)
    context_idx = expand_across(steps[~mask], 1, grid).expand(2, -1)
    target_idx = expand_across(steps[mask], 1, grid).expand(2, 1, -1)
    context = torch.randn(2, leads * int((~mask).sum()), dim)
    table = sincos_embedding(layout.coords, width)[0].view(leads, patches, width)
    official_table = torch.from_numpy(official_2d_sincos(width, 1, patches)).float()
    # lead 0: the official table with its two halves (time, lead) in our order (lead, time)
    torch.testing.assert_close(table[0], official_table.roll(width // 2, dims=1))
    expected = official_kim_predictor(context, mask, table, predictor, leads, patches)
    torch.testing.assert_close(predictor(context, layout, context_idx, target_idx), expected, atol=1e-4, rtol=1e-4)
    predictor.positions_every_layer = False  # positions once (I-JEPA): a different function
    assert not torch.allclose(predictor(context, layout, context_idx, target_idx), expected, atol=1e-2)


def test_kim_drop_path_rises_like_the_official_one():
    spec = InputSpec("ecg", channels=2, sample_rate=100.0)
    model = ECGJEPA(encoder=TransformerEncoder(16, 3, 2), predictor_dim=8, predictor_heads=2, input_spec=spec)
    # official: sehunfromdaegu/ECG_JEPA@d937ad2c2c8a1e22856ce7e4a23a30f84a71217c
    # ecg_jepa.py::MaskTransformerPredictor.__init__ (drop_path_rate=0.1 from pretrain_ECG_JEPA.py)
    dpr = [x.item() for x in torch.linspace(0, 0.1, 6)]
    ours = [0.0 if i == 0 else block.drop_path1.drop_prob for i, block in enumerate(model.predictor.blocks)]
    assert ours == pytest.approx(dpr)


def test_kim_ema_and_warmup_follow_the_official_schedules():
    model = small("kim", 2)
    iterations_per_epoch, epochs = 7, 100
    total = iterations_per_epoch * epochs
    # official: sehunfromdaegu/ECG_JEPA@d937ad2c2c8a1e22856ce7e4a23a30f84a71217c pretrain_ECG_JEPA.py (EMA generator)
    ema = [0.996, 1.0]
    official = [ema[0] + i * (ema[1] - ema[0]) / (iterations_per_epoch * epochs) for i in range(total + 1)]
    assert [model.teacher.momentum_at(i, total) for i in range(total + 1)] == pytest.approx(official, abs=1e-12)
    # official: sehunfromdaegu/ECG_JEPA@d937ad2c2c8a1e22856ce7e4a23a30f84a71217c pretrain_ECG_JEPA.py: timm's
    # CosineLRScheduler(warmup_lr_init=1e-6, warmup_t=5 epochs, lr_min=1e-6), warmup_prefix=False
    warmup = 5 * iterations_per_epoch

    def timm_lr(t):
        if t < warmup:
            return 1e-6 + t * (model.lr - 1e-6) / warmup
        return 1e-6 + 0.5 * (model.lr - 1e-6) * (1 + math.cos(math.pi * t / total))

    ours = [
        warmup_cosine(t, total, int(model.warmup_fraction * total), model.warmup_start_lr, model.lr, model.min_lr)
        for t in range(total)
    ]
    assert ours[:warmup] == pytest.approx([timm_lr(t) for t in range(warmup)], rel=1e-12)
    # after the warmup timm's cosine runs over the whole run, ours over the rest (a documented deviation)
    gap = max(abs(a - timm_lr(t)) for t, a in enumerate(ours))
    assert 0.03 * model.lr < gap < 0.046 * model.lr
    assert ours[-1] == pytest.approx(timm_lr(total - 1), abs=1e-8)


def test_kim_embeds_the_students_mean_and_weimann_the_teachers():
    """The official evaluations: Kim reads the mean of the student's (``encoder``) tokens, Weimann the teacher's."""
    x = torch.randn(2, 3, 500)
    for variant, network in (("kim", "student"), ("weimann", "teacher")):
        model = small(variant, 3).eval()
        with torch.no_grad():
            for parameter in model.teacher.parameters():
                parameter.add_(0.5)  # teacher and student differ
        backbone = model.student if network == "student" else model.teacher.module
        encoded, tokens = backbone.encode(x)
        torch.testing.assert_close(model.embed(x), masked_mean(encoded, tokens.valid))


# official: kweimann/ECG-JEPA@504b4e5b55c2de3c6dca0492435b993a8f4a4013 utils/schedules.py::cosine_schedule
def official_cosine_schedule(total_steps, start_value, final_value, warmup_steps=0, warmup_start_value=0.0, step=0):
    while True:
        if step < warmup_steps:
            value = warmup_start_value + (start_value - warmup_start_value) * step / warmup_steps
        elif step > total_steps:
            value = final_value
        else:
            decay_ratio = (step - warmup_steps) / max(1, total_steps - warmup_steps - 1)
            coefficient = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
            value = final_value + coefficient * (start_value - final_value)
        yield value
        step += 1


# official: kweimann/ECG-JEPA@504b4e5b55c2de3c6dca0492435b993a8f4a4013 utils/schedules.py::linear_schedule
def official_linear_schedule(total_steps, start_value, final_value, step=0):
    while True:
        yield start_value + (final_value - start_value) * step / total_steps if step < total_steps else final_value
        step += 1


def test_weimann_schedules_follow_the_official_ones():
    """lr, weight decay and EMA momentum as pretrain.py builds them (ViTS_all: 10% warmup from 1e-6)."""
    model = small("weimann", 2)
    total = 1000
    warmup = int(model.warmup_fraction * total)
    lr = official_cosine_schedule(total, model.lr, 1e-6, warmup_steps=warmup, warmup_start_value=1e-6)
    wd = official_cosine_schedule(total, model.weight_decay, model.final_weight_decay)
    ema = official_linear_schedule(total, model.teacher.momentum, model.teacher.final_momentum)
    official = [(next(lr), next(wd), next(ema)) for _ in range(total)]
    ours = [
        (
            warmup_cosine(t, total, warmup, model.warmup_start_lr, model.lr, model.min_lr),
            warmup_cosine(t, total, 0, 0.0, model.weight_decay, model.final_weight_decay),
            model.teacher.momentum_at(t, total),
        )
        for t in range(total)
    ]
    assert [o[0] for o in ours[:warmup]] == pytest.approx([o[0] for o in official[:warmup]], rel=1e-12)
    assert [o[2] for o in ours] == pytest.approx([o[2] for o in official], abs=1e-12)
    # the official cosines divide by one step fewer (total - warmup - 1): within one step's change of each other
    for column, step_change in ((0, model.lr * math.pi / 2 / (total - warmup)), (1, 0.09 * math.pi / 2 / total)):
        assert max(abs(a[column] - b[column]) for a, b in zip(ours, official, strict=True)) < 1.01 * step_change


# official: kweimann/ECG-JEPA@504b4e5b55c2de3c6dca0492435b993a8f4a4013 data/masks.py::MaskCollator.sample_mask
# (np.random's global functions as the methods of a seeded numpy Generator)
def official_weimann_mask(num_keep, num_patches, min_block_size, rng):
    patch_intervals = [(0, num_patches)]
    num_mask = num_patches - num_keep
    total_mask_size = 0
    while total_mask_size < num_mask:
        interval_sizes = np.diff(patch_intervals).flatten()
        index = rng.choice(len(patch_intervals), p=interval_sizes / interval_sizes.sum())
        start, end = patch_intervals.pop(index)
        interval_size = end - start
        max_block_size = num_mask - total_mask_size
        if max_block_size >= min_block_size:
            block_size = rng.integers(min_block_size, max_block_size + 1)
        else:
            block_size = max_block_size
        if interval_size <= block_size:
            total_mask_size += interval_size
        else:
            if max_block_size >= min_block_size:
                split = rng.integers(start, end - block_size + 1)
            else:
                attach_choices = []
                if start > 0:
                    attach_choices.append(start)
                if end < num_patches:
                    attach_choices.append(end - block_size)
                split = rng.choice(attach_choices)
            patch_intervals.append((start, split))
            patch_intervals.append((split + block_size, end))
            total_mask_size += block_size
    mask = torch.zeros(num_patches)
    for start, end in patch_intervals:
        mask[start:end] = 1.0
    return mask


def masked_runs(masked: torch.Tensor) -> list[int]:
    runs, length = [], 0
    for value in [*masked.tolist(), False]:
        if value:
            length += 1
        elif length:
            runs.append(length)
            length = 0
    return runs


def test_weimann_block_masks_keep_the_official_guarantees():
    """Same keep count ``ceil(k * P)`` and masked runs of >= 10 patches as the official collator, for the same k."""
    patches, rng = 200, np.random.default_rng(0)
    layout = TokenLayout("sequence", (patches,), grid_coords((patches,)))
    for draw in range(20):
        generator = mask_generator(0, draw, 0, "cpu")
        k = float(torch.rand(1, generator=mask_generator(0, draw, 0, "cpu")))  # the sampler's first draw
        num_keep = math.ceil((0.15 + k * 0.10) * patches)
        context, targets = TimeBlockMaskSampler()(layout, 4, generator, "cpu")
        official = official_weimann_mask(num_keep, patches, 10, rng) == 0
        assert context.shape[1] == num_keep == int((~official).sum())
        ours = torch.zeros(4, patches, dtype=torch.bool).scatter_(1, targets[:, 0], True)
        for masked in (*ours, official):
            assert min(masked_runs(masked)) >= 10 and int(masked.sum()) == patches - num_keep
