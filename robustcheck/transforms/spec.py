"""A configured transformation: one family or a composition of two or three, each with its max.

`TransformSpec.parse("rotate", 10)` or `TransformSpec.parse(["rotate", "translate"], [10, 2])`.
Magnitudes live on an integer grid `0..steps`: level k gives component i the magnitude
`max_i × k / steps`, so a composition grows all its parts together and k = 0 is the identity.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from robustcheck.errors import ConfigError
from robustcheck.transforms import geometric
from robustcheck.transforms.families import FAMILIES, Family, Params
from robustcheck.transforms.image_batch import ImageFormat

#: At most this many grid levels per spec (a coarser step beyond it).
MAX_STEPS = 2000


@dataclass(frozen=True)
class TransformSpec:
    families: tuple[Family, ...]
    #: The configured max of each component, in level units (JPEG: the lowest quality).
    levels: tuple[float, ...]

    @classmethod
    def parse(cls, transform: str | Sequence[str], max: float | Sequence[float], *,
              where: str = "transform", key: str = "max") -> TransformSpec:
        """Validate names and maxima; errors are one line starting with `where`, calling the
        maxima `key` (a config's `max`, or `level` for a fixed level)."""
        names = [transform] if isinstance(transform, str) else list(transform)
        if not names or len(names) > 3 or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"{where}: transform must be a name or a list of two or three names, got {transform!r}")
        unknown = [n for n in names if n not in FAMILIES]
        if unknown:
            raise ConfigError(f"{where}: unknown transform {unknown[0]!r}; expected one of {', '.join(FAMILIES)}")
        if len(set(names)) != len(names):
            raise ConfigError(f"{where}: a composition names each transform once, got {names}")
        maxima = [max] if isinstance(max, (int, float)) and not isinstance(max, bool) else max
        if isinstance(maxima, (str, bytes)) or not isinstance(maxima, Sequence) or len(maxima) != len(names) or \
                not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in maxima):
            what = "a number" if len(names) == 1 else f"a list of {len(names)} numbers, one per transform"
            raise ConfigError(f"{where}: {key} must be {what}, got {max!r}")
        families = tuple(FAMILIES[n] for n in names)
        for f, v in zip(families, maxima):
            low = f.lowest
            if not (math.isfinite(v) and (v > low if low == 0 else v >= low) and v <= f.limit):
                bound = f"> {low:g}" if low == 0 else f">= {low:g}"
                raise ConfigError(f"{where}: {key} for {f.name} must be {bound} and <= {f.limit:g}, got {v!r}")
        return cls(families, tuple(float(v) for v in maxima))

    # -- naming ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return "+".join(f.name for f in self.families)

    @property
    def id(self) -> str:
        """`rotate@10`, `jpeg@30`, `rotate+translate@10,2`."""
        return f"{self.name}@{','.join(f'{v:g}' for v in self.levels)}"

    @property
    def max_magnitudes(self) -> tuple[float, ...]:
        return tuple(f.magnitude(v) for f, v in zip(self.families, self.levels))

    # -- the magnitude grid ---------------------------------------------------------------
    @property
    def steps(self) -> int:
        """Grid levels above 0: the finest family step fits, capped at MAX_STEPS."""
        need = max(math.ceil(m / f.step - 1e-9) for f, m in zip(self.families, self.max_magnitudes))
        return int(min(max(need, 1), MAX_STEPS))

    @property
    def uses_offset(self) -> bool:
        return any(f.uses_offset for f in self.families)

    def magnitudes(self, k: int) -> tuple[float, ...]:
        """Each component's magnitude at grid level k (0..steps)."""
        return tuple(m * k / self.steps for m in self.max_magnitudes)

    def level_text(self, k: int) -> str:
        """Grid level k as the user reads it: `6.5°`, `1.25 px`, `quality 62`, `6.5°, 0.8 px`."""
        parts = []
        for f, m in zip(self.families, self.magnitudes(k)):
            parts.append(f"quality {f.level(m):.0f}" if f.name == "jpeg" else f"{f.level(m):.4g}{f.unit}")
        return ", ".join(parts)

    def directions(self, k: int, offset: int = 0) -> list[Params]:
        """Every direction at grid level k: the product of the components' direction sets."""
        sets = [f.directions(m, offset) for f, m in zip(self.families, self.magnitudes(k))]
        return [{key: v for part in combo for key, v in part.items()} for combo in itertools.product(*sets)]

    def describe(self, params: Params) -> str:
        return ", ".join(f.describe(params) for f in self.families)

    # -- applying -------------------------------------------------------------------------
    def apply(self, x: np.ndarray, params: Sequence[Params], fmt: ImageFormat) -> np.ndarray:
        """Transform each image of the batch `x` (model layout, inside the box) with its params."""
        x = np.asarray(x)
        if len(params) != len(x):
            raise ValueError(f"{len(params)} parameter sets for a batch of {len(x)} images")
        if not len(x):
            return x.copy()
        arrays = {key: np.array([p[key] for p in params], dtype=np.float64)
                  for f in self.families for key in f.keys}
        images = fmt.to_nchw(x)
        pending: np.ndarray | None = None     # consecutive geometric steps, merged
        for f in self.families:
            if f.geometric:
                step = f.forward(arrays)
                pending = step if pending is None else step @ pending
                continue
            if pending is not None:
                images, pending = geometric.warp(images, pending, fmt.low).clamp(*fmt.box), None
            images = f.apply(images, arrays, fmt).clamp(*fmt.box)
        if pending is not None:
            images = geometric.warp(images, pending, fmt.low)
        return fmt.from_nchw(images, x.dtype)

    def check_format(self, fmt: ImageFormat, channels: int, where: str) -> None:
        """Refuse a transformation the images cannot take (JPEG needs 1 or 3 channels)."""
        if any(f.name == "jpeg" for f in self.families) and channels not in (1, 3):
            raise ConfigError(f"{where}: jpeg needs images with 1 or 3 channels; these have {channels}")


def identity_params(spec: TransformSpec) -> Params:
    """The parameters of magnitude 0."""
    return spec.directions(0)[0]


def apply_transform(x: np.ndarray, transform: str | Sequence[str], params: Sequence[Params],
                    fmt: ImageFormat | object) -> np.ndarray:
    """Images `x` (in `fmt`'s layout and box, or a model's) under one parameter set per image,
    e.g. `apply_transform(x, "rotate", [{"angle": 5.0}] * len(x), model)`."""
    names = [transform] if isinstance(transform, str) else list(transform)
    fmt = fmt if isinstance(fmt, ImageFormat) else ImageFormat.of(fmt)
    spec = TransformSpec.parse(names, [FAMILIES[n].limit for n in names])
    return spec.apply(x, list(params), fmt)
