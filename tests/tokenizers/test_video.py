"""TubeletTokenizer against V-JEPA's PatchEmbed3D and 3-D sin-cos positions (re-typed below)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from jepa_lightning.tokenizers import InputSpec, TubeletTokenizer, grid_coords, sincos_embedding


# official: facebookresearch/jepa@51c59d518fc63c08464af6de585f78ac0c7ed4d5
#   src/models/utils/pos_embs.py::get_1d_sincos_pos_embed_from_grid
def official_1d(embed_dim: int, pos: np.ndarray) -> np.ndarray:
    omega = np.arange(embed_dim // 2, dtype=float)
    omega /= embed_dim / 2.0
    omega = 1.0 / 10000**omega
    out = np.einsum("m,d->md", pos.reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


# official: facebookresearch/jepa@51c59d518fc63c08464af6de585f78ac0c7ed4d5
#   src/models/utils/pos_embs.py::get_3d_sincos_pos_embed
# (grid_size generalised to height x width; uniform_power=True, as configs/pretrain/*.yaml set)
def official_3d(embed_dim: int, height: int, width: int, depth: int) -> np.ndarray:
    grid_h, grid_d, grid_w = np.meshgrid(
        np.arange(height, dtype=float), np.arange(depth, dtype=float), np.arange(width, dtype=float)
    )
    per_axis = int(np.ceil(embed_dim / 6) * 2)
    emb_h = official_1d(per_axis, grid_h)
    emb_w = official_1d(per_axis, grid_w)
    emb_d = official_1d(per_axis, grid_d)
    return np.concatenate([emb_d, emb_h, emb_w], axis=1)[:, :embed_dim]


def spec(channels: int = 3, frames: int = 8, size: tuple[int, int] = (32, 48)) -> InputSpec:
    return InputSpec("video", channels=channels, image_size=size, frames=frames)


@pytest.mark.parametrize("dim", [48, 64, 1024])
def test_positions_match_vjepa_3d_sincos(dim):
    tokenizer = TubeletTokenizer(spec(), dim, patch_size=16, tubelet_size=2)
    assert tokenizer.grid_shape == (4, 2, 3)
    official = official_3d(dim, height=2, width=3, depth=4)
    np.testing.assert_allclose(tokenizer.positions[0].numpy(), official, atol=1e-6)


def test_truncate_is_the_default_table_when_the_width_divides():
    coords = grid_coords((3, 4, 5))
    torch.testing.assert_close(sincos_embedding(coords, 48, truncate=True), sincos_embedding(coords, 48))
    with pytest.raises(ValueError, match="divisible by 6"):
        sincos_embedding(coords, 64)
    with pytest.raises(ValueError, match="even dim"):
        sincos_embedding(coords, 63, truncate=True)


class OfficialPatchEmbed3D(nn.Module):
    # official: facebookresearch/jepa@51c59d518fc63c08464af6de585f78ac0c7ed4d5
    #   src/models/utils/patch_embed.py::PatchEmbed3D
    def __init__(self, patch_size: int, tubelet_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv3d(
            in_chans,
            embed_dim,
            kernel_size=(tubelet_size, patch_size, patch_size),
            stride=(tubelet_size, patch_size, patch_size),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_tokens_match_patch_embed_3d_in_time_row_column_order(channels):
    tokenizer = TubeletTokenizer(spec(channels=channels), 24, patch_size=8, tubelet_size=2)
    official = OfficialPatchEmbed3D(8, 2, channels, 24)
    official.load_state_dict(tokenizer.state_dict())
    x = torch.randn(2, channels, 8, 32, 48)
    tokens = tokenizer(x)
    torch.testing.assert_close(tokens.features, official(x))
    assert tokens.layout.shape == (4, 4, 6) and tokens.features.shape == (2, 96, 24)
    # token k sits at (t, h, w) in row-major order: its features come from that tubelet only
    t, h, w = tokens.layout.coords[0, 37].long().tolist()
    tubelet = x[:, :, 2 * t : 2 * t + 2, 8 * h : 8 * h + 8, 8 * w : 8 * w + 8]
    expected = torch.einsum("bcthw,dcthw->bd", tubelet, tokenizer.proj.weight) + tokenizer.proj.bias
    torch.testing.assert_close(tokens.features[:, 37], expected, atol=1e-5, rtol=1e-5)


def test_clips_not_divisible_by_the_tubelet_are_refused_naming_the_sizes():
    with pytest.raises(ValueError, match=r"clips of 7 frames x 32 x 48 are not divisible into tubelets of 2 x 16 x 16"):
        TubeletTokenizer(spec(frames=7), 48)
    with pytest.raises(ValueError, match="lacks frames"):
        TubeletTokenizer(InputSpec("video", channels=3, image_size=(32, 32)), 48)
    tokenizer = TubeletTokenizer(spec(), 48)
    with pytest.raises(ValueError, match=r"expects clips of shape \(B, 3, 8, 32, 48\)"):
        tokenizer(torch.randn(1, 3, 6, 32, 48))
