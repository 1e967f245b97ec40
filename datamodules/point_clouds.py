"""Point clouds: folders of meshes and point sets (OFF, PLY, OBJ, XYZ, NPY/NPZ), or CGAL's bundled models.

A raw sample is a :class:`Shape`: vertex rows ``float (V, 3 + F)`` (x, y, z, then F feature columns) and, for
meshes, triangles ``long (M, 3)``. Transforms bring every shape to the canonical layout ``float (num_points,
3 + F)``: meshes are sampled on their surface (area-weighted), point sets are resampled, then points are
normalised to the unit sphere and (train/views) augmented. Input is checked, never silently repaired: every file is
parsed in full while indexing (in parallel), before the first training step; unreadable, truncated or garbled files,
empty shapes, non-finite coordinates, point sets with fewer than ``min_points`` points, bad face indices and zero-area
meshes are bad files, which raise a ValueError naming the file or (``on_bad_file="skip"``) are left out with one
warning listing them (:func:`datamodules.base.check_files`).

Readers (all written here, no extra dependency):

* OFF (also COFF/NOFF/... headers, counts on the header line, the next, or glued to the keyword as in ModelNet,
  ``#`` comments, polygons),
* PLY, ASCII and binary (little/big endian): ``vertex`` x y z (other vertex properties ignored) and an optional
  ``face`` list (polygons),
* OBJ: ``v`` and ``f`` lines (``a``, ``a/b``, ``a//c``, ``a/b/c``, negative indices), other lines ignored,
* XYZ: x y z per line; extra columns (normals, colours) are ignored; a first line holding only the point count
  (as CGAL writes it) is skipped,
* NPY: an ``(N, 3 + F)`` array, every column kept (the extra ones are features); NPZ: the array ``points`` (or
  the only array), with optional ``faces`` ``(M, 3)``.

Polygons are triangulated as fans. Meshes carry only x y z except NPZ meshes, whose feature columns are
interpolated barycentrically like the coordinates.

torch-geometric's point-cloud data sets are a second kind of source (``source=``): ModelNet10 / ModelNet40
(``torch_geometric.datasets.ModelNet``: CAD meshes, labelled by class, official train / test lists) and ShapeNet
(``torch_geometric.datasets.ShapeNet``: the part-segmentation release, about 16,900 point sets of 16 categories,
labelled by category, official train / val / test lists). They are fetched only with ``download=True`` (internet,
once), processed by torch-geometric into ``<root>/processed`` and checked like files. ModelNet's meshes are sampled
with torch-geometric's ``SamplePoints``; normalisation and augmentation stay the ones here (torch-geometric's
``NormalizeScale`` scales into the unit cube, not the unit sphere that Point-JEPA's data pipeline uses; its
``RandomRotate``, ``RandomScale`` and ``FixedPoints`` draw from Python's or NumPy's RNG, which the per-sample seeding
of the base does not reach, so training would no longer be reproducible; ``RandomJitter`` is uniform noise, not the
clipped Gaussian used here).
"""

from __future__ import annotations

import os
import re
import tarfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from datamodules.base import (
    CACHE_ENV,
    CHECK_WORKERS,
    BadFilePolicy,
    SampleSource,
    SSLDataModule,
    Transform,
    cache_root,
    check_files,
    index_class_folders,
    invalid,
    require_bad_file_policy,
    require_path,
)
from jepa_lightning.inputs import InputSpec

with warnings.catch_warnings():  # torch-geometric scripts helpers with torch.jit at import, which torch deprecates
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
    from torch_geometric.data import Data, InMemoryDataset
    from torch_geometric.datasets import ModelNet, ShapeNet
    from torch_geometric.transforms import SamplePoints

#: Where :class:`PointCloudDataModule` reads its shapes: point cloud files, or one of torch-geometric's data sets.
PointCloudSourceName = Literal["files", "modelnet10", "modelnet40", "shapenet"]
#: The torch-geometric data sets by source name, as messages and default cache folders name them.
TORCH_GEOMETRIC_SOURCES = {"modelnet10": "ModelNet10", "modelnet40": "ModelNet40", "shapenet": "ShapeNet"}
POINT_CLOUD_EXTENSIONS = (".off", ".ply", ".obj", ".xyz", ".npy", ".npz")
CGAL_TARBALL = Path("/usr/share/doc/libcgal-dev/data.tar.gz")
CGAL_EXTENSIONS = (".off", ".ply", ".xyz")
#: Fewest points of a point set file by default: the neighbourhood size of the point tokenizer (``group_size=32``);
#: fewer would be mostly copies after resampling.
MIN_POINTS = 32
PLY_TYPES = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "i2",
    "int16": "i2",
    "ushort": "u2",
    "uint16": "u2",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
}

#: The first word of an OFF file: the keyword (OFF, COFF, NOFF, 4OFF, ...), perhaps with the vertex count glued on.
OFF_KEYWORD = re.compile(r"([A-Za-z0-9]*OFF)(\d+)?")

Mesh = tuple[np.ndarray, "np.ndarray | None"]


@dataclass(frozen=True)
class Shape:
    """One raw sample: vertex rows ``float32 (V, 3 + F)`` and triangles ``int64 (M, 3)`` (None: a point set)."""

    points: Tensor
    faces: Tensor | None = None


# --------------------------------------------------------------------------------------------- readers


