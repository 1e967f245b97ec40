"""Tabular data: CSV / TSV or Parquet files (read by :mod:`datamodules.tables`), or the bundled Palmer penguins.

A raw sample is one row as :class:`~jepa_lightning.inputs.TabularInput`: numeric values as read (float,
NaN = missing) and categorical codes (``1 .. K`` for the column's categories in sorted order, ``0`` for a category the
training file never shows, ``-1`` for missing). Transforms bring rows to the batch contract: numeric values
standardised with statistics of the **training split only**, codes in ``[0, K]`` where ``0`` is the "unknown"
slot that takes unseen and (unless imputed) missing categories. Batches are
``{"x": float (B, F_num), "x_cat": long (B, F_cat), "y": long (B,), "views": [TabularInput, ...]}``.

Schema inference (per column of the training file, in file order): numeric dtypes are numeric features; strings,
booleans and pandas categories are categorical; ``numeric=[...]`` / ``categorical=[...]`` override, ``drop=[...]``
leaves columns out, ``label=`` names the class column (its values, strings or numbers, become class indices in
sorted order). Empty cells and missing-value markers (``NA``, ``n/a``, ``nan``, ... see
:data:`~datamodules.tables.NA_STRINGS`; ``na_values=[...]`` adds more, e.g. ``"?"``) are missing values, not text.
Bad input raises an error naming the file and column: unknown names in the overrides, a label with missing values, a
column with no value at all, a column mixing numbers and other text (naming the first text value and its row),
infinite numbers.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torch.utils.data._utils.collate import default_collate

from datamodules.base import MultiViewTransform, SampleSource, SSLDataModule, Transform, invalid, require_path
from datamodules.tables import category_strings, first_row, numeric_values, read_table
from jepa_lightning.inputs import InputSpec, TabularInput
from jepa_lightning.masks.features import FeatureMasking

MissingPolicy = Literal["keep", "impute"]
#: Categorical codes of the raw rows: missing; unseen categories share the unknown slot 0 with (kept) missing ones.
MISSING_CODE, UNKNOWN_CODE = -1, 0
PENGUINS_LABEL = "species"


def penguins_path() -> Path:
    """The CSV that the ``palmerpenguins`` package ships (344 rows, numeric + categorical, missing values)."""
    return Path(str(importlib.resources.files("palmerpenguins").joinpath("data/penguins.csv")))


def infer_kind(series: pd.Series, where: str) -> Literal["numeric", "categorical"]:
    """Numeric dtypes -> numeric; text, booleans and categories -> categorical; a column mixing numbers and text
    (e.g. a stray "?" in a numeric column; markers such as "n/a" are already missing values) raises, naming ``where``,
    the first text value and its row."""
    if pd.api.types.is_bool_dtype(series) or isinstance(series.dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric"
    observed = series.dropna()
    inferred = pd.api.types.infer_dtype(observed, skipna=True)
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
        return "numeric"
    is_number = pd.to_numeric(observed.map(str), errors="coerce").notna()
    if inferred in ("mixed", "mixed-integer") or (inferred == "string" and 0 < is_number.sum() < len(observed)):
        numbers = sorted({str(value) for value in observed[is_number]})[:3]
        texts = sorted({str(value) for value in observed[~is_number]})[:3]
        row, label = first_row(series.notna() & ~series.index.isin(observed[is_number].index))
        raise invalid(
            where,
            "one type per column (add a missing-value marker to na_values=[...], list the column in "
            "categorical=[...] to read every value as a category, or fix the file)",
            f"numbers {numbers} mixed with text {texts}, first {series[label]!r} in row {row}",
        )
    return "categorical"


@dataclass(frozen=True)
class TableSchema:
    """Which columns are features of which kind, the categories of each categorical column and the label classes."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    vocabularies: tuple[tuple[str, ...], ...]
    label: str | None
    classes: tuple[str, ...] | None

    @property
    def cardinalities(self) -> tuple[int, ...]:
        """Codes per categorical feature: its categories plus the unknown slot 0."""
        return tuple(len(vocabulary) + 1 for vocabulary in self.vocabularies)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Numeric features, then categorical ones: the order of the model's tokens."""
        return self.numeric + self.categorical


