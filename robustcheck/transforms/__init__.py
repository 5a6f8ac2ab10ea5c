"""Natural transformations as Hypothesis properties: rotation, translation, scaling, brightness,
contrast, Gaussian noise, Gaussian blur, JPEG, and compositions of two or three of them.

    from robustcheck import load_model, smallest_transform_failure
    outcomes = smallest_transform_failure(model, x, y, transform="rotate", max=30, seed=0)

Modules: image_batch (layouts and input boxes), geometric and photometric (the operations),
families (parameters, units, directions), spec (a configured transformation and its magnitude
grid), strategies (Hypothesis), probe (the oracle's verdicts), search (the shrinking search),
sweep (dense grids, fixed-level accuracy, random worst-of-k), checks (config claims, light).
The names below are imported lazily: the config parser imports `transforms.checks` without
torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "FAMILIES": "robustcheck.transforms.families",
    "Params": "robustcheck.transforms.families",
    "ImageFormat": "robustcheck.transforms.image_batch",
    "TransformOutcome": "robustcheck.transforms.search",
    "smallest_transform_failure": "robustcheck.transforms.search",
    "TransformSpec": "robustcheck.transforms.spec",
    "apply_transform": "robustcheck.transforms.spec",
    "transform_levels": "robustcheck.transforms.strategies",
    "transform_params": "robustcheck.transforms.strategies",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'robustcheck.transforms' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