def _data_lines(path: Path) -> list[str]:
    """Non-empty lines of a text file with ``#`` comments removed."""
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as error:
        raise invalid(path, "a readable text file", f"{type(error).__name__}: {error}") from error
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def _float_table(path: Path, rows: list[list[str]], columns: int, what: str) -> np.ndarray:
    """The first ``columns`` numbers of every row as ``float64 (len(rows), columns)``."""
    for number, row in enumerate(rows):
        if len(row) < columns:
            raise invalid(path, f"{columns} numbers per {what} line", f"{len(row)} in {what} {number}: {row}")
    try:
        return np.array([row[:columns] for row in rows], dtype=np.float64).reshape(len(rows), columns)
    except ValueError as error:
        raise invalid(path, f"numeric {what} coordinates", str(error)) from error


def triangulate(polygons: list[list[int]], path: Path) -> np.ndarray:
    """Fan-triangulate polygons of any size (>= 3 corners) into ``int64 (M, 3)``; vectorised per polygon size."""
    by_size: dict[int, list[list[int]]] = {}
    for number, polygon in enumerate(polygons):
        if len(polygon) < 3:
            raise invalid(path, "faces with at least 3 vertices", f"{len(polygon)} in face {number}")
        by_size.setdefault(len(polygon), []).append(polygon)
    triangles = [np.zeros((0, 3), dtype=np.int64)]
    for size, group in by_size.items():
        corners = np.asarray(group, dtype=np.int64)
        fan = np.arange(1, size - 1)
        triangles.append(
            np.stack([np.repeat(corners[:, :1], size - 2, 1), corners[:, fan], corners[:, fan + 1]], -1).reshape(-1, 3)
        )
    return np.concatenate(triangles)


def read_off(path: Path) -> Mesh:
    """OFF (and COFF/NOFF/CNOFF/STOFF ...): vertices ``(V, 3)`` and triangles ``(M, 3)`` or None when M = 0.

    A vertex count glued to the keyword (``OFF490 518 0``, as in many files of ModelNet's archives) is read too."""
    lines = _data_lines(path)
    keyword = OFF_KEYWORD.fullmatch(lines[0].split()[0]) if lines else None
    if keyword is None:
        raise invalid(path, "an OFF file starting with an 'OFF' header", repr(lines[0][:40]) if lines else "no data")
    header = [keyword[1], *([keyword[2]] if keyword[2] else []), *lines[0].split()[1:]]
    counts, start = (header[1:], 1) if len(header) > 1 else ((lines[1].split() if len(lines) > 1 else []), 2)
    try:
        num_vertices, num_faces = int(counts[0]), int(counts[1])
    except (IndexError, ValueError) as error:
        raise invalid(path, "vertex and face counts after the OFF header", repr(counts)) from error
    if len(lines) < start + num_vertices + num_faces:
        raise invalid(
            path,
            f"{num_vertices} vertex and {num_faces} face lines",
            f"{len(lines) - start} data lines (truncated)",
        )
    vertices = _float_table(path, [line.split() for line in lines[start : start + num_vertices]], 3, "vertex")
    polygons = []
    for number, line in enumerate(lines[start + num_vertices : start + num_vertices + num_faces]):
        tokens = line.split()
        try:
            size = int(tokens[0])
            polygons.append([int(token) for token in tokens[1 : 1 + size]])
        except ValueError as error:
            raise invalid(path, "integer vertex indices in faces", f"{line!r} in face {number}") from error
        if len(polygons[-1]) != size:
            raise invalid(path, f"{size} vertex indices in face {number}", f"{len(polygons[-1])}")
    return vertices, (triangulate(polygons, path) if polygons else None)


def _ply_header(path: Path, raw: bytes) -> tuple[str, list[tuple[str, int, list[tuple[str, ...]]]], int]:
    """PLY header: format, elements ``(name, count, properties)`` and the byte offset of the body."""
    end = raw.find(b"end_header")
    if not raw.startswith(b"ply") or end < 0:
        raise invalid(path, "a PLY file ('ply' ... 'end_header')", repr(raw[:40]))
    body = raw.index(b"\n", end) + 1 if b"\n" in raw[end:] else len(raw)
    fmt = ""
    elements: list[tuple[str, int, list[tuple[str, ...]]]] = []
    for line in raw[:end].decode("ascii", errors="replace").splitlines()[1:]:
        tokens = line.split()
        if not tokens or tokens[0] in ("comment", "obj_info"):
            continue
        if tokens[0] == "format" and len(tokens) > 1:
            fmt = tokens[1]
        elif tokens[0] == "element" and len(tokens) == 3 and tokens[2].isdigit():
            elements.append((tokens[1], int(tokens[2]), []))
        elif tokens[0] == "property" and elements:
            elements[-1][2].append(tuple(tokens[1:]))
        else:
            raise invalid(path, "a valid PLY header line", repr(line))
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise invalid(path, "PLY format ascii, binary_little_endian or binary_big_endian", repr(fmt))
    return fmt, elements, body


def _ply_vertices(path: Path, table: dict[str, np.ndarray]) -> np.ndarray:
    missing = [axis for axis in "xyz" if axis not in table]
    if missing:
        raise invalid(path, "vertex properties x, y and z", f"no {', '.join(missing)}")
    return np.stack([table[axis].astype(np.float64) for axis in "xyz"], 1)


