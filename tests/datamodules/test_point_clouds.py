"""Point clouds: readers, surface sampling, normalisation, augmentation, seeding, labels and input errors."""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

import datamodules.point_clouds as pc
from datamodules.point_clouds import PointCloudDataModule, Shape

SQUARE = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0.5]], dtype=np.float64)
SQUARE_TRIANGLES = np.array([[0, 1, 2], [0, 2, 3]])


def write_off(path: Path, vertices: np.ndarray, faces: np.ndarray | list, joined: bool = False) -> Path:
    """An OFF file; ``joined`` puts the counts on the header line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = f"{len(vertices)} {len(faces)} 0"
    header = [f"OFF {counts}"] if joined else ["OFF", "# a comment", counts]
    body = [" ".join(map(repr, map(float, v))) for v in vertices]
    body += [" ".join(map(str, [len(f), *f])) for f in faces]
    path.write_text("\n".join(header + body) + "\n")
    return path


def test_off_reader_round_trip_and_quad_triangulation(tmp_path: Path) -> None:
    vertices, faces = pc.read_off(write_off(tmp_path / "a.off", SQUARE, [[0, 1, 2, 3]]))
    np.testing.assert_array_equal(vertices, SQUARE)
    np.testing.assert_array_equal(faces, SQUARE_TRIANGLES)
    vertices, faces = pc.read_off(write_off(tmp_path / "b.off", SQUARE, SQUARE_TRIANGLES, joined=True))
    np.testing.assert_array_equal(vertices, SQUARE)
    np.testing.assert_array_equal(faces, SQUARE_TRIANGLES)
    assert pc.read_off(write_off(tmp_path / "c.off", SQUARE, []))[1] is None


def test_ply_readers_ascii_and_binary(tmp_path: Path) -> None:
    header = "ply\nformat {}\ncomment x\nelement vertex 4\nproperty float x\nproperty float y\nproperty float z\n"
    header += "property uchar red\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n"
    rows = "\n".join(" ".join(map(str, [*v, 7])) for v in SQUARE)
    (tmp_path / "a.ply").write_text(header.format("ascii 1.0") + rows + "\n4 0 1 2 3\n")
    vertices, faces = pc.read_ply(tmp_path / "a.ply")
    np.testing.assert_array_equal(vertices, SQUARE)
    np.testing.assert_array_equal(faces, SQUARE_TRIANGLES)
    record = np.zeros(4, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1")])
    record["x"], record["y"], record["z"] = SQUARE.T
    face = np.array([4], "u1").tobytes() + np.arange(4, dtype="<i4").tobytes()
    (tmp_path / "b.ply").write_bytes(header.format("binary_little_endian 1.0").encode() + record.tobytes() + face)
    vertices, faces = pc.read_ply(tmp_path / "b.ply")
    np.testing.assert_array_equal(vertices, SQUARE)
    np.testing.assert_array_equal(faces, SQUARE_TRIANGLES)


def test_obj_xyz_and_numpy_readers(tmp_path: Path) -> None:
    lines = ["# obj", *(f"v {x} {y} {z}" for x, y, z in SQUARE), "vn 0 0 1", "f 1/1/1 2/2/1 3//1", "f -4 -2 -1"]
    (tmp_path / "a.obj").write_text("\n".join(lines) + "\n")
    vertices, faces = pc.read_obj(tmp_path / "a.obj")
    np.testing.assert_array_equal(vertices, SQUARE)
    np.testing.assert_array_equal(faces, SQUARE_TRIANGLES)
    (tmp_path / "a.xyz").write_text("4\n" + "\n".join(f"{x} {y} {z} 0 0 1" for x, y, z in SQUARE) + "\n")
    vertices, faces = pc.read_xyz(tmp_path / "a.xyz")
    np.testing.assert_array_equal(vertices, SQUARE)
    assert faces is None
    features = np.hstack([SQUARE, np.arange(8.0).reshape(4, 2)])
    np.save(tmp_path / "a.npy", features)
    np.testing.assert_array_equal(pc.read_numpy(tmp_path / "a.npy")[0], features)
    np.savez(tmp_path / "a.npz", points=SQUARE, faces=SQUARE_TRIANGLES)
    vertices, faces = pc.read_numpy(tmp_path / "a.npz")
    np.testing.assert_array_equal(vertices, SQUARE)
    np.testing.assert_array_equal(faces, SQUARE_TRIANGLES)


def test_area_weighted_sampling_and_points_on_surface() -> None:
    # Triangle 0 (area 1) at z=0, triangle 1 (area 3) at z=5.
    vertices = torch.tensor([[0, 0, 0], [2, 0, 0], [0, 1, 0], [0, 0, 5], [3, 0, 5], [0, 2, 5]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    points = pc.sample_surface(vertices, faces, 20000, torch.Generator().manual_seed(0))
    assert abs((points[:, 2] > 2.5).double().mean().item() - 0.75) < 0.015
    # On one triangle every sample has barycentric coordinates in [0, 1] summing to 1.
    a, b, c = vertices[3], vertices[4], vertices[5]
    points = pc.sample_surface(vertices, faces[1:], 2000, torch.Generator().manual_seed(1))
    weights = torch.linalg.lstsq(torch.stack([b - a, c - a], 1)[:2], (points - a)[:, :2].T).solution.T
    assert torch.allclose(points[:, 2], torch.full((2000,), 5.0, dtype=torch.float64))
    assert (weights >= -1e-9).all() and (weights.sum(1) <= 1 + 1e-9).all()
    assert weights.sum(1).max() > 0.98 and weights.min() < 0.01  # fills the triangle, corners included


def test_resample_never_pads_and_normalisation() -> None:
    points = torch.arange(15.0).reshape(5, 3) + 1
    more = pc.resample(points, 12, torch.Generator().manual_seed(0))
    assert more.shape == (12, 3) and (more != 0).all()
    assert {tuple(row) for row in more.tolist()} == {tuple(row) for row in points.tolist()}
    fewer = pc.resample(points, 3, torch.Generator().manual_seed(0))
    assert len({tuple(row) for row in fewer.tolist()}) == 3
    cloud = torch.randn(500, 4) * 7 + 3
    normalised = pc.normalize_unit_sphere(cloud)
    assert normalised[:, :3].mean(0).abs().max() < 1e-5
    assert abs(normalised[:, :3].norm(dim=1).max().item() - 1) < 1e-6
    assert torch.equal(normalised[:, 3], cloud[:, 3])


def test_rotation_keeps_up_axis_and_dropout_keeps_count() -> None:
    points = torch.randn(256, 3)
    augment = pc.Augment((1.0, 1.0), False, True, 1, 0.0, 0.0)
    rotated = augment(points)
    assert torch.equal(rotated[:, 1], points[:, 1])
    assert torch.allclose(rotated[:, [0, 2]].norm(dim=1), points[:, [0, 2]].norm(dim=1), atol=1e-5)
    assert not torch.allclose(rotated, points)
    dropped = pc.Augment((1.0, 1.0), False, False, 1, 0.0, 0.5)(points)
    assert dropped.shape == points.shape
    assert {tuple(r) for r in dropped.tolist()} < {tuple(r) for r in points.tolist()}


def make_classes(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for name in ("chair", "table"):
        for i in range(4):
            write_off(root / name / f"m{i}.off", rng.normal(size=(5, 3)), [[0, 1, 2], [2, 3, 4]])
    (root / "table" / "scan.xyz").write_text("\n".join(" ".join(map(str, p)) for p in rng.normal(size=(50, 3))))
    return root


def test_batch_contract_labels_and_spec(tmp_path: Path) -> None:
    dm = PointCloudDataModule(str(make_classes(tmp_path)), num_points=64, batch_size=4, num_views=2, val_fraction=0.25)
    spec = dm.input_spec
    assert (spec.modality, spec.channels, spec.num_classes) == ("point_clouds", 3, 2)
    assert dm.class_names == ["chair", "table"]
    assert dm.train_source.labels.tolist() == [0] * 4 + [1] * 5
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape == (4, 64, 3) and batch["x"].dtype == torch.float32
    assert len(batch["views"]) == 2 and batch["views"][0].shape == (4, 64, 3)
    val = next(iter(dm.val_dataloader()))
    assert val["x"].shape[1:] == (64, 3) and set(val["y"].tolist()) <= {0, 1}
    assert torch.allclose(val["x"].norm(dim=2).amax(1), torch.ones(len(val["x"])))


def test_augmentation_deterministic_per_seed_epoch_index(tmp_path: Path) -> None:
    root = make_classes(tmp_path)

    def item(seed: int, epoch: int, position: int = 0) -> torch.Tensor:
        dm = PointCloudDataModule(str(root), num_points=32, batch_size=2, seed=seed, num_views=1, point_dropout=0.2)
        data = dm.train_dataloader().dataset
        sample = data[(position, epoch)]
        return torch.cat([sample["x"], sample["views"][0]])

    assert torch.equal(item(0, 0), item(0, 0))
    assert not torch.equal(item(0, 0), item(0, 1))
    assert not torch.equal(item(0, 0), item(1, 0))
    assert not torch.equal(item(0, 0, 0), item(0, 0, 1))
    dm = PointCloudDataModule(str(root), num_points=32)
    evaluate = dm.eval_transform()
    shape = dm.train_source.load(0)
    assert torch.equal(evaluate(shape), evaluate(shape))


def test_flat_folder_is_unlabeled_with_features(tmp_path: Path) -> None:
    for i in range(3):
        np.save(tmp_path / f"p{i}.npy", np.random.default_rng(i).normal(size=(40, 5)))
    dm = PointCloudDataModule(str(tmp_path), num_points=16, batch_size=2)
    assert (dm.input_spec.channels, dm.input_spec.num_classes) == (5, None)
    assert dm.train_source.labels.tolist() == [-1, -1, -1]
    assert next(iter(dm.train_dataloader()))["x"].shape == (2, 16, 5)


BAD_FILES = {
    "empty.off": ("OFF\n0 0 0\n", "at least one vertex"),
    "flat.off": ("OFF\n3 1 0\n0 0 0\n1 1 1\n2 2 2\n3 0 1 2\n", "positive total area"),
    "nan.xyz": ("0 0 0\n1 nan 0\n2 2 2\n", "finite coordinates"),
    "range.off": ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n", r"indices in \[0, 3\)"),
    "short.off": ("OFF\n4 1 0\n0 0 0\n", "truncated"),
    "header.off": ("ply\n", "'OFF' header"),
    "few.xyz": ("0 0 0\n1 0 0\n", "min_points=5"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_raise_naming_the_file(tmp_path: Path, name: str) -> None:
    text, message = BAD_FILES[name]
    (tmp_path / name).write_text(text)
    dm = PointCloudDataModule(str(tmp_path), num_points=8, min_points=5)
    with pytest.raises(ValueError, match=rf"{name}: expected .*{message}"):
        dm.train_source.load(0)


def binary_ply(points: np.ndarray) -> bytes:
    """A binary little-endian PLY point set of float32 x y z."""
    header = f"ply\nformat binary_little_endian 1.0\nelement vertex {len(points)}\n"
    header += "property float x\nproperty float y\nproperty float z\nend_header\n"
    return header.encode() + points.astype("<f4").tobytes()


def bad_cloud_folder(root: Path) -> dict[str, str]:
    """Two good point sets and one of each kind of file that only a full parse finds bad; name -> reason."""
    rng = np.random.default_rng(0)
    np.save(root / "good.npy", rng.normal(size=(40, 3)))
    (root / "good.ply").write_bytes(binary_ply(rng.normal(size=(40, 3))))
    (root / "truncated.ply").write_bytes(binary_ply(rng.normal(size=(40, 3)))[:-200])
    (root / "garbage.ply").write_bytes(
        b"ply\nformat binary_little_endian 1.0\nelement vertex many\nend_header\n" + bytes(64)
    )
    cloud = rng.normal(size=(40, 3))
    cloud[7, 1] = np.inf
    np.save(root / "inf.npy", cloud)
    np.save(root / "few.npy", rng.normal(size=(10, 3)))
    cloud = rng.normal(size=(40, 3))
    cloud[3, 0] = 1e300  # finite in the file's float64, inf in training's float32
    np.save(root / "huge.npy", cloud)
    (root / "broken.npz").write_bytes(b"PK\x03\x04 not a zip archive")
    return {
        "truncated.ply": "a supported binary PLY",
        "garbage.ply": "a valid PLY header line, got 'element vertex many'",
        "inf.npy": "finite coordinates (in float32), got NaN/inf in 1 row(s), first at row 7",
        "few.npy": "at least min_points=32 points, got 10",
        "huge.npy": "finite coordinates (in float32), got NaN/inf in 1 row(s), first at row 3",
        "broken.npz": "a readable NPY/NPZ file, got BadZipFile",
    }


def test_every_file_is_parsed_while_indexing(tmp_path: Path) -> None:
    reasons = bad_cloud_folder(tmp_path)
    for name, reason in reasons.items():
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        (tmp_path / name).rename(folder / name)
        with pytest.raises(ValueError, match=rf"{name}: expected {re.escape(reason)}"):
            PointCloudDataModule(str(folder)).setup("fit")


def test_skip_mode_leaves_bad_clouds_out_with_one_warning(tmp_path: Path) -> None:
    reasons = bad_cloud_folder(tmp_path)
    dm = PointCloudDataModule(str(tmp_path), on_bad_file="skip", num_points=16, val_fraction=0)
    with pytest.warns(UserWarning, match="left out 6 of 8 files of path") as caught:
        dm.setup("fit")
    assert len(caught) == 1 and all(f"{name}: expected" in str(caught[0].message) for name in reasons)
    assert [file.name for file in dm.train_source.files] == ["good.npy", "good.ply"]
    with pytest.warns(UserWarning, match="left out 5 of 8 files"):
        kept = PointCloudDataModule(str(tmp_path), min_points=None, on_bad_file="skip").train_source.files
    assert [file.name for file in kept] == ["few.npy", "good.npy", "good.ply"]


def test_bad_folders_and_mixed_columns(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="path='nowhere'"):
        PointCloudDataModule("nowhere").setup("fit")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty: expected point cloud files"):
        PointCloudDataModule(str(tmp_path / "empty")).setup("fit")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    np.save(mixed / "a.npy", np.random.default_rng(0).normal(size=(40, 3)))
    np.save(mixed / "b.npy", np.random.default_rng(1).normal(size=(40, 6)))
    with pytest.raises(ValueError, match=r"b\.npy: expected 3 columns"):
        PointCloudDataModule(str(mixed)).setup("fit")
    (tmp_path / "bin.ply").write_text("ply\nformat binary_weird 1.0\nelement vertex 0\nend_header\n")
    with pytest.raises(ValueError, match=r"bin\.ply: expected PLY format"):
        pc.read_ply(tmp_path / "bin.ply")


def test_missing_debian_package_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(pc.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(pc, "CGAL_TARBALL", tmp_path / "absent" / "data.tar.gz")
    with pytest.raises(FileNotFoundError, match=r"libcgal-demo.*apt-get install libcgal-demo.*dpkg-deb -x.*path="):
        PointCloudDataModule().setup("fit")


def test_bundled_default_unpacks_once_and_lists_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tarball = tmp_path / "data.tar.gz"
    good = "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n"
    with tarfile.open(tarball, "w:gz") as archive:
        for name, text in [("data/meshes/tri.off", good), ("data/meshes/bad.off", "OFF\n0 0 0\n"), ("data/x.txt", "")]:
            info = tarfile.TarInfo(name)
            info.size = len(text)
            archive.addfile(info, io.BytesIO(text.encode()))
    monkeypatch.setenv(pc.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(pc, "CGAL_TARBALL", tarball)
    dm = PointCloudDataModule(num_points=8, val_fraction=0.0, batch_size=1)
    with pytest.warns(UserWarning, match="1 CGAL file"):
        dm.setup("fit")
    assert dm.input_spec.channels == 3
    assert [f.name for f in dm.train_source.files] == ["meshes__tri.off"]
    assert "bad.off" in (tmp_path / "cache" / "cgal" / "SKIPPED.txt").read_text()
    assert isinstance(dm.train_source.load(0), Shape)
    tarball.unlink()  # cached: the tarball is no longer needed
    assert PointCloudDataModule(num_points=8).train_source.files[0].name == "meshes__tri.off"
