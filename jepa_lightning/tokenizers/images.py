"""Images -> a 2-D grid of patch tokens with fixed sin-cos positions (ViT / I-JEPA)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from jepa_lightning.inputs import InputSpec
from jepa_lightning.nn.init import WeightInit, init_embedding
from jepa_lightning.tokens import Tokenizer, TokenLayout, Tokens, grid_coords, sincos_embedding


class PatchTokenizer2d(Tokenizer):
    """Non-overlapping ``patch_size`` x ``patch_size`` patches, linearly embedded (a strided convolution).

    Built from the data's :class:`InputSpec` (channels, image size) and the encoder width, so the CLI can
    link it to any image datamodule. ``init`` initialises the projection (:data:`~jepa_lightning.nn.init.WeightInit`;
    :class:`~jepa_lightning.methods.IJEPA` passes its encoder's).

    Images of another size (e.g. multi-crop's local crops) are accepted when the patch size divides both sides:
    their grid's sin-cos positions are the full grid's resampled onto it, the analytic counterpart of DINO's bicubic
    ``interpolate_pos_encoding`` (facebookresearch/dino@7c446df5 ``vision_transformer.py``): cell ``i`` of a
    ``g``-cell axis sits at ``(i + 0.5) * G / g - 0.5`` of the ``G``-cell full axis, so a crop's patches keep their
    relative place in the view it was resized from.
    """

    def __init__(self, spec: InputSpec, embed_dim: int, patch_size: int = 16, init: WeightInit = "ijepa") -> None:
        super().__init__()
        spec.require("channels", "image_size")
        height, width = spec.image_size
        if height % patch_size or width % patch_size:
            raise ValueError(
                f"image_size {spec.image_size} is not divisible by patch_size={patch_size}: "
                "pick a patch size that divides both sides (or resize the images)."
            )
        self.embed_dim = embed_dim
        self.in_channels = spec.channels
        self.image_size = (height, width)
        self.patch_size = patch_size
        self.grid_shape = (height // patch_size, width // patch_size)
        self.proj = nn.Conv2d(spec.channels, embed_dim, kernel_size=patch_size, stride=patch_size)
        init_embedding(self, init)
        coords = grid_coords(self.grid_shape)
        self.register_buffer("coords", coords, persistent=False)
        self.register_buffer("positions", sincos_embedding(coords, embed_dim), persistent=False)

    @property
    def layout(self) -> TokenLayout:
        return TokenLayout(kind="grid", shape=self.grid_shape, coords=self.coords)

    def forward(self, x: Tensor) -> Tokens:
        size = tuple(x.shape[-2:])
        if x.ndim != 4 or x.shape[1] != self.in_channels or size[0] % self.patch_size or size[1] % self.patch_size:
            raise ValueError(
                f"PatchTokenizer2d expects images of shape (B, {self.in_channels}, H, W) with H and W multiples of "
                f"patch_size={self.patch_size} (built for {self.image_size[0]} x {self.image_size[1]}), got "
                f"{tuple(x.shape)}"
            )
        features = self.proj(x).flatten(2).transpose(1, 2)
        if size == self.image_size:
            return Tokens(features=features, positions=self.positions.to(features.dtype), layout=self.layout)
        grid = (size[0] // self.patch_size, size[1] // self.patch_size)
        scale = torch.tensor([full / cells for full, cells in zip(self.grid_shape, grid)], device=x.device)
        coords = grid_coords(grid, x.device)
        positions = sincos_embedding((coords + 0.5) * scale - 0.5, self.embed_dim).to(features.dtype)
        return Tokens(
            features=features, positions=positions, layout=TokenLayout(kind="grid", shape=grid, coords=coords)
        )


class ImageCellTokenizer(Tokenizer):
    """An image cut into ``cell_size`` x ``cell_size`` cells, each cell's pixels one token (channel, row, column
    order; no parameters): the tokens of a dense encoder whose final feature map has one position per cell (a
    :class:`~jepa_lightning.nn.SparseResNet` with ``reduction == cell_size``), so mask samplers draw on that map's grid
    and the encoder reassembles the image. ``embed_dim`` is the token width ``channels x cell_size^2`` (the factory's
    ``embed_dim``, the encoder's width, is not used); the positions are empty ``(1, N, 0)``: a convolution knows where
    each cell is. Any image whose sides are multiples of ``cell_size`` is accepted.
    """

    def __init__(self, spec: InputSpec, embed_dim: int = 0, cell_size: int = 32) -> None:
        super().__init__()
        spec.require("channels")
        if cell_size < 1:
            raise ValueError(f"cell_size must be >= 1, got {cell_size}")
        self.in_channels = spec.channels
        self.cell_size = cell_size
        self.embed_dim = spec.channels * cell_size**2

    def forward(self, x: Tensor) -> Tokens:
        r = self.cell_size
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[-2] % r or x.shape[-1] % r:
            raise ValueError(
                f"ImageCellTokenizer expects images (B, {self.in_channels}, H, W) with H and W multiples of "
                f"cell_size={r}, got {tuple(x.shape)}"
            )
        batch, channels, height, width = x.shape
        grid = (height // r, width // r)
        cells = x.reshape(batch, channels, grid[0], r, grid[1], r).permute(0, 2, 4, 1, 3, 5)
        features = cells.reshape(batch, grid[0] * grid[1], channels * r * r)
        coords = grid_coords(grid, x.device)
        positions = features.new_zeros(1, features.shape[1], 0)
        return Tokens(
            features=features, positions=positions, layout=TokenLayout(kind="grid", shape=grid, coords=coords)
        )