def read_ply(path: Path) -> Mesh:
    """PLY (ASCII or binary): vertex x y z and, when present, the ``face`` element's first list property."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise invalid(path, "a readable PLY file", f"{type(error).__name__}: {error}") from error
    fmt, elements, offset = _ply_header(path, raw)
    names = [name for name, _, _ in elements]
    if "vertex" not in names:
        raise invalid(path, "a PLY 'vertex' element", f"elements {names}")
    vertices: np.ndarray | None = None
    polygons: list[list[int]] | None = None
    faces: np.ndarray | None = None
    if fmt == "ascii":
        lines = [line.split() for line in raw[offset:].decode("ascii", errors="replace").splitlines() if line.strip()]
        cursor = 0
        for name, count, props in elements:
            rows = lines[cursor : cursor + count]
            if len(rows) < count:
                raise invalid(path, f"{count} '{name}' lines", f"{len(rows)} (truncated)")
            cursor += count
            if name == "vertex":
                scalars = [prop[-1] for prop in props]
                table = _float_table(path, rows, len(scalars), "vertex")
                vertices = _ply_vertices(path, {key: table[:, i] for i, key in enumerate(scalars)})
            elif name == "face":
                if not props or props[0][0] != "list":
                    raise invalid(path, "a PLY face element starting with a list property", repr(props))
                try:
                    polygons = [[int(float(v)) for v in row[1 : 1 + int(row[0])]] for row in rows]
                except (ValueError, IndexError) as error:
                    raise invalid(path, "integer face vertex indices", str(error)) from error
    else:
        order = "<" if fmt == "binary_little_endian" else ">"
        needed = {"vertex", "face"} & set(names)
        for name, count, props in elements:
            if not needed:
                break
            needed.discard(name)
            try:
                if all(prop[0] != "list" for prop in props):
                    dtype = np.dtype([(prop[1], order + PLY_TYPES[prop[0]]) for prop in props])
                    record = np.frombuffer(raw, dtype, count=count, offset=offset)
                    offset += dtype.itemsize * count
                    if name == "vertex":
                        vertices = _ply_vertices(path, {key: record[key] for key in dtype.names or ()})
                elif len(props) == 1 and count > 0:
                    faces, offset = _ply_binary_lists(raw, offset, count, props[0], order)
                elif count > 0:
                    raise KeyError("lists beside other properties")
            except (KeyError, ValueError, IndexError) as error:
                raise invalid(
                    path, "a supported binary PLY (scalar vertex properties, one list per face)", f"{error}"
                ) from error
    assert vertices is not None
    if polygons is not None:
        faces = triangulate(polygons, path) if polygons else None
    return vertices, faces


def _ply_binary_lists(raw: bytes, offset: int, count: int, prop: tuple[str, ...], order: str) -> tuple[Any, int]:
    """Binary list property (``list <count type> <index type> name``) of ``count`` records as triangles."""
    size_type, index_type = np.dtype(order + PLY_TYPES[prop[1]]), np.dtype(order + PLY_TYPES[prop[2]])
    size = int(np.frombuffer(raw, size_type, count=1, offset=offset)[0])
    dtype = np.dtype([("n", size_type), ("i", index_type, (size,))])
    if offset + dtype.itemsize * count <= len(raw):
        record = np.frombuffer(raw, dtype, count=count, offset=offset)
        if (record["n"] == size).all():
            return triangulate(record["i"].astype(np.int64).tolist(), Path("?")), offset + dtype.itemsize * count
    polygons = []
    for _ in range(count):  # mixed polygon sizes: walk record by record
        size = int(np.frombuffer(raw, size_type, count=1, offset=offset)[0])
        offset += size_type.itemsize
        polygons.append(np.frombuffer(raw, index_type, count=size, offset=offset).astype(np.int64).tolist())
        offset += index_type.itemsize * size
    return triangulate(polygons, Path("?")), offset


def read_obj(path: Path) -> Mesh:
    """Wavefront OBJ: ``v x y z`` and ``f`` lines (1-based or negative indices, ``a/b/c`` forms)."""
    vertex_rows: list[list[str]] = []
    polygons: list[list[int]] = []
    for line in _data_lines(path):
        tokens = line.split()
        if tokens[0] == "v":
            vertex_rows.append(tokens[1:])
        elif tokens[0] == "f":
            try:
                corners = [int(token.split("/")[0]) for token in tokens[1:]]
            except ValueError as error:
                raise invalid(path, "integer vertex indices in 'f' lines", repr(line)) from error
            if 0 in corners:
                raise invalid(path, "1-based (or negative) OBJ vertex indices", f"index 0 in {line!r}")
            polygons.append([c - 1 if c > 0 else len(vertex_rows) + c for c in corners])
    vertices = _float_table(path, vertex_rows, 3, "vertex")
    return vertices, (triangulate(polygons, path) if polygons else None)


def read_xyz(path: Path) -> Mesh:
    """XYZ point set: x y z per line, extra columns ignored; a first line with one integer (a count) is skipped."""
    rows = [line.split() for line in _data_lines(path)]
    if rows and len(rows[0]) == 1:
        rows = rows[1:]
    return _float_table(path, rows, 3, "point"), None


def read_numpy(path: Path) -> Mesh:
    """NPY ``(N, 3 + F)`` point array, or NPZ with ``points`` (or its only array) and optional ``faces``."""
    keys: list[str] = []
    try:
        with path.open("rb") as handle:  # closed even when NumPy fails on a corrupt file
            loaded = np.load(handle, allow_pickle=False)
            if isinstance(loaded, np.ndarray):
                points, faces = loaded, None
            else:
                with loaded:
                    keys = list(loaded.keys())
                    key = "points" if "points" in keys else (keys[0] if len(keys) == 1 else "")
                    points = loaded[key] if key else np.zeros((0, 0))
                    faces = loaded["faces"] if "faces" in keys else None
    except Exception as error:  # NumPy and zipfile raise many kinds for corrupt files (BadZipFile, TokenError, ...)
        raise invalid(path, "a readable NPY/NPZ file", f"{type(error).__name__}: {error}") from error
    if keys and "points" not in keys and len(keys) != 1:
        raise invalid(path, "an NPZ with a 'points' array (or a single array)", f"arrays {keys}")
    if points.ndim != 2 or points.shape[1] < 3 or not np.issubdtype(points.dtype, np.number):
        raise invalid(path, "a numeric (N, 3 + F) array", f"shape {points.shape}, dtype {points.dtype}")
    if faces is not None and (faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer)):
        raise invalid(path, "integer faces of shape (M, 3)", f"shape {faces.shape}, dtype {faces.dtype}")
    return points.astype(np.float64), (None if faces is None else faces.astype(np.int64))


READERS = {
    ".off": read_off,
    ".ply": read_ply,
    ".obj": read_obj,
    ".xyz": read_xyz,
    ".npy": read_numpy,
    ".npz": read_numpy,
}


def read_shape(path: Path) -> Mesh:
    """Read any supported file by its extension into ``(vertices (V, 3 + F), triangles (M, 3) or None)``."""
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise invalid(path, f"a point cloud file ({' '.join(POINT_CLOUD_EXTENSIONS)})", repr(path.suffix))
    return reader(path)


# --------------------------------------------------------------------------------------------- geometry


def triangle_areas(vertices: Tensor, faces: Tensor) -> Tensor:
    """Area of every triangle ``(M,)`` from the x y z columns."""
    a, b, c = (vertices[faces[:, k], :3] for k in range(3))
    return torch.linalg.cross(b - a, c - a).norm(dim=1) / 2


def sample_surface(
    vertices: Tensor, faces: Tensor, num_points: int, generator: torch.Generator | None = None
) -> Tensor:
    """``num_points`` points uniform on the surface: triangles drawn by area, then uniform barycentric weights.

    Every vertex column (x y z and features) is interpolated with the same weights.
    """
    areas = triangle_areas(vertices.double(), faces)
    chosen = faces[torch.multinomial(areas, num_points, replacement=True, generator=generator)]
    u, v = torch.rand(2, num_points, 1, generator=generator, dtype=vertices.dtype)
    flip = (u + v) > 1  # reflect into the triangle so (u, v) is uniform on it
    u, v = torch.where(flip, 1 - u, u), torch.where(flip, 1 - v, v)
    a, b, c = (vertices[chosen[:, k]] for k in range(3))
    return (1 - u - v) * a + u * b + v * c


def resample(points: Tensor, num_points: int, generator: torch.Generator | None = None) -> Tensor:
    """Exactly ``num_points`` rows: a random subset without replacement when there are enough points, else every
    point once (in random order) plus extra copies drawn with replacement. Never pads with zeros."""
    count = len(points)
    if count >= num_points:
        return points[torch.randperm(count, generator=generator)[:num_points]]
    extra = torch.randint(count, (num_points - count,), generator=generator)
    order = torch.cat([torch.arange(count), extra])
    return points[order[torch.randperm(num_points, generator=generator)]]


def normalize_unit_sphere(points: Tensor) -> Tensor:
    """Centre x y z at their centroid and scale them so the farthest point is at distance 1 (features kept)."""
    xyz = points[:, :3] - points[:, :3].mean(dim=0)
    radius = xyz.norm(dim=1).max().clamp_min(torch.finfo(points.dtype).tiny)
    return torch.cat([xyz / radius, points[:, 3:]], dim=1)


def rotate_about(points: Tensor, axis: int, angle: Tensor) -> Tensor:
    """Rotate x y z by ``angle`` (radians) about coordinate ``axis``; that coordinate and features are unchanged."""
    i, j = [k for k in range(3) if k != axis]
    cos, sin = torch.cos(angle), torch.sin(angle)
    out = points.clone()
    out[:, i] = cos * points[:, i] - sin * points[:, j]
    out[:, j] = sin * points[:, i] + cos * points[:, j]
    return out


# --------------------------------------------------------------------------------------------- transforms


class ToPoints:
    """Raw :class:`Shape` -> ``(num_points, 3 + F)``: surface sampling or resampling, then optional normalisation.

    ``seed=None`` draws from torch's global RNG (seeded per sample by the base for training); an int makes the
    result a deterministic function of the shape (evaluation). ``sample_points=True`` samples meshes with
    torch-geometric's ``SamplePoints`` (x y z only; the same area-weighted draw as :func:`sample_surface`, from
    torch's global RNG, which an int ``seed`` re-seeds for the call) instead of :func:`sample_surface`.
    """

    def __init__(self, num_points: int, normalize: bool, seed: int | None = None, sample_points: bool = False) -> None:
        self.num_points = num_points
        self.normalize = normalize
        self.seed = seed
        self.sample_points = SamplePoints(num_points) if sample_points else None

    def __call__(self, shape: Shape) -> Tensor:
        generator = None if self.seed is None else torch.Generator().manual_seed(self.seed)
        if shape.faces is not None and self.sample_points is not None:
            with torch.random.fork_rng(devices=[], enabled=self.seed is not None):
                if self.seed is not None:
                    torch.default_generator.manual_seed(self.seed)
                points = self.sample_points(Data(pos=shape.points, face=shape.faces.t())).pos
        elif shape.faces is not None:
            points = sample_surface(shape.points, shape.faces, self.num_points, generator)
        else:
            points = resample(shape.points, self.num_points, generator)
        return normalize_unit_sphere(points) if self.normalize else points


class Augment:
    """Random scale, rotation about the up axis, Gaussian jitter (clipped at 5 std) and point dropout.

    Draws from torch's global RNG, which the base seeds from (seed, epoch, index) for every training sample.
    Dropped points are replaced by copies of kept ones so the number of points stays fixed.
    """

    def __init__(
        self,
        scale_range: tuple[float, float],
        isotropic_scale: bool,
        rotate_up: bool,
        up_axis: int,
        jitter: float,
        point_dropout: float,
    ) -> None:
        self.scale_range = scale_range
        self.isotropic_scale = isotropic_scale
        self.rotate_up = rotate_up
        self.up_axis = up_axis
        self.jitter = jitter
        self.point_dropout = point_dropout

    def __call__(self, points: Tensor) -> Tensor:
        low, high = self.scale_range
        scale = low + (high - low) * torch.rand(1 if self.isotropic_scale else 3, dtype=points.dtype)
        xyz = points[:, :3] * scale
        points = torch.cat([xyz, points[:, 3:]], dim=1)
        if self.rotate_up:
            points = rotate_about(points, self.up_axis, 2 * torch.pi * torch.rand((), dtype=points.dtype))
        if self.jitter > 0:
            noise = (self.jitter * torch.randn(len(points), 3, dtype=points.dtype)).clamp(
                -5 * self.jitter, 5 * self.jitter
            )
            points = torch.cat([points[:, :3] + noise, points[:, 3:]], dim=1)
        if self.point_dropout > 0:
            kept = torch.rand(len(points)) >= self.point_dropout
            if kept.any():
                kept_rows = kept.nonzero().squeeze(1)
                fill = kept_rows[torch.randint(len(kept_rows), (len(points),))]
                points = points[torch.where(kept, torch.arange(len(points)), fill)]
        return points


class Compose:
    """Apply callables in order (picklable, unlike a lambda)."""

    def __init__(self, *steps: Transform) -> None:
        self.steps = steps

    def __call__(self, sample: Any) -> Any:
        for step in self.steps:
            sample = step(sample)
        return sample


# --------------------------------------------------------------------------------------------- sources


class FilePointCloudSource(SampleSource):
    """Point cloud files read lazily into checked :class:`Shape` samples."""

    def __init__(
        self, files: list[Path], labels: Tensor, columns: int, normalize: bool, min_points: int | None
    ) -> None:
        self.files = files
        self.labels = labels
        self.columns = columns
        self.normalize = normalize
        self.min_points = min_points

    def load(self, index: int) -> Shape:
        path = self.files[index]
        vertices, faces = read_shape(path)
        return check_shape(path, vertices, faces, self.columns, self.normalize, self.min_points)


def check_shape(
    path: str | Path,
    vertices: np.ndarray,
    faces: np.ndarray | None,
    columns: int | None,
    normalize: bool,
    min_points: int | None,
) -> Shape:
    """Validate a read file (or a sample named by ``path``) and wrap it as a :class:`Shape`; every problem is a
    ValueError naming ``path``. ``columns`` None accepts any number of columns (3 + features)."""
    if len(vertices) == 0:
        raise invalid(path, "at least one vertex/point", "none (empty shape)")
    if columns is not None and vertices.shape[1] != columns:
        raise invalid(path, f"{columns} columns (3 + features) like the other files", f"{vertices.shape[1]}")
    with np.errstate(over="ignore", invalid="ignore"):
        single = vertices.astype(np.float32)  # what training sees: a value beyond float32's range becomes inf
    if not np.isfinite(single).all():
        rows = np.flatnonzero(~np.isfinite(single).all(axis=1))
        raise invalid(path, "finite coordinates (in float32)", f"NaN/inf in {len(rows)} row(s), first at row {rows[0]}")
    points = torch.from_numpy(single)
    if faces is None:
        if min_points is not None and len(vertices) < min_points:
            raise invalid(path, f"at least min_points={min_points} points", f"{len(vertices)}")
        if normalize and np.ptp(vertices[:, :3], axis=0).max() == 0:
            raise invalid(path, "points with a non-zero extent (to normalise)", "all points identical")
        return Shape(points)
    if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
        bad = faces[(faces < 0) | (faces >= len(vertices))][0]
        raise invalid(path, f"face vertex indices in [0, {len(vertices)})", f"index {bad}")
    triangles = torch.from_numpy(faces)
    if len(faces) == 0 or triangle_areas(torch.from_numpy(vertices), triangles).sum() <= 0:
        raise invalid(path, "faces with a positive total area", "only degenerate (zero-area) faces")
    return Shape(points, triangles)


@dataclass(frozen=True)
class ShapeCheck:
    """Indexing's check of one file: read in full and :func:`check_shape`; gives its number of columns (3 + F)."""

    normalize: bool
    min_points: int | None

    def __call__(self, path: Path) -> int:
        vertices, faces = read_shape(path)
        check_shape(path, vertices, faces, None, self.normalize, self.min_points)
        return int(vertices.shape[1])


