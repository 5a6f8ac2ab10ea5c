"""Datasets that are empty, malformed or not what they claim give one-line DataErrors naming the file."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np
import pytest

from robustcheck import DataError
from robustcheck.data import load_dataset


def _one_line(exc: pytest.ExceptionInfo[DataError], path: Path, words: str) -> None:
    message = str(exc.value)
    assert "\n" not in message and str(path) in message and words in message, message


def test_a_dataset_without_rows(tmp_path: Path) -> None:
    path = tmp_path / "empty.npz"
    np.savez(path, x=np.zeros((0, 1, 4, 4), np.float32), y=np.zeros(0, np.int64))
    with pytest.raises(DataError) as exc:
        load_dataset(path)
    _one_line(exc, path, "the dataset has no rows")


def test_an_npz_member_that_is_not_npy_data(tmp_path: Path) -> None:
    # np.load hands back raw bytes for a member stored without the .npy header.
    path = tmp_path / "raw.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x", b"\x00" * 64)
        with archive.open("y.npy", "w") as fh:
            np.save(fh, np.zeros(4, np.int64))
    with pytest.raises(DataError) as exc:
        load_dataset(path)
    _one_line(exc, path, "member 'x' is not .npy array data")


def test_a_damaged_npy_member(tmp_path: Path) -> None:
    path = tmp_path / "damaged.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", b"\x93NUMPY\x01\x00garbage")
        archive.writestr("y.npy", b"")
    with pytest.raises(DataError) as exc:
        load_dataset(path)
    _one_line(exc, path, "not a readable .npz archive")


@pytest.mark.parametrize(("arrays", "words"), [
    ({"x": np.float32(1.0), "y": np.zeros(1, np.int64)},
     "'x' must be a numeric array with one row per sample"),
    ({"x": np.zeros((2, 3), np.float32), "y": np.zeros(2, np.int64), "index": np.zeros(3, np.int64)},
     "'index' must be a 1-D integer array as long as 'y'"),
    ({"x": np.array([["a", "b"]]), "y": np.zeros(1, np.int64)}, "'x' must be a numeric array"),
    ({"x": np.zeros((2, 3), np.float32), "y": np.zeros((2, 1), np.int64)}, "'y' must be a 1-D integer array"),
])
def test_npz_arrays_of_the_wrong_kind(tmp_path: Path, arrays: dict[str, np.ndarray], words: str) -> None:
    path = tmp_path / "wrong.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError) as exc:
        load_dataset(path)
    _one_line(exc, path, words)


def test_a_single_npy_file_named_npz(tmp_path: Path) -> None:
    path = tmp_path / "single.npz"
    with path.open("wb") as fh:
        np.save(fh, np.zeros(3))
    with pytest.raises(DataError) as exc:
        load_dataset(path)
    _one_line(exc, path, "not an .npz archive")


def _idx(dims: list[int], payload: bytes, type_code: int = 0x08) -> bytes:
    return bytes([0, 0, type_code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims) + payload


@pytest.mark.parametrize(("content", "named", "words"), [
    (_idx([2, 2, 2], b"\x00" * 8)[:7], "labels", "header of 3 dimensions is missing or truncated"),
    (bytes([0, 0, 8, 0]), "labels", "header of 0 dimensions"),
    (_idx([3], b"\x00" * 5, 0x0C), "labels", "holds 5 bytes for them, not 12"),
    (_idx([0], b""), "images", "2 inputs but 0 labels"),
])
def test_bad_idx_files(tmp_path: Path, content: bytes, named: str, words: str) -> None:
    files = {"images": tmp_path / "images-idx3-ubyte", "labels": tmp_path / "labels-idx1-ubyte"}
    files["images"].write_bytes(_idx([2, 2, 2], b"\x01" * 8))
    files["labels"].write_bytes(content)
    with pytest.raises(DataError) as exc:
        load_dataset(files["images"], labels=files["labels"])
    _one_line(exc, files[named], words)


def test_idx_labels_must_be_one_dimensional_integers(tmp_path: Path) -> None:
    images = tmp_path / "images-idx3-ubyte"
    images.write_bytes(_idx([2, 2, 2], b"\x01" * 8))
    labels = tmp_path / "labels-idx1-ubyte"
    labels.write_bytes(_idx([2, 1], b"\x00\x01"))
    with pytest.raises(DataError) as exc:
        load_dataset(images, labels=labels)
    _one_line(exc, labels, "IDX labels must be a 1-D integer array")


def test_a_truncated_gzip(tmp_path: Path) -> None:
    path = tmp_path / "images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_idx([2, 2, 2], b"\x01" * 8))[:-6])
    with pytest.raises(DataError) as exc:
        load_dataset(path, labels=path)
    _one_line(exc, path, "cannot read")


def test_a_limit_below_one(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((2, 3), np.float32), y=np.zeros(2, np.int64))
    with pytest.raises(DataError) as exc:
        load_dataset(path, limit=0)
    _one_line(exc, path, "limit must be at least 1")