def infer_schema(
    frame: pd.DataFrame,
    where: Path,
    label: str | None,
    numeric: Sequence[str] = (),
    categorical: Sequence[str] = (),
    drop: Sequence[str] = (),
) -> TableSchema:
    """The schema of the training table ``frame`` read from ``where`` (see the module docstring for the rules)."""
    columns = list(frame.columns)
    fields = {"numeric": list(numeric), "categorical": list(categorical), "drop": list(drop)}
    if label is not None:
        fields["label"] = [label]
    for field, names in fields.items():
        unknown = [name for name in names if name not in columns]
        if unknown:
            raise invalid(field, f"column names of {where} {columns}", f"unknown column(s) {unknown}")
    for first, second in (("numeric", "categorical"), ("numeric", "drop"), ("categorical", "drop")):
        both = sorted(set(fields[first]) & set(fields[second]))
        if both:
            raise invalid(f"{first} and {second}", "disjoint column lists", f"{both} in both")
    if label is not None and label in set(numeric) | set(categorical) | set(drop):
        raise invalid("label", "a column that is not also listed in numeric, categorical or drop", repr(label))

    kinds: dict[str, list[str]] = {"numeric": [], "categorical": []}
    for name in columns:
        if name in drop or name == label:
            continue
        where_column = f"{where}: column {name!r}"
        series = frame[name]
        if series.isna().all():
            raise invalid(
                where_column, "at least one value (list it in drop=[...] to leave it out)", "only missing values"
            )
        kind = (
            "numeric" if name in numeric else "categorical" if name in categorical else infer_kind(series, where_column)
        )
        if kind == "numeric":
            numeric_values(series, where_column)
        kinds[kind].append(name)
    if not kinds["numeric"] and not kinds["categorical"]:
        raise invalid(where, "at least one feature column besides the label and dropped ones", "none")
    vocabularies = tuple(
        tuple(sorted(category_strings(frame[name]).dropna().unique())) for name in kinds["categorical"]
    )
    classes = None
    if label is not None:
        labels = frame[label]
        if labels.isna().any():
            raise invalid(
                f"{where}: label column {label!r}",
                "a class for every row",
                f"{int(labels.isna().sum())} missing values",
            )
        classes = tuple(sorted(category_strings(labels).unique()))
    return TableSchema(tuple(kinds["numeric"]), tuple(kinds["categorical"]), vocabularies, label, classes)


def encode_table(frame: pd.DataFrame, schema: TableSchema, where: Path) -> tuple[Tensor, Tensor, Tensor]:
    """Numeric values ``float (N, F_num)`` (NaN = missing), categorical codes ``long (N, F_cat)`` (``-1`` missing,
    ``0`` unseen, ``1..K`` known) and labels ``long (N,)`` (-1 without a label column) of ``frame``."""
    expected = [*schema.feature_names, *([schema.label] if schema.label else [])]
    absent = [name for name in expected if name not in frame.columns]
    if absent:
        raise invalid(where, f"the columns of the training table {expected}", f"missing column(s) {absent}")
    numeric = (
        np.stack([numeric_values(frame[name], f"{where}: column {name!r}") for name in schema.numeric], axis=1)
        if schema.numeric
        else np.zeros((len(frame), 0))
    )
    codes = np.zeros((len(frame), len(schema.categorical)), dtype=np.int64)
    for column, (name, vocabulary) in enumerate(zip(schema.categorical, schema.vocabularies)):
        text = category_strings(frame[name])
        known = pd.Index(vocabulary, dtype=object).get_indexer(text)
        codes[:, column] = np.where(text.isna(), MISSING_CODE, np.where(known >= 0, known + 1, UNKNOWN_CODE))
    labels = np.full(len(frame), -1, dtype=np.int64)
    if schema.label is not None:
        values = frame[schema.label]
        if values.isna().any():
            raise invalid(
                f"{where}: label column {schema.label!r}",
                "a class for every row",
                f"{int(values.isna().sum())} missing",
            )
        classes = list(schema.classes or ())
        indices = pd.Index(classes, dtype=object).get_indexer(category_strings(values))
        if (indices < 0).any():
            unseen = sorted(set(category_strings(values)[indices < 0]))[:5]
            raise invalid(f"{where}: label column {schema.label!r}", f"classes of the training table {classes}", unseen)
        labels = indices.astype(np.int64)
    return torch.from_numpy(numeric).float(), torch.from_numpy(codes), torch.from_numpy(labels)


