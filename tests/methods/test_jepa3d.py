"""3D-JEPA (Hu et al. 2024, arXiv:2409.15803; no official code): kNN-ball multi-block masks, the predictor that sees
the context at every layer, the cosine loss, and a CLI fit."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from jepa_lightning.cli import main
from jepa_lightning.losses import latent_regression
from jepa_lightning.masks import NeighbourhoodBlockMaskSampler, mask_generator
from jepa_lightning.methods import JEPA3D
from jepa_lightning.nn import JEPAPredictor, TransformerEncoder
from jepa_lightning.nn.functional import gather_mask_major, gather_tokens
from jepa_lightning.tokenizers import InputSpec, TokenLayout, grid_coords
from tests.test_cli import cloud_folder

SPEC = InputSpec("point_clouds", channels=3)


def tiny_jepa3d(**kwargs) -> JEPA3D:
    defaults = {
        "encoder": TransformerEncoder(embed_dim=32, depth=2, num_heads=2, positions_every_layer=True),
        "num_groups": 16,
        "group_size": 8,
        "predictor_dim": 16,
        "predictor_depth": 2,
        "input_spec": SPEC,
    }
    return JEPA3D(**{**defaults, **kwargs})


def point_layout(batch: int = 3, tokens: int = 40, seed: int = 0) -> TokenLayout:
    coords = torch.rand(batch, tokens, 3, generator=torch.Generator().manual_seed(seed))
    return TokenLayout("sequence", (tokens,), coords)


def draw(sampler: NeighbourhoodBlockMaskSampler, layout: TokenLayout, seed: int = 0) -> tuple[torch.Tensor, ...]:
    return sampler(layout, layout.coords.shape[0], mask_generator(seed, 0, 0, "cpu"), "cpu")


# -- the kNN-ball multi-block sampler -------------------------------------------------------------------------------
def test_every_target_block_is_the_k_nearest_centres_of_its_seed():
    layout = point_layout()
    sampler = NeighbourhoodBlockMaskSampler()
    for seed in range(5):
        _, target_idx = draw(sampler, layout, seed)
        batch, groups, k = target_idx.shape
        assert groups == 4 and int(40 * 0.15) <= k <= int(40 * 0.2)
        for b in range(batch):
            distances = torch.cdist(layout.coords[b].double(), layout.coords[b].double())  # brute force
            for m in range(groups):
                seed_token = int(target_idx[b, m, 0])  # nearest first: the seed itself (distance 0)
                nearest = set(distances[seed_token].argsort()[:k].tolist())
                assert set(target_idx[b, m].tolist()) == nearest
                inside = distances[seed_token, target_idx[b, m]].max()
                outside = torch.ones(40, dtype=torch.bool)
                outside[target_idx[b, m]] = False
                assert inside < distances[seed_token, outside].min()


def test_the_context_is_a_ball_minus_the_targets_and_disjoint_from_them():
    layout = point_layout()
    sampler = NeighbourhoodBlockMaskSampler(context_scale=(0.4, 0.6))
    for seed in range(5):
        context_idx, target_idx = draw(sampler, layout, seed)
        assert torch.equal(context_idx, context_idx.sort(dim=1).values)
        for b in range(layout.coords.shape[0]):
            context, targets = set(context_idx[b].tolist()), set(target_idx[b].flatten().tolist())
            assert len(context) == context_idx.shape[1] and not context & targets
            # some centre's nearest non-target tokens, brute force over every candidate seed
            distances = torch.cdist(layout.coords[b].double(), layout.coords[b].double())
            free = [[t for t in distances[s].argsort().tolist() if t not in targets] for s in range(40)]
            assert any(set(order[: len(context)]) == context for order in free)


def test_masks_are_deterministic_under_a_seed_and_differ_between_seeds():
    layout, sampler = point_layout(), NeighbourhoodBlockMaskSampler()
    first, again, other = draw(sampler, layout, 3), draw(sampler, layout, 3), draw(sampler, layout, 4)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(first, other))


# official: facebookresearch/ijepa@52c1ae95d05f743e000e8f10a1f3a79b10cff048
# src/masks/multiblock.py::MaskCollator._sample_block_size (the token count: `int(height * width * mask_scale)`)
def official_block_tokens(num_tokens: int, r: float, scale: tuple[float, float]) -> int:
    min_s, max_s = scale
    mask_scale = min_s + r * (max_s - min_s)
    return int(num_tokens * mask_scale)


def test_block_sizes_are_ijepa_token_counts_of_the_same_draws():
    sampler = NeighbourhoodBlockMaskSampler()
    for seed in range(20):
        r = torch.rand(2, generator=torch.Generator().manual_seed(seed)).tolist()
        sizes = sampler.block_sizes(64, torch.Generator().manual_seed(seed))
        assert sizes == (
            official_block_tokens(64, r[0], sampler.target_scale),
            official_block_tokens(64, r[1], sampler.context_scale),
        )


def test_the_sampler_works_on_grid_coordinates_shared_by_the_batch():
    layout = TokenLayout("grid", (6, 6), grid_coords((6, 6)))
    context_idx, target_idx = NeighbourhoodBlockMaskSampler()(layout, 5, mask_generator(0, 0, 0, "cpu"), "cpu")
    assert context_idx.shape[0] == 5 and target_idx.shape[:2] == (5, 4)
    for b in range(5):
        assert not set(context_idx[b].tolist()) & set(target_idx[b].flatten().tolist())


def test_an_impossible_context_is_an_error():
    sampler = NeighbourhoodBlockMaskSampler(num_targets=8, target_scale=(0.9, 1.0), max_tries=2)
    with pytest.raises(ValueError, match="no context token"):
        draw(sampler, point_layout(tokens=10))


# -- the predictor that sees the context at every layer -------------------------------------------------------------
def predictor_inputs(seed: int = 0) -> tuple[torch.Tensor, TokenLayout, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    layout = TokenLayout("sequence", (12,), torch.rand(2, 12, 3, generator=g))
    context = torch.randn(2, 7, 32, generator=g)
    context_idx = torch.stack([torch.randperm(12, generator=g)[:7] for _ in range(2)])
    target_idx = torch.stack([torch.randperm(12, generator=g)[:6].view(2, 3) for _ in range(2)])
    return context, layout, context_idx, target_idx


def block_inputs(predictor: JEPAPredictor, *inputs) -> list[torch.Tensor]:
    """What enters each block, recorded by pre-hooks."""
    seen: list[torch.Tensor] = []
    handles = [block.register_forward_pre_hook(lambda _, args: seen.append(args[0])) for block in predictor.blocks]
    predictor(*inputs)
    for handle in handles:
        handle.remove()
    return seen


def block_outputs(predictor: JEPAPredictor, *inputs) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    handles = [block.register_forward_hook(lambda *a: seen.append(a[2][:, -3:])) for block in predictor.blocks]
    predictor(*inputs)
    for handle in handles:
        handle.remove()
    return seen


def make_predictor(**kwargs) -> JEPAPredictor:
    torch.manual_seed(0)
    return JEPAPredictor(32, predictor_dim=16, depth=3, num_heads=2, positions="mlp", **kwargs).eval()


def test_every_block_sees_the_context_as_it_entered_and_every_layer_depends_on_it():
    predictor = make_predictor(context_every_layer=True)
    context, layout, context_idx, target_idx = predictor_inputs()
    inputs = block_inputs(predictor, context, layout, context_idx, target_idx)
    for later in inputs[1:]:
        torch.testing.assert_close(later[:, :-3], inputs[0][:, :-3], rtol=0, atol=0)
    default = block_inputs(make_predictor(), context, layout, context_idx, target_idx)
    assert not torch.equal(default[1][:, :-3], default[0][:, :-3])  # the default updates the context rows
    perturbed = context + 0.5 * torch.randn(context.shape, generator=torch.Generator().manual_seed(9))
    before = block_outputs(predictor, context, layout, context_idx, target_idx)
    after = block_outputs(predictor, perturbed, layout, context_idx, target_idx)
    assert len(before) == 3
    for layer_before, layer_after in zip(before, after):
        assert (layer_before - layer_after).abs().amax() > 1e-3


def reference_forward(predictor: JEPAPredictor, context, layout, context_idx, target_idx, every_layer: bool):
    """The predictor written out by hand: positions added once, blocks over the whole sequence, or (every_layer) the
    embedded context put back in front of the target slots before every block."""
    positions = predictor.position_mlp(layout.coords)
    embedded = (predictor.embed(context) + gather_tokens(positions, context_idx)).repeat(2, 1, 1)
    queries = predictor.mask_token[:1] + gather_mask_major(positions, target_idx)
    x = torch.cat([embedded, queries], dim=1)
    for block in predictor.blocks:
        x = block(torch.cat([embedded, x[:, -3:]], dim=1) if every_layer else x)
    return predictor.proj(predictor.norm(x[:, -3:]))


def test_the_default_predictor_is_unchanged_and_the_option_adds_no_weights():
    default, every = make_predictor(), make_predictor(context_every_layer=True)
    assert default.state_dict().keys() == every.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(default.state_dict().values(), every.state_dict().values()))
    inputs = predictor_inputs()
    assert torch.equal(default(*inputs), reference_forward(default, *inputs, every_layer=False))
    assert torch.equal(every(*inputs), reference_forward(every, *inputs, every_layer=True))
    assert not torch.equal(default(*inputs), every(*inputs))
    torch.manual_seed(0)
    one_block = JEPAPredictor(32, predictor_dim=16, depth=1, num_heads=2, positions="mlp").eval()
    torch.manual_seed(0)
    one_block_every = JEPAPredictor(32, 16, 1, 2, positions="mlp", context_every_layer=True).eval()
    assert torch.equal(one_block(*inputs), one_block_every(*inputs))  # one block: nothing to feed again


# -- the cosine loss ------------------------------------------------------------------------------------------------
def test_cosine_latent_loss_against_the_hand_formula():
    g = torch.Generator().manual_seed(0)
    p, t = torch.randn(4, 5, 8, generator=g), torch.randn(4, 5, 8, generator=g)
    hand = 1 - (p * t).sum(-1) / (p.norm(dim=-1) * t.norm(dim=-1))
    torch.testing.assert_close(latent_regression(p, t, "cosine"), hand.mean())


def test_the_preset_loss_is_the_cosine_distance_to_the_teachers_layer_normed_targets():
    torch.manual_seed(0)
    model = tiny_jepa3d()
    assert model.loss_kind == "cosine" and model.predictor.context_every_layer
    captured: dict[str, torch.Tensor] = {}
    model.predictor.register_forward_hook(lambda *a: captured.__setitem__("prediction", a[2]))
    model.teacher.module.register_forward_hook(lambda *a: captured.__setitem__("encoded", a[2]))
    draw_masks = model.mask_sampler.configurations

    def recording(*args, **kwargs):
        configurations = draw_masks(*args, **kwargs)
        captured["target_idx"] = configurations[0][1]
        return configurations

    model.mask_sampler.configurations = recording
    clouds = torch.randn(3, 96, 3, generator=torch.Generator().manual_seed(1))
    loss = model.masked_prediction(clouds, mask_generator(0, 0, 0, "cpu")).loss
    targets = gather_mask_major(F.layer_norm(captured["encoded"], (32,)), captured["target_idx"])
    prediction = captured["prediction"]
    hand = 1 - (prediction * targets).sum(-1) / (prediction.norm(dim=-1) * targets.norm(dim=-1))
    torch.testing.assert_close(loss, hand.mean())
    assert math.isfinite(loss.item()) and 0 < loss.item() < 2


def test_random_start_needs_an_encoder_teacher():
    with pytest.raises(ValueError, match="teacher_scope='encoder'"):
        tiny_jepa3d(teacher_scope="backbone")


# -- the command line -----------------------------------------------------------------------------------------------
def test_jepa3d_fits_through_the_cli_on_a_folder_of_clouds(tmp_path):
    config = Path(__file__).parents[2] / "examples" / "configs" / "jepa3d_cgal.yaml"
    main(
        [
            "fit",
            "--config",
            str(config),
            f"--data.path={cloud_folder(tmp_path)}",
            "--data.num_points=128",
            "--data.batch_size=4",
            "--model.num_groups=16",
            "--model.group_size=8",
            "--model.encoder.embed_dim=24",
            "--model.encoder.depth=1",
            "--model.predictor_dim=12",
            "--model.predictor_depth=2",
            "--trainer.max_steps=2",
            "--trainer.limit_val_batches=1",
            "--trainer.enable_checkpointing=false",
            "--trainer.logger=false",
            "--diagnostics=false",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