# ------------------------------------------------------------------------------- torch-geometric data sets


def missing_data_error(root: str, name: str, url: str, missing: list[str]) -> FileNotFoundError:
    """The error for a torch-geometric data set that is not under ``root`` (``missing``: what it lacks) and may not
    be downloaded."""
    listed = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    raw = Path(root) / "raw"
    return FileNotFoundError(
        f"root={root!r}: no {name} there (torch-geometric needs {listed}). Download it once with download=true "
        f"(--data.download true; needs internet: it fetches {url}, hundreds of MB, and unpacks it into {raw}), or "
        f"unpack that archive yourself so that {raw} holds its folders."
    )


def missing_raw_paths(dataset: InMemoryDataset) -> list[str]:
    """The raw files or folders of a torch-geometric data set that are not on disk."""
    return [path for path in dataset.raw_paths if not Path(path).exists()]


class LocalModelNet(ModelNet):
    """torch-geometric's ModelNet that downloads only when ``allow_download``; else a missing copy is an error."""

    def __init__(self, root: str, name: str, train: bool, allow_download: bool) -> None:
        self.allow_download = allow_download
        super().__init__(root, name, train)

    def download(self) -> None:
        if not self.allow_download:
            raise missing_data_error(self.root, f"ModelNet{self.name}", self.urls[self.name], missing_raw_paths(self))
        super().download()


