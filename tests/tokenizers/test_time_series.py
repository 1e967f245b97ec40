import numpy as np
import pytest
import torch

from jepa_lightning.tokenizers import (
    ChannelPatchTokenizer,
    InputSpec,
    grid_coords,
    sincos_embedding,
)
from jepa_lightning.tokenizers.time_series import adapted_patch_length

SPEC = InputSpec(modality="time_series", channels=3, sample_rate=100.0)


def series(batch: int = 2, channels: int = 3, length: int = 96, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 5.0 + 3.0 * torch.randn(batch, channels, length, generator=generator)


def test_channel_independent_shapes_layout_and_positions():
    tokenizer = ChannelPatchTokenizer(SPEC, embed_dim=32, patch_length=24)
    tokens = tokenizer(series(length=96))
    assert tokens.features.shape == (2, 3 * 4, 32)
    assert tokens.layout.shape == (3, 4) and tokens.layout.num_tokens == 12
    assert torch.equal(tokens.layout.coords, grid_coords((3, 4)))
    assert torch.allclose(tokens.positions, sincos_embedding(grid_coords((3, 4)), 32))
    # positions follow the input's patch count
    assert tokenizer(series(length=48)).layout.shape == (3, 2)


def test_channel_mixing_shapes_layout_and_positions():
    tokenizer = ChannelPatchTokenizer(SPEC, embed_dim=32, patch_length=24, channel_independent=False)
    tokens = tokenizer(series(length=120))
    assert tokens.features.shape == (2, 5, 32)
    assert tokens.layout.shape == (5,)
    assert torch.allclose(tokens.positions, sincos_embedding(grid_coords((5,)), 32))


def test_instance_norm_is_zero_mean_unit_variance_per_channel():
    tokenizer = ChannelPatchTokenizer(SPEC, embed_dim=8, patch_length=24)
    normed = tokenizer.normalise(series())
    assert torch.allclose(normed.mean(-1), torch.zeros(2, 3), atol=1e-5)
    assert torch.allclose(normed.var(-1, unbiased=False), torch.ones(2, 3), atol=1e-4)


@pytest.mark.parametrize("instance_norm", [True, False])
def test_channel_independent_token_is_linear_map_of_its_patch(instance_norm):
    tokenizer = ChannelPatchTokenizer(SPEC, embed_dim=16, patch_length=24, instance_norm=instance_norm)
    x = series()
    tokens = tokenizer(x).features
    normed = tokenizer.normalise(x)
    for b, c, p in [(0, 0, 0), (1, 2, 3), (0, 1, 2)]:
        patch = normed[b, c, p * 24 : (p + 1) * 24]
        assert torch.allclose(tokens[b, c * 4 + p], tokenizer.proj(patch), atol=1e-5)


def test_channel_mixing_token_is_linear_map_of_all_leads_patch():
    tokenizer = ChannelPatchTokenizer(SPEC, embed_dim=16, patch_length=24, channel_independent=False)
    x = series()
    tokens = tokenizer(x).features
    normed = tokenizer.normalise(x)
    for b, p in [(0, 0), (1, 3)]:
        patch = normed[b, :, p * 24 : (p + 1) * 24].reshape(-1)  # channel-major
        assert torch.allclose(tokens[b, p], tokenizer.proj(patch), atol=1e-5)


def test_trailing_samples_error_unless_crop():
    with pytest.raises(ValueError, match="crop=True"):
        ChannelPatchTokenizer(SPEC, embed_dim=8, patch_length=24)(series(length=100))
    tokenizer = ChannelPatchTokenizer(SPEC, embed_dim=8, patch_length=24, crop=True)
    assert tokenizer(series(length=100)).features.shape == (2, 12, 8)


def test_window_length_checked_when_built():
    """A datamodule that fixes the window length lets a patch length that does not divide it fail at construction,
    with the fix in the message, instead of at the first training step."""
    windows = InputSpec(modality="eeg", channels=3, sample_rate=100.0, length=100)
    with pytest.raises(ValueError, match=r"length 100 is not a multiple of patch_length=24.*e\.g\. 96.*crop=True"):
        ChannelPatchTokenizer(windows, embed_dim=8, patch_length=24)
    assert ChannelPatchTokenizer(windows, embed_dim=8, patch_length=25).patch_length == 25
    assert ChannelPatchTokenizer(windows, embed_dim=8, patch_length=24, crop=True).crop


@pytest.mark.parametrize(
    ("length", "patch_length", "min_patches", "shortest", "expected"),
    [
        (20, 10, 5, 1, 4),  # 2 patches of 10 -> 5 of 4
        (24, 10, 5, 3, 4),  # ItalyPowerDemand's length: 6 patches of 4
        (24, 10, 12, 3, 3),  # never below the conv kernel
        (150, 10, 5, 1, 10),  # long enough: unchanged
        (50, 10, 5, 1, 10),  # exactly min_patches: unchanged
    ],
)
def test_adapted_patch_length(length, patch_length, min_patches, shortest, expected):
    assert adapted_patch_length(length, patch_length, min_patches, shortest) == expected


def test_min_patches_shortens_patches_of_short_series_only():
    """``min_patches`` sizes the patches from the datamodule's batch width (``padded_length``) so that a short series
    still gives ``min_patches`` tokens; long series and ``min_patches=None`` keep ``patch_length``."""
    short = InputSpec(modality="time_series", channels=3, padded_length=20)
    tokenizer = ChannelPatchTokenizer(short, embed_dim=8, patch_length=10, channel_independent=False, min_patches=5)
    assert tokenizer.patch_length == 4 and tokenizer.proj.in_features == 3 * 4
    assert tokenizer(series(length=20)).layout.shape == (5,)
    rebuilt = ChannelPatchTokenizer(**tokenizer.constructor_arguments)  # what an export records and rebuilds
    assert rebuilt.patch_length == 4 and rebuilt.constructor_arguments["patch_length"] == 10
    conv = ChannelPatchTokenizer(short, embed_dim=8, patch_length=10, embedding="conv", min_patches=10)
    assert conv.patch_length == 3  # the conv kernel
    assert ChannelPatchTokenizer(short, embed_dim=8, patch_length=10).patch_length == 10
    long = InputSpec(modality="time_series", channels=3, padded_length=150)
    assert ChannelPatchTokenizer(long, embed_dim=8, patch_length=10, min_patches=5).patch_length == 10
    windows = InputSpec(modality="eeg", channels=3, length=24)  # unpadded windows: the adapted length is checked
    assert ChannelPatchTokenizer(windows, embed_dim=8, patch_length=10, min_patches=5).patch_length == 4
    with pytest.raises(ValueError, match="min_patches sizes the patches"):
        ChannelPatchTokenizer(SPEC, embed_dim=8, patch_length=10, min_patches=5)
    with pytest.raises(ValueError, match="min_patches must be"):
        ChannelPatchTokenizer(short, embed_dim=8, patch_length=10, min_patches=0)


@pytest.mark.parametrize(
    ("length", "min_patches", "expected"),
    [(64, 8, 8), (128, 8, 16), (256, 8, 32), (448, 8, 32), (64, None, 32), (5, 8, 1)],
)
def test_min_patches_shrinks_the_patch_length_of_short_inputs_only(length, min_patches, expected):
    """A known length cut into fewer than ``min_patches`` patches gets ``length // min_patches``-sample patches;
    longer inputs or ``min_patches=None`` keep ``patch_length`` (EEG trials)."""
    spec = InputSpec(modality="eeg", channels=3, sample_rate=128.0, length=length)
    tokenizer = ChannelPatchTokenizer(spec, embed_dim=8, patch_length=32, min_patches=min_patches)
    assert tokenizer.patch_length == expected and tokenizer.proj.in_features == expected
    if length is not None and length >= expected * 2:
        assert tokenizer(series(length=length)).layout.shape == (3, length // expected)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (torch.randn(3, 96), "shape"),
        (torch.randn(2, 4, 96), "shape"),
        (torch.randn(2, 3, 10), "shorter than one patch"),
        (torch.full((2, 3, 96), float("nan")), "NaN"),
        (torch.full((2, 3, 96), float("inf")), "NaN or inf"),
    ],
)
def test_input_errors(x, message):
    with pytest.raises(ValueError, match=message):
        ChannelPatchTokenizer(SPEC, embed_dim=8, patch_length=24)(x)


