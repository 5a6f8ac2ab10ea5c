"""Resize and Upsample: nearest, (bi/tri)linear and cubic interpolation in their opset variants.

- Upsample-7 (scales attribute) and Upsample-9 (scales input): nearest or linear, asymmetric
  coordinates, onnxruntime's pre-opset-11 nearest rule;
- Resize-10: inputs (X, scales), the same semantics as Upsample;
- Resize-11: inputs (X, roi, scales, sizes), coordinate_transformation_mode, nearest_mode,
  cubic_coeff_a, exclude_outside, extrapolation_value;
- Resize-13: roi and scales become optional; tf_half_pixel_for_nn is gone;
- Resize-18: antialias, axes, keep_aspect_ratio_policy; Resize-19: half_pixel_symmetric.

Each resized axis is one gather-and-weight step (resize_taps.py computes the taps), so the
gradient is exact: a sum of the input positions each output reads, with fixed weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from robustcheck.replica.coercion import axis, ints, optional_input
from robustcheck.replica.ops.resize_taps import F32, Interpolation, Taps, axis_taps, output_length
from robustcheck.replica.registry import NodeContext, UnsupportedGraph, register

Tensor = torch.Tensor


def _floats(value: Any) -> list[float]:
    if value is None:
        return []
    if isinstance(value, Tensor):
        return [float(v) for v in value.reshape(-1).tolist()]
    return [float(v) for v in np.asarray(value, dtype=np.float64).reshape(-1)]


def _apply(x: Tensor, dim: int, taps: Taps, extrapolation: float) -> Tensor:
    index = torch.from_numpy(taps.index).to(x.device)
    weight = torch.from_numpy(taps.weight).to(device=x.device, dtype=x.dtype)
    shape = [1] * x.dim()
    shape[dim] = -1
    y = torch.index_select(x, dim, index[:, 0])
    if taps.index.shape[1] > 1:
        y = y * weight[:, 0].reshape(shape)
        for k in range(1, taps.index.shape[1]):
            y = y + torch.index_select(x, dim, index[:, k]) * weight[:, k].reshape(shape)
    if taps.outside is not None:
        mask = torch.from_numpy(taps.outside).to(x.device).reshape(shape)
        y = torch.where(mask, torch.as_tensor(extrapolation, dtype=x.dtype, device=x.device), y)
    return y


def resize(x: Tensor, how: Interpolation, scales: list[float], sizes: list[int], roi: list[float]) -> Tensor:
    """Resize every axis whose scale or size asks for it; `roi` is (starts..., ends...) per axis."""
    rank = x.dim()
    for d in range(rank):
        length_in, scale, length_out = x.shape[d], scales[d], sizes[d]
        if length_out == length_in and (scale == 1.0 or how.antialias):
            # onnxruntime maps such an axis one-to-one, whatever the roi or coordinate mode
            continue
        box = (roi[d], roi[rank + d]) if roi else (0.0, 1.0)
        x = _apply(x, d, axis_taps(how, length_in, length_out, scale, box), how.extrapolation)
    return x


def _resolve(x: Tensor, ctx: NodeContext, scales_in: Any, sizes_in: Any, axes: list[int] | None) -> tuple[
        list[float], list[int]]:
    """Per-axis scales and output sizes from a node's scales or sizes (onnxruntime's float32 rules)."""
    rank = x.dim()
    dims = list(x.shape)
    scales_given, sizes_given = _floats(scales_in), ints(sizes_in)
    targets = axes if axes is not None else list(range(rank))
    if scales_given:
        if len(scales_given) != len(targets):
            raise UnsupportedGraph(f"Resize with {len(scales_given)} scales for a rank-{rank} input")
        scales = [1.0] * rank
        for d, s in zip(targets, scales_given):
            scales[d] = float(F32(s))
        return scales, [output_length(n, s) for n, s in zip(dims, scales)]
    if not sizes_given:
        raise UnsupportedGraph("Resize with neither scales nor sizes")
    if len(sizes_given) != len(targets):
        raise UnsupportedGraph(f"Resize with {len(sizes_given)} sizes for a rank-{rank} input")
    sizes = list(dims)
    for d, n in zip(targets, sizes_given):
        sizes[d] = n
    scales = [float(F32(n) / F32(m)) if m else 1.0 for n, m in zip(sizes, dims)]
    policy = ctx.attr("keep_aspect_ratio_policy", "stretch")
    if policy != "stretch":
        if policy not in ("not_larger", "not_smaller"):
            raise UnsupportedGraph(f"Resize keep_aspect_ratio_policy {policy!r}")
        chosen = [scales[d] for d in targets]
        common = min(chosen) if policy == "not_larger" else max(chosen)
        scales = [common if d in targets else 1.0 for d in range(rank)]
        # std::round rounds halves away from zero (numpy's round would round them to even)
        sizes = [int(np.floor(float(F32(common) * F32(dims[d])) + 0.5)) if d in targets else dims[d]
                 for d in range(rank)]
    return scales, sizes


def _roi(x: Tensor, roi_in: Any, axes: list[int] | None) -> list[float]:
    given = _floats(roi_in)
    if not given or axes is None:
        return given
    rank = x.dim()
    full = [0.0] * rank + [1.0] * rank
    for i, d in enumerate(axes):
        full[d], full[rank + d] = given[i], given[len(axes) + i]
    return full


def _interpolation(ctx: NodeContext, *, legacy: bool) -> Interpolation:
    mode = ctx.attr("mode", "nearest")
    if mode not in ("nearest", "linear", "cubic"):
        raise UnsupportedGraph(f"{ctx.op_type} mode {mode!r}")
    if legacy:
        if mode == "cubic":
            raise UnsupportedGraph(f"{ctx.op_type} mode 'cubic' before opset 11")
        return Interpolation(mode, "asymmetric", "simple")
    coordinate = ctx.attr("coordinate_transformation_mode", "half_pixel")
    return Interpolation(
        mode, coordinate, ctx.attr("nearest_mode", "round_prefer_floor"), float(ctx.attr("cubic_coeff_a", -0.75)),
        bool(ctx.attr("exclude_outside", 0)), float(ctx.attr("extrapolation_value", 0.0)),
        bool(ctx.attr("antialias", 0)))


def _legacy(ctx: NodeContext, x: Tensor, scales: Any) -> list[Any]:
    resolved, sizes = _resolve(x, ctx, scales, None, None)
    return [resize(x, _interpolation(ctx, legacy=True), resolved, sizes, [])]


@register("Upsample", 7)
def _upsample_attribute(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return _legacy(ctx, a[0], ctx.attr("scales"))


@register("Upsample", 9)
@register("Resize", 10)
def _upsample_input(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return _legacy(ctx, a[0], a[1])


def _resize_node(ctx: NodeContext, a: list[Any], axes: list[int] | None) -> list[Any]:
    x = a[0]
    how = _interpolation(ctx, legacy=False)
    scales, sizes = _resolve(x, ctx, optional_input(a, 2), optional_input(a, 3), axes)
    return [resize(x, how, scales, sizes, _roi(x, optional_input(a, 1), axes))]


@register("Resize", 11)
@register("Resize", 13)
def _resize_roi_scales_sizes(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return _resize_node(ctx, a, None)


@register("Resize", 18)
@register("Resize", 19)
def _resize_axes(ctx: NodeContext, a: list[Any]) -> list[Any]:
    given = ctx.attr("axes")
    axes = None if given is None else [axis(v, a[0].dim()) for v in ints(given)]
    return _resize_node(ctx, a, axes)
