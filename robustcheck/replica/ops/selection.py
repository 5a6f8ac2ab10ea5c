"""Comparisons, logic, Where, TopK, ArgMax/ArgMin, IsNaN/IsInf (mostly non-differentiable)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from robustcheck.replica.coercion import as_tensor, axis, ints, tensor_pair
from robustcheck.replica.gradient_rules import smooth_step, threshold_width
from robustcheck.replica.ops.elementwise import unary
from robustcheck.replica.registry import NodeContext, OpFn, register

Tensor = torch.Tensor


def _smooth(fn: Callable[[Tensor, Tensor], Tensor], sign: int) -> OpFn:
    """The comparison with a sigmoid surrogate gradient (sign +1: a > b steps up in a; -1: a < b).

    With gradients off the result is the exact bool; with them on, the 0/1 result as a float
    tensor (Cast, Where, Not, And and Or accept it as ONNX's bool).
    """

    def impl(ctx: NodeContext, a: list[Any]) -> list[Any]:
        x, y = tensor_pair(a[0], a[1])
        exact = fn(x, y)
        if not torch.is_grad_enabled() or not (x.is_floating_point() or y.is_floating_point()):
            return [exact]
        constant = ctx.constant_inputs or (False, False)
        width = threshold_width(y if constant[1] else x if constant[0] else None)
        return [smooth_step(exact, sign * (x - y), width)]

    return impl


def _compare(name: str, since: int, fn: Callable[[Tensor, Tensor], Tensor], sign: int = 0) -> None:
    register(name, since, differentiable=False, adaptive=_smooth(fn, sign) if sign else None)(
        lambda ctx, a: [fn(*tensor_pair(a[0], a[1]))])


# Opset 7 replaced the legacy broadcast/axis attributes with numpy broadcasting.
_compare("Equal", 7, torch.eq)
_compare("Greater", 7, torch.gt, +1)
_compare("Less", 7, torch.lt, -1)
_compare("GreaterOrEqual", 12, torch.ge, +1)
_compare("LessOrEqual", 12, torch.le, -1)
_compare("And", 7, torch.logical_and)
_compare("Or", 7, torch.logical_or)
unary("Not", 1, torch.logical_not, differentiable=False)


@register("Where", 9)
def _where(ctx: NodeContext, a: list[Any]) -> list[Any]:
    cond, x, y = as_tensor(a[0]).bool(), as_tensor(a[1]), as_tensor(a[2])
    return [torch.where(cond, x, y)]


def _topk(ctx: NodeContext, x: Tensor, k: int) -> list[Any]:
    values, indices = torch.topk(x, k, dim=ctx.attr("axis", -1), largest=bool(ctx.attr("largest", 1)),
                                 sorted=bool(ctx.attr("sorted", 1)))
    return [values, indices]


@register("TopK", 1)
def _topk_attribute(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return _topk(ctx, a[0], int(ctx.attr("k")))


@register("TopK", 10)
def _topk_input(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return _topk(ctx, a[0], ints(a[1])[0])


@register("ArgMin", 1, differentiable=False)
@register("ArgMax", 1, differentiable=False)
def _arg_extreme(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    fn = torch.argmax if ctx.op_type == "ArgMax" else torch.argmin
    dim, keep = ctx.attr("axis", 0), bool(ctx.attr("keepdims", 1))
    if ctx.attr("select_last_index", 0):  # ties go to the last index: search the flipped axis
        ax = axis(dim, x.dim())
        return [x.shape[ax] - 1 - fn(x.flip(ax), dim=ax, keepdim=keep)]
    return [fn(x, dim=dim, keepdim=keep)]


@register("IsNaN", 9, differentiable=False)
def _isnan(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [torch.isnan(a[0])]


@register("IsInf", 10, differentiable=False)
def _isinf(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    pos, neg = ctx.attr("detect_positive", 1), ctx.attr("detect_negative", 1)
    return [(torch.isposinf(x) & bool(pos)) | (torch.isneginf(x) & bool(neg))]
