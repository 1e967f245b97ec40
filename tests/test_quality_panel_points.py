"""The quality panel's point-cloud sets: images read as 2-D point sets of their ink, written once as ``.npy`` class
folders that :class:`~datamodules.point_clouds.PointCloudDataModule` reads, and the point-cloud configs built on
them."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import quality_panel as panel

from jepa_lightning.inputs import model_input


def test_ink_points_lie_in_the_inked_pixels_with_y_up() -> None:
    image = np.zeros((20, 20), dtype=np.uint8)
    image[2, 5] = 255  # one bright pixel in the third row from the top
    image[15, 10] = 85  # a third as bright, near the bottom
    points = panel.ink_points(image, 3000, np.random.default_rng(0))
    assert points.shape == (3000, 3) and points.dtype == np.float32
    assert (points[:, 2] == 0).all()
    top = (points[:, 0] >= 5) & (points[:, 0] < 6) & (points[:, 1] > 17) & (points[:, 1] <= 18)
    bottom = (points[:, 0] >= 10) & (points[:, 0] < 11) & (points[:, 1] > 4) & (points[:, 1] <= 5)
    assert (top | bottom).all()  # each point inside its pixel; row 2 from the top is y in (17, 18]
    assert top.mean() == pytest.approx(0.75, abs=0.03)  # drawn in proportion to intensity, 3 : 1
    assert len(np.unique(points[:, :2], axis=0)) == 3000  # placed inside the pixel, not on its corner
    np.testing.assert_array_equal(points, panel.ink_points(image, 3000, np.random.default_rng(0)))


def test_an_image_without_ink_is_an_error() -> None:
    with pytest.raises(ValueError, match="without ink"):
        panel.ink_points(np.zeros((4, 4), dtype=np.uint8), 8, np.random.default_rng(0))


@pytest.fixture
def image_folders(tmp_path: Path) -> dict[str, Path]:
    """Two classes (a vertical and a horizontal bar), 4 training and 2 test images each."""
    folders = {}
    for split, count in (("train", 4), ("test", 2)):
        for label, bar in (("0", np.s_[:, 8:12]), ("1", np.s_[8:12, :])):
            folder = tmp_path / "images" / split / label
            folder.mkdir(parents=True)
            for index in range(count):
                image = np.zeros((20, 20), dtype=np.uint8)
                image[bar] = 200 + index
                Image.fromarray(image).save(folder / f"{index:02d}.png")
        folders[split] = tmp_path / "images" / split
    return folders


def test_point_sets_are_written_once_as_class_folders(monkeypatch, tmp_path, image_folders) -> None:
    monkeypatch.setattr(panel, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(panel, "POINTS_PER_IMAGE", 64)
    args = panel.image_point_sets("bars", lambda: image_folders)()
    root = tmp_path / "cache" / "bars"
    assert args == [f"--data.path={root / 'train'}", f"--data.test_path={root / 'test'}"]
    files = sorted(root.glob("*/*/*.npy"))
    assert [f.relative_to(root).as_posix() for f in files[:2]] == ["test/0/00.npy", "test/0/01.npy"]
    assert len(files) == 12
    horizontal = np.load(root / "train" / "1" / "03.npy")
    assert horizontal.shape == (64, 3) and (horizontal[:, 1] > 8).all() and (horizontal[:, 1] <= 12).all()
    before = horizontal.copy()
    panel.image_point_sets("bars", lambda: pytest.fail("read the images again"))()  # cached
    np.testing.assert_array_equal(np.load(root / "train" / "1" / "03.npy"), before)


@pytest.mark.parametrize("config", ["pointjepa_cgal.yaml", "jepa3d_cgal.yaml"])
def test_the_point_cloud_configs_build_on_the_point_sets(monkeypatch, tmp_path, image_folders, config) -> None:
    monkeypatch.setattr(panel, "CACHE", tmp_path / "cache")
    points = next(m for m in panel.MODALITIES if m.name == "point clouds")
    assert [m.config for m in points.methods] == ["pointjepa_cgal.yaml", "jepa3d_cgal.yaml", "pointjepa_cgal.yaml"]
    method = next(m for m in points.methods if m.config == config)
    data = [*panel.image_point_sets("bars", lambda: image_folders)(), "--data.batch_size=4", "--data.val_fraction=0"]
    with panel.quiet():
        cli = panel.build(method, data, seed=0, budget=1, root=str(tmp_path / "run"))
        cli.datamodule.setup("fit")
        batch = next(iter(cli.datamodule.eval_dataloader("test")))
        embedding = cli.model.embed(model_input(batch))
    assert batch["x"].shape == (4, panel.POINTS_PER_IMAGE, 3)
    assert sorted(batch["y"].tolist()) == [0, 0, 1, 1]
    assert embedding.shape == (4, 96)
