"""Pooling: MaxPool, AveragePool and their global forms."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from robustcheck.replica.coercion import ints
from robustcheck.replica.ops.window_padding import crop_ceil_mode, explicit_pads, symmetric_padding, torch_pad_order
from robustcheck.replica.registry import NodeContext, UnsupportedGraph, register

_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def _kernel(ctx: NodeContext) -> list[int]:
    kernel = ints(ctx.attr("kernel_shape"))
    if len(kernel) not in _MAX_POOL:
        raise UnsupportedGraph(f"{ctx.op_type} with kernel_shape {kernel} (1-3 spatial axes are supported)")
    return kernel


@register("MaxPool", 1)
def _max_pool(ctx: NodeContext, a: list[Any]) -> list[Any]:
    kernel = _kernel(ctx)
    spatial = len(kernel)
    x = a[0]
    padded, padding = symmetric_padding(ctx, x, kernel, value=-math.inf)
    ceil_mode = bool(ctx.attr("ceil_mode", 0))
    y = _MAX_POOL[spatial](padded, kernel, stride=ints(ctx.attr("strides")) or [1] * spatial, padding=padding,
                           dilation=ints(ctx.attr("dilations")) or 1, ceil_mode=ceil_mode)
    if ceil_mode and padded is not x:
        y = crop_ceil_mode(ctx, y, x, kernel, *explicit_pads(ctx, x, kernel))
    return [y]


@register("AveragePool", 1)
def _avg_pool(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [average_pool(ctx, a[0])]


def average_pool(ctx: NodeContext, x: torch.Tensor) -> torch.Tensor:
    """AveragePool of `x` by the node's attributes (also what QLinearAveragePool averages)."""
    kernel = _kernel(ctx)
    spatial = len(kernel)
    if any(d != 1 for d in ints(ctx.attr("dilations"))):
        raise UnsupportedGraph("AveragePool with dilations")
    count_include_pad = bool(ctx.attr("count_include_pad", 0))
    begin, end = explicit_pads(ctx, x, kernel)
    strides = ints(ctx.attr("strides")) or [1] * spatial
    ceil_mode = bool(ctx.attr("ceil_mode", 0))
    pool = _AVG_POOL[spatial]
    if begin == end and all(2 * p <= k for p, k in zip(begin, kernel)):
        return pool(x, kernel, stride=strides, padding=begin, ceil_mode=ceil_mode,
                    count_include_pad=count_include_pad)
    flat = torch_pad_order(begin, end)
    padded = F.pad(x, flat)
    total = pool(padded, kernel, stride=strides, ceil_mode=ceil_mode) * float(np.prod(kernel))
    if count_include_pad:
        y = total / float(np.prod(kernel))
    else:
        ones = F.pad(torch.ones_like(x[:1, :1]), flat)
        y = total / (pool(ones, kernel, stride=strides, ceil_mode=ceil_mode) * float(np.prod(kernel)))
    return crop_ceil_mode(ctx, y, x, kernel, begin, end) if ceil_mode else y


@register("GlobalAveragePool", 1)
def _global_avg_pool(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    return [x.mean(dim=tuple(range(2, x.dim())), keepdim=True)]


@register("GlobalMaxPool", 1)
def _global_max_pool(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    return [x.amax(dim=tuple(range(2, x.dim())), keepdim=True)]
