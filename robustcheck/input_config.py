"""Config keys about a model's inputs: preprocess, per-channel input_range, classes, device, image datasets.

Validators called by config.py (one ConfigError line naming the file, the key and what was
expected); they return frozen, hashable values for `ModelConfig`.

    preprocess = { mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225] }
    input_range = [[-2.12, -2.04, -1.80], [2.25, 2.43, 2.64]]      # per channel: lows, then highs
    classes = ["cat", "dog"]                                        # names in output order
    device = "auto"                                                 # "cpu" (default) | "cuda" | "auto"
    dataset = { images = "data/val", resize = 256, crop = 224 }     # a folder of class subfolders
    dataset = { csv = "data/val.csv", resize = [224, 224], channels = 1 }
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robustcheck.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")
IMAGE_KEYS = {"images", "csv", "resize", "crop", "channels"}


@dataclass(frozen=True)
class ImageDatasetSpec:
    """A class-folder or `path,label` CSV dataset and how its images become inputs."""

    path: Path
    form: str  # "folder" | "csv"
    resize: int | tuple[int, int] | None = None
    crop: tuple[int, int] | None = None
    channels: int = 3

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "form": self.form, "resize": self.resize, "crop": self.crop,
                "channels": self.channels}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _floats(path: Path, where: str, value: Any, expected: str) -> tuple[float, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(_finite(v) for v in items):
        raise ConfigError(f"{path}: '{where}' must be {expected}, got {value!r}")
    return tuple(float(v) for v in items)


def preprocess(path: Path, where: str, value: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per channel; a single number applies to every channel."""
    if not isinstance(value, dict) or set(value) != {"mean", "std"}:
        raise ConfigError(f"{path}: '{where}' must be a table {{ mean = [...], std = [...] }}, got {value!r}")
    mean = _floats(path, f"{where}.mean", value["mean"], "a number or a list of numbers (one per channel)")
    std = _floats(path, f"{where}.std", value["std"], "a positive number or a list of them (one per channel)")
    if any(s <= 0 for s in std):
        raise ConfigError(f"{path}: '{where}.std' must be positive, got {value['std']!r}")
    if len(mean) != len(std) and 1 not in (len(mean), len(std)):
        raise ConfigError(f"{path}: '{where}' has {len(mean)} means and {len(std)} stds; give one per channel")
    return mean, std


def input_range(path: Path, where: str, value: Any) -> tuple[float, float] | tuple[tuple[float, ...], ...]:
    """[low, high], or [[low per channel], [high per channel]]."""
    if len(value) == 2 and all(isinstance(v, list) for v in value):
        low = _floats(path, f"{where}[0]", value[0], "a list of numbers (one low per channel)")
        high = _floats(path, f"{where}[1]", value[1], "a list of numbers (one high per channel)")
        if len(low) != len(high) or any(a >= b for a, b in zip(low, high)):
            raise ConfigError(f"{path}: '{where}' must hold as many lows as highs, each low < its high, "
                              f"got {value!r}")
        return (low, high)
    if len(value) != 2 or not all(_finite(v) for v in value) or not value[0] < value[1]:
        raise ConfigError(f"{path}: '{where}' must be a [low, high] pair of finite numbers with low < high, or "
                          f"[[lows], [highs]] per channel, got {value!r}")
    return (float(value[0]), float(value[1]))


def classes(path: Path, where: str, value: Any) -> tuple[str, ...]:
    if not value or not all(isinstance(v, str) and v.strip() for v in value) or len(set(value)) != len(value):
        raise ConfigError(f"{path}: '{where}' must be a list of distinct, non-empty class names, got {value!r}")
    return tuple(value)


def device(path: Path, where: str, value: Any) -> str:
    if value not in DEVICES:
        raise ConfigError(f"{path}: '{where}' must be one of {', '.join(repr(d) for d in DEVICES)}, got {value!r}")
    return str(value)


def _side(path: Path, where: str, value: Any, *, pair_ok: bool) -> int | tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if pair_ok and isinstance(value, list) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        return (value[0], value[1])
    raise ConfigError(f"{path}: '{where}' must be a positive integer or a [height, width] pair, got {value!r}")


def image_dataset(path: Path, where: str, value: Any) -> ImageDatasetSpec | None:
    """The image-folder / CSV forms of `dataset` (None when `value` is another form)."""
    base = path.parent
    if isinstance(value, str):
        target = base / value
        if target.is_dir():
            return ImageDatasetSpec(target, "folder")
        if target.suffix.lower() == ".csv":
            if not target.is_file():
                raise ConfigError(f"{path}: '{where}' refers to {target}, which does not exist")
            return ImageDatasetSpec(target, "csv")
        return None
    if not isinstance(value, dict):
        return None
    source = value.get("csv", value.get("images"))
    is_folder = "images" in value and isinstance(source, str) and (base / source).is_dir()
    if "csv" not in value and not is_folder:
        return None  # IDX images + labels
    unknown = set(value) - IMAGE_KEYS
    if unknown or ("csv" in value and "images" in value):
        bad = sorted(unknown)[0] if unknown else "images"
        raise ConfigError(f"{path}: unknown key '{where}.{bad}' (an image dataset takes images or csv, resize, "
                          "crop, channels)")
    if not isinstance(source, str):
        raise ConfigError(f"{path}: '{where}.csv' must be a path")
    target = base / source
    if "csv" in value and not target.is_file():
        raise ConfigError(f"{path}: '{where}.csv' refers to {target}, which does not exist")
    resize = None if value.get("resize") is None else _side(path, f"{where}.resize", value["resize"], pair_ok=True)
    crop_value = value.get("crop")
    crop = None
    if crop_value is not None:
        side = _side(path, f"{where}.crop", crop_value, pair_ok=True)
        crop = side if isinstance(side, tuple) else (side, side)
    channels = value.get("channels", 3)
    if channels not in (1, 3) or isinstance(channels, bool):
        raise ConfigError(f"{path}: '{where}.channels' must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    return ImageDatasetSpec(target, "csv" if "csv" in value else "folder", resize, crop, int(channels))
