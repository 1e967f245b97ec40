"""Images -> a 2-D grid of patch tokens with fixed sin-cos positions (ViT / I-JEPA)."""

from __future__ import annotations

from torch import Tensor, nn

from jepa_lightning.inputs import InputSpec
from jepa_lightning.nn.init import WeightInit, init_embedding
from jepa_lightning.tokens import Tokenizer, TokenLayout, Tokens, grid_coords, sincos_embedding


class PatchTokenizer2d(Tokenizer):
    """Non-overlapping ``patch_size`` x ``patch_size`` patches, linearly embedded (a strided convolution).

    Built from the data's :class:`InputSpec` (channels, image size) and the encoder width, so the CLI can
    link it to any image datamodule. ``init`` initialises the projection (:data:`~jepa_lightning.nn.init.WeightInit`;
    :class:`~jepa_lightning.methods.IJEPA` passes its encoder's).
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
        if x.ndim != 4 or x.shape[1] != self.in_channels or tuple(x.shape[-2:]) != self.image_size:
            raise ValueError(
                f"PatchTokenizer2d expects images of shape (B, {self.in_channels}, {self.image_size[0]}, "
                f"{self.image_size[1]}), got {tuple(x.shape)}"
            )
        features = self.proj(x).flatten(2).transpose(1, 2)
        return Tokens(features=features, positions=self.positions.to(features.dtype), layout=self.layout)
