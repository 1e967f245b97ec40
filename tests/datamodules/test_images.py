"""Images: digits default, image folders, IDX files, normalisation, views, seeding and input errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile
from torch import Tensor

from datamodules import ImageDataModule
from datamodules.base import sample_seed
from datamodules.images import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, Speckle


def write_images(folder: Path, count: int, mode: str = "RGB", size: tuple[int, int] = (6, 5), suffix: str = ".png"):
    """Write ``count`` random images of PIL ``mode`` and ``size`` (width, height); return their pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(list(folder.iterdir())))
    channels = len(Image.new(mode, (1, 1)).getbands())
    shape = (size[1], size[0]) if channels == 1 else (size[1], size[0], channels)
    arrays = []
    for i in range(count):
        pixels = rng.integers(0, 256, shape, dtype=np.uint8)
        Image.fromarray(pixels, mode=mode).save(folder / f"img{i:03d}{suffix}")
        arrays.append(pixels)
    return arrays


def write_idx(path: Path, magic: int, array: np.ndarray) -> None:
    """Write ``array`` (uint8) as an IDX file, gzip-compressed when the name ends with .gz."""
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if path.name.endswith(".gz") else payload)


def gather(loader: torch.utils.data.DataLoader) -> tuple[Tensor, Tensor]:
    batches = list(loader)
    return torch.cat([b["x"] for b in batches]), torch.cat([b["y"] for b in batches])


def test_digits_default_split_and_spec() -> None:
    dm = ImageDataModule(seed=0)
    spec = dm.input_spec
    assert (spec.modality, spec.channels, spec.image_size, spec.num_classes) == ("images", 1, (32, 32), 10)
    train, val = dm.split_indices()
    assert (len(train), len(val)) == (1797 - 359, 359)
    assert set(train.tolist()).isdisjoint(val.tolist())
    assert torch.equal(val, ImageDataModule(seed=0).indices("val"))
    assert not torch.equal(val, ImageDataModule(seed=1).indices("val"))
    assert dm.train_source.labels.unique().tolist() == list(range(10))


def test_input_spec_works_before_setup_and_indexes_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = ImageDataModule.index_sources
    monkeypatch.setattr(ImageDataModule, "index_sources", lambda self: calls.append(1) or original(self))
    dm = ImageDataModule(batch_size=16)
    assert dm.input_spec.channels == 1
    assert dm.input_spec == dm.input_spec
    dm.setup("fit")
    next(iter(dm.train_dataloader()))
    assert len(calls) == 1


def test_digits_batches_are_normalised_on_the_training_split() -> None:
    dm = ImageDataModule(image_size=8, batch_size=64, num_views=0)
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"x", "y"}
    assert batch["x"].shape == (64, 1, 8, 8)
    assert batch["x"].dtype == torch.float32
    assert batch["y"].dtype == torch.long
    x, y = gather(dm.eval_dataloader("train"))
    assert x.shape == (1438, 1, 8, 8)
    assert x.mean().abs() < 1e-5
    assert (x.std() - 1).abs() < 1e-3
    raw = dm.train_source.images[dm.indices("train")].float() / 255
    mean, std = dm.normalisation()
    assert torch.allclose(x, (raw - mean[0]) / std[0], atol=1e-5)
    assert torch.equal(y, dm.train_source.labels[dm.indices("train")])


def test_folder_statistics_normalise_each_channel(tmp_path: Path) -> None:
    write_images(tmp_path / "a", 10)
    write_images(tmp_path / "b", 10)
    dm = ImageDataModule(str(tmp_path), image_size=(5, 6), batch_size=4, val_fraction=0.25)
    x, _ = gather(dm.eval_dataloader("train"))
    assert x.shape == (15, 3, 5, 6)
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(x.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-3)


def test_class_subfolders_give_sorted_labels(tmp_path: Path) -> None:
    write_images(tmp_path / "zebra", 3)
    write_images(tmp_path / "ant", 4, suffix=".JPG")
    (tmp_path / "ant" / "notes.txt").write_text("not an image")
    dm = ImageDataModule(str(tmp_path), image_size=4, batch_size=2, val_fraction=0.3)
    assert dm.class_names == ["ant", "zebra"]
    assert dm.input_spec.num_classes == 2
    _, y = gather(dm.eval_dataloader("all"))
    assert y.tolist() == [0, 0, 0, 0, 1, 1, 1]


