"""The transformation families: their parameters, units, magnitude grid and directions.

A family turns a scalar **magnitude** (0 = the identity, larger = stronger) into concrete
parameters. At a given magnitude it offers a few **directions** (±angle, ± brightness, points
on the ring of shifts of that size, one noise pattern): a property checks all of them at once,
so "the model fails at magnitude m" means "some direction of size m flips it", which is what
makes shrinking the magnitude alone reach the smallest failing one (see strategies.py).

The **level** is what a config and an item name say (`rotate@10`, `jpeg@30`); it equals the
magnitude except for JPEG, whose level is the lowest quality and whose magnitude is
100 − quality (quality 100 standing for "not compressed").
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch

from robustcheck.transforms import geometric, photometric
from robustcheck.transforms.image_batch import ImageFormat

Params = dict[str, float]
ParamArrays = dict[str, np.ndarray]

#: Distinct values of the drawn offset (translation ring angle, noise seed).
OFFSETS = 2**16
#: Directions on the ring of translations of one size. 16 (22.5° apart), not 8: on the shipped
#: baseline a shift region between two 45° directions left one sample's smallest shift 1.2×
#: the dense grid's with 8, none beyond 1.07× with 16 (benchmarks/transforms.py).
RING_DIRECTIONS = 16


class Family:
    """One kind of transformation. Subclasses set the class data and the methods they need."""

    name: ClassVar[str]
    unit: ClassVar[str]
    #: Resolution of the magnitude grid that Hypothesis draws on (in magnitude units).
    step: ClassVar[float]
    #: Largest configurable level, and the smallest (0 excluded unless said).
    limit: ClassVar[float]
    lowest: ClassVar[float] = 0.0
    keys: ClassVar[tuple[str, ...]]
    geometric: ClassVar[bool] = False
    uses_offset: ClassVar[bool] = False
    doc: ClassVar[str]

    def magnitude(self, level: float) -> float:
        return level

    def level(self, magnitude: float) -> float:
        return magnitude

    def directions(self, m: float, offset: int) -> list[Params]:
        raise NotImplementedError

    def describe(self, p: Params) -> str:
        raise NotImplementedError

    def forward(self, p: ParamArrays) -> np.ndarray:
        raise NotImplementedError(f"{self.name} is not geometric")

    def apply(self, images: torch.Tensor, p: ParamArrays, fmt: ImageFormat) -> torch.Tensor:
        raise NotImplementedError(f"{self.name} is geometric")


class Rotate(Family):
    name, unit, step, limit, keys, geometric = "rotate", "°", 0.1, 180.0, ("angle",), True
    doc = "rotation about the image centre, degrees (counter-clockwise positive)"

    def directions(self, m: float, offset: int) -> list[Params]:
        return [{"angle": m}, {"angle": -m}] if m else [{"angle": 0.0}]

    def describe(self, p: Params) -> str:
        return f"rotate {p['angle']:+.4g}°"

    def forward(self, p: ParamArrays) -> np.ndarray:
        return geometric.rotation(p["angle"])


class Translate(Family):
    name, unit, step, limit, keys, geometric, uses_offset = "translate", " px", 0.05, 64.0, ("dx", "dy"), True, True
    doc = "shift by (dx, dy) pixels; the magnitude is max(|dx|, |dy|)"

    def directions(self, m: float, offset: int) -> list[Params]:
        # RING_DIRECTIONS evenly spaced angles, turned by the drawn offset (0 = axis-aligned),
        # pushed out to the square ring max(|dx|, |dy|) = m.
        turn = offset / OFFSETS * 2 * math.pi / RING_DIRECTIONS
        out = []
        for j in range(RING_DIRECTIONS if m else 1):
            a = turn + 2 * math.pi * j / RING_DIRECTIONS
            c, s = math.cos(a), math.sin(a)
            reach = m / max(abs(c), abs(s))
            out.append({"dx": _clean(reach * c), "dy": _clean(reach * s)})
        return out

    def describe(self, p: Params) -> str:
        return f"translate ({p['dx']:+.3g}, {p['dy']:+.3g}) px"

    def forward(self, p: ParamArrays) -> np.ndarray:
        return geometric.translation(p["dx"], p["dy"])


class Scale(Family):
    name, unit, step, limit, keys, geometric = "scale", "", 0.005, 0.9, ("scale",), True
    doc = "zoom about the image centre by a factor 1 ± magnitude"

    def directions(self, m: float, offset: int) -> list[Params]:
        return [{"scale": 1 + m}, {"scale": 1 - m}] if m else [{"scale": 1.0}]

    def describe(self, p: Params) -> str:
        return f"scale ×{p['scale']:.4g}"

    def forward(self, p: ParamArrays) -> np.ndarray:
        return geometric.scaling(p["scale"])


class Brightness(Family):
    name, unit, step, limit, keys = "brightness", "", 0.005, 1.0, ("brightness",)
    doc = "add ± magnitude × the input range's span to every value, clipped to the input box"

    def directions(self, m: float, offset: int) -> list[Params]:
        return [{"brightness": m}, {"brightness": -m}] if m else [{"brightness": 0.0}]

    def describe(self, p: Params) -> str:
        return f"brightness {p['brightness']:+.4g}"

    def apply(self, images: torch.Tensor, p: ParamArrays, fmt: ImageFormat) -> torch.Tensor:
        return photometric.brightness(images, p["brightness"], fmt)


class Contrast(Family):
    name, unit, step, limit, keys = "contrast", "", 0.005, 1.0, ("contrast",)
    doc = "scale each image's spread about its mean by 1 ± magnitude"

    def directions(self, m: float, offset: int) -> list[Params]:
        return [{"contrast": 1 + m}, {"contrast": 1 - m}] if m else [{"contrast": 1.0}]

    def describe(self, p: Params) -> str:
        return f"contrast ×{p['contrast']:.4g}"

    def apply(self, images: torch.Tensor, p: ParamArrays, fmt: ImageFormat) -> torch.Tensor:
        return photometric.contrast(images, p["contrast"] - 1.0)


class Noise(Family):
    name, unit, step, limit, keys, uses_offset = "noise", "", 0.002, 1.0, ("noise_sigma", "noise_seed"), True
    doc = "add Gaussian noise of σ = magnitude × the span, pattern from a drawn seed"

    def directions(self, m: float, offset: int) -> list[Params]:
        return [{"noise_sigma": m, "noise_seed": float(offset)}]

    def describe(self, p: Params) -> str:
        return f"noise σ {p['noise_sigma']:.4g} (seed {int(p['noise_seed'])})"

    def apply(self, images: torch.Tensor, p: ParamArrays, fmt: ImageFormat) -> torch.Tensor:
        return photometric.noise(images, p["noise_sigma"], p["noise_seed"].astype(np.int64), fmt)


class Blur(Family):
    name, unit, step, limit, keys = "blur", " px", 0.02, 32.0, ("blur_sigma",)
    doc = "Gaussian blur of σ = magnitude pixels"

    def directions(self, m: float, offset: int) -> list[Params]:
        return [{"blur_sigma": m}]

    def describe(self, p: Params) -> str:
        return f"blur σ {p['blur_sigma']:.4g} px"

    def apply(self, images: torch.Tensor, p: ParamArrays, fmt: ImageFormat) -> torch.Tensor:
        return photometric.blur(images, p["blur_sigma"])


class Jpeg(Family):
    name, unit, step, limit, lowest, keys = "jpeg", "", 1.0, 99.0, 1.0, ("quality",)
    doc = "JPEG compression (Pillow); the level is the lowest quality, the magnitude 100 − quality"

    def magnitude(self, level: float) -> float:
        return 100.0 - level

    def level(self, magnitude: float) -> float:
        return 100.0 - magnitude

    def directions(self, m: float, offset: int) -> list[Params]:
        return [{"quality": float(round(100 - m))}]

    def describe(self, p: Params) -> str:
        return "jpeg unchanged (quality 100)" if p["quality"] >= 100 else f"jpeg quality {int(p['quality'])}"

    def apply(self, images: torch.Tensor, p: ParamArrays, fmt: ImageFormat) -> torch.Tensor:
        return photometric.jpeg(images, p["quality"], fmt)


def _clean(v: float) -> float:
    """Round away float noise such as 1e-16 from cos(π/2), so parameters read cleanly."""
    return round(v, 12) + 0.0


FAMILIES: dict[str, Family] = {f.name: f for f in (Rotate(), Translate(), Scale(), Brightness(), Contrast(),
                                                   Noise(), Blur(), Jpeg())}