class TableSource(SampleSource):
    """Rows of an encoded table held in memory: ``load(i)`` is ``TabularInput(numeric[i], codes[i])``."""

    def __init__(self, numeric: Tensor, codes: Tensor, labels: Tensor) -> None:
        self.numeric = numeric
        self.codes = codes
        self.labels = labels

    def load(self, index: int) -> TabularInput:
        return TabularInput(self.numeric[index], self.codes[index])


class PrepareRow:
    """Deterministic: fill missing values (``impute``), standardise numeric values, map missing codes to their slot.

    ``numeric_fill`` / ``missing_codes``: what a missing numeric value / category becomes (NaN and the unknown slot
    ``0`` when missing values are kept; the training mean / most frequent category when imputed).
    """

    def __init__(self, mean: Tensor, scale: Tensor, numeric_fill: Tensor, missing_codes: Tensor) -> None:
        self.mean = mean
        self.scale = scale
        self.numeric_fill = numeric_fill
        self.missing_codes = missing_codes

    def __call__(self, row: TabularInput) -> TabularInput:
        numeric, codes = row
        numeric = torch.where(numeric.isnan(), self.numeric_fill, numeric)
        codes = torch.where(codes == MISSING_CODE, self.missing_codes, codes)
        return TabularInput((numeric - self.mean) / self.scale, codes)


class MarginalCorruption:
    """SCARF's view: ``round(rate * F)`` features chosen at random take the value of that feature in a random row of
    the training split (a draw from its empirical marginal, missing values included), then ``prepare`` runs.
    Draws from torch's default generator, which the training dataset seeds per sample."""

    def __init__(self, numeric: Tensor, codes: Tensor, rate: float, prepare: PrepareRow) -> None:
        self.numeric = numeric
        self.codes = codes
        self.rate = rate
        self.prepare = prepare

    def __call__(self, row: TabularInput) -> TabularInput:
        numeric, codes = row
        num_numeric, num_features = numeric.shape[0], numeric.shape[0] + codes.shape[0]
        chosen = torch.zeros(num_features, dtype=torch.bool)
        chosen[torch.randperm(num_features)[: round(self.rate * num_features)]] = True
        donors = torch.randint(0, self.numeric.shape[0], (num_features,))
        features = torch.arange(num_features)
        numeric = torch.where(chosen[:num_numeric], self.numeric[donors[:num_numeric], features[:num_numeric]], numeric)
        codes = torch.where(
            chosen[num_numeric:], self.codes[donors[num_numeric:], features[num_numeric:] - num_numeric], codes
        )
        return self.prepare(TabularInput(numeric, codes))


def discretize_columns(numeric: Tensor, codes: Tensor, bins: int) -> Tensor:
    """Every feature as small non-negative integers ``(N, F)``, numeric columns first: a numeric value's quantile bin
    (``bins`` bins of the column's observed values, ``0`` for missing), a category's code shifted by one (``0`` for
    missing)."""
    columns = []
    for column in numeric.T:
        observed = column[~column.isnan()]
        edges = torch.quantile(observed.double(), torch.linspace(0, 1, bins + 1, dtype=torch.float64)[1:-1]).unique()
        binned = torch.bucketize(column.double(), edges, right=True) + 1
        columns.append(torch.where(column.isnan(), 0, binned))
    columns += [column + 1 for column in codes.T]
    return torch.stack(columns, dim=1) if columns else numeric.new_zeros(numeric.shape[0], 0, dtype=torch.long)


