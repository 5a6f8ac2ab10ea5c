"""Shape, layout and data-movement operators, constants and casts."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from robustcheck.replica.coercion import as_tensor, axis, ints, optional_input, to_tensor, torch_dtype
from robustcheck.replica.gradient_rules import straight_through
from robustcheck.replica.ops.axes_argument import register_axes_versions
from robustcheck.replica.registry import NodeContext, UnsupportedGraph, register

Tensor = torch.Tensor


@register("Identity", 1)
def _identity(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [a[0]]


def _reshape(x: Tensor, shape: list[int], allowzero: bool) -> Tensor:
    if not allowzero:
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


@register("Reshape", 1)
def _reshape_attribute(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [_reshape(a[0], ints(ctx.attr("shape")), False)]


@register("Reshape", 5)
def _reshape_input(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [_reshape(a[0], ints(a[1]), bool(ctx.attr("allowzero", 0)))]


@register("Flatten", 1)
def _flatten(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    ax = axis(ctx.attr("axis", 1), x.dim())
    lead = int(np.prod(x.shape[:ax])) if ax > 0 else 1
    return [x.reshape(lead, -1)]


@register("Transpose", 1)
def _transpose(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    perm = ints(ctx.attr("perm")) or list(reversed(range(x.dim())))
    return [x.permute(perm)]


def _squeeze(ctx: NodeContext, x: Tensor, axes: list[int]) -> list[Any]:
    if not axes:
        return [x.squeeze()]
    for ax in sorted((axis(v, x.dim()) for v in axes), reverse=True):
        x = x.squeeze(ax)
    return [x]


def _unsqueeze(ctx: NodeContext, x: Tensor, axes: list[int]) -> list[Any]:
    rank = x.dim() + len(axes)
    for ax in sorted(axis(v, rank) for v in axes):
        x = x.unsqueeze(ax)
    return [x]


register_axes_versions("Squeeze", 13, _squeeze)
register_axes_versions("Unsqueeze", 13, _unsqueeze)


@register("Concat", 4)
def _concat(ctx: NodeContext, a: list[Any]) -> list[Any]:
    parts = [as_tensor(t) for t in a if t is not None]
    return [torch.cat(parts, dim=ctx.attr("axis"))]


def _split(ctx: NodeContext, x: Tensor, sizes: list[int], parts: int) -> list[Any]:
    ax = axis(ctx.attr("axis", 0), x.dim())
    if not sizes:
        chunk = -(-x.shape[ax] // parts)
        sizes = [min(chunk, x.shape[ax] - i * chunk) for i in range(parts)]
    return list(torch.split(x, sizes, dim=ax))


@register("Split", 2)
def _split_attribute(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return _split(ctx, a[0], ints(ctx.attr("split")), ctx.num_outputs)


@register("Split", 13)
def _split_input(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return _split(ctx, a[0], ints(optional_input(a, 1)), ctx.num_outputs)


@register("Split", 18)
def _split_num_outputs(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return _split(ctx, a[0], ints(optional_input(a, 1)), ctx.attr("num_outputs", ctx.num_outputs))


def _slice(x: Tensor, starts: list[int], ends: list[int], axes: list[int], steps: list[int]) -> Tensor:
    for start, end, ax, step in zip(starts, ends, axes, steps):
        ax = axis(ax, x.dim())
        size = x.shape[ax]
        if step > 0:
            start = max(0, min(size, start + size if start < 0 else start))
            end = max(0, min(size, end + size if end < 0 else end))
            x = x.narrow(ax, start, max(0, end - start))[(slice(None),) * ax + (slice(None, None, step),)]
        else:
            start = max(-1, min(size - 1, start + size if start < 0 else start))
            end = max(-1, min(size - 1, end + size if end < 0 else end))
            if start <= end:
                x = x.narrow(ax, 0, 0)
            else:
                x = torch.index_select(x, ax, torch.arange(start, end, step))
    return x


@register("Slice", 1)
def _slice_attributes(ctx: NodeContext, a: list[Any]) -> list[Any]:
    starts, ends = ints(ctx.attr("starts")), ints(ctx.attr("ends"))
    axes = ints(ctx.attr("axes")) or list(range(len(starts)))
    return [_slice(a[0], starts, ends, axes, [1] * len(starts))]


@register("Slice", 10)
def _slice_inputs(ctx: NodeContext, a: list[Any]) -> list[Any]:
    starts, ends = ints(a[1]), ints(a[2])
    axes, steps = optional_input(a, 3), optional_input(a, 4)
    return [_slice(a[0], starts, ends, list(range(len(starts))) if axes is None else ints(axes),
                   [1] * len(starts) if steps is None else ints(steps))]


@register("Gather", 1)
def _gather(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x, idx = as_tensor(a[0]), as_tensor(a[1]).long()
    ax = axis(ctx.attr("axis", 0), x.dim())
    idx = torch.where(idx < 0, idx + x.shape[ax], idx)
    out = torch.index_select(x, ax, idx.reshape(-1))
    shape = list(x.shape[:ax]) + list(idx.shape) + list(x.shape[ax + 1:])
    return [out.reshape(shape)]


@register("Expand", 8)
def _expand(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x, shape = as_tensor(a[0]), ints(a[1])
    target = torch.broadcast_shapes(tuple(x.shape), tuple(shape))
    return [x.expand(target)]


@register("Tile", 6)
def _tile(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [as_tensor(a[0]).repeat(ints(a[1]))]


def _pad(ctx: NodeContext, x: Tensor, pads: list[int], value: float, axes: list[int] | None) -> Tensor:
    rank = x.dim()
    axes = list(range(rank)) if axes is None else [axis(v, rank) for v in axes]
    begin, end = pads[: len(axes)], pads[len(axes):]
    flat: list[int] = []
    for ax in reversed(range(rank)):
        k = axes.index(ax) if ax in axes else None
        flat += [0, 0] if k is None else [begin[k], end[k]]
    mode = ctx.attr("mode", "constant")
    if mode == "constant":
        return F.pad(x, flat, value=value)
    if mode not in ("reflect", "edge"):
        raise UnsupportedGraph(f"Pad mode {mode!r}")
    # reflect / edge on any axis: gather with index arrays, one axis at a time.
    for k, ax in enumerate(axes):
        size = x.shape[ax]
        idx = torch.arange(-begin[k], size + end[k])
        if mode == "edge":
            idx = idx.clamp(0, size - 1)
        else:
            period = 2 * (size - 1) if size > 1 else 1
            idx = torch.remainder(idx, period)
            idx = torch.where(idx >= size, period - idx, idx)
        x = torch.index_select(x, ax, idx)
    return x


def _pad_value(a: list[Any]) -> float:
    value = optional_input(a, 2)
    return float(value) if value is not None and as_tensor(value).numel() else 0.0


@register("Pad", 2)
def _pad_attributes(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [_pad(ctx, a[0], ints(ctx.attr("pads")), float(ctx.attr("value", 0.0)), None)]


@register("Pad", 11)
def _pad_inputs(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [_pad(ctx, a[0], ints(a[1]), _pad_value(a), None)]


@register("Pad", 18)
def _pad_axes(ctx: NodeContext, a: list[Any]) -> list[Any]:
    axes = optional_input(a, 3)
    return [_pad(ctx, a[0], ints(a[1]), _pad_value(a), None if axes is None else ints(axes))]


@register("Shape", 1)
def _shape(ctx: NodeContext, a: list[Any]) -> list[Any]:
    dims = list(a[0].shape)[ctx.attr("start", 0):ctx.attr("end", None)]
    return [torch.tensor(dims, dtype=torch.int64)]


@register("Size", 1)
def _size(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [torch.tensor(as_tensor(a[0]).numel(), dtype=torch.int64)]


@register("Range", 11)
def _range(ctx: NodeContext, a: list[Any]) -> list[Any]:
    start, limit, delta = (as_tensor(v) for v in a[:3])
    return [torch.arange(start.item(), limit.item(), delta.item(), dtype=start.dtype)]


@register("ConstantOfShape", 9)
def _constant_of_shape(ctx: NodeContext, a: list[Any]) -> list[Any]:
    value = ctx.attr("value")
    fill = to_tensor(np.asarray(value)).reshape(-1) if value is not None else torch.zeros(1)
    return [fill.expand(ints(a[0])).clone() if ints(a[0]) else fill.reshape(())]


@register("Constant", 1)
def _constant(ctx: NodeContext, a: list[Any]) -> list[Any]:
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in ctx.attrs:
            value = ctx.attrs[key]
            if key in ("value_float", "value_floats"):
                return [torch.tensor(value, dtype=torch.float32)]
            if key in ("value_int", "value_ints"):
                return [torch.tensor(value, dtype=torch.int64)]
            return [to_tensor(np.asarray(value))]
    raise UnsupportedGraph(f"Constant with attributes {sorted(ctx.attrs)}")


def _cast_straight_through(ctx: NodeContext, a: list[Any]) -> list[Any]:
    """Cast with an identity gradient where a float tensor becomes integers (with gradients on):
    the truncated values stay a float tensor (the replica's integers), so the gradient can pass."""
    x, dtype = as_tensor(a[0]), torch_dtype(ctx.attr("to"))
    if torch.is_grad_enabled() and x.is_floating_point() and not dtype.is_floating_point and dtype != torch.bool:
        return [straight_through(x.to(dtype).to(x.dtype), x)]
    return [x.to(dtype)]


@register("Cast", 6, adaptive=_cast_straight_through)
def _cast(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [as_tensor(a[0]).to(torch_dtype(ctx.attr("to")))]


@register("CastLike", 15)
def _cast_like(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [as_tensor(a[0]).to(as_tensor(a[1]).dtype)]
