"""PointCloudDataModule on torch-geometric's ModelNet and ShapeNet, offline: tiny copies in the raw layouts of their
archives, written by the tests (and zipped, for the download path); the network is switched off for every test."""

from __future__ import annotations

import json
import re
import shutil
import socket
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.datasets import ModelNet, ShapeNet
from torch_geometric.datasets import modelnet as pyg_modelnet
from torch_geometric.datasets import shapenet as pyg_shapenet
from torch_geometric.io import read_off as pyg_read_off
from torch_geometric.transforms import SamplePoints

import datamodules.point_clouds as pc
from datamodules.point_clouds import PointCloudDataModule, normalize_unit_sphere
from jepa_lightning.cli import main

CONFIG = Path(__file__).parents[2] / "examples" / "configs" / "pointjepa_modelnet10.yaml"
#: ModelNet10's classes: torch-geometric's ModelNet takes the raw data as present when these folders are.
MODELNET10 = ["bathtub", "bed", "chair", "desk", "dresser", "monitor", "night_stand", "sofa", "table", "toilet"]
CUBE_FACES = [[0, 1, 2], [0, 2, 3], [4, 6, 5], [4, 7, 6], [0, 4, 5], [0, 5, 1],
              [1, 5, 6], [1, 6, 2], [2, 6, 7], [2, 7, 3], [3, 7, 4], [3, 4, 0]]  # fmt: skip
SHAPENET_CATEGORIES = ["Airplane", "Mug"]


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a test tried to reach the network: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def box(marker: float, label: int) -> np.ndarray:
    """A box whose size depends on the class, its first corner moved to x = ``marker`` (identifies the file)."""
    corners = np.array([[x, y, z] for z in (0, 1) for x, y in ((0, 0), (1, 0), (1, 1), (0, 1))], dtype=np.float64)
    corners *= [1 + label, 1, 1 + 0.5 * (label % 3)]
    corners[0, 0] = marker
    return corners


def write_off(path: Path, vertices: np.ndarray, faces: list[list[int]], joined: bool) -> None:
    """An OFF file; ``joined`` writes ModelNet's known header quirk, the counts glued to 'OFF' ("OFF8 12 0")."""
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = f"{len(vertices)} {len(faces)} 0"
    header = [f"OFF{counts}"] if joined else ["OFF", counts]
    body = [" ".join(f"{v:.6f}" for v in vertex) for vertex in vertices]
    body += [" ".join(map(str, [len(face), *face])) for face in faces]
    path.write_text("\n".join(header + body) + "\n")


def fake_modelnet(folder: Path, per_split: dict[str, int] | None = None) -> dict[str, list[float]]:
    """ModelNet's unpacked layout ``folder/<class>/<train|test>/<class>_<k>.off`` (tiny boxes); the markers of each
    split's files."""
    markers: dict[str, list[float]] = {"train": [], "test": []}
    for label, name in enumerate(MODELNET10):
        for split, count in (per_split or {"train": 2, "test": 1}).items():
            for k in range(count):
                marker = 100 + 10 * label + k + (5 if split == "test" else 0)
                markers[split].append(marker)
                path = folder / name / split / f"{name}_{k + 1:04d}.off"
                write_off(path, box(marker, label), CUBE_FACES, joined=k == 0)
    return markers