def test_flat_folder_is_unlabeled(tmp_path: Path) -> None:
    write_images(tmp_path, 5, mode="L")
    dm = ImageDataModule(str(tmp_path), image_size=4, batch_size=2)
    assert (dm.input_spec.channels, dm.input_spec.num_classes) == (1, None)
    x, y = gather(dm.eval_dataloader("all"))
    assert x.shape == (5, 1, 4, 4)
    assert y.tolist() == [-1] * 5


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path: Path, suffix: str) -> None:
    images = np.random.default_rng(0).integers(0, 256, (12, 5, 6), dtype=np.uint8)
    labels = np.arange(12, dtype=np.uint8) % 4
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", IDX_IMAGES_MAGIC, images)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", IDX_LABELS_MAGIC, labels)
    dm = ImageDataModule(
        str(tmp_path / f"train-images-idx3-ubyte{suffix}"),
        image_size=(5, 6),
        mean=[0.0],
        std=[1.0],
        batch_size=5,
    )
    assert dm.input_spec.num_classes == 4
    x, y = gather(dm.eval_dataloader("all"))
    assert torch.equal((x * 255).round().to(torch.uint8), torch.from_numpy(images).unsqueeze(1))
    assert y.tolist() == labels.tolist()


def test_idx_without_labels_file_is_unlabeled(tmp_path: Path) -> None:
    write_idx(tmp_path / "t10k-images-idx3-ubyte", IDX_IMAGES_MAGIC, np.zeros((4, 3, 3), np.uint8))
    dm = ImageDataModule(str(tmp_path / "t10k-images-idx3-ubyte"), batch_size=2)
    assert dm.input_spec.num_classes is None
    assert dm.train_source.labels.tolist() == [-1] * 4


def test_test_path_feeds_the_test_loader(tmp_path: Path) -> None:
    write_images(tmp_path / "train" / "a", 4)
    write_images(tmp_path / "train" / "b", 4)
    write_images(tmp_path / "test" / "b", 3)
    dm = ImageDataModule(str(tmp_path / "train"), test_path=str(tmp_path / "test"), image_size=4, batch_size=2)
    x, y = gather(dm.test_dataloader())
    assert x.shape == (3, 3, 4, 4)
    assert y.tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match=r"no test set: configure one with test_path=\.\.\. or hold part"):
        ImageDataModule(batch_size=2).test_dataloader()


def test_test_folder_with_an_unknown_class_is_rejected(tmp_path: Path) -> None:
    write_images(tmp_path / "train" / "a", 2)
    write_images(tmp_path / "test" / "c", 2)
    dm = ImageDataModule(str(tmp_path / "train"), test_path=str(tmp_path / "test"))
    with pytest.raises(ValueError, match="unknown class 'c'"):
        dm.setup("fit")


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_views_follow_num_views(tmp_path: Path, mode: str) -> None:
    write_images(tmp_path, 8, mode=mode, size=(12, 12))
    channels = 1 if mode == "L" else 3
    dm = ImageDataModule(str(tmp_path), image_size=10, batch_size=4, val_fraction=0.25, num_views=3)
    batch = next(iter(dm.train_dataloader()))
    assert len(batch["views"]) == 3
    assert all(view.shape == (4, channels, 10, 10) and view.dtype == torch.float32 for view in batch["views"])
    assert not torch.equal(batch["views"][0], batch["views"][1])
    assert "views" not in next(iter(dm.val_dataloader()))
    dm.num_views = 0
    assert "views" not in next(iter(dm.train_dataloader()))


def multi_crop_batch(seed: int, local_views: int = 6, **kwargs) -> dict:
    dm = ImageDataModule(image_size=16, batch_size=8, num_views=8, local_views=local_views, seed=seed, **kwargs)
    return next(iter(dm.train_dataloader()))


def test_multi_crop_views_are_global_then_local_at_their_own_sizes() -> None:
    views = multi_crop_batch(0, local_size=8)["views"]
    assert [tuple(view.shape) for view in views] == [(8, 1, 16, 16)] * 2 + [(8, 1, 8, 8)] * 6
    assert not torch.equal(views[0], views[1]) and not torch.equal(views[2], views[3])
    # LeJEPA's size ratio 98 / 224, rounded down to a multiple of 4, when local_size is not given
    assert ImageDataModule(image_size=32).local_size == (12, 12)
    assert ImageDataModule(image_size=(64, 32)).local_size == (28, 12)


def test_multi_crop_views_are_seeded_per_sample() -> None:
    first, again, other = multi_crop_batch(3), multi_crop_batch(3), multi_crop_batch(4)
    assert all(torch.equal(a, b) for a, b in zip(first["views"], again["views"]))
    assert not any(torch.equal(a, b) for a, b in zip(first["views"], other["views"]))


