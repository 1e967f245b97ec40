"""Transformation-aware image views: each view's photometric parameters, seeded, and the crop the views share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision.transforms.v2 import functional as F

from datamodules import ImageDataModule
from datamodules.images import PHOTOMETRIC_PARAMS, PhotometricTransform, PhotometricViews


def write_rgb(folder: Path, count: int, size: int = 12) -> None:
    rng = np.random.default_rng(0)
    for index in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{index}.png")


def replay(image: Tensor, params: Tensor, kernel: int) -> Tensor:
    """The photometric transform rebuilt from its reported parameters alone, with torchvision's functions."""
    brightness, contrast, saturation, hue, grayscale, sigma, solarize = params.tolist()
    out = F.adjust_brightness(image, 1 + brightness)
    if image.shape[0] <= 3:
        out = F.adjust_contrast(out, 1 + contrast)
    if image.shape[0] == 3:
        out = F.adjust_hue(F.adjust_saturation(out, 1 + saturation), hue)
    if grayscale:
        out = F.rgb_to_grayscale(out, num_output_channels=3)
    if sigma:
        out = F.gaussian_blur(out, [kernel, kernel], [sigma, sigma])
    return F.solarize(out, 0.5) if solarize else out


def test_the_reported_parameters_determine_the_transform() -> None:
    torch.manual_seed(0)
    for channels in (1, 3):
        transform = PhotometricTransform((16, 16), channels)
        seen = torch.zeros(len(PHOTOMETRIC_PARAMS), dtype=torch.bool)
        for _ in range(40):
            image = torch.rand(channels, 16, 16)
            out, params = transform(image)
            assert params.shape == (len(PHOTOMETRIC_PARAMS),)
            torch.testing.assert_close(out, replay(image, params, transform.kernel))
            seen |= params != 0
        if channels == 1:  # grey: no saturation, hue or greyscale
            assert seen.tolist() == [True, True, False, False, False, True, True]
        else:
            assert seen.all()


def test_view_params_batches_carry_each_views_parameters_seeded(tmp_path: Path) -> None:
    write_rgb(tmp_path, 8)

    def first_batch(epoch: int, num_workers: int = 0) -> dict:
        dm = ImageDataModule(
            str(tmp_path),
            image_size=10,
            batch_size=4,
            val_fraction=0.25,
            num_views=2,
            view_params=True,
            seed=3,
            drop_last=False,
        )
        dm.num_workers = num_workers
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(epoch)
        return next(iter(loader))

    batch = first_batch(0)
    assert batch["cond"].shape == (4, 2, len(PHOTOMETRIC_PARAMS)) and batch["cond"].dtype == torch.float32
    assert [view.shape for view in batch["views"]] == [(4, 3, 10, 10)] * 2
    for other in (first_batch(0), first_batch(0, num_workers=1)):
        torch.testing.assert_close(other["cond"], batch["cond"], rtol=0, atol=0)
        assert all(torch.equal(a, b) for a, b in zip(other["views"], batch["views"]))
    assert not torch.equal(first_batch(1)["cond"], batch["cond"])
    dm = ImageDataModule(str(tmp_path), image_size=10, batch_size=4, val_fraction=0.25, view_params=True)
    assert dm.input_spec.condition_dim == len(PHOTOMETRIC_PARAMS)
    assert "cond" not in next(iter(dm.val_dataloader()))


def test_views_share_their_crop(tmp_path: Path) -> None:
    """With the photometric part switched off every view is the same crop: only colour tells the views apart."""
    write_rgb(tmp_path, 4)
    dm = ImageDataModule(str(tmp_path), image_size=10, batch_size=4, val_fraction=0.25, view_params=True)
    views = dm.view_transform()
    assert isinstance(views, PhotometricViews)
    views.photometric = lambda image: (image, torch.zeros(len(PHOTOMETRIC_PARAMS)))
    torch.manual_seed(0)
    out = views(dm.train_source.load(0), 3)
    assert torch.equal(out["views"][0], out["views"][1]) and torch.equal(out["views"][0], out["views"][2])
    assert out["cond"].shape == (3, len(PHOTOMETRIC_PARAMS))


def test_view_params_are_off_by_default(tmp_path: Path) -> None:
    write_rgb(tmp_path, 8)
    dm = ImageDataModule(str(tmp_path), image_size=10, batch_size=4, val_fraction=0.25, num_views=2, drop_last=False)
    batch = next(iter(dm.train_dataloader()))
    assert "cond" not in batch and len(batch["views"]) == 2
    assert dm.input_spec.condition_dim is None
