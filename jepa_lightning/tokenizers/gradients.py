"""Fixed per-patch targets computed from the raw image: SAR-JEPA's multi-scale ratio-of-averages gradients."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jepa_lightning.inputs import InputSpec, check_on_device


def half_window_kernels(radius: int) -> Tensor:
    """The four ``(2r+1) x (2r+1)`` 0/1 masks of a window's halves, each including the centre row or column:
    left, right, top, bottom, stacked ``(4, 1, 2r+1, 2r+1)``."""
    size = 2 * radius + 1
    kernels = torch.zeros(4, 1, size, size)
    kernels[0, :, :, : radius + 1] = 1  # left
    kernels[1, :, :, radius:] = 1  # right
    kernels[2, :, : radius + 1, :] = 1  # top
    kernels[3, :, radius:, :] = 1  # bottom
    return kernels


def ratio_gradient_magnitude(images: Tensor, radius: int, offset: float = 1e-2) -> Tensor:
    """Ratio-of-averages gradient magnitude of non-negative images ``(B, C, H, W)`` at one scale, per pixel.

    The ratio (not the difference) of the means of the two halves of a ``(2r+1)``-wide window is the edge detector
    that suits multiplicative (speckle) noise: ``g_x = log(mean_left / mean_right)``, ``g_y = log(mean_top /
    mean_bottom)``, output ``sqrt(g_x^2 + g_y^2)`` ``(B, C, H, W)``, channel by channel. Images are reflect-padded by
    ``radius`` and shifted by ``offset`` so that the logarithm stays finite on black regions (SAR-JEPA: 1e-2 on
    [0, 1] images). The halves have equal areas, so the ratio of sums is the ratio of means.
    """
    channels = images.shape[1]
    kernels = half_window_kernels(radius).to(images.device, images.dtype).repeat(channels, 1, 1, 1)
    padded = F.pad(images, (radius,) * 4, mode="reflect") + offset
    sums = F.conv2d(padded, kernels, groups=channels).unflatten(1, (channels, 4))
    g_x = torch.log(sums[:, :, 0] / sums[:, :, 1])
    g_y = torch.log(sums[:, :, 2] / sums[:, :, 3])
    return torch.sqrt(g_x.square() + g_y.square())


class GradientTargets(nn.Module):
    """Per-patch targets from multi-scale ratio-of-averages gradients (SAR-JEPA; Li et al., 2024): a fixed function
    of the input, ``(B, C, H, W) -> (B, N, S * p * p * C)`` for ``S`` radii on the row-major grid of ``patch_size``
    patches (the order of :class:`~jepa_lightning.tokenizers.PatchTokenizer2d`'s tokens); each token holds, scale by
    scale, its patch's pixels of :func:`ratio_gradient_magnitude` (row, column, channel). No parameters, no state.

    Intensities must be non-negative (the official code feeds [0, 1] images, not normalised: give the image
    datamodule ``mean: [0.0], std: [1.0]``); a negative input raises (a ValueError on the CPU, an
    asynchronous device-side assertion elsewhere: no host synchronisation).
    """

    def __init__(self, patch_size: int = 16, radii: Sequence[int] = (5, 9, 13, 17), offset: float = 1e-2) -> None:
        super().__init__()
        if patch_size < 1 or not radii or min(radii) < 1:
            raise ValueError(f"patch_size and every radius must be >= 1, got {patch_size} and {list(radii)}")
        if offset <= 0:
            raise ValueError(f"offset must be > 0 (it keeps the logarithm finite), got {offset}")
        self.patch_size = patch_size
        self.radii = tuple(radii)
        self.offset = offset

    def feature_dim(self, input_spec: InputSpec) -> int:
        """Width of each token's target for images of ``input_spec.channels`` channels."""
        return len(self.radii) * self.patch_size**2 * input_spec.channels

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        if images.ndim != 4 or images.shape[-2] % self.patch_size or images.shape[-1] % self.patch_size:
            raise ValueError(
                f"GradientTargets expects images (B, C, H, W) with H and W multiples of {self.patch_size}, got "
                f"{tuple(images.shape)}"
            )
        if max(self.radii) >= min(images.shape[-2:]):
            raise ValueError(
                f"GradientTargets' largest radius {max(self.radii)} needs images larger than it (reflect padding), got "
                f"{tuple(images.shape[-2:])}"
            )
        check_on_device(
            (images >= 0).all(),
            "GradientTargets needs non-negative intensities (a ratio of averages): do not normalise the images "
            "(image datamodule: mean [0.0], std [1.0])",
        )
        p = self.patch_size
        patches = []
        for radius in self.radii:
            magnitude = ratio_gradient_magnitude(images, radius, self.offset)  # (B, C, H, W)
            b, c, h, w = magnitude.shape
            grid = magnitude.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)  # (B, h, w, p, p, C)
            patches.append(grid.reshape(b, (h // p) * (w // p), p * p * c))
        return torch.cat(patches, dim=-1)