def fake_shapenet(folder: Path) -> dict[str, list[float]]:
    """ShapeNet's unpacked layout (part-segmentation release, with normals): ``folder/<category id>/<shape>.txt``
    rows ``x y z nx ny nz part`` and ``folder/train_test_split/shuffled_<split>_file_list.json``; every category
    folder exists (torch-geometric checks them), two categories hold shapes. The markers of each split's shapes."""
    rng = np.random.default_rng(0)
    for category_id in ShapeNet.category_ids.values():
        (folder / category_id).mkdir(parents=True, exist_ok=True)
    lists: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    markers: dict[str, list[float]] = {"train": [], "val": [], "test": []}
    for label, category in enumerate(SHAPENET_CATEGORIES):
        category_id = ShapeNet.category_ids[category]
        for split, count in (("train", 3), ("val", 1), ("test", 2)):
            for k in range(count):
                name = f"{split}{k}"
                points = rng.normal(size=(40 + 10 * k, 3)) * [1 + label, 1, 1]
                marker = 200 + 10 * label + k + {"train": 0, "val": 3, "test": 6}[split]
                points[0, 0] = marker
                rows = np.concatenate([points, rng.normal(size=(len(points), 3)), np.zeros((len(points), 1))], 1)
                np.savetxt(folder / category_id / f"{name}.txt", rows, fmt="%.6f")
                lists[split].append(f"shape_data/{category_id}/{name}")
                markers[split].append(marker)
    (folder / "train_test_split").mkdir()
    for split, names in lists.items():
        (folder / "train_test_split" / f"shuffled_{split}_file_list.json").write_text(json.dumps(names))
    return markers


def first_x(dm: PointCloudDataModule, split: str) -> list[float]:
    """The marker (first vertex's x) of every sample of the training or test source."""
    source = dm.train_source if split == "train" else dm.test_source
    assert source is not None
    return [float(source.load(index).points[0, 0]) for index in range(len(source))]


def test_modelnet_processed_offline_with_labels_official_splits_and_batches(tmp_path: Path) -> None:
    markers = fake_modelnet(tmp_path / "ModelNet10" / "raw")
    dm = PointCloudDataModule(
        source="modelnet10", root=str(tmp_path / "ModelNet10"), num_points=64, batch_size=4, num_views=1
    )
    spec = dm.input_spec
    assert (spec.modality, spec.channels, spec.num_classes) == ("point_clouds", 3, 10)
    assert dm.class_names == MODELNET10
    assert (tmp_path / "ModelNet10" / "processed" / "training.pt").is_file()
    # the official lists: train and test files, each sample labelled with its class folder
    assert sorted(first_x(dm, "train")) == pytest.approx(sorted(markers["train"]))
    assert sorted(first_x(dm, "test")) == pytest.approx(sorted(markers["test"]))
    assert dm.train_source.labels.tolist() == [label for label in range(10) for _ in range(2)]
    assert dm.test_source is not None and dm.test_source.labels.tolist() == list(range(10))
    for index, marker in enumerate(first_x(dm, "train")):
        assert dm.train_source.labels[index] == (marker - 100) // 10
    train, val = dm.split_indices()
    assert (len(train), len(val)) == (16, 4)  # val_fraction 0.2 of the official training list
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape == (4, 64, 3) and batch["x"].dtype == torch.float32
    assert batch["views"][0].shape == (4, 64, 3)
    test = next(iter(dm.test_dataloader()))
    assert test["x"].shape == (4, 64, 3) and test["y"].tolist() == [0, 1, 2, 3]
    assert torch.allclose(test["x"].norm(dim=2).amax(1), torch.ones(4))


def test_our_off_reader_reads_modelnet_files_as_torch_geometric_does(tmp_path: Path) -> None:
    """ModelNet's archives glue the vertex count to 'OFF' in many files; both readers take them, with equal results."""
    fake_modelnet(tmp_path / "raw")
    for k in (1, 2):  # the first file of each class has the glued header
        path = tmp_path / "raw" / "sofa" / "train" / f"sofa_000{k}.off"
        assert path.read_text().startswith("OFF8 12 0\n" if k == 1 else "OFF\n8 12 0\n")
        vertices, faces = pc.read_off(path)
        theirs = pyg_read_off(str(path))
        np.testing.assert_allclose(vertices, theirs.pos.numpy(), rtol=1e-6)
        np.testing.assert_array_equal(faces, theirs.face.t().numpy())