class LocalShapeNet(ShapeNet):
    """torch-geometric's ShapeNet (x y z only) that downloads only when ``allow_download``; else a missing copy is an
    error."""

    def __init__(self, root: str, categories: list[str], split: str, allow_download: bool) -> None:
        self.allow_download = allow_download
        super().__init__(root, categories, include_normals=False, split=split)

    def download(self) -> None:
        if not self.allow_download:
            raise missing_data_error(self.root, "ShapeNet", self.url, missing_raw_paths(self))
        super().download()


def data_shape(data: Data) -> Shape:
    """A torch-geometric sample as a :class:`Shape`: ``pos`` and, for a mesh, ``face`` ``(3, M)`` as ``(M, 3)``."""
    return Shape(data.pos.float(), None if data.face is None else data.face.t())


@dataclass(frozen=True)
class DataSetSampleCheck:
    """Indexing's check of one sample of a torch-geometric data set, by position (:func:`check_shape`)."""

    dataset: InMemoryDataset
    name: str
    normalize: bool
    min_points: int | None

    def __call__(self, position: int) -> None:
        shape = data_shape(self.dataset[position])
        faces = None if shape.faces is None else shape.faces.numpy()
        check_shape(
            f"{self.name} sample {position}", shape.points.double().numpy(), faces, 3, self.normalize, self.min_points
        )


