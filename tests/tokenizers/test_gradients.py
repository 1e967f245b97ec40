# ruff: noqa: N806  (the official function is re-typed with its own names)
"""SAR-JEPA's fixed targets: the multi-scale ratio-of-averages gradients against the re-typed official code."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from jepa_lightning.inputs import InputSpec
from jepa_lightning.tokenizers import GradientTargets, ratio_gradient_magnitude

SAR_JEPA = "waterdisappear/SAR-JEPA@1f17f9007481c563653066c0c49dbd55c0846298"


# official: waterdisappear/SAR-JEPA@1f17f9007481c563653066c0c49dbd55c0846298 Pretraining/models_lomar.py::GF
# (__init__'s creat_kernel and forward, as one function of the image and the kernel radius `k`)
def official_gf(x, k):
    r = k
    M_13 = np.concatenate([np.ones([r + 1, 2 * r + 1]), np.zeros([r, 2 * r + 1])], axis=0)
    M_23 = np.concatenate([np.zeros([r, 2 * r + 1]), np.ones([r + 1, 2 * r + 1])], axis=0)
    M_11 = np.concatenate([np.ones([2 * r + 1, r + 1]), np.zeros([2 * r + 1, r])], axis=1)
    M_21 = np.concatenate([np.zeros([2 * r + 1, r]), np.ones([2 * r + 1, r + 1])], axis=1)
    weight_x1 = torch.from_numpy(M_11).float().view(1, 1, k * 2 + 1, k * 2 + 1)
    weight_x2 = torch.from_numpy(M_21).float().view(1, 1, k * 2 + 1, k * 2 + 1)
    weight_y1 = torch.from_numpy(M_13).float().view(1, 1, k * 2 + 1, k * 2 + 1)
    weight_y2 = torch.from_numpy(M_23).float().view(1, 1, k * 2 + 1, k * 2 + 1)
    x = F.pad(x, pad=(k, k, k, k), mode="reflect") + 1e-2
    gx_1 = F.conv2d(x, weight_x1, bias=None, stride=1, padding=0, groups=1)
    gx_2 = F.conv2d(x, weight_x2, bias=None, stride=1, padding=0, groups=1)
    gy_1 = F.conv2d(x, weight_y1, bias=None, stride=1, padding=0, groups=1)
    gy_2 = F.conv2d(x, weight_y2, bias=None, stride=1, padding=0, groups=1)
    gx_rgb = torch.log((gx_1) / (gx_2))
    gy_rgb = torch.log((gy_1) / (gy_2))
    return torch.stack([gx_rgb, gy_rgb], dim=-1).norm(dim=-1)


# official: waterdisappear/SAR-JEPA@1f17f9007481c563653066c0c49dbd55c0846298
# Pretraining/models_lomar.py::MaskedAutoencoderViT.patchify (1 channel) and the target of forward_loss
def official_target(imgs, p, radii=(5, 9, 13, 17)):
    def patchify(imgs):
        h = w = imgs.shape[2] // p
        x = imgs.reshape(shape=(imgs.shape[0], 1, h, p, w, p))
        x = torch.einsum("nchpwq->nhwpqc", x)
        return x.reshape(shape=(imgs.shape[0], h * w, p**2 * 1))

    return torch.cat([patchify(official_gf(imgs, k)) for k in radii], dim=-1)


def speckled_images(batch: int = 3, size: int = 48, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    scene = torch.zeros(batch, 1, size, size)
    scene[:, :, size // 4 : size // 2, size // 3 : 2 * size // 3] = 0.8  # a bright target on a dark ground
    scene += 0.1
    return scene * torch.distributions.Gamma(torch.full_like(scene, 4.0), torch.full_like(scene, 4.0)).sample()


@pytest.mark.parametrize("radius", [5, 9, 13, 17])
def test_gradient_magnitude_matches_the_official_gf(radius):
    x = speckled_images()
    torch.testing.assert_close(ratio_gradient_magnitude(x, radius), official_gf(x, radius), rtol=1e-5, atol=1e-6)


def test_targets_match_the_official_patchified_multiscale_target_and_are_deterministic():
    x = speckled_images(size=48)
    targets = GradientTargets(patch_size=16)
    ours = targets(x)
    assert ours.shape == (3, 9, 4 * 16 * 16)
    assert targets.feature_dim(InputSpec("images", channels=1, image_size=(48, 48))) == 1024
    torch.testing.assert_close(ours, official_target(x, 16), rtol=1e-5, atol=1e-6)
    assert torch.equal(targets(x.clone()), ours)  # a fixed function of the input
    assert list(targets.parameters()) == [] and targets.state_dict() == {}


def test_channels_are_processed_one_by_one_and_inputs_must_be_non_negative():
    x = speckled_images(batch=2, size=32)
    two = torch.cat([x, x.flip(-1)], dim=1)
    maps = ratio_gradient_magnitude(two, 3)
    torch.testing.assert_close(maps[:, 1:], ratio_gradient_magnitude(x.flip(-1), 3))
    targets = GradientTargets(patch_size=4, radii=(1, 2))
    assert targets(two).shape == (2, 64, 2 * 16 * 2)
    with pytest.raises(ValueError, match="non-negative"):
        targets(two - 0.5)
    with pytest.raises(ValueError, match="larger than it"):
        GradientTargets(patch_size=4)(x[..., :16, :16])
    with pytest.raises(ValueError, match="multiples of 4"):
        targets(torch.rand(1, 1, 30, 32))


def test_gradients_are_large_at_edges_and_unmoved_by_a_global_gain():
    """The ratio detector is invariant to multiplying the image (speckle-like gain) up to the small offset."""
    scene = torch.full((1, 1, 32, 32), 0.2)
    scene[..., 16:] = 0.8
    magnitude = ratio_gradient_magnitude(scene, 2, offset=1e-6)
    assert magnitude[..., 16, 15].item() > 0.5 and magnitude[..., 16, 4].item() == pytest.approx(0.0, abs=1e-5)
    torch.testing.assert_close(ratio_gradient_magnitude(3 * scene, 2, offset=1e-6), magnitude, rtol=1e-4, atol=1e-5)
