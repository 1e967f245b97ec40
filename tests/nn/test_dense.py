"""Dense encoders in JEPA: the sparse ResNet sees nothing of its masked cells through any stage, its grid and shapes,
SparK's sparse batch norm, and CNN-JEPA's convolutional predictor."""

import pytest
import torch
from torch import nn

from jepa_lightning.inputs import InputSpec
from jepa_lightning.nn import ConvPredictor, SparseResNet
from jepa_lightning.nn.dense import ActiveCells, SparseBatchNorm2d
from jepa_lightning.tokenizers import ImageCellTokenizer
from jepa_lightning.tokens import TokenLayout, grid_coords

SPEC = InputSpec("images", channels=1, image_size=(32, 32), num_classes=10)
SMALL = {"layers": (1, 1, 1, 1), "channels": (8, 8, 16, 16), "stem_width": 8}


def small_resnet(**kwargs) -> SparseResNet:
    torch.manual_seed(0)
    return SparseResNet(SPEC, "resnet18", **{**SMALL, **kwargs})


def stage_outputs(encoder: SparseResNet, images: torch.Tensor, keep: torch.Tensor | None) -> list[torch.Tensor]:
    """The output of every stage (stem, four residual stages) and the final features of one forward pass."""
    outputs: list[torch.Tensor] = []
    model = encoder.model
    hooks = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out)) for m in (model.maxpool, model.layer1)]
    hooks += [m.register_forward_hook(lambda _m, _i, out: outputs.append(out)) for m in (model.layer2, model.layer3)]
    hooks.append(model.layer4.register_forward_hook(lambda _m, _i, out: outputs.append(out)))
    tokenizer = ImageCellTokenizer(SPEC, cell_size=encoder.reduction)
    try:
        outputs.append(encoder(tokenizer(images), keep))
    finally:
        for hook in hooks:
            hook.remove()
    return outputs