def test_without_local_views_every_view_is_the_single_size_view_transform() -> None:
    """local_views=0 (the default) draws the views exactly as one view_transform applied num_views times."""
    dm = ImageDataModule(image_size=16, batch_size=4, num_views=3, seed=2)
    dataset = dm.train_dataloader().dataset
    item = dataset[(0, 0)]
    index = int(dataset.indices[0])
    transform, view = dm.train_transform(), dm.view_transform()
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(sample_seed(2, 0, index))
        sample = dm.train_source.load(index)
        expected_x = transform(sample)
        expected = [view(sample) for _ in range(3)]
    assert torch.equal(item["x"], expected_x)
    assert all(torch.equal(a, b) for a, b in zip(item["views"], expected))


def test_local_views_must_leave_a_global_view() -> None:
    dm = ImageDataModule(image_size=16, batch_size=4, num_views=2, local_views=2)
    with pytest.raises(ValueError, match=r"local_views.*fewer than num_views=2"):
        dm.train_dataloader()


def test_per_sample_augmentation_is_reproducible() -> None:
    def epoch(num_workers: int, index: int) -> dict[int, list[Tensor]]:
        dm = ImageDataModule(batch_size=32, num_workers=num_workers, num_views=2, image_size=16, seed=7)
        dm.setup("fit")
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(index)
        batches = [next(iter(loader))] if num_workers == 0 else list(loader)[:1]
        return batches[0]

    reference = epoch(0, 1)
    for other in (epoch(2, 1), epoch(0, 1)):
        assert torch.equal(reference["x"], other["x"])
        assert all(torch.equal(a, b) for a, b in zip(reference["views"], other["views"]))
    assert not torch.equal(reference["x"], epoch(0, 2)["x"])


