"""Activation functions, Clip and (Log)Softmax."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from robustcheck.replica.coercion import as_tensor, axis, optional_input
from robustcheck.replica.ops.elementwise import unary
from robustcheck.replica.registry import NodeContext, register

Tensor = torch.Tensor

unary("Relu", 6, torch.relu)
unary("Sigmoid", 6, torch.sigmoid)
unary("Tanh", 6, torch.tanh)
unary("Softplus", 1, F.softplus)


@register("LeakyRelu", 6)
def _leaky_relu(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [F.leaky_relu(a[0], ctx.attr("alpha", 0.01))]


@register("PRelu", 7)
def _prelu(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x, slope = a[0], as_tensor(a[1], a[0])
    return [torch.where(x >= 0, x, x * slope)]


@register("Elu", 6)
def _elu(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [F.elu(a[0], alpha=ctx.attr("alpha", 1.0))]


@register("Selu", 6)
def _selu(ctx: NodeContext, a: list[Any]) -> list[Any]:
    alpha, gamma = ctx.attr("alpha", 1.67326319217681884765625), ctx.attr("gamma", 1.05070102214813232421875)
    x = a[0]
    return [gamma * torch.where(x > 0, x, alpha * (torch.exp(x) - 1))]


@register("HardSigmoid", 6)
def _hard_sigmoid(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [torch.clamp(ctx.attr("alpha", 0.2) * a[0] + ctx.attr("beta", 0.5), 0.0, 1.0)]


@register("HardSwish", 14)
def _hard_swish(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    return [x * torch.clamp(x / 6.0 + 0.5, 0.0, 1.0)]


@register("Gelu", 20)
def _gelu(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [F.gelu(a[0], approximate="tanh" if ctx.attr("approximate", "none") == "tanh" else "none")]


def _clamp(x: Tensor, lo: float | None, hi: float | None) -> Tensor:
    if lo is not None and hi is not None and lo > hi:
        return torch.full_like(x, hi)
    lo = None if lo == -math.inf else lo
    hi = None if hi == math.inf else hi
    return x if lo is None and hi is None else torch.clamp(x, lo, hi)


@register("Clip", 6)
def _clip_attributes(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [_clamp(a[0], ctx.attr("min", -math.inf), ctx.attr("max", math.inf))]


@register("Clip", 11)
def _clip_inputs(ctx: NodeContext, a: list[Any]) -> list[Any]:
    lo, hi = optional_input(a, 1), optional_input(a, 2)
    return [_clamp(a[0], None if lo is None else float(lo), None if hi is None else float(hi))]


def _softmax_fn(ctx: NodeContext) -> Any:
    return torch.softmax if ctx.op_type == "Softmax" else torch.log_softmax


@register("LogSoftmax", 1)
@register("Softmax", 1)
def _softmax_2d(ctx: NodeContext, a: list[Any]) -> list[Any]:
    # Before opset 13 the input is coerced to 2-D at `axis` (default 1) and normalised per row.
    x = a[0]
    ax = axis(ctx.attr("axis", 1), x.dim())
    flat = x.reshape(int(np.prod(x.shape[:ax])), -1)
    return [_softmax_fn(ctx)(flat, dim=1).reshape(x.shape)]


@register("LogSoftmax", 13)
@register("Softmax", 13)
def _softmax_axis(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [_softmax_fn(ctx)(a[0], dim=ctx.attr("axis", -1))]
