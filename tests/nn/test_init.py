"""Weight initialisations: I-JEPA's trunc-normal (the default) and xavier, on encoder and patch embedding."""

import math

import pytest
import torch
from torch import nn

from jepa_lightning.nn import JEPAPredictor, TransformerEncoder
from jepa_lightning.nn.init import init_embedding, xavier_init
from jepa_lightning.tokenizers import InputSpec, PatchTokenizer2d
from tests.conftest import tiny_ijepa

WIDTH, DEPTH = 96, 4


def xavier_bound(fan_in: int, fan_out: int) -> float:
    return math.sqrt(6.0 / (fan_in + fan_out))


def assert_xavier_uniform(weight: torch.Tensor, fan_in: int, fan_out: int) -> None:
    """Inside the xavier bound, and the std of U(-a, a), a / sqrt(3), within 4 standard errors (the sample std of
    n uniform values has relative standard error sqrt(0.2 / n))."""
    bound = xavier_bound(fan_in, fan_out)
    assert weight.abs().max().item() <= bound
    assert weight.abs().max().item() > 0.95 * bound  # uniform fills its range, a normal of that std would not
    rel = 4 * math.sqrt(0.2 / weight.numel())
    assert weight.std().item() == pytest.approx(bound / math.sqrt(3.0), rel=rel)


def test_default_encoder_init_is_ijepa_trunc_normal_with_depth_scaled_residuals():
    torch.manual_seed(0)
    encoder = TransformerEncoder(embed_dim=WIDTH, depth=DEPTH, num_heads=3)
    assert encoder.init == "ijepa"
    for layer, block in enumerate(encoder.blocks, start=1):
        assert block.attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.05)
        assert block.mlp.fc2.weight.std().item() == pytest.approx(0.02 / math.sqrt(2 * layer), rel=0.05)
        assert not block.attn.qkv.bias.any()


def test_xavier_encoder_init_follows_fan_in_and_out_without_depth_scaling():
    torch.manual_seed(0)
    encoder = TransformerEncoder(embed_dim=WIDTH, depth=DEPTH, num_heads=3, init="xavier")
    for block in encoder.blocks:
        assert_xavier_uniform(block.attn.qkv.weight, WIDTH, 3 * WIDTH)
        assert_xavier_uniform(block.attn.proj.weight, WIDTH, WIDTH)
        assert_xavier_uniform(block.mlp.fc1.weight, WIDTH, 4 * WIDTH)
        assert_xavier_uniform(block.mlp.fc2.weight, 4 * WIDTH, WIDTH)  # same at every depth: no rescaling
        assert not block.mlp.fc2.bias.any()
        torch.testing.assert_close(block.norm1.weight, torch.ones(WIDTH))
    torch.testing.assert_close(encoder.norm.bias, torch.zeros(WIDTH))


def test_xavier_patch_embedding_is_initialised_as_a_linear_map_of_the_patch():
    """A 4 x 4 grey patch has 16 inputs: the conv's fan-out is the width, not width x 16 as torch's conv rule says."""
    torch.manual_seed(0)
    spec = InputSpec("images", channels=1, image_size=(32, 32))
    xavier = PatchTokenizer2d(spec, WIDTH, patch_size=4, init="xavier").proj
    assert_xavier_uniform(xavier.weight, 16, WIDTH)
    ijepa = PatchTokenizer2d(spec, WIDTH, patch_size=4).proj
    assert ijepa.weight.std().item() == pytest.approx(0.02, rel=0.05)
    # Why the option exists: on unit-variance pixels, trunc-normal tokens are ~6x weaker than xavier ones.
    pixels = torch.randn(64, 1, 32, 32)
    ratio = xavier(pixels).std() / ijepa(pixels).std()
    assert ratio.item() == pytest.approx(math.sqrt(2.0 / (16 + WIDTH)) / 0.02, rel=0.1)


def test_ijepa_patch_embedding_and_teacher_follow_the_encoder_init():
    torch.manual_seed(0)
    model = tiny_ijepa(encoder=TransformerEncoder(embed_dim=32, depth=2, num_heads=2, init="xavier"))
    proj = model.student.tokenizer.proj  # 2 x 2 grey patches: 4 inputs
    assert_xavier_uniform(proj.weight, 4, 32)
    torch.testing.assert_close(model.teacher.module.tokenizer.proj.weight, proj.weight)
    default = tiny_ijepa().student.tokenizer.proj.weight
    assert default.abs().max().item() < xavier_bound(4, 32) / 3  # trunc-normal 0.02: far inside that bound


def test_xavier_init_leaves_parameters_it_does_not_own():
    module = nn.Sequential(nn.Linear(8, 8))
    module.register_parameter("token", nn.Parameter(torch.full((1, 8), 3.0)))
    xavier_init(module)
    torch.testing.assert_close(module.token, torch.full((1, 8), 3.0))


def test_unknown_init_is_a_clear_error():
    with pytest.raises(ValueError, match=r"init must be one of \('ijepa', 'xavier'\), got 'kaiming'"):
        TransformerEncoder(embed_dim=32, depth=1, num_heads=2, init="kaiming")
    with pytest.raises(ValueError, match="init must be one of"):
        init_embedding(nn.Linear(2, 2), "normal")


def test_predictor_init_option_and_ijepa_predictor_follow_the_encoder():
    torch.manual_seed(0)
    predictor = JEPAPredictor(embed_dim=WIDTH, predictor_dim=48, depth=3, num_heads=3, init="xavier")
    assert_xavier_uniform(predictor.embed.weight, WIDTH, 48)
    assert_xavier_uniform(predictor.proj.weight, 48, WIDTH)
    for block in predictor.blocks:
        assert_xavier_uniform(block.mlp.fc2.weight, 4 * 48, 48)
    assert predictor.mask_token.std().item() == pytest.approx(0.02, rel=0.3)  # I-JEPA's token under both inits
    paper = JEPAPredictor(embed_dim=WIDTH, predictor_dim=48, depth=3, num_heads=3)
    for layer, block in enumerate(paper.blocks, start=1):
        assert block.mlp.fc2.weight.std().item() == pytest.approx(0.02 / math.sqrt(2 * layer), rel=0.05)
    model = tiny_ijepa(encoder=TransformerEncoder(embed_dim=32, depth=2, num_heads=2, init="xavier"))
    assert_xavier_uniform(model.predictor.embed.weight, 32, 16)
    assert tiny_ijepa().predictor.embed.weight.std().item() == pytest.approx(0.02, rel=0.1)
