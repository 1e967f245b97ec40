"""Tables: CSV / TSV (optionally compressed) and Parquet files read through pandas, and their column values.

Shared by the modalities that read tables: tabular data (:mod:`datamodules.tabular`, one row per sample) and time
series (:mod:`datamodules.time_series`, wide or long tables of series).

Missing values: an empty cell and the markers of :data:`NA_STRINGS` (pandas' defaults, e.g. ``NA``, ``N/A``, ``n/a``,
``nan``, ``null``, ``None``), plus any ``na_values`` a caller adds (e.g. ``"?"``), are read as missing (NaN / None),
in CSV / TSV files and in Parquet text columns alike; a marker must match a whole cell exactly. Bad input raises a
ValueError naming the file (and column): an unknown suffix, an unreadable file, duplicate column names, an empty table,
other text in a numeric column (naming the column, the value and its row) or infinite values.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from datamodules.base import invalid

#: File suffix -> reader (CSV / TSV may also be compressed, e.g. ``.csv.gz``).
TABLE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zip", ".zst")
#: Cells read as missing values (pandas' default ``na_values``, listed so the rule is written down and applies to
#: Parquet text columns too).
NA_STRINGS = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)


def table_format(path: Path, file_format: str) -> str:
    """``csv``, ``tsv`` or ``parquet`` for ``path``: ``file_format`` unless "auto", else from the suffix."""
    if file_format != "auto":
        if file_format not in set(TABLE_FORMATS.values()):
            raise invalid("file_format", f"'auto' or one of {sorted(set(TABLE_FORMATS.values()))}", repr(file_format))
        return file_format
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSION_SUFFIXES:
        suffixes = suffixes[:-1]
    if not suffixes or suffixes[-1] not in TABLE_FORMATS:
        raise invalid(
            path, f"a table file ({' '.join(TABLE_FORMATS)}) or file_format=csv/tsv/parquet", "another suffix"
        )
    return TABLE_FORMATS[suffixes[-1]]


def read_table(
    path: Path, file_format: str = "auto", header: bool = True, na_values: Sequence[str] = ()
) -> pd.DataFrame:
    """The table at ``path`` as a DataFrame with string column names; without ``header`` they are ``column_<i>``.
    Cells equal to one of :data:`NA_STRINGS` or ``na_values`` are missing."""
    kind = table_format(path, file_format)
    markers = [*NA_STRINGS, *na_values]
    try:
        if kind == "parquet":
            frame = pd.read_parquet(path)
            for name in frame.select_dtypes(include=["object", "string"]).columns:
                frame[name] = frame[name].mask(frame[name].isin(markers))
        else:
            frame = pd.read_csv(
                path,
                sep="\t" if kind == "tsv" else ",",
                header=0 if header else None,
                keep_default_na=False,
                na_values=markers,
            )
    except Exception as error:  # pandas / pyarrow raise many types for unreadable files
        raise invalid(path, f"a readable {kind} table", f"{type(error).__name__}: {error}") from error
    if not header:
        frame.columns = [f"column_{index}" for index in range(frame.shape[1])]
    names = [str(name) for name in frame.columns]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise invalid(path, "distinct column names", f"duplicates {duplicates}")
    frame.columns = names
    if frame.empty:
        raise invalid(path, "a table with at least one row and one column", f"shape {frame.shape}")
    return frame


def category_strings(series: pd.Series) -> pd.Series:
    """Values of a categorical column as strings (integral numbers without ``.0``), missing values kept as NA."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        text = series.map(
            lambda value: str(int(value)) if float(value).is_integer() else str(value), na_action="ignore"
        )
    else:
        text = series.map(str, na_action="ignore")
    return text.astype(object).where(series.notna(), None)


def first_row(mask: pd.Series) -> tuple[int, object]:
    """The row number (1 = the first data row, after any header) and value of the first True of ``mask``."""
    position = int(np.flatnonzero(mask.to_numpy())[0])
    return position + 1, mask.index[position]


def numeric_values(series: pd.Series, where: str) -> np.ndarray:
    """A numeric column as float64 (NaN = missing); an error naming ``where``, the value and its row if a value is
    text (other than the missing-value markers, already missing) or infinite."""
    parsed = pd.to_numeric(series, errors="coerce")
    bad = series.notna() & parsed.isna()
    if bad.any():
        row, label = first_row(bad)
        examples = sorted({str(value) for value in series[bad]})[:3]
        raise invalid(
            where,
            "numbers or missing values (an empty cell, NA, n/a, ...; add a marker of your own to na_values) in a "
            "numeric column",
            f"non-numeric values {examples} ({int(bad.sum())} in all), first {series[label]!r} in row {row}",
        )
    values = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isinf(values).any():
        raise invalid(where, "finite numbers", f"{int(np.isinf(values).sum())} infinite values")
    return values