def cell_mask(keep: torch.Tensor, grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """``(B, 1, H, W)`` True at the pixels (or positions) of the kept cells."""
    active = torch.zeros(keep.shape[0], grid[0] * grid[1], dtype=torch.bool).scatter_(1, keep, True)
    active = active.view(-1, 1, *grid)
    return active.repeat_interleave(size[0] // grid[0], 2).repeat_interleave(size[1] // grid[1], 3)


@pytest.mark.parametrize(
    ("options", "size", "grid"),
    [
        ({"small_input_stem": True, "output_stride": 16}, (32, 32), (8, 8)),  # CIFAR-style stem, dilated last stage
        ({"output_stride": 16}, (64, 64), (4, 4)),  # the 7 x 7 stem and its max-pool
        ({}, (64, 96), (2, 3)),  # the standard ResNet: reduction 32
    ],
)
@pytest.mark.parametrize("training", [True, False])
def test_masked_pixels_reach_no_visible_position_through_any_stage(options, size, grid, training):
    encoder = small_resnet(**options).train(training)
    assert (size[0] // encoder.reduction, size[1] // encoder.reduction) == grid
    cells = grid[0] * grid[1]
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(4, 1, *size, generator=generator)
    keep = torch.rand(4, cells, generator=generator).argsort(1)[:, : cells // 2].sort(1).values
    pixels = cell_mask(keep, grid, size)
    other = torch.where(pixels, images, 10 * torch.randn(images.shape, generator=generator))
    first, second = stage_outputs(encoder, images, keep), stage_outputs(encoder, other, keep)
    assert len(first) == 6
    for before, after in zip(first[:-1], second[:-1]):  # every stage: visible positions equal, masked ones 0
        visible = cell_mask(keep, grid, tuple(before.shape[-2:])).expand_as(before)
        torch.testing.assert_close(before[visible], after[visible], rtol=0, atol=0)
        assert before[~visible].abs().max() == 0
    torch.testing.assert_close(first[-1], second[-1], rtol=0, atol=0)
    tokenizer = ImageCellTokenizer(SPEC, cell_size=encoder.reduction)  # run densely, it sees them (the test can fail)
    dense = [encoder(tokenizer(x)).gather(1, keep[..., None].expand(-1, -1, 16)) for x in (images, other)]
    assert not torch.allclose(*dense)


def test_cells_tokenize_and_reassemble_the_image_and_the_grid_is_the_final_map():
    encoder = small_resnet(small_input_stem=True, output_stride=16)
    assert (encoder.reduction, encoder.embed_dim, encoder.token_dim) == (4, 16, 16)
    tokenizer = ImageCellTokenizer(SPEC, cell_size=4)
    images = torch.randn(2, 1, 32, 48)
    tokens = tokenizer(images)
    assert tokens.layout.shape == (8, 12) and tokens.features.shape == (2, 96, 16)
    assert tokens.positions.shape == (1, 96, 0)
    torch.testing.assert_close(tokens.features[0, 13], images[0, 0, 4:8, 4:8].reshape(-1))  # row 1, column 1
    torch.testing.assert_close(encoder.images(tokens), images)
    encoder.eval()
    dense = encoder(tokens)
    assert dense.shape == (2, 96, 16)
    keep = torch.tensor([[5, 0, 7], [95, 1, 2]])
    assert encoder(tokens, keep).shape == (2, 3, 16)
    everything = torch.arange(96).repeat(2, 1)
    torch.testing.assert_close(encoder(tokens, everything), dense)  # every cell kept: the dense pass
    with pytest.raises(ValueError, match="cell_size=4"):
        encoder(ImageCellTokenizer(SPEC, cell_size=8)(images))
    with pytest.raises(ValueError, match="final norm"):
        encoder(tokens, final_norm=False)


def test_sparse_layers_keep_the_timm_parameter_names():
    encoder = small_resnet()
    reference = __import__("timm").create_model(
        "resnet18", pretrained=False, in_chans=1, num_classes=0, global_pool="", **SMALL
    )
    assert [name for name, _ in encoder.model.named_parameters()] == [n for n, _ in reference.named_parameters()]
    assert isinstance(encoder.model.layer1[0].bn1, SparseBatchNorm2d)


# official: kaland313/CNN-JEPA@f1b813548b56619b65311dbc1cd015c55cd0557b models/sparse_encoder.py::sp_bn_forward
# (from keyu-tian/SparK): a BatchNorm1d on the active positions' features, zeros elsewhere.
def official_sparse_bn(bn: nn.BatchNorm1d, x: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    ii = active.squeeze(1).nonzero(as_tuple=True)
    bhwc = x.permute(0, 2, 3, 1)
    nc = bn(bhwc[ii])
    out = torch.zeros_like(bhwc)
    out[ii] = nc
    return out.permute(0, 3, 1, 2)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_sparse_batch_norm_matches_the_official_one(momentum):
    torch.manual_seed(0)
    cells = ActiveCells()
    ours = SparseBatchNorm2d(6, momentum=momentum)
    ours.cells = cells
    official = nn.BatchNorm1d(6, momentum=momentum)
    with torch.no_grad():
        for bn in (ours, official):
            bn.weight.copy_(torch.linspace(0.5, 2, 6))
            bn.bias.copy_(torch.linspace(-1, 1, 6))
    grid = torch.rand(3, 1, 2, 2) < 0.5
    grid[0, 0, 0, 0] = True
    cells.set(grid)
    active = cells.at((8, 8))
    for step in range(3):
        x = torch.randn(3, 6, 8, 8) * 3 + step
        torch.testing.assert_close(ours(x), official_sparse_bn(official, x, active), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.running_mean, official.running_mean)
    torch.testing.assert_close(ours.running_var, official.running_var)
    ours.eval()
    official.eval()
    x = torch.randn(3, 6, 8, 8)
    torch.testing.assert_close(ours(x), official_sparse_bn(official, x, active), rtol=1e-5, atol=1e-5)


def test_conv_predictor_layers_mask_tokens_and_repeated_context_cells():
    torch.manual_seed(0)
    predictor = ConvPredictor(8)
    kinds = [(type(m).__name__, getattr(m, "groups", None), getattr(m, "kernel_size", None)) for m in predictor.layers]
    block = [("Conv2d", 8, (3, 3)), ("Conv2d", 1, (1, 1)), ("BatchNorm2d", None, None), ("ReLU", None, None)]
    assert kinds == block * 3
    assert predictor.mask_token.abs().max() <= 0.02 and predictor.mask_token.std() > 0
    assert ConvPredictor(8, depth=2, separable=False).layers[0].groups == 1
    layout = TokenLayout("grid", (3, 3), grid_coords((3, 3)))
    context = torch.randn(2, 4, 8, requires_grad=True)
    context_idx = torch.tensor([[0, 2, 4, 8], [1, 3, 5, 7]])
    grid = predictor.feature_map(context, layout, context_idx)
    assert grid.shape == (2, 8, 3, 3)
    torch.testing.assert_close(grid[0, :, 0, 2], context[0, 1])
    torch.testing.assert_close(grid[1, :, 2, 2], predictor.mask_token[0, 0])  # cell 8 of sample 1: not context
    target_idx = torch.tensor([[[1, 3], [5, 6]], [[0, 2], [4, 6]]])
    prediction = predictor(context, layout, context_idx, target_idx)
    assert prediction.shape == (4, 2, 8)
    torch.testing.assert_close(prediction.norm(dim=-1), torch.ones(4, 2))
    prediction.sum().backward()
    gradient = context.grad.clone()
    # the same context with cell 0 / cell 1 listed twice (a padded context): same prediction, same gradient
    context.grad = None
    padded = torch.cat([context, context[:, :1]], dim=1)
    again = predictor(padded, layout, torch.cat([context_idx, context_idx[:, :1]], dim=1), target_idx)
    torch.testing.assert_close(again, prediction)
    again.sum().backward()
    torch.testing.assert_close(context.grad, gradient)