def test_meshes_are_sampled_by_torch_geometric_sample_points_seeded_for_evaluation(tmp_path: Path) -> None:
    fake_modelnet(tmp_path / "raw")
    dm = PointCloudDataModule(source="modelnet10", root=str(tmp_path), num_points=32, seed=3)
    shape = dm.train_source.load(5)
    mesh = Data(pos=shape.points.clone(), face=shape.faces.t().clone())
    state = torch.get_rng_state()
    evaluated = dm.eval_transform()(shape)
    assert torch.equal(torch.get_rng_state(), state)  # evaluation leaves the global RNG alone
    torch.manual_seed(3)
    assert torch.equal(evaluated, normalize_unit_sphere(SamplePoints(32)(mesh).pos))
    torch.manual_seed(7)
    expected = normalize_unit_sphere(SamplePoints(32)(mesh.clone()).pos)
    torch.manual_seed(7)
    assert torch.equal(dm.to_points()(shape), expected)  # training: torch's global RNG, seeded per sample by the base
    lo, hi = shape.points.amin(0), shape.points.amax(0)
    raw = SamplePoints(32)(mesh.clone()).pos
    assert bool(((raw >= lo - 1e-5) & (raw <= hi + 1e-5)).all())  # on the box


def test_missing_data_without_download_names_the_folder_and_how_to_get_it(tmp_path: Path) -> None:
    root = tmp_path / "nothing"
    dm = PointCloudDataModule(source="modelnet10", root=str(root))
    with pytest.raises(FileNotFoundError, match=re.escape(f"root={str(root)!r}: no ModelNet10 there")) as error:
        _ = dm.input_spec
    assert "download=true" in str(error.value) and ModelNet.urls["10"] in str(error.value)
    assert not root.exists()  # nothing was created
    partial = tmp_path / "partial"
    (partial / "raw" / "chair").mkdir(parents=True)  # a folder without the other classes: torch-geometric would fetch
    with pytest.raises(FileNotFoundError, match=r"no ModelNet40 there \(torch-geometric needs .*bathtub"):
        _ = PointCloudDataModule(source="modelnet40", root=str(partial)).input_spec
    assert (partial / "raw" / "chair").is_dir()  # left as it was
    with pytest.raises(FileNotFoundError, match=re.escape(ShapeNet.url)):
        _ = PointCloudDataModule(source="shapenet", root=str(root)).input_spec


def fake_download(monkeypatch: pytest.MonkeyPatch, module: object, archive: Path) -> list[str]:
    """Make ``module.download_url`` copy ``archive`` instead of fetching; returns the URLs asked for."""
    asked: list[str] = []

    def download_url(url: str, folder: str) -> str:
        asked.append(url)
        return shutil.copy(archive, Path(folder) / url.rsplit("/", 1)[-1])

    monkeypatch.setattr(module, "download_url", download_url)
    return asked


def zip_folder(folder: Path, archive: Path, extra: str | None = None) -> Path:
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(folder.rglob("*")):
            handle.write(path, path.relative_to(folder.parent).as_posix())
        if extra is not None:
            handle.writestr(extra, "")
    return archive


def test_download_true_fetches_unpacks_and_processes_modelnet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    markers = fake_modelnet(tmp_path / "src" / "ModelNet10")
    archive = zip_folder(tmp_path / "src" / "ModelNet10", tmp_path / "ModelNet10.zip", "__MACOSX/._x")
    asked = fake_download(monkeypatch, pyg_modelnet, archive)
    root = tmp_path / "data"
    dm = PointCloudDataModule(source="modelnet10", root=str(root), download=True, num_points=16)
    assert len(dm.train_source) == 20 and dm.class_names == MODELNET10
    assert asked == [ModelNet.urls["10"]]
    assert sorted(p.name for p in (root / "raw").iterdir()) == MODELNET10 and not (root / "__MACOSX").exists()
    assert sorted(first_x(dm, "test")) == pytest.approx(sorted(markers["test"]))
    again = PointCloudDataModule(source="modelnet10", root=str(root), download=True, num_points=16)
    assert len(again.test_source or []) == 10 and len(asked) == 1  # there now: not fetched again


