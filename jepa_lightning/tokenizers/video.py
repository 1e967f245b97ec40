"""Video clips -> a 3-D grid of tubelet tokens with fixed 3-D sin-cos positions (V-JEPA)."""

from __future__ import annotations

from torch import Tensor, nn

from jepa_lightning.inputs import InputSpec
from jepa_lightning.nn.init import WeightInit, init_embedding
from jepa_lightning.tokens import Tokenizer, TokenLayout, Tokens, grid_coords, sincos_embedding


class TubeletTokenizer(Tokenizer):
    """Non-overlapping ``tubelet_size`` x ``patch_size`` x ``patch_size`` tubelets of a clip ``(B, C, T, H, W)``,
    linearly embedded by a strided ``Conv3d`` (V-JEPA's ``PatchEmbed3D``, facebookresearch/jepa
    src/models/utils/patch_embed.py), on a ``(T / t, H / p, W / p)`` token grid in (time, row, column) order.

    ``patch_size`` is one side or ``(height, width)`` (EEG-VJEPA's 4 channels x 30 samples on stacked EEG windows).
    Positions are fixed 3-D sin-cos of the grid coordinates, one equal share of the width per axis, the shares cut
    to ``embed_dim`` (V-JEPA's ``uniform_power=True``; :func:`~jepa_lightning.tokens.sincos_embedding` with
    ``truncate=True``), so any even width works. Any channel count (``spec.channels``); ``spec.frames`` and
    ``spec.image_size`` must be divisible by the tubelet, checked when the model is built.
    """

    def __init__(
        self,
        spec: InputSpec,
        embed_dim: int,
        patch_size: int | tuple[int, int] = 16,
        tubelet_size: int = 2,
        init: WeightInit = "ijepa",
    ) -> None:
        super().__init__()
        spec.require("channels", "image_size", "frames")
        assert spec.channels is not None and spec.image_size is not None and spec.frames is not None
        height, width = spec.image_size
        patch_h, patch_w = (patch_size, patch_size) if isinstance(patch_size, int) else tuple(patch_size)
        if spec.frames % tubelet_size or height % patch_h or width % patch_w:
            raise ValueError(
                f"clips of {spec.frames} frames x {height} x {width} are not divisible into tubelets of "
                f"{tubelet_size} x {patch_h} x {patch_w} (tubelet_size x patch height x patch width): pick a "
                "tubelet that divides the clip (or change frames_per_clip / image_size)."
            )
        self.embed_dim = embed_dim
        self.in_channels = spec.channels
        self.clip_shape = (spec.frames, height, width)
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        self.grid_shape = (spec.frames // tubelet_size, height // patch_h, width // patch_w)
        kernel = (tubelet_size, patch_h, patch_w)
        self.proj = nn.Conv3d(spec.channels, embed_dim, kernel_size=kernel, stride=kernel)
        init_embedding(self, init)
        coords = grid_coords(self.grid_shape)
        self.register_buffer("coords", coords, persistent=False)
        self.register_buffer("positions", sincos_embedding(coords, embed_dim, truncate=True), persistent=False)

    @property
    def layout(self) -> TokenLayout:
        return TokenLayout(kind="grid", shape=self.grid_shape, coords=self.coords)

    def forward(self, x: Tensor) -> Tokens:
        if x.ndim != 5 or x.shape[1] != self.in_channels or tuple(x.shape[-3:]) != self.clip_shape:
            frames, height, width = self.clip_shape
            raise ValueError(
                f"TubeletTokenizer expects clips of shape (B, {self.in_channels}, {frames}, {height}, {width}) "
                f"(batch, channels, frames, height, width), got {tuple(x.shape)}"
            )
        features = self.proj(x).flatten(2).transpose(1, 2)
        return Tokens(features=features, positions=self.positions.to(features.dtype), layout=self.layout)
