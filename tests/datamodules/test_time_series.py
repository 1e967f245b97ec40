"""Time-series datamodule: the .ts reader, CSV/Parquet/NPY/NPZ readers, padding, fixed length, windows, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from datamodules.recordings import Augment
from datamodules.time_series import PadCollate, TimeSeriesDataModule, aeon_dataset
from datamodules.ts_format import read_ts

TS_HEADER = "@problemName Toy\n@timeStamps false\n@missing {missing}\n@univariate false\n@dimensions 2\n"
TS_HEADER += "@equalLength false\n@classLabel true up down\n@data\n"


def write_ts(folder: Path, body: str, missing: str = "false", name: str = "toy.ts") -> Path:
    path = folder / name
    path.write_text("# a comment\n" + TS_HEADER.format(missing=missing) + body)
    return path


def raw(path: Path, **options) -> TimeSeriesDataModule:
    """A datamodule that keeps values as read (no normalisation) and every sample in the train split."""
    return TimeSeriesDataModule(path=str(path), normalize=False, val_fraction=0, **options)


def samples(datamodule: TimeSeriesDataModule) -> list[torch.Tensor]:
    source = datamodule.train_source
    return [source[i][0] for i in range(len(source))]


# --------------------------------------------------------------------------------------------- .ts reader


def test_read_ts_round_trip_multivariate_variable_length_missing(tmp_path):
    path = write_ts(tmp_path, "1,2,3:4,5,6:up\n\n1.5,?,3,-4e2:5,6,7,8:down\n", missing="true")
    data = read_ts(path)
    assert len(data.series) == 2 and not data.equal_length
    np.testing.assert_array_equal(data.series[0], [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(data.series[1], [[1.5, np.nan, 3, -400], [5, 6, 7, 8]])
    assert data.labels == ["up", "down"] and data.class_names == ("up", "down")
    assert data.metadata["problemname"] == "Toy" and data.metadata["dimensions"] == "2"


def test_read_ts_gunpoint_shape():
    train, test = read_ts(aeon_dataset("GunPoint", "TRAIN")), read_ts(aeon_dataset("GunPoint", "TEST"))
    assert (len(train.series), len(test.series)) == (50, 150)
    assert {s.shape for s in train.series + test.series} == {(1, 150)}
    assert train.class_names == ("1", "2") and set(train.labels + test.labels) == {"1", "2"}
    assert train.equal_length and train.metadata["serieslength"] == "150"


@pytest.mark.parametrize(
    ("body", "missing", "match"),
    [
        ("1,2:3,4:up\n1,?:3,4:up\n", "false", r"toy\.ts:11: expected comma-separated numbers \(missing values need"),
        ("1,2:3,4:up\n1,x:3,4:up\n", "true", r"toy\.ts:11: .*got 'x'"),
        ("1,2:3,4:up\n1,2:up\n", "false", r"toy\.ts:11: expected 2 dimensions"),
        ("1,2:3,4:left\n", "false", r"toy\.ts:10: expected a label of @classLabel \['up', 'down'\], got 'left'"),
        ("1,2,3:3,4:up\n", "false", r"toy\.ts:10: expected dimensions of equal length within a case"),
        ("1,inf:3,4:up\n", "true", r"toy\.ts:10: expected finite numbers or '\?', got inf"),
    ],
)
def test_read_ts_errors_name_file_and_line(tmp_path, body, missing, match):
    with pytest.raises(ValueError, match=match):
        read_ts(write_ts(tmp_path, body, missing))


def test_read_ts_rejects_timestamps_and_missing_data_section(tmp_path):
    (tmp_path / "a.ts").write_text("@timeStamps true\n@data\n(0,1),(1,2)\n")
    with pytest.raises(ValueError, match=r"a\.ts:1: expected @timestamps false"):
        read_ts(tmp_path / "a.ts")
    (tmp_path / "b.ts").write_text("@problemName B\n")
    with pytest.raises(ValueError, match=r"b\.ts: expected a '@data' line"):
        read_ts(tmp_path / "b.ts")


# --------------------------------------------------------------------------------------------- readers


def test_ts_file_through_the_datamodule(tmp_path):
    path = write_ts(tmp_path, "1,2,3:4,5,6:down\n1,2,3,4:5,6,7,8:up\n")
    datamodule = raw(path)
    assert datamodule.input_spec.channels == 2 and datamodule.class_names == ["up", "down"]
    assert datamodule.train_source.labels.tolist() == [1, 0]  # declared order: up = 0, down = 1
    torch.testing.assert_close(samples(datamodule)[1], torch.tensor([[1.0, 2, 3, 4], [5, 6, 7, 8]]))


def test_csv_wide_round_trip(tmp_path):
    values = np.arange(12, dtype=float).reshape(3, 4)
    frame = pd.DataFrame(values, columns=[f"t{i}" for i in range(4)])
    frame.insert(0, "id", ["a", "b", "c"])
    frame["label"] = [10, 2, 10]
    frame.to_csv(tmp_path / "wide.csv", index=False)
    datamodule = raw(tmp_path / "wide.csv", label_column="label", id_column="id")
    assert datamodule.class_names == ["2", "10"]  # numeric labels sort numerically
    assert datamodule.train_source.labels.tolist() == [1, 0, 1]
    torch.testing.assert_close(torch.stack(samples(datamodule)), torch.tensor(values, dtype=torch.float32)[:, None])


def test_csv_long_round_trip_sorts_time_and_keeps_first_appearance(tmp_path):
    rows = [  # series "s2" first, rows out of time order, two channels, lengths 3 and 2
        ("s2", 2, 20.0, -2.0, "b"),
        ("s1", 1, 1.0, -1.0, "a"),
        ("s2", 0, 0.0, 0.0, "b"),
        ("s1", 0, 0.5, -0.5, "a"),
        ("s2", 1, 10.0, -1.0, "b"),
    ]
    pd.DataFrame(rows, columns=["id", "t", "u", "v", "y"]).to_csv(tmp_path / "long.csv", index=False)
    datamodule = raw(tmp_path / "long.csv", id_column="id", time_column="t", label_column="y")
    spec = datamodule.input_spec
    assert (spec.channels, spec.channel_names, spec.num_classes) == (2, ("u", "v"), 2)
    first, second = samples(datamodule)
    torch.testing.assert_close(first, torch.tensor([[0.0, 10, 20], [0, -1, -2]]))
    torch.testing.assert_close(second, torch.tensor([[0.5, 1.0], [-0.5, -1.0]]))
    assert datamodule.train_source.labels.tolist() == [1, 0]


def test_parquet_wide_round_trip(tmp_path):
    values = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    pd.DataFrame(values, columns=[f"t{i}" for i in range(6)]).to_parquet(tmp_path / "x.parquet")
    datamodule = raw(tmp_path / "x.parquet")
    torch.testing.assert_close(torch.stack(samples(datamodule)), torch.from_numpy(values)[:, None])
    assert (datamodule.train_source.labels == -1).all() and datamodule.class_names is None


def test_npy_and_npz_round_trip(tmp_path):
    values = np.random.default_rng(0).normal(size=(5, 3, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", values)
    torch.testing.assert_close(torch.stack(samples(raw(tmp_path / "x.npy"))), torch.from_numpy(values))
    np.save(tmp_path / "flat.npy", values[:, 0])  # (N, T): one channel
    assert raw(tmp_path / "flat.npy").input_spec.channels == 1
    np.savez(tmp_path / "xy.npz", x=values, y=np.array(["cat", "ant", "cat", "bee", "ant"]))
    datamodule = raw(tmp_path / "xy.npz")
    assert datamodule.class_names == ["ant", "bee", "cat"]
    assert datamodule.train_source.labels.tolist() == [2, 0, 2, 1, 0]


def test_default_is_gunpoint_with_its_official_test_split():
    datamodule = TimeSeriesDataModule()
    spec = datamodule.input_spec
    assert (spec.modality, spec.channels, spec.num_classes) == ("time_series", 1, 2)
    assert (len(datamodule.train_source), len(datamodule.test_source)) == (50, 150)
    assert len(datamodule.indices("test")) == 150


# --------------------------------------------------------------------------------------------- batches


def test_variable_length_batches_are_padded_with_lengths(tmp_path):
    path = write_ts(tmp_path, "1,2,3:4,5,6:up\n1,2,3,4,5:5,6,7,8,9:down\n")
    datamodule = raw(path, batch_size=2, num_views=2, drop_last=False, crop_scale=None)
    batch = next(iter(datamodule.eval_dataloader("all")))
    assert batch["x"].shape == (2, 2, 5) and batch["lengths"].tolist() == [3, 5]
    assert (batch["x"][0, :, 3:] == 0).all() and torch.equal(batch["x"][0, 0, :3], torch.tensor([1.0, 2, 3]))
    train = next(iter(datamodule.train_dataloader()))
    assert [view.values.shape for view in train["views"]] == [(2, 2, 5)] * 2
    assert all(torch.equal(view.lengths, train["lengths"]) for view in train["views"])  # views keep their lengths
    short = int((train["lengths"] == 3).nonzero()[0, 0])
    assert all((view.values[short, :, 3:] == 0).all() for view in train["views"])


def test_pad_collate_pads_to_at_least_pad_to():
    items = [{"x": torch.ones(1, 2), "y": 0}, {"x": torch.ones(1, 3), "y": 1}]
    batch = PadCollate(pad_to=4)(items)
    assert batch["x"].tolist() == [[[1, 1, 0, 0]], [[1, 1, 1, 0]]] and batch["lengths"].tolist() == [2, 3]


def test_fixed_length_crops_and_pads(tmp_path):
    path = write_ts(tmp_path, "1,2,3:4,5,6:up\n1,2,3,4,5,6:5,6,7,8,9,10:down\n")
    batch = next(iter(raw(path, length=4, batch_size=2).eval_dataloader("all")))
    assert batch["x"].shape == (2, 2, 4) and batch["lengths"].tolist() == [3, 4]
    assert batch["x"][1].tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]] and batch["x"][0, :, 3].tolist() == [0, 0]


def test_input_spec_gives_the_batch_width_of_fixed_lengths_and_windows(tmp_path):
    """``padded_length`` is the width of every batch (``length`` or ``window``), which a tokenizer's ``min_patches``
    reads; None when batches are padded to their longest series."""
    path = write_ts(tmp_path, "1,2,3:4,5,6:up\n1,2,3,4,5,6:5,6,7,8,9,10:down\n")
    assert raw(path, length=4).input_spec.padded_length == 4
    assert raw(path, window=2).input_spec.padded_length == 2
    assert raw(path).input_spec.padded_length is None


def test_windowing_counts_and_labels(tmp_path):
    np.savez(tmp_path / "x.npz", x=np.arange(2 * 25, dtype=float).reshape(2, 25), y=np.array([0, 1]))
    datamodule = raw(tmp_path / "x.npz", window=10, stride=5)
    # starts 0, 5, 10, 15 per series of 25 samples
    assert len(datamodule.train_source) == 8 and datamodule.train_source.labels.tolist() == [0] * 4 + [1] * 4
    window = samples(datamodule)[5]
    assert window.tolist() == [list(range(30, 40))]


def test_normalisation_per_series_and_channel(tmp_path):
    values = np.array([[[1.0, 2, 3, 4], [10, 10, 10, 10]]])
    np.save(tmp_path / "x.npy", values)
    x = TimeSeriesDataModule(path=str(tmp_path / "x.npy"), val_fraction=0).train_transform()(
        torch.tensor(values[0], dtype=torch.float32)
    )
    expected = (np.array([1, 2, 3, 4]) - 2.5) / np.sqrt(1.25 + 1e-6)
    np.testing.assert_allclose(x[0].numpy(), expected, rtol=1e-6)
    assert x[1].tolist() == [0, 0, 0, 0]  # a flat channel stays finite


def test_missing_values_normalised_over_observed_then_zero(tmp_path):
    path = write_ts(tmp_path, "1,?,3:4,5,6:up\n", missing="true")
    datamodule = TimeSeriesDataModule(path=str(path), allow_missing=True, val_fraction=0)
    x = next(iter(datamodule.eval_dataloader("all")))["x"][0]
    np.testing.assert_allclose(x[0].numpy(), [-1 / np.sqrt(1 + 1e-6), 0, 1 / np.sqrt(1 + 1e-6)], rtol=1e-6)


def test_view_crop_keeps_length_and_is_seeded(tmp_path):
    np.save(tmp_path / "x.npy", np.sin(np.linspace(0, 6, 4 * 60)).reshape(4, 60))
    datamodule = TimeSeriesDataModule(path=str(tmp_path / "x.npy"), val_fraction=0, num_views=2, batch_size=4)
    first, second = next(iter(datamodule.train_dataloader())), next(iter(datamodule.train_dataloader()))
    assert first["views"][0].values.shape == first["x"].shape == (4, 1, 60)
    assert all(torch.equal(a.values, b.values) for a, b in zip(first["views"], second["views"]))
    assert not torch.equal(first["views"][0].values, first["views"][1].values)
    ramp = torch.arange(10.0)[None]
    torch.manual_seed(0)
    cropped = Augment((1.0, 1.0), 0.0, 0.0, 0.0, crop_scale=(0.5, 0.5))(ramp)
    steps = cropped.diff()
    assert cropped.shape == (1, 10) and torch.allclose(steps, torch.full_like(steps, 4 / 9))  # 5 samples -> 10


# --------------------------------------------------------------------------------------------- bad input


def index(path: Path, **options) -> None:
    TimeSeriesDataModule(path=str(path), **options).setup("fit")


def test_channel_mismatch_between_files_names_the_test_file(tmp_path):
    np.save(tmp_path / "train.npy", np.zeros((3, 2, 10)))
    np.save(tmp_path / "test.npy", np.zeros((3, 1, 10)))
    with pytest.raises(ValueError, match=r"test\.npy: expected 2 channels as in .*train\.npy, got 1"):
        index(tmp_path / "train.npy", test_path=str(tmp_path / "test.npy"))


def test_nan_and_inf_name_file_and_series(tmp_path):
    values = np.zeros((3, 1, 10))
    values[2, 0, 4] = np.nan
    np.save(tmp_path / "nan.npy", values)
    with pytest.raises(ValueError, match=r"nan\.npy: series 2: expected finite values; set allow_missing=True"):
        index(tmp_path / "nan.npy")
    index(tmp_path / "nan.npy", allow_missing=True)
    values[1, 0, 0] = np.inf
    np.save(tmp_path / "inf.npy", values)
    with pytest.raises(ValueError, match=r"inf\.npy: series 1: expected finite values, got 1 non-finite"):
        index(tmp_path / "inf.npy", allow_missing=True)


def test_series_shorter_than_window_or_min_length(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 1, 8)))
    with pytest.raises(ValueError, match=r"x\.npy: series 0: expected at least 10 samples \(a window of 10\)"):
        index(tmp_path / "x.npy", window=10)
    with pytest.raises(ValueError, match=r"series 0: expected at least 12 samples \(min_length=12\), got 8"):
        index(tmp_path / "x.npy", min_length=12)


def test_corrupt_files_are_named(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"bad\.npz: expected a readable NPZ file"):
        index(tmp_path / "bad.npz")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match=r"bad\.parquet: expected a readable parquet table"):
        index(tmp_path / "bad.parquet")
    np.savez(tmp_path / "nox.npz", signal=np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"nox\.npz: expected an NPZ with an array 'x'"):
        index(tmp_path / "nox.npz")


def test_unknown_and_non_numeric_columns(tmp_path):
    pd.DataFrame({"id": ["a", "b"], "t0": [1.0, 2.0], "t1": ["3", "x"]}).to_csv(tmp_path / "w.csv", index=False)
    with pytest.raises(
        ValueError, match=r"label_column: expected column names of .*w\.csv .*unknown column\(s\) \['y'\]"
    ):
        index(tmp_path / "w.csv", label_column="y")
    with pytest.raises(ValueError, match=r"w\.csv: column 't1': expected numbers"):
        index(tmp_path / "w.csv", id_column="id")


def test_long_table_errors(tmp_path):
    frame = pd.DataFrame({"id": [1, 1, 2], "t": [0, 0, 0], "v": [1.0, 2.0, 3.0], "y": ["a", "b", "c"]})
    frame.to_csv(tmp_path / "long.csv", index=False)
    with pytest.raises(ValueError, match=r"long\.csv: columns 'id', 't': expected one row per \(series, time\)"):
        index(tmp_path / "long.csv", id_column="id", time_column="t", value_columns=["v"])
    frame.assign(t=[0, 1, 0]).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(ValueError, match=r"labels\.csv: column 'y': expected one label per series"):
        index(tmp_path / "labels.csv", id_column="id", time_column="t", label_column="y")
    with pytest.raises(ValueError, match="id_column: expected the column naming each series"):
        index(tmp_path / "labels.csv", time_column="t")


def test_test_labels_must_be_training_classes(tmp_path):
    np.savez(tmp_path / "train.npz", x=np.zeros((2, 5)), y=np.array(["a", "b"]))
    np.savez(tmp_path / "test.npz", x=np.zeros((2, 5)), y=np.array(["a", "z"]))
    with pytest.raises(ValueError, match=r"test\.npz: expected labels among the training classes \['a', 'b'\]"):
        index(tmp_path / "train.npz", test_path=str(tmp_path / "test.npz"))


def test_options_that_do_not_fit(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"x\.npy: expected no table options for a \.npy file"):
        index(tmp_path / "x.npy", label_column="y")
    (tmp_path / "x.txt").write_text("1,2")
    with pytest.raises(ValueError, match=r"x\.txt: expected a series file"):
        index(tmp_path / "x.txt")
    with pytest.raises(ValueError, match="length: expected None when window is set"):
        TimeSeriesDataModule(length=10, window=10)
    with pytest.raises(ValueError, match="test_path: expected None with the default data set"):
        TimeSeriesDataModule(test_path="x.ts")


def test_dataset_normalisation_uses_the_training_files_statistics_per_channel(tmp_path):
    """``normalize="dataset"`` (TS-JEPA's official z-scoring): every sample, test ones too, shifted and scaled by
    the mean and standard deviation of all values of the training file, per channel; amplitudes between series kept."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 2, 40)) * np.array([1.0, 10.0])[:, None] + np.array([5.0, -3.0])[:, None]
    x[0] *= 3.0  # one loud series: per-series normalisation would hide it
    np.savez(tmp_path / "train.npz", x=x, y=np.arange(6) % 2)
    np.savez(tmp_path / "test.npz", x=x[:2] + 1.0, y=np.arange(2))
    datamodule = TimeSeriesDataModule(
        path=str(tmp_path / "train.npz"), test_path=str(tmp_path / "test.npz"), normalize="dataset", val_fraction=0
    )
    datamodule.setup("fit")
    mean, std = datamodule.channel_statistics
    flat = x.transpose(1, 0, 2).reshape(2, -1)
    np.testing.assert_allclose(mean[:, 0].numpy(), flat.mean(1), rtol=1e-5)
    np.testing.assert_allclose(std[:, 0].numpy(), flat.std(1), rtol=1e-5)
    transform = datamodule.eval_transform()
    for i in range(6):
        expected = (x[i] - flat.mean(1)[:, None]) / flat.std(1)[:, None]
        np.testing.assert_allclose(transform(torch.from_numpy(x[i]).float()).numpy(), expected, rtol=1e-4, atol=1e-5)
    test = datamodule.test_source[0][0]
    expected = (x[0] + 1.0 - flat.mean(1)[:, None]) / flat.std(1)[:, None]
    np.testing.assert_allclose(transform(test).numpy(), expected, rtol=1e-4, atol=1e-5)
    series = TimeSeriesDataModule(path=str(tmp_path / "train.npz"), normalize="series", val_fraction=0)
    series.setup("fit")
    assert torch.allclose(series.eval_transform()(torch.from_numpy(x[0]).float()).std(-1), torch.ones(2), atol=0.02)
    with pytest.raises(ValueError, match="normalize"):
        TimeSeriesDataModule(normalize="global")