def test_constructor_errors():
    with pytest.raises(ValueError, match="channels"):
        ChannelPatchTokenizer(InputSpec(modality="time_series"), embed_dim=8)
    with pytest.raises(ValueError, match="divisible by 4"):
        ChannelPatchTokenizer(SPEC, embed_dim=6)


def test_gradients_reach_projection():
    tokenizer = ChannelPatchTokenizer(SPEC, embed_dim=8, patch_length=24)
    tokenizer(series()).features.sum().backward()
    assert tokenizer.proj.weight.grad is not None


# official: Sennadir/TS_JEPA@830ee5c3a7d4e85623bd5a07992732be7fda9bc2 src/models/tokenizer.py::TS_Tokenizer
class OfficialTSTokenizer(torch.nn.Module):
    def __init__(self, dim_in, kernel_size, embed_dim):
        super().__init__()
        self.proj = torch.nn.Conv1d(1, embed_dim, kernel_size=kernel_size, stride=kernel_size, padding=0)
        self.fc = torch.nn.Linear(embed_dim * ((dim_in - kernel_size) // kernel_size + 1), embed_dim)

    def forward(self, x):
        batch_size, num_patches, length_patch = x.shape
        x = self.proj(x.view(-1, 1, length_patch))
        x = self.fc(x.view(x.size(0), -1))
        return x.view(batch_size, num_patches, -1)


# official: Sennadir/TS_JEPA@830ee5c3a7d4e85623bd5a07992732be7fda9bc2 src/models/encoder.py::Encoder.init_embed
def official_sincos(embed_dim, num_patches):
    omega = np.arange(embed_dim // 2, dtype=float) / (embed_dim / 2.0)
    omega = 1.0 / 10000**omega
    out = np.einsum("m,d->md", np.arange(num_patches, dtype=float), omega)
    return torch.from_numpy(np.concatenate([np.sin(out), np.cos(out)], axis=1)).float()


def test_conv_embedding_matches_the_official_tokenizer_with_copied_weights():
    """320 samples of one variable -> 10 patches of 32 -> Conv1d(1, D, 3, stride 3) + Linear(10 D, D), 1-D sin-cos."""
    univariate = InputSpec(modality="time_series", channels=1)
    ours = ChannelPatchTokenizer(
        univariate, embed_dim=48, patch_length=32, channel_independent=False, instance_norm=False, embedding="conv"
    )
    official = OfficialTSTokenizer(32, 3, 48)
    assert ours.proj.conv.weight.shape == official.proj.weight.shape == (48, 1, 3)
    assert ours.proj.fc.weight.shape == official.fc.weight.shape == (48, 480)
    official.load_state_dict(
        {"proj." + k: v for k, v in ours.proj.conv.state_dict().items()}
        | {"fc." + k: v for k, v in ours.proj.fc.state_dict().items()}
    )
    x = series(batch=4, channels=1, length=320)
    tokens = ours(x)
    expected = official(x.reshape(4, 10, 32))
    assert torch.allclose(tokens.features, expected, atol=1e-5)
    assert not torch.allclose(expected[:, 0], expected[:, 1])  # patches differ, so the order is checked
    assert tokens.layout.shape == (10,)
    assert torch.allclose(tokens.positions, official_sincos(48, 10), atol=1e-6)


def test_conv_embedding_reads_every_channel_of_a_mixing_patch_and_keeps_the_default_conv_init():
    tokenizer = ChannelPatchTokenizer(SPEC, embed_dim=16, patch_length=24, channel_independent=False, embedding="conv")
    assert tokenizer.proj.conv.weight.shape == (16, 3, 3)
    assert tokenizer.proj.conv.weight.abs().max() > 0.1  # kaiming-uniform bound 1/3, not truncated-normal 0.02
    assert tokenizer.proj.fc.weight.std() < 0.03
    x = series()
    normed = tokenizer.normalise(x)
    patch = normed[1, :, 24:48]  # (C, L)
    expected = tokenizer.proj.fc(tokenizer.proj.conv(patch[None]).flatten(1))[0]
    assert torch.allclose(tokenizer(x).features[1, 1], expected, atol=1e-5)
    grouped = ChannelPatchTokenizer(SPEC, embed_dim=16, patch_length=24, embedding="conv")
    assert grouped.proj.conv.weight.shape == (16, 1, 3) and grouped(x).features.shape == (2, 12, 16)
    with pytest.raises(ValueError, match="embedding"):
        ChannelPatchTokenizer(SPEC, embed_dim=16, patch_length=24, embedding="mlp")
