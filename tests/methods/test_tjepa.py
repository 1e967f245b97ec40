"""The T-JEPA preset: official defaults, parity with the official code (jose-melo/t-jepa, functions re-typed below),
the flattened probe embedding, and training through the CLI on tables."""

from __future__ import annotations

import math
import sys
from collections import Counter

import numpy as np
import pytest
import torch
from timm.models.vision_transformer import Block

from jepa_lightning.cli import main
from jepa_lightning.masks import FeatureSubsetMaskSampler
from jepa_lightning.methods import TJEPA
from jepa_lightning.methods.base import warmup_cosine
from jepa_lightning.methods.tjepa import CONTEXT_SHARE, LEARNING_RATE, TARGET_SHARE
from jepa_lightning.nn import TransformerEncoder, transformer_blocks
from jepa_lightning.tokenizers import FeatureTokenizer, InputSpec, TabularInput
from jepa_lightning.tokenizers.tabular import token_index_sincos
from tests.conftest import FAST_TRAINER_ARGS

SPEC = InputSpec("tabular", num_numeric=3, categories=(4, 2), feature_names=("a", "b", "c", "d", "e"))
RUN = [
    "--trainer.max_steps=3",
    "--trainer.limit_val_batches=1",
    *FAST_TRAINER_ARGS,
    "--seed_everything=0",
    "--data=datamodules.tabular.TabularDataModule",
    "--data.batch_size=16",
]


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["jepa-lightning"])


def rows(batch_size: int = 6) -> TabularInput:
    numeric = torch.randn(batch_size, 3)
    numeric[0, 1] = float("nan")
    return TabularInput(
        numeric, torch.stack([torch.randint(0, 4, (batch_size,)), torch.randint(0, 2, (batch_size,))], 1)
    )


def test_official_defaults() -> None:
    model = TJEPA(input_spec=SPEC)
    encoder = model.student.encoder
    assert (encoder.embed_dim, len(encoder.blocks), encoder.num_heads) == (64, 16, 2)
    block = encoder.blocks[0]
    assert type(block).__name__ == "PostNormBlock" and isinstance(block.mlp.act, torch.nn.ReLU)
    assert block.mlp.fc1.out_features == 64 and block.norm1.eps == 1e-5 and encoder.head is not None
    predictor = model.predictor
    assert predictor.predictor_dim == 16 and len(predictor.blocks) == 16 and predictor.blocks[0].attn.num_heads == 4
    assert predictor.blocks[0].mlp.fc1.out_features == 256 and predictor.head is not None
    tokenizer = model.student.tokenizer
    assert isinstance(tokenizer, FeatureTokenizer) and tokenizer.num_register_tokens == 1
    torch.testing.assert_close(tokenizer.feature_positions[0], token_index_sincos(6, 64))
    sampler = model.mask_sampler
    assert isinstance(sampler, FeatureSubsetMaskSampler) and sampler.num_targets == 4 and sampler.size_rule == "count"
    assert (sampler.context_ratio, sampler.target_ratio) == (CONTEXT_SHARE, TARGET_SHARE)
    assert (model.loss_kind, model.target_norm, model.readout) == ("mse", "none", "flatten")
    assert (model.teacher.momentum, model.teacher.final_momentum) == (0.996, 1.0)
    assert (model.lr, model.warmup_start_lr, model.min_lr) == (LEARNING_RATE, 0.0, 0.0)
    assert (model.weight_decay, model.final_weight_decay, model.warmup_fraction) == (0.0, None, 10 / 300)


