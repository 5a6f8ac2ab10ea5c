"""Datasets from image files: class folders and path,label CSVs, resize/crop, one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from robustcheck.errors import DataError
from robustcheck.image_data import ImageTransform, load_image_dataset


def _image(path: Path, size: tuple[int, int], colour: tuple[int, int, int]) -> Path:
    """A (width, height) image: a colour ramp, so crops and resizes are visible in the pixels."""
    w, h = size
    ramp = np.linspace(0, 1, w)[None, :, None] * np.asarray(colour)[None, None, :]
    pixels = np.broadcast_to(ramp, (h, w, 3)).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "val"
    _image(root / "dog" / "a.png", (40, 30), (200, 100, 0))
    _image(root / "dog" / "b.jpg", (30, 40), (0, 200, 100))
    _image(root / "cat" / "c.png", (36, 36), (100, 0, 200))
    (root / "cat" / "notes.txt").write_text("not an image")
    return root


def test_class_folders_resize_and_centre_crop(folder: Path) -> None:
    data = load_image_dataset(folder, transform=ImageTransform(resize=32, crop=(24, 24)))
    assert data.class_names == ("cat", "dog")
    assert list(data.y) == [0, 1, 1] and len(data) == 3
    x = data.x[:]
    assert x.shape == (3, 3, 24, 24) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    # c.png 36×36 -> 32×32 -> centre 24×24: the ramp keeps its middle
    image = Image.open(folder / "cat" / "c.png").convert("RGB").resize((32, 32), Image.Resampling.BILINEAR)
    expected = np.asarray(image.crop((4, 4, 28, 28)), np.float32).transpose(2, 0, 1) / 255
    np.testing.assert_allclose(x[0], expected, atol=1e-6)
    nhwc = load_image_dataset(folder, transform=ImageTransform(resize=(24, 24), layout="NHWC"))
    assert nhwc.x[:].shape == (3, 24, 24, 3)
    gray = load_image_dataset(folder, transform=ImageTransform(channels=1, resize=(20, 20)))
    assert gray.x[:].shape == (3, 1, 20, 20)


def test_configured_class_names_fix_the_label_order(folder: Path) -> None:
    data = load_image_dataset(folder, transform=ImageTransform(resize=(8, 8)), classes=["plane", "dog", "cat"])
    assert data.class_names == ("plane", "dog", "cat") and list(data.y) == [2, 1, 1]
    with pytest.raises(DataError, match=r"cat: unknown label 'cat' \(classes: plane, dog\)"):
        load_image_dataset(folder, classes=["plane", "dog"])


def test_csv_of_paths_and_labels(folder: Path, tmp_path: Path) -> None:
    listing = tmp_path / "val.csv"
    listing.write_text("path,label\nval/dog/a.png,dog\nval/cat/c.png,cat\n")
    data = load_image_dataset(listing, transform=ImageTransform(resize=(16, 16)), classes=["cat", "dog"])
    assert list(data.y) == [1, 0] and data.x[:].shape == (2, 3, 16, 16)
    numeric = tmp_path / "numeric.csv"
    numeric.write_text("val/dog/a.png,3\nval/cat/c.png,7\n")
    data = load_image_dataset(numeric, transform=ImageTransform(resize=(16, 16)))
    assert list(data.y) == [3, 7] and data.class_names is None
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\nval/dog/a.png,dog\nval/cat/c.png,horse\n")
    with pytest.raises(DataError, match=r"bad.csv:3: unknown label 'horse' \(classes: cat, dog\)"):
        load_image_dataset(bad, classes=["cat", "dog"])
    missing = tmp_path / "missing.csv"
    missing.write_text("val/dog/zzz.png,1\n")
    with pytest.raises(DataError, match=r"missing.csv:1: no such image 'val/dog/zzz.png'"):
        load_image_dataset(missing)
    with pytest.raises(DataError, match="label 'dog' is not a class index; give the class names"):
        load_image_dataset(listing)


def test_mismatched_sizes_and_unreadable_images_name_the_file(folder: Path) -> None:
    data = load_image_dataset(folder)  # no resize: the sizes differ
    with pytest.raises(DataError, match=r"a.png: image gives shape \(3, 30, 40\), but .*c.png gives \(3, 36, 36\); "
                                        "declare resize/crop"):
        data.x[:]
    (folder / "dog" / "z.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    data = load_image_dataset(folder, transform=ImageTransform(resize=(8, 8)))
    assert data.x[:2].shape == (2, 3, 8, 8)  # decoded on access: the broken file is not read yet
    with pytest.raises(DataError, match=r"z.png: not a readable image") as info:
        data.x[3]
    assert "\n" not in str(info.value)
    with pytest.raises(DataError, match="smaller than the 64×64 crop"):
        load_image_dataset(folder, transform=ImageTransform(crop=(64, 64)))
    with pytest.raises(DataError, match="no such image folder or .csv file"):
        load_image_dataset(folder / "nope")


def test_batches_stream_the_dataset(folder: Path) -> None:
    data = load_image_dataset(folder, transform=ImageTransform(resize=(8, 8)))
    chunks = list(data.batches(2))
    assert [len(x) for x, _ in chunks] == [2, 1]
    np.testing.assert_array_equal(np.concatenate([x for x, _ in chunks]), data.x[:])
    subset = data.take(np.array([2, 0]))
    assert isinstance(subset.x, np.ndarray) and list(subset.y) == [1, 0] and subset.class_names == ("cat", "dog")
