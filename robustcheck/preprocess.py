"""What stands between the user's inputs and the model's: per-channel normalisation and bounds.

Models are usually trained on normalised input, `(x - mean) / std` per channel, while
robustness is stated in pixel space: ε, distances, the input box and the counterexample
images all in [0, 1] (foolbox's `preprocessing`, RobustBench's convention). With a
`Normalisation` the model's oracle and replica both receive the normalised input and every
attack, metric and report works on pixel-space inputs without knowing.

A user who prefers to work in normalised space gives per-channel bounds instead
(`ChannelBounds`): the box each channel lives in there, e.g. [(0 - mean) / std, (1 - mean) / std].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from robustcheck.errors import ModelError
from robustcheck.metrics import channel_axis


def broadcast_shape(values: Sequence[float], sample_shape: tuple[int | None, ...], layout: str | None,
                    what: str, label: str) -> tuple[int, ...]:
    """The shape per-channel `values` take to broadcast against a batch (N, *sample_shape)."""
    rank = len(sample_shape) + 1
    if len(values) == 1:
        return (1,) * rank
    axis = channel_axis(layout) or 1  # (N, features...) inputs: per feature along axis 1
    channels = sample_shape[axis - 1] if rank > 1 else None
    if channels is not None and channels != len(values):
        where = "last axis" if layout == "NHWC" else "axis 1"
        raise ModelError(f"{label}: {what} has {len(values)} values but the input has {channels} channels "
                         f"({where} of shape {('N',) + tuple('?' if d is None else d for d in sample_shape)})")
    shape = [1] * rank
    shape[axis] = len(values)
    return tuple(shape)


def _floats(value: Any, what: str, label: str) -> tuple[float, ...]:
    items = [value] if isinstance(value, (int, float)) else value
    try:
        floats = tuple(float(v) for v in items)
    except (TypeError, ValueError):
        raise ModelError(f"{label}: {what} must be a number or a list of numbers, got {value!r}") from None
    if not floats or not all(np.isfinite(floats)):
        raise ModelError(f"{label}: {what} must be finite numbers, got {value!r}")
    return floats


@dataclass(frozen=True)
class Normalisation:
    """`(x - mean) / std` per channel, applied between the pixel-space input and the model."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    shape: tuple[int, ...]

    @classmethod
    def build(cls, spec: Mapping[str, Any] | Normalisation, sample_shape: tuple[int | None, ...],
              layout: str | None, label: str) -> Normalisation:
        """Validated from `{"mean": [...], "std": [...]}` (scalars broadcast to every channel)."""
        if isinstance(spec, Normalisation):
            spec = {"mean": spec.mean, "std": spec.std}
        if not isinstance(spec, Mapping) or set(spec) - {"mean", "std"} or not spec:
            raise ModelError(f"{label}: preprocess must be a table with keys mean and std, got {spec!r}")
        mean = _floats(spec.get("mean", 0.0), "preprocess mean", label)
        std = _floats(spec.get("std", 1.0), "preprocess std", label)
        if any(s <= 0 for s in std):
            raise ModelError(f"{label}: preprocess std must be positive, got {list(std)}")
        if len(mean) != len(std) and 1 not in (len(mean), len(std)):
            raise ModelError(f"{label}: preprocess mean has {len(mean)} values and std {len(std)}; give one per "
                             "channel (or one for all)")
        count = max(len(mean), len(std))
        mean, std = (mean * count if len(mean) == 1 else mean), (std * count if len(std) == 1 else std)
        shape = broadcast_shape(mean, sample_shape, layout, "preprocess mean/std", label)
        return cls(mean, std, shape)

    def to_model(self, x: np.ndarray) -> np.ndarray:
        """Pixel-space batch -> the model's normalised input (same dtype)."""
        mean = np.asarray(self.mean, dtype=x.dtype).reshape(self.shape)
        std = np.asarray(self.std, dtype=x.dtype).reshape(self.shape)
        return (x - mean) / std

    def to_model_torch(self, x: torch.Tensor) -> torch.Tensor:
        """The same on a torch batch, differentiably."""
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).reshape(self.shape)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).reshape(self.shape)
        return (x - mean) / std

    def describe(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}


@dataclass(frozen=True)
class ChannelBounds:
    """A per-channel input box (low[c], high[c]): for inputs given in normalised space."""

    low: tuple[float, ...]
    high: tuple[float, ...]
    shape: tuple[int, ...]

    @classmethod
    def build(cls, low: Sequence[float], high: Sequence[float], sample_shape: tuple[int | None, ...],
              layout: str | None, label: str) -> ChannelBounds:
        lo, hi = _floats(low, "input_range low", label), _floats(high, "input_range high", label)
        if len(lo) != len(hi):
            raise ModelError(f"{label}: input_range has {len(lo)} low and {len(hi)} high values")
        if any(a >= b for a, b in zip(lo, hi)):
            raise ModelError(f"{label}: input_range must satisfy low < high per channel, got {list(lo)}, {list(hi)}")
        return cls(lo, hi, broadcast_shape(lo, sample_shape, layout, "input_range", label))

    @property
    def envelope(self) -> tuple[float, float]:
        """The smallest scalar box holding every channel's: what scalar-box code (attacks) sees."""
        return (min(self.low), max(self.high))

    def arrays(self, dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
        return (np.asarray(self.low, dtype).reshape(self.shape), np.asarray(self.high, dtype).reshape(self.shape))

    def contains(self, x: np.ndarray, tol: float = 0.0) -> np.ndarray:
        """Per sample: every value finite and inside its channel's interval."""
        lo, hi = self.arrays(np.float64)
        inside = np.isfinite(x) & (x >= lo - tol) & (x <= hi + tol)
        return inside.reshape(len(x), -1).all(axis=1)

    def project(self, x: np.ndarray) -> np.ndarray:
        lo, hi = self.arrays(x.dtype)
        return np.clip(x, lo, hi)

    def clamp_torch(self, x: torch.Tensor) -> torch.Tensor:
        lo = torch.tensor(self.low, dtype=x.dtype, device=x.device).reshape(self.shape)
        hi = torch.tensor(self.high, dtype=x.dtype, device=x.device).reshape(self.shape)
        return torch.clamp(x, lo, hi)

    def describe(self) -> dict[str, list[float]]:
        return {"low": list(self.low), "high": list(self.high)}
