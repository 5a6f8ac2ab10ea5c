"""Linear algebra and convolution: MatMul, Gemm, Conv, ConvTranspose, Einsum."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from robustcheck.replica.coercion import ints, optional_input
from robustcheck.replica.ops.window_padding import symmetric_padding
from robustcheck.replica.registry import NodeContext, UnsupportedGraph, register


@register("MatMul", 1)
def _matmul(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [torch.matmul(a[0], a[1])]


@register("Gemm", 7)
def _gemm(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x, w = a[0], a[1]
    bias = optional_input(a, 2)
    if (ctx.attr("transB", 0) and not ctx.attr("transA", 0) and ctx.attr("alpha", 1.0) == 1.0
            and ctx.attr("beta", 1.0) == 1.0 and (bias is None or bias.dim() == 1)):
        return [F.linear(x, w, bias)]  # the exporters' nn.Linear form: one fused kernel, as natively
    if ctx.attr("transA", 0):
        x = x.transpose(0, 1)
    if ctx.attr("transB", 0):
        w = w.transpose(0, 1)
    y = ctx.attr("alpha", 1.0) * (x @ w)
    if bias is not None:
        y = y + ctx.attr("beta", 1.0) * bias
    return [y]


_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def _spatial_rank(ctx: NodeContext, x: Any) -> int:
    spatial = x.dim() - 2
    if spatial not in _CONV:
        raise UnsupportedGraph(f"{ctx.op_type} on a rank-{x.dim()} input (1-3 spatial axes are supported)")
    return spatial


@register("Conv", 1)
def _conv(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x, w = a[0], a[1]
    b = optional_input(a, 2)
    spatial = _spatial_rank(ctx, x)
    x, padding = symmetric_padding(ctx, x, list(w.shape[2:]))
    return [_CONV[spatial](x, w, b, stride=ints(ctx.attr("strides")) or 1, padding=padding,
                           dilation=ints(ctx.attr("dilations")) or 1, groups=ctx.attr("group", 1))]


@register("ConvTranspose", 1)
def _conv_transpose(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x, w = a[0], a[1]
    b = optional_input(a, 2)
    spatial = _spatial_rank(ctx, x)
    strides = ints(ctx.attr("strides")) or [1] * spatial
    pads = ints(ctx.attr("pads")) or [0] * (2 * spatial)
    dilations = ints(ctx.attr("dilations")) or [1] * spatial
    output_padding = ints(ctx.attr("output_padding")) or [0] * spatial
    if ctx.attr("auto_pad", "NOTSET") not in ("NOTSET", "VALID") or ctx.attr("output_shape") is not None:
        raise UnsupportedGraph("ConvTranspose with auto_pad SAME or output_shape")
    y = _CONV_TRANSPOSE[spatial](x, w, b, stride=strides, padding=0, output_padding=output_padding,
                                 groups=ctx.attr("group", 1), dilation=dilations)
    # Crop the pads (possibly asymmetric) from the full result.
    index = [slice(None), slice(None)]
    for i in range(spatial):
        index.append(slice(pads[i], y.shape[2 + i] - pads[spatial + i]))
    return [y[tuple(index)]]


@register("Einsum", 12)
def _einsum(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [torch.einsum(ctx.attr("equation"), *a)]
