"""A model run's inputs: the configured dataset in the model's layout, checked against the model.

Image datasets are laid out once the model's layout is known (`load_model` asks for its
parity samples with the input spec), decoded lazily, and streamed through the oracle for
clean accuracy, so a folder of photographs is never held in memory as a whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from robustcheck.attacks.base import BOX_TOLERANCE
from robustcheck.config import ModelConfig
from robustcheck.data import Dataset, load_dataset
from robustcheck.errors import DataError
from robustcheck.image_data import ImageTransform, LazyImages, load_image_dataset
from robustcheck.input_config import ImageDatasetSpec
from robustcheck.model import Model

#: Rows per oracle call when streaming a dataset (clean accuracy).
STREAM_BATCH = 256


def load_run_dataset(model_path: Path, config: ModelConfig, layout: str | None) -> Dataset:
    """The configured dataset; image files are laid out for `layout` (NCHW when unknown)."""
    spec = config.dataset
    if spec is None:
        raise DataError(f"{model_path}: no dataset configured (set 'dataset' in robustcheck.toml)")
    if isinstance(spec, ImageDatasetSpec):
        transform = ImageTransform(channels=spec.channels, resize=spec.resize, crop=spec.crop,
                                   layout="NHWC" if layout == "NHWC" else "NCHW")
        return load_image_dataset(spec.path, transform=transform, classes=config.classes)
    data = load_dataset(spec.path, labels=spec.labels, scale=spec.scale)
    if config.classes is not None:
        data = Dataset(data.x, data.y, data.index, data.source, config.classes)
    return data


def preprocess_table(config: ModelConfig) -> dict[str, Any] | None:
    if config.preprocess is None:
        return None
    return {"mean": list(config.preprocess[0]), "std": list(config.preprocess[1])}


def check_fits(model: Model, data: Dataset, config: ModelConfig) -> None:
    """The dataset's values lie in the model's input box and its labels name the model's classes."""
    where = str(config.dataset.path) if config.dataset else "dataset"
    name = model.path.name
    bounds = model.input_spec.channel_bounds
    if isinstance(data.x, LazyImages):
        lows, highs = (bounds.low, bounds.high) if bounds is not None else ([model.input_range[0]],
                                                                             [model.input_range[1]])
        if min(highs) < 1 - BOX_TOLERANCE or max(lows) > BOX_TOLERANCE:
            raise DataError(f"{where}: image files give pixels in [0, 1], outside {name}'s input range; declare "
                            "`preprocess` to map pixels to what the graph expects (e.g. mean 0, std 1/255 for "
                            "[0, 255] inputs)")
    elif bounds is not None:
        if not model.in_box(np.asarray(data.x), BOX_TOLERANCE).all():
            raise DataError(f"{where}: values lie outside {name}'s per-channel input range")
    else:
        lo, hi = model.input_range
        if data.x.min() < lo - BOX_TOLERANCE or data.x.max() > hi + BOX_TOLERANCE:
            raise DataError(f"{where}: values span [{data.x.min():g}, {data.x.max():g}], outside "
                            f"{name}'s input range [{lo:g}, {hi:g}]")
    if data.y.max() >= model.num_classes or data.y.min() < 0:
        raise DataError(f"{where}: labels span [{data.y.min()}, {data.y.max()}] but {name} "
                        f"has {model.num_classes} classes")
    if data.class_names is not None and len(data.class_names) != model.num_classes:
        raise DataError(f"{where}: {len(data.class_names)} class names but {name} has {model.num_classes} classes")


def streamed_correct(model: Model, data: Dataset, rows: np.ndarray) -> int:
    """How many of `rows` the oracle classifies correctly, `STREAM_BATCH` rows decoded at a time."""
    correct = 0
    for start in range(0, len(rows), STREAM_BATCH):
        chunk = rows[start:start + STREAM_BATCH]
        correct += int((model.predict(np.asarray(data.x[chunk])) == data.y[chunk]).sum())
    return correct
