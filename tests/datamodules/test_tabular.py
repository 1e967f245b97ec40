"""Tables: reading, schema inference, encoding, train-only statistics, SCARF views, batches and input errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from datamodules.tables import read_table
from datamodules.tabular import TabularDataModule, infer_schema
from jepa_lightning.tokenizers import TabularInput, model_input


def mixed_frame(rows: int = 20) -> pd.DataFrame:
    """A frame with each column kind: float with a gap, int, text, bool, text label."""
    rng = np.random.default_rng(0)
    height = rng.normal(170, 10, rows).round(1)
    height[3] = np.nan
    return pd.DataFrame(
        {
            "height": height,
            "age": rng.integers(20, 60, rows),
            "colour": rng.choice(["red", "green", "blue"], rows),
            "member": rng.choice([True, False], rows),
            "kind": rng.choice(["a", "b"], rows),
        }
    )


def write_csv(folder: Path, frame: pd.DataFrame, name: str = "table.csv") -> Path:
    path = folder / name
    frame.to_csv(path, index=False)
    return path


def test_schema_inference_on_every_column_kind(tmp_path: Path) -> None:
    path = write_csv(tmp_path, mixed_frame())
    schema = infer_schema(read_table(path), path, label="kind")
    assert schema.numeric == ("height", "age")
    assert schema.categorical == ("colour", "member")
    assert schema.vocabularies == (("blue", "green", "red"), ("False", "True"))
    assert schema.cardinalities == (4, 3)
    assert schema.classes == ("a", "b")
    forced = infer_schema(read_table(path), path, label=None, categorical=["age"], drop=["member", "kind"])
    assert forced.numeric == ("height",) and forced.categorical == ("age", "colour")  # file order


def test_parquet_reads_like_csv(tmp_path: Path) -> None:
    frame = mixed_frame()
    frame.to_parquet(tmp_path / "table.parquet")
    csv, parquet = (
        TabularDataModule(path=str(path), label="kind", val_fraction=0.25)
        for path in (write_csv(tmp_path, frame), tmp_path / "table.parquet")
    )
    assert csv.input_spec == parquet.input_spec
    torch.testing.assert_close(csv.train_source.numeric, parquet.train_source.numeric, equal_nan=True)
    torch.testing.assert_close(csv.train_source.codes, parquet.train_source.codes)
    torch.testing.assert_close(csv.train_source.labels, parquet.train_source.labels)


def test_standardisation_uses_train_split_statistics_only(tmp_path: Path) -> None:
    frame = mixed_frame()
    module = TabularDataModule(path=str(write_csv(tmp_path, frame)), label="kind", val_fraction=0.25, seed=3)
    train_rows = module.indices("train").numpy()
    heights = frame["height"].to_numpy()[train_rows]
    mean, std = np.nanmean(heights), np.nanstd(heights)
    assert abs(mean - np.nanmean(frame["height"])) > 1e-3  # val rows would move the statistics
    x = torch.cat([batch["x"] for batch in module.eval_dataloader("all")])
    expected = (frame["height"].to_numpy() - mean) / std
    np.testing.assert_allclose(x[:, 0].numpy(), expected, rtol=1e-5, atol=1e-5)
    assert torch.isnan(x[3, 0])  # kept missing (missing="keep")
    train = x[torch.from_numpy(train_rows)]
    assert abs(float(train[:, 1].mean())) < 1e-5 and abs(float(train[:, 1].std(unbiased=False)) - 1) < 1e-4


def test_unseen_and_missing_categories_take_the_unknown_slot_and_impute_fills(tmp_path: Path) -> None:
    train = mixed_frame()
    test = train.head(4).copy()
    test["colour"] = ["purple", None, "red", "blue"]
    test.loc[0, "height"] = np.nan
    paths = {"path": str(write_csv(tmp_path, train)), "test_path": str(write_csv(tmp_path, test, "test.csv"))}
    kept = TabularDataModule(**paths, label="kind", batch_size=4)
    batch = next(iter(kept.eval_dataloader("test")))
    assert batch["x_cat"][:, 0].tolist() == [0, 0, 3, 1]  # purple unseen, None missing -> 0; red 3, blue 1
    assert batch["x_cat"].dtype == torch.long and batch["y"].tolist() == [1 if k == "b" else 0 for k in test["kind"]]
    imputed = TabularDataModule(**paths, label="kind", batch_size=4, missing="impute")
    batch = next(iter(imputed.eval_dataloader("test")))
    train_colours = train["colour"].to_numpy()[imputed.indices("train").numpy()]
    mode = ["blue", "green", "red"].index(pd.Series(train_colours).value_counts().idxmax()) + 1
    assert batch["x_cat"][:, 0].tolist() == [0, mode, 3, 1]  # unseen stays unknown, missing -> most frequent
    assert batch["x"][0, 0] == pytest.approx(0.0, abs=1e-6)  # the train mean, standardised


def test_bundled_penguins_batches_follow_the_contract() -> None:
    module = TabularDataModule(batch_size=16, num_views=2)
    spec = module.input_spec
    assert spec.modality == "tabular" and spec.num_classes == 3
    assert spec.num_numeric == 5 and spec.categories == (4, 3)  # island (3) and sex (2) + unknown slot
    assert spec.feature_names[-2:] == ("island", "sex") and module.class_names == ["Adelie", "Chinstrap", "Gentoo"]
    batch = next(iter(module.train_dataloader()))
    assert batch["x"].shape == (16, 5) and batch["x"].dtype == torch.float32
    assert batch["x_cat"].shape == (16, 2) and batch["x_cat"].dtype == torch.long
    assert len(batch["views"]) == 2 and isinstance(batch["views"][0], TabularInput)
    assert isinstance(model_input(batch), TabularInput)
    all_rows = torch.cat([batch["x"] for batch in module.eval_dataloader("all")])
    assert all_rows.shape == (344, 5) and int(all_rows.isnan().any(dim=1).sum()) == 2  # nothing dropped


def test_scarf_views_replace_the_configured_share_with_training_values_and_are_seeded(tmp_path: Path) -> None:
    frame = pd.DataFrame({f"f{i}": np.arange(40, dtype=float) * (i + 1) for i in range(10)})
    path = str(write_csv(tmp_path, frame))
    module = TabularDataModule(
        path=path, standardize=False, corruption_rate=0.3, val_fraction=0.25, num_views=2, batch_size=8
    )
    first, second = (next(iter(module.train_dataloader())) for _ in range(2))
    for a, b in zip(first["views"], second["views"]):
        torch.testing.assert_close(a.numeric, b.numeric)  # same seed, same epoch: same views
    train_values = frame.to_numpy()[module.indices("train").numpy()]
    for view in first["views"]:
        changed = view.numeric != first["x"]
        assert (changed.sum(dim=1) <= 3).all() and changed.sum() > 0
        for column in range(10):  # every replacement is a value of that column in the training split
            assert np.isin(view.numeric[:, column].numpy(), train_values[:, column]).all()


@pytest.mark.parametrize(
    ("kwargs", "frame_edit", "message"),
    [
        ({"numeric": ["nope"]}, None, r"numeric: expected column names .*unknown column\(s\) \['nope'\]"),
        ({"drop": ["gone"]}, None, r"drop: expected .*'gone'"),
        ({"label": "kind"}, lambda f: f.assign(kind=[None, *list(f["kind"][1:])]), r"label column 'kind'.*1 missing"),
        ({}, lambda f: f.assign(empty=np.nan), r"column 'empty'.*only missing values"),
        ({}, lambda f: f.assign(height=["tall", *list(f["height"][1:].astype(str))]), r"column 'height'.*mixed"),
        ({"numeric": ["colour"]}, None, r"column 'colour'.*non-numeric values"),
        ({}, lambda f: f.assign(age=[np.inf, *list(f["age"][1:])]), r"column 'age'.*infinite"),
    ],
)
def test_bad_tables_raise_errors_naming_the_column(tmp_path: Path, kwargs, frame_edit, message) -> None:
    frame = mixed_frame()
    path = write_csv(tmp_path, frame_edit(frame) if frame_edit else frame)
    with pytest.raises(ValueError, match=message):
        TabularDataModule(path=str(path), **kwargs).setup("fit")


def test_missing_value_markers_are_missing_and_other_text_names_its_row(tmp_path: Path) -> None:
    frame = mixed_frame().astype({"height": object, "colour": object})
    frame.loc[[1, 2, 5], "height"] = ["n/a", "NA", ""]
    frame.loc[6, "colour"] = "n/a"
    csv = TabularDataModule(path=str(write_csv(tmp_path, frame)), label="kind", val_fraction=0)
    assert csv.input_spec.feature_names == ("height", "age", "colour", "member")
    assert csv.train_source.numeric[:, 0].isnan().nonzero().flatten().tolist() == [1, 2, 3, 5]
    mixed_frame().assign(colour=frame["colour"]).to_parquet(tmp_path / "table.parquet")  # a text column can hold n/a
    parquet = TabularDataModule(path=str(tmp_path / "table.parquet"), label="kind", val_fraction=0)
    for datamodule in (csv, parquet):
        assert datamodule.train_source.codes[6, 0] == -1  # missing, not a category "n/a"
        assert datamodule.input_spec.categories[0] == 4  # blue, green, red and the unknown slot
    frame.loc[4, "height"] = "?"
    path = write_csv(tmp_path, frame)
    with pytest.raises(ValueError, match=r"column 'height'.*na_values.*text \['\?'\], first '\?' in row 5"):
        TabularDataModule(path=str(path), label="kind").setup("fit")
    with pytest.raises(ValueError, match=r"column 'height': expected numbers or .*na_values.*first '\?' in row 5"):
        TabularDataModule(path=str(path), label="kind", numeric=["height"]).setup("fit")
    datamodule = TabularDataModule(path=str(path), label="kind", na_values=["?"], val_fraction=0)
    assert datamodule.train_source.numeric[:, 0].isnan().nonzero().flatten().tolist() == [1, 2, 3, 4, 5]


def test_bad_files_and_held_out_tables_are_reported(tmp_path: Path) -> None:
    (tmp_path / "table.txt").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"table.txt: expected a table file"):
        TabularDataModule(path=str(tmp_path / "table.txt")).setup("fit")
    train = write_csv(tmp_path, mixed_frame())
    test = write_csv(tmp_path, mixed_frame().assign(kind="c"), "test.csv")
    with pytest.raises(ValueError, match=r"test.csv: label column 'kind': expected classes of the training table"):
        TabularDataModule(path=str(train), test_path=str(test), label="kind").setup("test")
    test = write_csv(tmp_path, mixed_frame().drop(columns="age"), "test.csv")
    with pytest.raises(ValueError, match=r"test.csv: expected the columns .*missing column\(s\) \['age'\]"):
        TabularDataModule(path=str(train), test_path=str(test), label="kind").setup("test")
