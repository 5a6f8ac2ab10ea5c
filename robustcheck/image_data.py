"""Datasets from image files: a folder with one subfolder per class, or a CSV of `path,label`.

Images are read with Pillow, converted to RGB (or grayscale with `channels=1`), resized (the
shorter side to `resize` pixels, or to an exact `[height, width]`) and centre-cropped as the
config declares, scaled to [0, 1] (pixel space: a model trained on normalised input gets its
`preprocess`), and laid out as the model expects (NCHW or NHWC).

Nothing is decoded up front: `LazyImages` decodes the rows asked for, so a run over a large
folder of 224×224 photographs holds one batch of pixels at a time, not the folder (the
attacked samples are the only rows kept). Every problem is one line naming the file:
unreadable images, unknown labels, images whose size does not match after resize/crop.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robustcheck.data import Dataset
from robustcheck.errors import DataError, first_line

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


@dataclass(frozen=True)
class ImageTransform:
    """How a file becomes a model input: channels, resize, centre crop, layout."""

    channels: int = 3
    resize: int | tuple[int, int] | None = None
    crop: tuple[int, int] | None = None
    layout: str = "NCHW"

    def apply(self, path: Path) -> np.ndarray:
        """The image at `path` as float32 in [0, 1], (C, H, W) or (H, W, C)."""
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as opened:
                image = opened.convert("L" if self.channels == 1 else "RGB")
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise DataError(f"{path}: not a readable image ({first_line(exc) or type(exc).__name__})") from None
        if self.resize is not None:
            image = image.resize(self._resized_size(image.size), Image.Resampling.BILINEAR)
        if self.crop is not None:
            image = self._centre_crop(image, path)
        array = np.asarray(image, dtype=np.float32) / np.float32(255.0)
        if array.ndim == 2:
            array = array[:, :, None]
        return np.ascontiguousarray(array if self.layout == "NHWC" else array.transpose(2, 0, 1))

    def _resized_size(self, size: tuple[int, int]) -> tuple[int, int]:
        width, height = size
        if isinstance(self.resize, tuple):
            return (self.resize[1], self.resize[0])
        assert self.resize is not None
        if width <= height:  # the shorter side becomes `resize`, the aspect ratio stays
            return (self.resize, max(1, int(self.resize * height / width)))
        return (max(1, int(self.resize * width / height)), self.resize)

    def _centre_crop(self, image: Any, path: Path) -> Any:
        assert self.crop is not None
        height, width = self.crop
        if image.size[0] < width or image.size[1] < height:
            raise DataError(f"{path}: image is {image.size[0]}×{image.size[1]} after resize, smaller than the "
                            f"{width}×{height} crop")
        left = int(round((image.size[0] - width) / 2.0))
        top = int(round((image.size[1] - height) / 2.0))
        return image.crop((left, top, left + width, top + height))


class LazyImages:
    """An array-like of images decoded on access: `len`, `shape`, `dtype`, indexing by int, slice
    or integer array (each returns a numpy array). `np.asarray` decodes everything; stream with
    slices instead."""

    ndim = 4
    dtype = np.dtype(np.float32)

    def __init__(self, files: Sequence[Path], transform: ImageTransform) -> None:
        self.files = list(files)
        self.transform = transform
        first = transform.apply(self.files[0])
        self._sample_shape = first.shape
        self._first = first

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.files), *self._sample_shape)

    def __len__(self) -> int:
        return len(self.files)

    def _decode(self, i: int) -> np.ndarray:
        image = self._first if i == 0 else self.transform.apply(self.files[i])
        if image.shape != self._sample_shape:
            raise DataError(f"{self.files[i]}: image gives shape {image.shape}, but {self.files[0]} gives "
                            f"{self._sample_shape}; declare resize/crop so every image has the model's size")
        return image

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self._decode(int(key) % len(self))
        rows = np.arange(len(self))[key]
        out = np.empty((len(rows), *self._sample_shape), np.float32)
        for j, i in enumerate(rows):
            out[j] = self._decode(int(i))
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def batches(self, size: int) -> Any:
        """(start, decoded rows) in order, `size` rows at a time."""
        for start in range(0, len(self), size):
            yield start, self[start:start + size]


def _class_index(name: str, classes: Sequence[str] | None, where: str) -> int:
    if classes is not None:
        if name in classes:
            return list(classes).index(name)
        raise DataError(f"{where}: unknown label {name!r} (classes: {', '.join(classes)})")
    try:
        return int(name)
    except ValueError:
        raise DataError(f"{where}: label {name!r} is not a class index; give the class names") from None


def _folder_files(root: Path, classes: Sequence[str] | None) -> tuple[list[Path], list[int], list[str]]:
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{root}: no class subfolders (expected one folder of images per class)")
    names = list(classes) if classes is not None else [p.name for p in folders]
    files: list[Path] = []
    labels: list[int] = []
    for folder in folders:
        label = _class_index(folder.name, names, str(folder))
        found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        files += found
        labels += [label] * len(found)
    return files, labels, names


def _csv_files(path: Path, classes: Sequence[str] | None) -> tuple[list[Path], list[int], list[str] | None]:
    files: list[Path] = []
    labels: list[int] = []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV ({first_line(exc)})") from None
    if rows and [c.strip().lower() for c in rows[0]] == ["path", "label"]:
        rows = [[]] + rows[1:]  # a header line: keep line numbers right
    names = list(classes) if classes is not None else None
    for number, row in enumerate(rows, start=1):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        where = f"{path}:{number}"
        if len(row) != 2:
            raise DataError(f"{where}: expected 'path,label', got {len(row)} fields")
        file = path.parent / row[0].strip()
        if not file.is_file():
            raise DataError(f"{where}: no such image {row[0].strip()!r}")
        files.append(file)
        labels.append(_class_index(row[1].strip(), names, where))
    return files, labels, names


def load_image_dataset(
    source: str | os.PathLike[str],
    *,
    transform: ImageTransform | None = None,
    classes: Sequence[str] | None = None,
    limit: int | None = None,
) -> Dataset:
    """A folder of class subfolders, or a `path,label` CSV (paths relative to it), as a Dataset.

    Labels: folder names or CSV labels, mapped through `classes` (the model's class names in
    output order) when given; else folders in sorted order, or integer CSV labels. The
    dataset's `class_names` are those names (None for a CSV of bare indices).
    """
    path = Path(source)
    transform = transform or ImageTransform()
    names: list[str] | None
    if path.is_dir():
        files, labels, names = _folder_files(path, classes)
    elif path.is_file() and path.suffix.lower() == ".csv":
        files, labels, names = _csv_files(path, classes)
    else:
        raise DataError(f"{path}: no such image folder or .csv file")
    if not files:
        raise DataError(f"{path}: no images found (suffixes {', '.join(IMAGE_SUFFIXES)})")
    if limit is not None:
        files, labels = files[:limit], labels[:limit]
    images = LazyImages(files, transform)
    y = np.asarray(labels, np.int64)
    return Dataset(images, y, np.arange(len(y)), str(path), None if names is None else tuple(names))  # type: ignore[arg-type]
