"""Natural transformations as Hypothesis properties: rotation, translation, scaling, brightness,
contrast, Gaussian noise, Gaussian blur, JPEG, and compositions of two or three of them.

    from robustcheck import load_model, smallest_transform_failure
    outcomes = smallest_transform_failure(model, x, y, transform="rotate", max=30, seed=0)

Modules: image_batch (layouts and input boxes), geometric and photometric (the operations),
families (parameters, units, directions), spec (a configured transformation and its magnitude
grid), strategies (Hypothesis), probe (the oracle's verdicts), search (the shrinking search),
sweep (dense grids, fixed-level accuracy, random worst-of-k).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from robustcheck.transforms.families import FAMILIES, Params
from robustcheck.transforms.image_batch import ImageFormat
from robustcheck.transforms.search import TransformOutcome, smallest_transform_failure
from robustcheck.transforms.spec import TransformSpec
from robustcheck.transforms.strategies import transform_levels, transform_params

__all__ = ["FAMILIES", "ImageFormat", "Params", "TransformOutcome", "TransformSpec", "apply_transform",
           "smallest_transform_failure", "transform_levels", "transform_params"]


def apply_transform(x: np.ndarray, transform: str | Sequence[str], params: Sequence[Params],
                    fmt: ImageFormat | object) -> np.ndarray:
    """Images `x` (in `fmt`'s layout and box, or a model's) under one parameter set per image,
    e.g. `apply_transform(x, "rotate", [{"angle": 5.0}] * len(x), model)`."""
    names = [transform] if isinstance(transform, str) else list(transform)
    fmt = fmt if isinstance(fmt, ImageFormat) else ImageFormat.of(fmt)
    spec = TransformSpec.parse(names, [FAMILIES[n].limit for n in names])
    return spec.apply(x, list(params), fmt)
