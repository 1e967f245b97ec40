import numpy as np
import pytest
import torch

from jepa_lightning.tokenizers import InputSpec, PatchTokenizer2d, grid_coords, sincos_embedding


def reference_2d_sincos(embed_dim: int, grid_size: int) -> np.ndarray:
    """The MAE / I-JEPA 2-D sin-cos table, written out plainly in NumPy."""

    def one_axis(dim, positions):
        omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
        out = np.einsum("m,d->md", positions.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    rows, cols = np.meshgrid(np.arange(grid_size), np.arange(grid_size), indexing="ij")
    return np.concatenate([one_axis(embed_dim // 2, rows), one_axis(embed_dim // 2, cols)], axis=1)


def test_sincos_matches_reference_table():
    ours = sincos_embedding(grid_coords((7, 7)), 64)[0].numpy()
    np.testing.assert_allclose(ours, reference_2d_sincos(64, 7), atol=1e-5)


def test_sincos_rejects_indivisible_width():
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_embedding(grid_coords((3, 3)), 30)


def test_grid_coords_row_major():
    assert grid_coords((2, 3))[0].tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]


def spec(channels=3, size=(32, 24)):
    return InputSpec("images", channels=channels, image_size=size)


def test_tokens_shapes_layout_and_positions():
    tokenizer = PatchTokenizer2d(spec(), embed_dim=48, patch_size=8)
    tokens = tokenizer(torch.randn(2, 3, 32, 24))
    assert tokens.features.shape == (2, 12, 48)
    assert tokens.positions.shape == (1, 12, 48)
    assert tokens.layout.shape == (4, 3)
    assert tokens.layout.coords[0, 5].tolist() == [1, 2]


def test_each_token_is_a_linear_map_of_its_own_patch():
    tokenizer = PatchTokenizer2d(spec(channels=2, size=(8, 8)), embed_dim=8, patch_size=4)
    x = torch.randn(1, 2, 8, 8)
    tokens = tokenizer(x).features
    patch = x[0, :, 4:8, 0:4]  # row 1, col 0 -> token 2
    expected = tokenizer.proj.weight.flatten(1) @ patch.flatten() + tokenizer.proj.bias
    torch.testing.assert_close(tokens[0, 2], expected, rtol=1e-5, atol=1e-5)


def test_wrong_channel_count_is_a_clear_error():
    tokenizer = PatchTokenizer2d(spec(channels=3), embed_dim=16, patch_size=8)
    with pytest.raises(ValueError, match=r"expects images of shape \(B, 3, H, W\).*got \(2, 1, 32, 24\)"):
        tokenizer(torch.randn(2, 1, 32, 24))


def test_a_smaller_crop_gets_the_full_grid_positions_resampled_onto_its_grid():
    """Multi-crop's local crops: a 16 x 16 input to a tokenizer built for 32 x 32 (patch 4) has a 4 x 4 grid whose
    cell i sits at 2 i + 0.5 of the 8-cell full axis (DINO's interpolate_pos_encoding, evaluated analytically)."""
    tokenizer = PatchTokenizer2d(spec(channels=1, size=(32, 32)), embed_dim=16, patch_size=4)
    tokens = tokenizer(torch.randn(2, 1, 16, 16))
    assert tokens.features.shape == (2, 16, 16) and tokens.layout.shape == (4, 4)
    rows, cols = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    coords = torch.stack([rows.flatten(), cols.flatten()], dim=-1)[None]
    torch.testing.assert_close(tokens.layout.coords, coords)
    torch.testing.assert_close(tokens.positions, sincos_embedding(2 * coords + 0.5, 16))
    own_size = PatchTokenizer2d(spec(channels=1, size=(16, 16)), embed_dim=16, patch_size=4)
    assert not torch.allclose(tokens.positions, own_size.positions)
    # the size it was built for keeps its table exactly
    assert torch.equal(tokenizer(torch.randn(1, 1, 32, 32)).positions, tokenizer.positions)


def test_a_crop_the_patch_size_does_not_divide_is_a_clear_error():
    tokenizer = PatchTokenizer2d(spec(channels=1, size=(32, 32)), embed_dim=16, patch_size=4)
    with pytest.raises(ValueError, match=r"multiples of patch_size=4 \(built for 32 x 32\), got \(2, 1, 14, 14\)"):
        tokenizer(torch.randn(2, 1, 14, 14))


def test_patch_size_must_divide_the_image():
    with pytest.raises(ValueError, match="not divisible by patch_size=5"):
        PatchTokenizer2d(spec(size=(32, 32)), embed_dim=16, patch_size=5)


def test_missing_spec_field_names_it():
    with pytest.raises(ValueError, match="lacks image_size"):
        PatchTokenizer2d(InputSpec("images", channels=1), embed_dim=16)