def feature_mutual_information(numeric: Tensor, codes: Tensor, bins: int = 10) -> Tensor:
    """Mutual information (nats) between every pair of features of the rows ``(N, F_num)`` / ``(N, F_cat)``,
    ``(F, F)`` in :func:`discretize_columns`' order: ``sum p(a, b) log(p(a, b) / (p(a) p(b)))`` over the joint
    histogram of the two discretised columns (missing values count as one more value); the diagonal is each
    feature's entropy. What correlated feature masking ranks the features by (Yao et al. 2021 compute it offline
    over the training examples)."""
    values = discretize_columns(numeric, codes, bins)
    rows, num_features = values.shape
    sizes = [int(column.max()) + 1 if rows else 1 for column in values.T]
    information = torch.zeros(num_features, num_features, dtype=torch.float64)
    for i in range(num_features):
        for j in range(i, num_features):
            joint = torch.bincount(values[:, i] * sizes[j] + values[:, j], minlength=sizes[i] * sizes[j])
            joint = joint.view(sizes[i], sizes[j]).double() / max(rows, 1)
            outer = joint.sum(1, keepdim=True) * joint.sum(0, keepdim=True)
            seen = joint > 0
            information[i, j] = information[j, i] = (joint[seen] * (joint[seen] / outer[seen]).log()).sum()
    return information


class ComplementaryFeatureMasking(MultiViewTransform):
    """Two views of a row that hide complementary halves of its features (Yao et al., "Self-supervised Learning
    for Large-scale Item Recommendations", CIKM 2021): the first hides ``F // 2`` features, the second the rest.

    ``masking="random"`` (their RFM) draws the hidden half uniformly; ``"correlated"`` (their CFM) draws a seed
    feature uniformly and hides it with the ``F // 2 - 1`` features of highest mutual information with it
    (``mutual_information`` ``(F, F)``, :func:`feature_mutual_information` of the training split), so the two views
    must predict each other across weakly related feature groups instead of copying a correlated twin. A hidden
    numeric value becomes NaN and a hidden category the unknown slot ``0``, so the tokenizer gives it its learned
    "missing" / unknown embedding: the paper's default embedding of a masked feature. Draws one hidden set per row
    from torch's default generator, which the training dataset seeds per sample.
    """

    def __init__(self, prepare: PrepareRow, masking: FeatureMasking, mutual_information: Tensor | None = None) -> None:
        if masking not in ("random", "correlated"):
            raise invalid("feature_masking", "'random' or 'correlated'", repr(masking))
        if masking == "correlated" and mutual_information is None:
            raise ValueError("correlated feature masking needs the features' mutual_information (F, F)")
        self.prepare = prepare
        self.masking = masking
        self.mutual_information = mutual_information

    def hidden(self, num_features: int) -> Tensor:
        """Boolean ``(F,)``: the features the first view hides (the second hides the others)."""
        count = num_features // 2
        if self.masking == "random":
            chosen = torch.randperm(num_features)[:count]
        else:
            assert self.mutual_information is not None
            seed = int(torch.randint(num_features, ()))
            ranking = self.mutual_information[seed].clone()
            ranking[seed] = float("inf")  # the seed itself first, then its most informative partners
            chosen = ranking.argsort(descending=True, stable=True)[:count]
        hidden = torch.zeros(num_features, dtype=torch.bool)
        hidden[chosen] = True
        return hidden

    def __call__(self, sample: TabularInput, num_views: int) -> dict[str, Any]:
        if num_views != 2:
            raise invalid("num_views", "2 (complementary feature masking makes a pair of views)", repr(num_views))
        numeric, codes = self.prepare(sample)
        num_numeric = numeric.shape[0]
        hidden = self.hidden(num_numeric + codes.shape[0])
        views = []
        for hide in (hidden, ~hidden):
            views.append(
                TabularInput(
                    numeric.masked_fill(hide[:num_numeric], float("nan")),
                    codes.masked_fill(hide[num_numeric:], UNKNOWN_CODE),
                )
            )
        return {"views": views}