# official: jose-melo/t-jepa@98dda991dd5e5d12266b3557aa80a33c4e0a6606 src/encoder.py::TabularEncoder (its layers are
# src/tjepa_transformer.py::TransformerEncoderLayer, a copy of PyTorch's with norm_first=False)
class OfficialTabularEncoder(torch.nn.Module):
    def __init__(self, hidden_dim: int, num_layers: int, num_heads: int, dim_feedforward: int) -> None:
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(
            hidden_dim, num_heads, dim_feedforward, dropout=0.0, activation="relu", batch_first=True, norm_first=False
        )
        self.transformer = torch.nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.fc = torch.nn.Linear(hidden_dim, hidden_dim)
        self.layernorm1 = torch.nn.LayerNorm(hidden_dim, eps=1e-5)
        self.layernorm2 = torch.nn.LayerNorm(hidden_dim, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layernorm2(self.fc(self.layernorm1(self.transformer(x))))


def copy_layer(ours: torch.nn.Module, official: torch.nn.TransformerEncoderLayer) -> None:
    """Give a timm-named block the weights of a PyTorch encoder layer (then randomise its norms)."""
    with torch.no_grad():
        ours.attn.qkv.weight.copy_(official.self_attn.in_proj_weight)
        ours.attn.qkv.bias.copy_(official.self_attn.in_proj_bias)
        ours.attn.proj.weight.copy_(official.self_attn.out_proj.weight)
        ours.attn.proj.bias.copy_(official.self_attn.out_proj.bias)
        ours.mlp.fc1.weight.copy_(official.linear1.weight)
        ours.mlp.fc1.bias.copy_(official.linear1.bias)
        ours.mlp.fc2.weight.copy_(official.linear2.weight)
        ours.mlp.fc2.bias.copy_(official.linear2.bias)
        for mine, theirs in ((ours.norm1, official.norm1), (ours.norm2, official.norm2)):
            theirs.weight.normal_(1.0, 0.1)
            theirs.bias.normal_(0.0, 0.1)
            mine.load_state_dict(theirs.state_dict())


def test_post_norm_relu_block_matches_pytorchs_post_norm_layer() -> None:
    official = torch.nn.TransformerEncoderLayer(
        64, 2, 64, dropout=0.0, activation="relu", batch_first=True, norm_first=False
    )
    (ours,) = transformer_blocks(64, 1, 2, 1.0, 0.0, norm_placement="post", activation="relu", norm_eps=1e-5)
    copy_layer(ours, official)
    x = torch.randn(3, 7, 64)
    torch.testing.assert_close(ours(x), official(x), atol=1e-5, rtol=1e-5)
    mask = torch.rand(3, 1, 7, 7) > 0.3
    mask |= torch.eye(7, dtype=torch.bool)
    torch.testing.assert_close(
        ours(x, attn_mask=mask), official(x, src_mask=(~mask).repeat_interleave(2, 0)[:, 0]), atol=1e-5, rtol=1e-5
    )


def test_default_blocks_are_unchanged_pre_norm_gelu() -> None:
    torch.manual_seed(0)
    default = transformer_blocks(16, 2, 2, 4.0, 0.1)
    torch.manual_seed(0)
    explicit = transformer_blocks(16, 2, 2, 4.0, 0.1, norm_placement="pre", activation="gelu", norm_eps=1e-6)
    assert type(default[0]).__name__ == "PreNormBlock" and isinstance(default[0].mlp.act, torch.nn.GELU)
    assert type(default[0]).forward is not Block.forward and isinstance(default[0], Block)  # timm's, with rows=
    assert default[0].norm1.eps == 1e-6
    for a, b in zip(default.state_dict().values(), explicit.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="norm_placement"):
        transformer_blocks(16, 1, 2, 4.0, 0.0, norm_placement="sandwich")


def test_encoder_path_matches_the_official_encoder_with_copied_weights() -> None:
    """Official ``Encoder.forward(x, mask)``: tokenizer, + positional encoding, gather the context tokens,
    ``TabularEncoder``; ours: the preset's tokenizer and encoder (``keep``) holding the same weights."""
    model = TJEPA(
        input_spec=SPEC,
        encoder=TransformerEncoder(
            64, 3, 2, 1.0, norm_placement="post", activation="relu", norm_eps=1e-5, output_head=True
        ),
    )
    tokenizer, encoder = model.student.tokenizer, model.student.encoder
    official = OfficialTabularEncoder(64, 3, 2, 64)
    for ours, theirs in zip(encoder.blocks, official.transformer.layers, strict=True):
        copy_layer(ours, theirs)
    with torch.no_grad():
        for layer in (official.fc, official.layernorm1, official.layernorm2):
            for parameter in layer.parameters():
                parameter.normal_(0.5, 0.2)
    encoder.norm.load_state_dict(official.layernorm1.state_dict())
    encoder.head[0].load_state_dict(official.fc.state_dict())
    encoder.head[1].load_state_dict(official.layernorm2.state_dict())
    x = rows()
    x = TabularInput(torch.nan_to_num(x.numeric), x.categorical)
    tokens = tokenizer(x)
    keep = torch.tensor([[0, 2, 5], [0, 1, 3], [0, 4, 2], [0, 3, 1], [0, 5, 4], [0, 2, 1]])
    embedded = tokens.features + tokens.positions  # the official tokenizer + PositionalEncoding (tested separately)
    expected = official(torch.gather(embedded, 1, keep[..., None].expand(-1, -1, 64)))
    with torch.no_grad():
        torch.testing.assert_close(encoder(tokens, keep=keep), expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(encoder(tokens), official(embedded), atol=1e-5, rtol=1e-5)


# official: jose-melo/t-jepa@98dda991dd5e5d12266b3557aa80a33c4e0a6606 src/utils/train_utils.py::get_1d_sincos_pos_embed
def official_1d_sincos(embed_dim: int, pos: np.ndarray) -> np.ndarray:
    omega = np.arange(embed_dim // 2, dtype=float)
    omega /= embed_dim / 2.0
    omega = 1.0 / 10000**omega
    out = np.einsum("m,d->md", pos, omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


# official: jose-melo/t-jepa@98dda991dd5e5d12266b3557aa80a33c4e0a6606 src/predictors.py::TransformerPredictor.forward
# (its masks are lists of (B, K) index tensors, one per context / target group; apply_masks_from_idx concatenates
# the groups along the batch)
def official_predictor(modules, pos_embed, x, masks_enc, masks_pred) -> torch.Tensor:
    def apply_masks_from_idx(x, masks):
        return torch.cat([torch.gather(x, 1, m.unsqueeze(-1).repeat(1, 1, x.size(-1))) for m in masks], dim=0)

    predictor_emb, mask_token, transformer, predictor_norm, predictor_proj = modules
    batch = len(x)
    x = predictor_emb(x)
    x = x + apply_masks_from_idx(pos_embed.repeat(batch, 1, 1), masks_enc)
    _, n_ctxt, _ = x.shape
    pos_embs = apply_masks_from_idx(pos_embed.repeat(batch, 1, 1), masks_pred)
    pred_tokens = mask_token.repeat(pos_embs.size(0), pos_embs.size(1), 1) + pos_embs
    x = torch.cat([x.repeat(len(masks_pred), 1, 1), pred_tokens], dim=1)
    x = predictor_norm(transformer(x))
    return predictor_proj(x[:, n_ctxt:])


def test_predictor_matches_the_official_predictor_with_copied_weights() -> None:
    """Without regularisation tokens the layout coordinates are the official token indices, so the preset's
    predictor (post-norm ReLU stack, output head, norm, projection) reproduces the official one exactly."""
    model = TJEPA(input_spec=SPEC, num_register_tokens=0, predictor_depth=2)
    predictor, layout = model.predictor, model.student.tokenizer(rows()).layout
    official = OfficialTabularEncoder(16, 2, 4, 256)
    for ours, theirs in zip(predictor.blocks, official.transformer.layers, strict=True):
        copy_layer(ours, theirs)
    predictor_norm = torch.nn.LayerNorm(16)
    with torch.no_grad():
        for layer in (official.fc, official.layernorm1, official.layernorm2, predictor_norm):
            for parameter in layer.parameters():
                parameter.normal_(0.5, 0.2)
    for index, layer in enumerate((official.layernorm1, official.fc, official.layernorm2)):
        predictor.head[index].load_state_dict(layer.state_dict())
    predictor.norm.load_state_dict(predictor_norm.state_dict())
    pos_embed = torch.from_numpy(official_1d_sincos(16, np.arange(5))).float().unsqueeze(0)
    context = torch.randn(6, 2, 64)
    context_idx = torch.stack([torch.randperm(5)[:2] for _ in range(6)])
    target_idx = torch.stack([torch.stack([torch.randperm(5)[:3] for _ in range(4)]) for _ in range(6)])
    modules = (predictor.embed, predictor.mask_token, official, predictor_norm, predictor.proj)
    expected = official_predictor(modules, pos_embed, context, [context_idx], list(target_idx.unbind(1)))
    with torch.no_grad():
        ours = predictor(context, layout, context_idx, target_idx)
        torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


# official: jose-melo/t-jepa@98dda991dd5e5d12266b3557aa80a33c4e0a6606 src/mask.py::MaskCollator.__init__ (the size
# bounds), ._sample_num_mask and the redraw loop of .__call__ (num_encs = 1)
def official_mask_sizes(num_features: int, context_share, target_share, generator) -> tuple[int, int]:
    min_context, max_context = round(num_features * context_share[0]), round(num_features * context_share[1])
    min_target, max_target = round(num_features * target_share[0]), round(num_features * target_share[1])

    def sample_num_mask(_min: int, _max: int) -> int:
        num_hidden_feature = math.inf
        while num_hidden_feature > num_features:
            _rand = torch.rand(1, generator=generator).numpy()
            num_hidden_feature = _min + np.round((_max - _min) * _rand)
        return int(num_hidden_feature[0])

    n_ctx, n_trgt = math.inf, math.inf
    while n_ctx + n_trgt > num_features:
        n_ctx = sample_num_mask(min_context, max_context)
        n_trgt = sample_num_mask(min_target, max_target)
    return n_ctx, n_trgt


@pytest.mark.parametrize("num_features", [7, 16, 54])
def test_mask_sizes_follow_the_official_sampler(num_features: int) -> None:
    """The same size rule maps a uniform draw to the same count, and the joint distribution of (context, target)
    sizes, redraws included, matches the official sampler's (20,000 batches each)."""
    sampler = FeatureSubsetMaskSampler(context_ratio=CONTEXT_SHARE, target_ratio=TARGET_SHARE, size_rule="count")
    low, high = round(num_features * TARGET_SHARE[0]), round(num_features * TARGET_SHARE[1])
    for u in torch.rand(200, generator=torch.Generator().manual_seed(0)).tolist():
        assert sampler.count_size(num_features, TARGET_SHARE, u) == low + int(np.round((high - low) * np.float32(u)))
    draws = 20_000
    ours_gen, theirs_gen = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    ours = Counter(sampler.sizes(num_features, ours_gen) for _ in range(draws))
    theirs = Counter(official_mask_sizes(num_features, CONTEXT_SHARE, TARGET_SHARE, theirs_gen) for _ in range(draws))
    assert set(ours) == set(theirs)
    for sizes, count in theirs.items():
        assert abs(ours[sizes] - count) / draws < 0.008, (sizes, ours[sizes], count)  # "ratio" rule: 0.016-0.075


# official: jose-melo/t-jepa@98dda991dd5e5d12266b3557aa80a33c4e0a6606 src/utils/scheduler.py::WarmupCosineSchedule
# .step and run.py::main momentum_scheduler (ipe_scale 1); step() runs after each optimizer step, so optimizer step
# s >= 1 uses the value of the s-th call (step 0 runs at AdamW's default lr 1e-3, an artefact we do not copy).
def official_lr(step: int, warmup_steps: int, start_lr: float, ref_lr: float, t_max: int, final_lr: float) -> float:
    t_max = t_max - warmup_steps
    if step < warmup_steps:
        return start_lr + float(step) / float(max(1, warmup_steps)) * (ref_lr - start_lr)
    progress = float(step - warmup_steps) / float(max(1, t_max))
    return max(final_lr, final_lr + (ref_lr - final_lr) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def test_lr_and_ema_schedules_follow_the_official_ones() -> None:
    model = TJEPA(input_spec=SPEC)
    ipe, epochs = 7, 300
    total = ipe * epochs
    warmup = int(model.warmup_fraction * total)
    assert warmup == 10 * ipe
    for step in range(1, total):
        ours = warmup_cosine(step, total, warmup, model.warmup_start_lr, model.lr, model.min_lr)
        assert ours == pytest.approx(official_lr(step, 10 * ipe, 0.0, LEARNING_RATE, total, 0.0), abs=1e-12)
    official_momentum = [0.996 + i * (1.0 - 0.996) / total for i in range(total + 1)]
    ours = [model.teacher.momentum_at(step, total) for step in range(total + 1)]
    assert ours == pytest.approx(official_momentum, abs=1e-12)


def test_embedding_flattens_register_and_feature_tokens_of_the_teacher() -> None:
    model = TJEPA(input_spec=SPEC, encoder=TransformerEncoder(16, 1, 2), predictor_dim=8, predictor_depth=1)
    x = rows()
    expected = model.target_network(x).flatten(1)
    embedding = model.embed(x)
    assert embedding.shape == (6, (1 + 5) * 16)
    torch.testing.assert_close(embedding, expected)


def test_loss_is_the_mse_between_predictions_and_teacher_features_of_the_targets() -> None:
    """The objective equals MSE computed by hand from the same masks (teacher features without a target norm)."""
    model = TJEPA(input_spec=SPEC, encoder=TransformerEncoder(16, 1, 2), predictor_dim=8, predictor_depth=1)
    x = rows()
    loss, *_ = model.masked_prediction(x, torch.Generator().manual_seed(3))
    tokens = model.student.tokenizer(x)
    context_idx, target_idx = model.mask_sampler(tokens.layout, 6, torch.Generator().manual_seed(3), "cpu")
    prediction = model.predictor(
        model.student.encoder(tokens, keep=context_idx), tokens.layout, context_idx, target_idx
    )
    with torch.no_grad():
        teacher = model.target_network(x)
    targets = torch.cat([torch.gather(teacher, 1, target_idx[:, m, :, None].expand(-1, -1, 16)) for m in range(4)])
    torch.testing.assert_close(loss, ((prediction - targets) ** 2).mean())


def test_tjepa_trains_on_the_bundled_penguins_through_the_cli(tmp_path) -> None:
    main(
        [
            "fit",
            *RUN,
            "--model=jepa_lightning.methods.TJEPA",
            "--model.encoder=jepa_lightning.nn.TransformerEncoder",
            "--model.encoder.embed_dim=16",
            "--model.encoder.depth=1",
            "--model.encoder.num_heads=2",
            "--model.predictor_dim=8",
            "--model.predictor_depth=1",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
