"""Resize along one axis as taps: for each output position, input indices and weights.

Resize is separable, so an N-D resize is one 1-D resize per axis. For one axis this module
computes, in numpy and in float32 as onnxruntime does, where each output position maps in the
input (the coordinate transformation), which input positions it reads (1 for nearest, 2 for
linear, 4 for cubic, a scale-wide window with antialiasing) and their weights, and which
positions lie outside the crop box (tf_crop_and_resize extrapolates there). Indices falling
outside the input are clamped to its edge, which is onnxruntime's edge padding; with
`exclude_outside` their weights are dropped and the rest renormalised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from robustcheck.replica.registry import UnsupportedGraph

F32 = np.float32

COORDINATE_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                    "tf_crop_and_resize", "tf_half_pixel_for_nn")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil", "simple")


@dataclass(frozen=True)
class Interpolation:
    """How a Resize node interpolates (its attributes, resolved for its opset)."""

    mode: str  # "nearest" | "linear" | "cubic"
    coordinate: str
    nearest: str  # nearest_mode; "simple" is the rule of opsets before 11
    cubic_a: float = -0.75
    exclude_outside: bool = False
    extrapolation: float = 0.0
    antialias: bool = False


@dataclass(frozen=True)
class Taps:
    """Input `index` (out, k) and `weight` (out, k) per output position; `outside` (out,) marks
    positions a crop-and-resize fills with the extrapolation value (None when there are none)."""

    index: np.ndarray
    weight: np.ndarray
    outside: np.ndarray | None


def original_coordinates(how: Interpolation, length_in: int, length_out: int, scale: float,
                         roi: tuple[float, float]) -> np.ndarray:
    """Where each output position lies in input coordinates (float32, onnxruntime's formulas)."""
    x = np.arange(length_out, dtype=F32)
    s, lin, lout = F32(scale), F32(length_in), F32(length_out)
    half = F32(0.5)
    mode = how.coordinate
    if mode == "asymmetric":
        return x / s
    if mode == "half_pixel":
        return (x + half) / s - half
    if mode == "pytorch_half_pixel":
        return (x + half) / s - half if length_out > 1 else np.zeros(length_out, F32)
    if mode == "tf_half_pixel_for_nn":
        return (x + half) / s
    if mode == "align_corners":
        return np.zeros(length_out, F32) if length_out == 1 else x * (lin - 1) / (lout - 1)
    if mode == "half_pixel_symmetric":
        adjustment = lout / (s * lin)
        offset = (lin / 2) * (1 - adjustment)
        return (offset + (x.astype(np.float64) + 0.5) / s - 0.5).astype(F32)
    if mode == "tf_crop_and_resize":
        start, end = F32(roi[0]), F32(roi[1])
        if length_out > 1:
            return start * (lin - 1) + (x * (end - start) * (lin - 1)) / (lout - 1)
        return np.full(length_out, 0.5 * (float(start) + float(end)) * (length_in - 1), F32)
    raise UnsupportedGraph(f"Resize coordinate_transformation_mode {mode!r}")


def _nearest_index(how: Interpolation, x: np.ndarray, downsampling: bool) -> np.ndarray:
    mode = how.nearest
    if mode == "simple":  # opset 10: ceil when downsampling, else truncation
        return np.ceil(x) if downsampling else np.trunc(x)
    if mode == "floor":
        return np.floor(x)
    if mode == "ceil":
        return np.ceil(x)
    whole = np.trunc(x)
    # std::round: halves away from zero (floor(x + 0.5) would round 0.49999997 up in float32)
    rounded = whole + np.sign(x) * (np.abs(x - whole) >= 0.5)
    if mode == "round_prefer_ceil":
        return rounded
    if mode == "round_prefer_floor":
        return np.where(x == np.trunc(x) + F32(0.5), np.floor(x), rounded)
    raise UnsupportedGraph(f"Resize nearest_mode {mode!r}")


def _cubic_weights(ratio: np.ndarray, a: float) -> np.ndarray:
    s = ratio.astype(np.float64)
    t = 1 - s
    return np.stack([
        ((a * (s + 1) - 5 * a) * (s + 1) + 8 * a) * (s + 1) - 4 * a,
        ((a + 2) * s - (a + 3)) * s * s + 1,
        ((a + 2) * t - (a + 3)) * t * t + 1,
        ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a,
    ], axis=1)


def _antialias_filter(how: Interpolation, x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    if how.mode == "linear":
        return np.where(x < 1, 1 - x, 0.0)
    a = how.cubic_a
    return np.where(x < 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                    np.where(x < 2, (((x - 5) * x + 8) * x - 4) * a, 0.0))


def _antialias_taps(how: Interpolation, coords: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Antialiasing (ONNX's definition, which onnxruntime follows): when downsampling, the filter
    is stretched by 1/scale and reads correspondingly more input positions."""
    s = min(float(F32(scale)), 1.0)
    first = math.floor((-1.0 if how.mode == "linear" else -2.0) / s) + 1
    offsets = np.arange(first, 2 - first)
    x = coords.astype(np.float64)
    left = np.ceil(x) - 1  # the input position strictly left of x (x - 1 when x is an integer)
    ratio = x - left  # in (0, 1]
    index = left.astype(np.int64)[:, None] + offsets[None, :]
    weight = _antialias_filter(how, (offsets[None, :] - ratio[:, None]) * s)
    return index, weight / weight.sum(axis=1, keepdims=True)


def _renormalised_inside(index: np.ndarray, weight: np.ndarray, length_in: int) -> np.ndarray:
    """exclude_outside: positions outside the input get no weight; the others share it all."""
    weight = np.where((index < 0) | (index >= length_in), 0.0, weight)
    total = weight.sum(axis=1, keepdims=True)
    return weight / np.where(total == 0, 1.0, total)


@lru_cache(maxsize=512)
def axis_taps(how: Interpolation, length_in: int, length_out: int, scale: float, roi: tuple[float, float]) -> Taps:
    """The taps resizing one axis from `length_in` to `length_out` at `scale`."""
    coords = original_coordinates(how, length_in, length_out, scale, roi)
    outside = None
    if how.coordinate == "tf_crop_and_resize":
        outside = (coords < 0) | (coords > length_in - 1)
        outside = outside if outside.any() else None
    if how.antialias and how.mode != "nearest":
        index, weight = _antialias_taps(how, coords, scale)
        if how.exclude_outside:
            weight = _renormalised_inside(index, weight, length_in)
    elif how.mode == "nearest":
        index = _nearest_index(how, coords, scale < 1).astype(np.int64)[:, None]
        weight = np.ones_like(index, dtype=np.float64)
    elif how.mode == "linear":
        clamped = np.clip(coords, F32(0), F32(length_in - 1))
        first = np.minimum(np.trunc(clamped).astype(np.int64), length_in - 1)
        second = np.minimum(first + 1, length_in - 1)
        frac = (clamped - first.astype(F32)).astype(np.float64)
        index = np.stack([first, second], axis=1)
        weight = np.stack([1 - frac, frac], axis=1)
    elif how.mode == "cubic":
        base = np.floor(coords).astype(np.int64)
        index = base[:, None] + np.arange(-1, 3)[None, :]
        weight = _cubic_weights(coords - base.astype(F32), how.cubic_a)
        if how.exclude_outside:
            weight = _renormalised_inside(index, weight, length_in)
    else:
        raise UnsupportedGraph(f"Resize mode {how.mode!r}")
    return Taps(np.clip(index, 0, length_in - 1), weight.astype(np.float32), outside)


def output_length(length_in: int, scale: float) -> int:
    """onnxruntime's output length for a scale: the float32 product, truncated."""
    return int(math.floor(float(F32(scale) * F32(length_in))))