def collate_rows(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch items whose ``"x"`` is a row; the batch splits it into ``"x"`` (numeric) and ``"x_cat"`` (codes), the
    tabular batch contract, while views stay :class:`TabularInput` s."""
    batch = default_collate(items)
    batch["x"], batch["x_cat"] = batch["x"]
    return batch


class TabularDataModule(SSLDataModule):
    """Tables for self-supervised learning (T-JEPA; SCARF views for joint-embedding methods).

    Args:
        path: a CSV / TSV (optionally compressed) or Parquet file, one row per sample. ``None``: the Palmer penguins
            (344 penguins, 4 measurements + year, island and sex, missing values; label ``species``), read from the
            CSV that the ``palmerpenguins`` package ships, through the same reader as a user's file.
        test_path: an optional held-out table with the same columns (categories it adds go to the unknown slot).
        label: the class column (strings or numbers -> indices in sorted order); ``None``: unlabeled (``y = -1``),
            except for the bundled penguins, whose label is ``species``.
        numeric: columns to read as numbers whatever their inferred type (every value must parse).
        categorical: columns to read as categories (e.g. integer codes).
        drop: columns to leave out.
        missing: ``"keep"``: a missing number stays NaN (the tokenizer gives it a learned per-feature "missing"
            embedding: a missing indicator) and a missing category takes the unknown slot 0; ``"impute"``: the
            training split's mean / most frequent category.
        standardize: centre and scale numeric features by the training split's mean and std (a constant column
            keeps scale 1).
        corruption_rate: SCARF's share of features replaced in each view by draws from their marginal.
        feature_masking: ``None`` (default): SCARF views; ``"random"`` / ``"correlated"``: two views hiding
            complementary halves of the features (:class:`ComplementaryFeatureMasking`; methods that need these views,
            such as :class:`~jepa_lightning.methods.ItemSSL`, set it themselves).
        file_format: ``"auto"`` (from the suffix), ``"csv"``, ``"tsv"`` or ``"parquet"``.
        header: whether CSV / TSV files start with a header row; without one, columns are ``column_0``, ``column_1``...
        na_values: cell values read as missing besides the empty cell and :data:`~datamodules.tables.NA_STRINGS`
            (``NA``, ``N/A``, ``n/a``, ``nan``, ``null``, ``None``, ...), e.g. ``["?"]`` for UCI tables.
        kwargs: loader, split and view settings of :class:`~datamodules.base.SSLDataModule`.
    """

    def __init__(
        self,
        path: str | None = None,
        test_path: str | None = None,
        label: str | None = None,
        numeric: list[str] | None = None,
        categorical: list[str] | None = None,
        drop: list[str] | None = None,
        missing: MissingPolicy = "keep",
        standardize: bool = True,
        corruption_rate: float = 0.6,
        feature_masking: FeatureMasking | None = None,
        file_format: str = "auto",
        header: bool = True,
        na_values: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if missing not in ("keep", "impute"):
            raise invalid("missing", "'keep' or 'impute'", repr(missing))
        if feature_masking not in (None, "random", "correlated"):
            raise invalid("feature_masking", "None, 'random' or 'correlated'", repr(feature_masking))
        if not 0.0 <= corruption_rate <= 1.0:
            raise invalid("corruption_rate", "a fraction in [0, 1]", repr(corruption_rate))
        self.path = path
        self.test_path = test_path
        self.label = PENGUINS_LABEL if label is None and path is None else label
        self.numeric = list(numeric or [])
        self.categorical = list(categorical or [])
        self.drop = list(drop or [])
        self.missing = missing
        self.standardize = standardize
        self.corruption_rate = corruption_rate
        self.feature_masking = feature_masking
        self.file_format = file_format
        self.header = header
        self.na_values = list(na_values or [])
        self._schema: TableSchema | None = None
        self._prepare: PrepareRow | None = None

    # ----------------------------------------------------------------- indexing

    def _read(self, path: Path) -> pd.DataFrame:
        return read_table(path, self.file_format, self.header, self.na_values)

    def index_sources(self) -> tuple[SampleSource, SampleSource | None]:
        """Read the training table (schema inferred from it) and the test table, encoded with that schema."""
        train_path = penguins_path() if self.path is None else require_path(self.path, "path")
        frame = self._read(train_path)
        self._schema = infer_schema(frame, train_path, self.label, self.numeric, self.categorical, self.drop)
        train = TableSource(*encode_table(frame, self._schema, train_path))
        if self.test_path is None:
            return train, None
        test_path = require_path(self.test_path, "test_path")
        test_frame = self._read(test_path)
        extra = sorted(set(test_frame.columns) - set(frame.columns))
        if extra:
            raise invalid(test_path, f"the columns of the training table {list(frame.columns)}", f"extra {extra}")
        return train, TableSource(*encode_table(test_frame, self._schema, test_path))

    @property
    def schema(self) -> TableSchema:
        """Feature columns by kind, categories and classes (reads the training table on first use)."""
        self._indexed_sources()
        assert self._schema is not None
        return self._schema

    @property
    def input_spec(self) -> InputSpec:
        """Numeric feature count, categorical cardinalities, feature names and classes of the table."""
        schema = self.schema
        return InputSpec(
            modality="tabular",
            num_numeric=len(schema.numeric),
            categories=schema.cardinalities,
            feature_names=schema.feature_names,
            num_classes=None if schema.classes is None else len(schema.classes),
        )

    @property
    def class_names(self) -> list[str] | None:
        """Label values in class-index order; None without a label column."""
        classes = self.schema.classes
        return None if classes is None else list(classes)

    # ----------------------------------------------------------------- statistics of the training split

    def prepare_row(self) -> PrepareRow:
        """The deterministic row transform, fitted on the training split (not val, not test) once."""
        if self._prepare is None:
            source = self.train_source
            assert isinstance(source, TableSource)
            rows = self.indices("train")
            numeric, codes = source.numeric[rows], source.codes[rows]
            observed = ~numeric.isnan()
            never = [name for name, seen in zip(self.schema.numeric, observed.any(dim=0)) if not seen]
            if never and (self.standardize or self.missing == "impute"):
                raise invalid(
                    f"numeric column(s) {never}",
                    "at least one value in the training split to standardise / impute with",
                    "only missing values (change seed / val_fraction, or drop them)",
                )
            count = observed.sum(dim=0).clamp_min(1)
            train_mean = numeric.nan_to_num(nan=0.0).sum(dim=0) / count
            std = ((numeric - train_mean).nan_to_num(nan=0.0).square().sum(dim=0) / count).sqrt()
            mean, scale = train_mean, torch.where(std > 0, std, torch.ones_like(std))
            if not self.standardize:
                mean, scale = torch.zeros_like(mean), torch.ones_like(scale)
            numeric_fill = torch.full_like(mean, float("nan"))
            missing_codes = torch.full((codes.shape[1],), UNKNOWN_CODE, dtype=torch.long)
            if self.missing == "impute":
                numeric_fill, missing_codes = train_mean, self._most_frequent(codes)
            self._prepare = PrepareRow(mean, scale, numeric_fill, missing_codes)
        return self._prepare

    def _most_frequent(self, codes: Tensor) -> Tensor:
        """Most frequent observed code of each categorical column of the training split (ties: the first category)."""
        modes = []
        for name, column, cardinality in zip(self.schema.categorical, codes.T, self.schema.cardinalities):
            counts = torch.bincount(column[column != MISSING_CODE], minlength=cardinality)
            if counts.sum() == 0:
                raise invalid(f"categorical column {name!r}", "a value in the training split to impute", "none")
            modes.append(int(counts.argmax()))
        return torch.tensor(modes, dtype=torch.long)

    # ----------------------------------------------------------------- transforms and loaders

    def train_transform(self) -> Transform:
        """Rows for JEPA's ``x``: no augmentation (the masks choose features), only :meth:`prepare_row`."""
        return self.prepare_row()

    def eval_transform(self) -> Transform:
        return self.prepare_row()

    def view_transform(self) -> Transform:
        """SCARF: ``corruption_rate`` of the features replaced by draws from the training split's marginals."""
        source = self.train_source
        assert isinstance(source, TableSource)
        rows = self.indices("train")
        return MarginalCorruption(source.numeric[rows], source.codes[rows], self.corruption_rate, self.prepare_row())

    def view_transforms(self, num_views: int) -> Transform | MultiViewTransform | list[Transform]:
        """SCARF's corruption for every view, or with ``feature_masking`` the complementary pair, whose mutual
        information is measured on the training split."""
        if self.feature_masking is None:
            return self.view_transform()
        num_features = len(self.schema.feature_names)
        if num_features < 2:
            raise invalid(
                "feature_masking", "a table with at least 2 features to split between two views", f"{num_features}"
            )
        information = None
        if self.feature_masking == "correlated":
            source = self.train_source
            assert isinstance(source, TableSource)
            rows = self.indices("train")
            information = feature_mutual_information(source.numeric[rows], source.codes[rows])
        return ComplementaryFeatureMasking(self.prepare_row(), self.feature_masking, information)

    def _loader(self, dataset: Dataset, **kwargs: Any) -> DataLoader:
        return super()._loader(dataset, collate_fn=collate_rows, **kwargs)
