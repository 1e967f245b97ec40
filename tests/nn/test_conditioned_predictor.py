"""The conditioned predictor: its output follows the condition in every mode, and ignores it when off."""

import pytest
import torch

from jepa_lightning.nn import JEPAPredictor
from jepa_lightning.nn.predictor import condition_rows
from jepa_lightning.tokenizers import TokenLayout, grid_coords

WIDTH, COND = 16, 5
MODES = ("token", "concat", "adaln")


def inputs(batch: int = 3) -> tuple[torch.Tensor, TokenLayout, torch.Tensor, torch.Tensor]:
    coords = grid_coords((4, 4))
    layout = TokenLayout("grid", (4, 4), coords)
    context_idx = torch.stack([torch.randperm(16)[:6] for _ in range(batch)])
    target_idx = torch.randint(0, 16, (batch, 2, 3))
    return torch.randn(batch, 6, WIDTH), layout, context_idx, target_idx


def predictor(conditioning: str = "none", **kwargs) -> JEPAPredictor:
    torch.manual_seed(0)
    return JEPAPredictor(
        WIDTH,
        predictor_dim=8,
        depth=2,
        num_heads=2,
        conditioning=conditioning,
        condition_dim=COND,
        init="xavier",
        **kwargs,
    ).eval()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("every_layer", [False, True])
def test_each_mode_makes_the_prediction_depend_on_the_condition(mode, every_layer):
    torch.manual_seed(1)
    context, layout, context_idx, target_idx = inputs()
    model = predictor(mode, positions_every_layer=every_layer)
    cond = torch.randn(3, COND)
    out = model(context, layout, context_idx, target_idx, cond=cond)
    assert out.shape == (2 * 3, 3, WIDTH)
    other = model(context, layout, context_idx, target_idx, cond=cond + 1.0)
    assert (out - other).abs().amax(dim=(1, 2)).min() > 1e-4  # every row moved
    # the same condition gives the same output, and each sample's rows follow only its own condition
    torch.testing.assert_close(model(context, layout, context_idx, target_idx, cond=cond.clone()), out)
    changed = cond.clone()
    changed[1] += 1.0
    partly = model(context, layout, context_idx, target_idx, cond=changed)
    rows_of_sample_1 = torch.tensor([1, 4])  # mask-major: row m * B + b
    kept = torch.tensor([0, 2, 3, 5])
    torch.testing.assert_close(partly[kept], out[kept])
    assert (partly[rows_of_sample_1] - out[rows_of_sample_1]).abs().max() > 1e-4


@pytest.mark.parametrize("mode", MODES)
def test_a_condition_per_target_group_conditions_each_groups_rows(mode):
    torch.manual_seed(2)
    context, layout, context_idx, target_idx = inputs()
    model = predictor(mode)
    per_group = torch.randn(3, 2, COND)
    out = model(context, layout, context_idx, target_idx, cond=per_group)
    changed = per_group.clone()
    changed[:, 1] += 1.0  # group 1 only: rows 3..5 change, rows 0..2 do not
    moved = model(context, layout, context_idx, target_idx, cond=changed)
    torch.testing.assert_close(moved[:3], out[:3])
    assert (moved[3:] - out[3:]).abs().amax(dim=(1, 2)).min() > 1e-4
    # a per-sample condition is the per-group one repeated over the groups
    torch.testing.assert_close(
        model(context, layout, context_idx, target_idx, cond=per_group[:, 0]),
        model(context, layout, context_idx, target_idx, cond=per_group[:, :1].expand(-1, 2, -1)),
    )


def test_without_conditioning_the_prediction_ignores_the_condition_and_matches_the_plain_predictor():
    torch.manual_seed(3)
    context, layout, context_idx, target_idx = inputs()
    model = predictor("none")
    plain = model(context, layout, context_idx, target_idx)
    for cond in (torch.randn(3, COND), torch.randn(3, 2, COND) * 100):
        torch.testing.assert_close(model(context, layout, context_idx, target_idx, cond=cond), plain)
    # bit-identical to a predictor built without the new keywords: same weights, same output
    torch.manual_seed(0)
    reference = JEPAPredictor(WIDTH, predictor_dim=8, depth=2, num_heads=2, init="xavier").eval()
    assert reference.state_dict().keys() == model.state_dict().keys()
    for name, value in reference.state_dict().items():
        assert torch.equal(value, model.state_dict()[name]), name
    assert torch.equal(reference(context, layout, context_idx, target_idx), plain)


def test_token_conditioning_keeps_padding_and_attention_rules():
    """The condition token joins a restricted attention pattern: a padding context token still changes nothing."""
    torch.manual_seed(4)
    context, layout, context_idx, target_idx = inputs(batch=2)
    model = predictor("token", attention="same_channel")
    cond = torch.randn(2, COND)
    valid = torch.ones(2, 16, dtype=torch.bool)
    padded = context_idx[0, -1]
    valid[0, padded] = False
    target_idx[0] = torch.where(target_idx[0] == padded, (padded + 1) % 16, target_idx[0])
    out = model(context, layout, context_idx, target_idx, valid=valid, cond=cond)
    noisy = context.clone()
    noisy[0, -1] += 10.0
    torch.testing.assert_close(model(noisy, layout, context_idx, target_idx, valid=valid, cond=cond)[0], out[0])


def test_condition_rows_are_mask_major_and_bad_shapes_are_refused():
    cond = torch.arange(6.0).reshape(3, 2, 1)  # (B=3, M=2, C=1)
    assert condition_rows(cond, 3, 2)[:, 0].tolist() == [0.0, 2.0, 4.0, 1.0, 3.0, 5.0]
    assert condition_rows(cond[:, 0], 3, 2)[:, 0].tolist() == [0.0, 2.0, 4.0, 0.0, 2.0, 4.0]
    with pytest.raises(ValueError, match="per target group"):
        condition_rows(torch.zeros(3, 4, 1), 3, 2)


def test_conditioning_options_are_checked():
    context, layout, context_idx, target_idx = inputs()
    with pytest.raises(ValueError, match="pass cond"):
        predictor("concat")(context, layout, context_idx, target_idx)
    with pytest.raises(ValueError, match="conditioning must be one of"):
        JEPAPredictor(WIDTH, predictor_dim=8, depth=1, num_heads=2, conditioning="film", condition_dim=2)
    with pytest.raises(ValueError, match="condition_dim >= 1"):
        JEPAPredictor(WIDTH, predictor_dim=8, depth=1, num_heads=2, conditioning="token")
    with pytest.raises(ValueError, match="norm_placement='pre'"):
        JEPAPredictor(
            WIDTH, predictor_dim=8, depth=1, num_heads=2, conditioning="adaln", condition_dim=2, norm_placement="post"
        )
