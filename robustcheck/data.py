"""Datasets the suite evaluates on: `.npz` archives (x, y) and IDX files (MNIST's format).

Files are read defensively: `.npz` members are never unpickled, and anything malformed
(truncated, empty, wrong member type, wrong shape) is a one-line DataError naming the file.
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from robustcheck.errors import DataError, first_line


@dataclass(frozen=True)
class Dataset:
    """Inputs `x` (model layout, float32), integer labels `y`, and each row's index in the source."""

    x: np.ndarray
    y: np.ndarray
    index: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.y)

    def take(self, rows: np.ndarray) -> Dataset:
        return Dataset(self.x[rows], self.y[rows], self.index[rows], self.source)


def load_dataset(
    path: str | os.PathLike[str],
    *,
    labels: str | os.PathLike[str] | None = None,
    scale: float | None = None,
    limit: int | None = None,
) -> Dataset:
    """Read a dataset.

    `.npz`: arrays `x` and `y` (and optionally `index`). IDX (`.idx`, `-ubyte`, optionally
    `.gz`): images from `path`, labels from `labels`; images get a channel axis (N, 1, H, W).
    `scale` multiplies the inputs (e.g. 1/255 for uint8 IDX images into [0, 1]).
    Raises `DataError` naming the file on anything unreadable, and on a dataset without rows.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such dataset file")
    if limit is not None and limit < 1:
        raise DataError(f"{path}: limit must be at least 1, got {limit}")
    if path.suffix == ".npz":
        x, y, index = _read_npz(path)
    else:
        if labels is None:
            raise DataError(f"{path}: an IDX image file needs a labels file")
        x = _read_idx(path).astype(np.float32)
        if x.ndim == 3:
            x = x[:, None]
        y = _read_idx(Path(labels))
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise DataError(f"{labels}: IDX labels must be a 1-D integer array, got shape {y.shape} dtype {y.dtype}")
        index = np.arange(len(y))
    if len(x) != len(y):
        raise DataError(f"{path}: {len(x)} inputs but {len(y)} labels")
    if len(y) == 0:
        raise DataError(f"{path}: the dataset has no rows")
    if scale is not None:
        x = x * np.float32(scale)
    if limit is not None:
        x, y, index = x[:limit], y[:limit], index[:limit]
    if not np.isfinite(x).all():
        raise DataError(f"{path}: inputs contain NaN or infinity")
    return Dataset(np.ascontiguousarray(x, dtype=np.float32), y.astype(np.int64), index.astype(np.int64), str(path))


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise DataError(f"{path}: a single .npy array, not an .npz archive of x and y")
        with loaded as archive:
            missing = [k for k in ("x", "y") if k not in archive.files]
            if missing:
                found = ", ".join(archive.files) or "none"
                raise DataError(f"{path}: missing array(s) {', '.join(missing)} (found {found})")
            members = {k: archive[k] for k in ("x", "y", "index") if k in archive.files}
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: not a readable .npz archive ({type(exc).__name__}: {first_line(exc)})") from None
    for key, value in members.items():
        if not isinstance(value, np.ndarray):  # a member stored without the .npy header comes back as bytes
            raise DataError(f"{path}: member {key!r} is not .npy array data")
    x, y = members["x"], members["y"]
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise DataError(f"{path}: 'y' must be a 1-D integer array, got shape {y.shape} dtype {y.dtype}")
    if x.ndim < 1 or x.dtype.kind not in "fiu":
        raise DataError(f"{path}: 'x' must be a numeric array with one row per sample, got shape {x.shape} "
                        f"dtype {x.dtype}")
    index = members.get("index", np.arange(len(y)))
    if index.shape != y.shape or index.dtype.kind not in "iu":
        raise DataError(f"{path}: 'index' must be a 1-D integer array as long as 'y', got shape {index.shape} "
                        f"dtype {index.dtype}")
    return x, y, index


_IDX_TYPES: dict[int, str] = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_idx(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path}: no such IDX file")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read ({type(exc).__name__}: {first_line(exc)})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: not an IDX file (header of {ndim} dimensions is missing or truncated)")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(dims, dtype=object)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(f"{path}: IDX header announces {dims} values but the file holds {len(raw) - header} bytes "
                        f"for them, not {expected} (truncated?)")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


class Classifier(Protocol):
    """Anything with oracle labels, such as `robustcheck.model.Model`."""

    def predict(self, x: np.ndarray) -> np.ndarray: ...


def correctly_classified(model: Classifier, data: Dataset, limit: int | None = None) -> Dataset:
    """The rows the model's oracle classifies correctly (first `limit` of them)."""
    labels = model.predict(data.x)
    rows = np.flatnonzero(labels == data.y)
    if limit is not None:
        rows = rows[:limit]
    return data.take(rows)