def test_shapenet_downloaded_offline_categories_as_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = ShapeNet.url.rsplit("/", 1)[-1].removesuffix(".zip")
    markers = fake_shapenet(tmp_path / "src" / name)
    asked = fake_download(monkeypatch, pyg_shapenet, zip_folder(tmp_path / "src" / name, tmp_path / f"{name}.zip"))
    dm = PointCloudDataModule(
        source="shapenet",
        root=str(tmp_path / "ShapeNet"),
        download=True,
        categories=SHAPENET_CATEGORIES,
        num_points=32,
        batch_size=2,
        val_fraction=0.25,
    )
    spec = dm.input_spec
    assert asked == [ShapeNet.url]
    assert (spec.channels, spec.num_classes, dm.class_names) == (3, 2, SHAPENET_CATEGORIES)
    # training source: the official train and val lists; test set: the official test list
    assert sorted(first_x(dm, "train")) == pytest.approx(sorted(markers["train"] + markers["val"]))
    assert sorted(first_x(dm, "test")) == pytest.approx(sorted(markers["test"]))
    assert dm.test_source is not None
    for source, markers_seen in ((dm.train_source, first_x(dm, "train")), (dm.test_source, first_x(dm, "test"))):
        assert source.labels.tolist() == [(marker - 200) // 10 for marker in markers_seen]  # the category
    assert dm.train_source.labels.bincount().tolist() == [4, 4]
    assert dm.train_source.load(0).faces is None and dm.train_source.load(0).points.shape[1] == 3  # no normals
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape == (2, 32, 3)
    evaluated = dm.eval_transform()(dm.test_source.load(0))
    assert torch.equal(evaluated, dm.eval_transform()(dm.test_source.load(0)))


def test_bad_samples_are_named_or_skipped_and_options_checked(tmp_path: Path) -> None:
    fake_modelnet(tmp_path / "raw", {"train": 2, "test": 1})
    flat = box(999, 0)
    flat[:, 1:] = 0  # every corner on the x axis: every triangle has zero area
    write_off(tmp_path / "raw" / "chair" / "train" / "chair_0003.off", flat, CUBE_FACES, joined=False)
    with pytest.raises(ValueError, match=r"\(ModelNet10 train\) sample \d+: expected faces with a positive total area"):
        _ = PointCloudDataModule(source="modelnet10", root=str(tmp_path)).input_spec
    dm = PointCloudDataModule(source="modelnet10", root=str(tmp_path), on_bad_file="skip")
    with pytest.warns(UserWarning, match=r"left out 1 of 21 files of ModelNet10 train"):
        assert len(dm.train_source) == 20
    assert 999 not in first_x(dm, "train")
    for kwargs in (
        {"root": "x"},
        {"download": True},
        {"source": "modelnet10", "path": "x"},
        {"source": "modelnet10", "categories": ["Airplane"]},
        {"source": "shapenet", "categories": ["Airplane", "Spaceship"]},
        {"source": "scannet"},
    ):
        with pytest.raises(ValueError, match=r"^(root|path|categories|source)"):
            PointCloudDataModule(**kwargs)  # type: ignore[arg-type]


def test_the_modelnet10_config_runs_on_a_local_copy(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The bundled config with ``root`` pointed at a tiny copy: a couple of steps, the probe on its labels."""
    fake_modelnet(tmp_path / "ModelNet10" / "raw")
    main(
        [
            "fit",
            "--config",
            str(CONFIG),
            f"--data.root={tmp_path / 'ModelNet10'}",
            "--data.num_points=64",
            "--data.batch_size=4",
            "--model.num_groups=8",
            "--model.group_size=8",
            "--model.encoder.embed_dim=24",
            "--model.encoder.depth=1",
            "--model.predictor_dim=12",
            "--model.predictor_depth=1",
            "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=2",
            "--trainer.limit_val_batches=1",
            "--trainer.enable_progress_bar=false",
            f"--trainer.default_root_dir={tmp_path / 'run'}",
        ]
    )
    out = capsys.readouterr().out
    assert "Linear probe on the test split" in out  # the official test list, labelled by class
    assert re.search(r"random initialisation: [01]\.\d{4}\n  pretrained encoder: +[01]\.\d{4}", out), out