def test_missing_path_is_reported(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ImageDataModule(str(tmp_path / "nowhere")).setup("fit")


def test_empty_folder_is_reported(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images")
    with pytest.raises(ValueError, match="empty"):
        ImageDataModule(str(tmp_path / "empty")).setup("fit")


def test_corrupt_image_is_reported_while_indexing(tmp_path: Path) -> None:
    write_images(tmp_path, 2)
    (tmp_path / "broken.png").write_bytes(b"definitely not a png")
    with pytest.raises(ValueError, match=r"broken\.png"):
        ImageDataModule(str(tmp_path)).setup("fit")


def truncate(path: Path) -> None:
    """Cut a file in half, as an interrupted copy or download leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_image_fails_while_indexing_even_if_pil_would_pad_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_images(tmp_path, 3, size=(64, 64))
    truncate(tmp_path / "img001.png")  # its header still reads: only a full decode finds the missing pixels
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ValueError, match=r"img001\.png: expected a complete, readable image, got OSError: .*truncated"):
        ImageDataModule(str(tmp_path)).setup("fit")
    assert ImageFile.LOAD_TRUNCATED_IMAGES  # restored after indexing


def test_skip_mode_leaves_bad_images_out_with_one_warning(tmp_path: Path) -> None:
    write_images(tmp_path / "a", 2, size=(64, 64))
    write_images(tmp_path / "b", 2, size=(64, 64))
    truncate(tmp_path / "a" / "img000.png")
    (tmp_path / "b" / "img001.png").write_bytes(b"not a png")
    dm = ImageDataModule(str(tmp_path), on_bad_file="skip", val_fraction=0)
    with pytest.warns(UserWarning, match=r"left out 2 of 4 files of path:\n.*img000\.png.*\n.*img001\.png"):
        dm.setup("fit")
    assert [(f.parent.name, f.name) for f in dm.train_source.files] == [("a", "img001.png"), ("b", "img000.png")]
    assert dm.train_source.labels.tolist() == [0, 1] and dm.class_names == ["a", "b"]
    truncate(tmp_path / "b" / "img000.png")
    with pytest.warns(UserWarning, match="left out 3"), pytest.raises(ValueError, match="path: class 'b': expected"):
        ImageDataModule(str(tmp_path), on_bad_file="skip").setup("fit")


def test_16_bit_grey_is_scaled_to_8_bits_when_converting(tmp_path: Path) -> None:
    deep = np.array([[0, 257, 32768], [65535, 65535, 1000]], dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode in ("I;16", "I")
    with pytest.raises(ValueError, match=r"deep\.png: expected an 8-bit image \(convert=True"):
        ImageDataModule(str(tmp_path)).setup("fit")
    for channels in (1, 3):
        dm = ImageDataModule(str(tmp_path), channels=channels, convert=True, val_fraction=0)
        pixels = dm.train_source.load(0)
        assert pixels.dtype == torch.uint8 and pixels.shape == (channels, 2, 3)
        assert pixels[0].tolist() == [[0, 1, 128], [255, 255, 4]]


def test_wrong_channel_count_is_reported_unless_converting(tmp_path: Path) -> None:
    write_images(tmp_path, 3, mode="RGB")
    with pytest.raises(ValueError, match=r"img000\.png: expected 1 channel"):
        ImageDataModule(str(tmp_path), channels=1).setup("fit")
    dm = ImageDataModule(str(tmp_path), channels=1, convert=True, image_size=4, batch_size=1)
    assert gather(dm.eval_dataloader("all"))[0].shape == (3, 1, 4, 4)
    with pytest.raises(ValueError, match=r"load_digits\(\): expected 3 channel"):
        ImageDataModule(channels=3).setup("fit")
    assert next(iter(ImageDataModule(channels=3, convert=True, batch_size=2).val_dataloader()))["x"].shape[1] == 3


def test_mixed_channel_counts_are_reported(tmp_path: Path) -> None:
    write_images(tmp_path, 2, mode="L")
    Image.new("RGB", (5, 5)).save(tmp_path / "zz_colour.png")
    with pytest.raises(ValueError, match=r"zz_colour\.png: expected 1 channel"):
        ImageDataModule(str(tmp_path)).setup("fit")


def test_idx_with_a_wrong_magic_number_is_reported(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte", IDX_LABELS_MAGIC, np.zeros((4, 3, 3), np.uint8))
    with pytest.raises(ValueError, match="train-images-idx3-ubyte: expected an IDX file with magic number 2051"):
        ImageDataModule(str(tmp_path / "train-images-idx3-ubyte")).setup("fit")


def test_truncated_idx_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, IDX_IMAGES_MAGIC, np.zeros((4, 3, 3), np.uint8))
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-5]))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: expected 52 bytes"):
        ImageDataModule(str(path)).setup("fit")


def test_label_count_mismatch_is_reported(tmp_path: Path) -> None:
    write_idx(tmp_path / "a-images-idx3-ubyte", IDX_IMAGES_MAGIC, np.zeros((4, 3, 3), np.uint8))
    write_idx(tmp_path / "a-labels-idx1-ubyte", IDX_LABELS_MAGIC, np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="a-labels-idx1-ubyte: expected 4 labels"):
        ImageDataModule(str(tmp_path / "a-images-idx3-ubyte")).setup("fit")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"channels": 1, "mean": [0.5, 0.5], "std": [0.2, 0.2]}, "mean"),
        ({"mean": [0.5]}, "mean/std"),
        ({"std": [0.0], "mean": [0.5]}, "std"),
        ({"image_size": 0}, "image_size"),
        ({"channels": 5}, "channels"),
        ({"convert": True}, "convert"),
        ({"crop_scale": (0.5, 0.2)}, "crop_scale"),
        ({"local_crop_scale": (0.0, 0.3)}, "local_crop_scale"),
        ({"global_crop_scale": (0.3, 1.2)}, "global_crop_scale"),
        ({"local_views": -1}, "local_views"),
        ({"local_size": 0}, "local_size"),
    ],
)
def test_bad_arguments_are_reported(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ImageDataModule(**kwargs)


def test_mean_std_length_is_checked_against_inferred_channels(tmp_path: Path) -> None:
    write_images(tmp_path, 2, mode="RGB")
    with pytest.raises(ValueError, match="mean: expected 3 value"):
        ImageDataModule(str(tmp_path), mean=[0.5], std=[0.2]).setup("fit")


def test_speckle_multiplies_every_transform_by_unit_mean_gamma_noise() -> None:
    torch.manual_seed(0)
    noise = Speckle(4.0)(torch.ones(200_000))
    assert noise.min() >= 0
    assert noise.mean().item() == pytest.approx(1.0, abs=0.01)
    assert noise.var().item() == pytest.approx(1 / 4, rel=0.03)  # Gamma(L, 1/L): variance 1 / L
    clean = ImageDataModule(image_size=8, batch_size=64, num_views=0, mean=[0.0], std=[1.0])
    noisy = ImageDataModule(image_size=8, batch_size=64, num_views=0, mean=[0.0], std=[1.0], speckle_looks=4.0)
    x, _ = gather(clean.eval_dataloader("train"))
    y, _ = gather(noisy.eval_dataloader("train"))
    assert torch.equal(y == 0, x == 0)  # multiplicative: black stays black
    ratio = y[x > 0.2] / x[x > 0.2]
    assert ratio.mean().item() == pytest.approx(1.0, abs=0.02) and ratio.std().item() == pytest.approx(0.5, abs=0.03)
    with pytest.raises(ValueError, match="speckle_looks"):
        ImageDataModule(speckle_looks=0)