class DataSetPointCloudSource(SampleSource):
    """The checked samples of a torch-geometric data set (its ``positions``) as :class:`Shape` samples."""

    def __init__(self, dataset: InMemoryDataset, positions: Tensor, labels: Tensor) -> None:
        self.dataset = dataset
        self.positions = positions
        self.labels = labels

    def load(self, index: int) -> Shape:
        return data_shape(self.dataset[int(self.positions[index])])


def _is_point_cloud(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in POINT_CLOUD_EXTENSIONS


# --------------------------------------------------------------------------------------------- bundled default


def cgal_folder() -> Path:
    """The CGAL models (OFF/PLY/XYZ) from Debian's ``libcgal-demo``, unpacked once into ``<cache>/cgal``.

    Files are flattened to ``<folder>__<name>`` (e.g. ``meshes__bunny00.off``). Files that the readers here
    reject (or point sets with fewer than ``MIN_POINTS`` points) are not copied; their names and reasons are listed
    in ``<cache>/cgal/SKIPPED.txt`` (with a warning).
    """
    target = cache_root() / "cgal"
    if target.is_dir():
        return target
    tarball = CGAL_TARBALL
    if not tarball.exists():
        raise FileNotFoundError(
            f"{tarball}: the bundled point clouds (CGAL's models) come from the Debian package libcgal-demo, which "
            "is not installed. Install it with `apt-get install libcgal-demo`, or without installing: "
            "`apt-get download libcgal-demo && dpkg-deb -x libcgal-demo_*.deb DIR` and point "
            f"PointCloudDataModule(path=...) at your own files (or set ${CACHE_ENV} to control the cache). "
            "Or pass path='folder of OFF/PLY/OBJ/XYZ/NPY files'."
        )
    partial = target.with_name(f"cgal.partial-{os.getpid()}")
    partial.mkdir(parents=True, exist_ok=True)
    skipped = []
    with tarfile.open(tarball) as archive:
        for member in archive.getmembers():
            suffix = Path(member.name).suffix.lower()
            if not member.isfile() or suffix not in CGAL_EXTENSIONS:
                continue
            parts = Path(member.name).parts
            destination = partial / "__".join(parts[1:] if parts[0] == "data" else parts)
            extracted = archive.extractfile(member)
            assert extracted is not None
            destination.write_bytes(extracted.read())
            try:
                check_shape(destination, *read_shape(destination), 3, True, MIN_POINTS)
            except ValueError as error:
                skipped.append(f"{member.name}: {error}")
                destination.unlink()
    (partial / "SKIPPED.txt").write_text("\n".join(skipped) + "\n")
    if skipped:
        warnings.warn(f"{len(skipped)} CGAL file(s) not usable, listed in {target / 'SKIPPED.txt'}", stacklevel=2)
    try:
        partial.rename(target)
    except OSError:  # another process finished first
        for file in partial.iterdir():
            file.unlink()
        partial.rmdir()
    return target


# --------------------------------------------------------------------------------------------- datamodule


class PointCloudDataModule(SSLDataModule):
    """Point clouds for self-supervised learning; batches ``{"x": (B, num_points, 3 + F), "y": (B,), ...}``.

    Args:
        path: a folder of point cloud files (see the module docstring for formats): class sub-folders give
            labels (sorted names -> 0..K-1), a flat folder is unlabeled (-1). ``None``: CGAL's models from
            Debian's ``libcgal-demo`` (meshes and scans such as bunny, dragon, kitten; unlabeled, as each model
            is one shape), unpacked once into ``$JEPA_LIGHTNING_CACHE/cgal`` (default ``~/.cache/jepa-lightning``).
        test_path: an optional held-out test folder, in the form of ``path``.
        num_points: points per sample. Meshes are sampled on their surface (area-weighted); point sets give a
            random subset without replacement when large enough, else every point plus copies drawn with
            replacement.
        normalize: centre at the centroid and scale to the unit sphere (after sampling).
        scale_range: range of the random scale of train/view augmentation (per axis unless ``isotropic_scale``).
        isotropic_scale: one scale factor for all three axes.
        rotate_up: random rotation about ``up_axis`` in train/view augmentation.
        up_axis: the vertical coordinate (1: y up, as in ShapeNet and PointNet++'s resampled ModelNet; 2 for the
            z-up meshes of ModelNet's own archives, which ``source='modelnet10' | 'modelnet40'`` reads).
        jitter: std of the Gaussian noise added to coordinates (clipped at 5 std); 0 disables.
        point_dropout: probability that a point is replaced by a copy of a kept point; 0 disables.
        min_points: point set files with fewer points are bad files instead of being upsampled (meshes are exempt:
            they are sampled on their surface); None accepts any number.
        on_bad_file: what indexing does with a bad file (see the module docstring): ``"error"`` raises naming it,
            ``"skip"`` leaves it out with one warning listing every skipped file. A class left without files is an
            error.
        source: ``"files"`` (``path``), or one of torch-geometric's data sets under ``root``: ``"modelnet10"`` /
            ``"modelnet40"`` (meshes sampled with its ``SamplePoints``; labels: the class; the official train list
            is the training source, split by ``val_fraction``, the official test list the test set) or
            ``"shapenet"`` (point sets, x y z; labels: the category; the official train and val lists are the
            training source, split by ``val_fraction``, the official test list the test set).
        root: the torch-geometric data set's folder (``raw/`` as its archive unpacks, ``processed/`` written on first
            use); None: ``$JEPA_LIGHTNING_CACHE/<ModelNet10 | ModelNet40 | ShapeNet>``.
        download: fetch the data set into ``root`` when it is not there (needs internet, once); False makes a
            missing data set an error that names the folder and how to get it. Fetch it before a multi-process
            (DDP) run, e.g. with a single-process run: every process indexes the data, so each would fetch it.
        categories: ShapeNet's categories to use (e.g. ``["Airplane", "Chair"]``; labels follow this order); None:
            all 16.
        kwargs: loader, split and view settings of :class:`~datamodules.base.SSLDataModule`.
    """

    def __init__(
        self,
        path: str | None = None,
        test_path: str | None = None,
        num_points: int = 1024,
        normalize: bool = True,
        scale_range: tuple[float, float] = (0.8, 1.2),
        isotropic_scale: bool = False,
        rotate_up: bool = True,
        up_axis: int = 1,
        jitter: float = 0.01,
        point_dropout: float = 0.0,
        min_points: int | None = MIN_POINTS,
        on_bad_file: BadFilePolicy = "error",
        source: PointCloudSourceName = "files",
        root: str | None = None,
        download: bool = False,
        categories: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if num_points < 1:
            raise invalid("num_points", "an integer >= 1", repr(num_points))
        if not 0 < scale_range[0] <= scale_range[1]:
            raise invalid("scale_range", "(low, high) with 0 < low <= high", repr(scale_range))
        if up_axis not in (0, 1, 2):
            raise invalid("up_axis", "0, 1 or 2", repr(up_axis))
        if jitter < 0:
            raise invalid("jitter", "a std >= 0", repr(jitter))
        if not 0 <= point_dropout < 1:
            raise invalid("point_dropout", "a probability in [0, 1)", repr(point_dropout))
        if min_points is not None and min_points < 1:
            raise invalid("min_points", "None or an integer >= 1", repr(min_points))
        require_bad_file_policy(on_bad_file)
        if source not in ("files", *TORCH_GEOMETRIC_SOURCES):
            raise invalid("source", f"'files' or one of {tuple(TORCH_GEOMETRIC_SOURCES)}", repr(source))
        if source == "files" and (root is not None or download or categories is not None):
            raise invalid(
                "root/download/categories",
                "unset with source='files' (they select a torch-geometric data set: source='modelnet10' | "
                "'modelnet40' | 'shapenet')",
                repr((root, download, categories)),
            )
        if source != "files" and (path is not None or test_path is not None):
            raise invalid(
                "path/test_path", f"None with source={source!r} (its data lives under root)", repr((path, test_path))
            )
        known = list(ShapeNet.category_ids)
        if categories is not None and (source != "shapenet" or not categories or set(categories) - set(known)):
            raise invalid(
                "categories", f"None or ShapeNet categories out of {known} (source='shapenet')", repr(categories)
            )
        self.path = path
        self.test_path = test_path
        self.num_points = num_points
        self.normalize = normalize
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.isotropic_scale = isotropic_scale
        self.rotate_up = rotate_up
        self.up_axis = up_axis
        self.jitter = jitter
        self.point_dropout = point_dropout
        self.min_points = min_points
        self.on_bad_file = on_bad_file
        self.source = source
        self.root = root
        self.download = download
        self.categories = categories
        self._columns: int | None = None
        self._class_names: list[str] | None = None
        self._num_classes: int | None = None

    # ----------------------------------------------------------------- indexing

    def index_sources(self) -> tuple[SampleSource, SampleSource | None]:
        """Index ``path`` (or CGAL's models) and ``test_path``, or the torch-geometric data set of ``source``; every
        file or sample is read and checked now."""
        if self.source != "files":
            return self._data_set_sources()
        train = self._folder(cgal_folder() if self.path is None else require_path(self.path, "path"), "path")
        test = None if self.test_path is None else self._folder(require_path(self.test_path, "test_path"), "test_path")
        return train, test

    def data_set_root(self) -> Path:
        """The torch-geometric data set's folder: ``root``, or ``<cache>/<ModelNet10 | ModelNet40 | ShapeNet>``."""
        if self.root is not None:
            return Path(self.root).expanduser()
        return cache_root() / TORCH_GEOMETRIC_SOURCES[self.source]

    def _data_set_sources(self) -> tuple[DataSetPointCloudSource, DataSetPointCloudSource]:
        """The official training and test lists of the torch-geometric data set (downloaded and processed by
        torch-geometric on first use), with their labels; every sample is checked."""
        root = str(self.data_set_root())
        if not self.download and not Path(root).is_dir():  # checked here too, so that no empty folder is made there
            name = TORCH_GEOMETRIC_SOURCES[self.source]
            url = ShapeNet.url if self.source == "shapenet" else ModelNet.urls[name.removeprefix("ModelNet")]
            raise missing_data_error(root, name, url, [str(Path(root) / "raw")])
        if self.source == "shapenet":
            categories = self.categories or list(ShapeNet.category_ids)
            train: InMemoryDataset = LocalShapeNet(root, categories, "trainval", self.download)
            test: InMemoryDataset = LocalShapeNet(root, categories, "test", self.download)
            labels = [torch.as_tensor(data_set.category).view(-1) for data_set in (train, test)]
            self._class_names = list(categories)
        else:
            name = self.source.removeprefix("modelnet")
            train = LocalModelNet(root, name, True, self.download)
            test = LocalModelNet(root, name, False, self.download)
            labels = [torch.as_tensor(data_set.y).view(-1) for data_set in (train, test)]
            # ModelNet's labels number its class folders in sorted order (torch_geometric.datasets.ModelNet)
            folders = Path(train.raw_dir).iterdir()
            self._class_names = sorted(entry.name for entry in folders if entry.is_dir() and entry.name[0] != ".")
        self._num_classes = len(self._class_names)
        self._columns = 3
        sources = []
        for data_set, split_labels, split in zip((train, test), labels, ("train", "test")):
            field = f"{TORCH_GEOMETRIC_SOURCES[self.source]} {split}"
            check = DataSetSampleCheck(data_set, f"{root} ({field})", self.normalize, self.min_points)
            found = check_files(
                range(len(data_set)),
                check,
                self.on_bad_file,
                field,
                split_labels.tolist(),
                self._class_names,
                CHECK_WORKERS,
            )
            positions = torch.tensor([position for position, _ in found], dtype=torch.long)
            sources.append(DataSetPointCloudSource(data_set, positions, split_labels[positions]))
        return sources[0], sources[1]

    def _folder(self, folder: Path, field: str) -> FilePointCloudSource:
        if not folder.is_dir():
            raise invalid(folder, "a folder of point cloud files or class sub-folders", "a file")
        files, labels, names = index_class_folders(
            folder,
            _is_point_cloud,
            f"point cloud files ({' '.join(POINT_CLOUD_EXTENSIONS)})",
            self._class_names,
            field == "test_path",
        )
        if names is not None and field == "path":
            self._class_names = names
            self._num_classes = len(names)
        check = ShapeCheck(self.normalize, self.min_points)
        kept: list[int] = []
        for position, found in check_files(
            files, check, self.on_bad_file, field, labels, self._class_names, CHECK_WORKERS
        ):
            if self._columns is None:
                self._columns = found
            elif found != self._columns:
                raise invalid(
                    files[position], f"{self._columns} columns (3 + features) like the first file", f"{found}"
                )
            kept.append(position)
        assert self._columns is not None
        return FilePointCloudSource(
            [files[position] for position in kept],
            torch.tensor([labels[position] for position in kept], dtype=torch.long),
            self._columns,
            self.normalize,
            self.min_points,
        )

    # ----------------------------------------------------------------- what the model sees

    @property
    def num_channels(self) -> int:
        """Columns per point (3 + F), known once the data is indexed."""
        self._indexed_sources()
        assert self._columns is not None
        return self._columns

    @property
    def input_spec(self) -> InputSpec:
        """Channels (3 + F) and number of classes (None if unlabeled); indexes the data on first use."""
        return InputSpec(modality="point_clouds", channels=self.num_channels, num_classes=self._num_classes)

    @property
    def class_names(self) -> list[str] | None:
        """Class sub-folder names in label order (ModelNet's classes, ShapeNet's categories); None for a flat
        folder."""
        self._indexed_sources()
        return self._class_names

    def augmentation(self) -> Augment:
        """The random part of train/view transforms; override to change it."""
        return Augment(
            self.scale_range, self.isotropic_scale, self.rotate_up, self.up_axis, self.jitter, self.point_dropout
        )

    def train_transform(self) -> Transform:
        """Random sampling of ``num_points``, normalisation, then scale / rotation / jitter / dropout."""
        return Compose(self.to_points(), self.augmentation())

    def eval_transform(self) -> Transform:
        """Deterministic sampling of ``num_points`` (seeded by ``seed``) and normalisation, no augmentation."""
        return self.to_points(seed=self.seed)

    def view_transform(self) -> Transform:
        return Compose(self.to_points(), self.augmentation())

    def to_points(self, seed: int | None = None) -> ToPoints:
        """Sampling and normalisation; the meshes of torch-geometric's data sets are sampled with its
        ``SamplePoints``."""
        return ToPoints(self.num_points, self.normalize, seed, sample_points=self.source != "files")
