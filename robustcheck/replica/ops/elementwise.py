"""Elementwise arithmetic and unary math (numpy broadcasting from opset 7/8 on)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from robustcheck.replica.coercion import as_tensor, tensor_pair
from robustcheck.replica.gradient_rules import smooth_sign, straight_through
from robustcheck.replica.registry import NodeContext, register

Tensor = torch.Tensor


@register("Add", 7)
def _add(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [torch.add(*tensor_pair(a[0], a[1]))]


@register("Sub", 7)
def _sub(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [torch.sub(*tensor_pair(a[0], a[1]))]


@register("Mul", 7)
def _mul(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [torch.mul(*tensor_pair(a[0], a[1]))]


@register("Div", 7)
def _div(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x, y = tensor_pair(a[0], a[1])
    if not x.is_floating_point() and not y.is_floating_point():
        return [torch.div(x, y, rounding_mode="trunc")]
    return [x / y]


@register("Pow", 7)
def _pow(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x, y = tensor_pair(a[0], a[1])
    return [torch.pow(x, y.to(x.dtype) if x.is_floating_point() else y).to(x.dtype)]


@register("Mod", 10)
def _mod(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x, y = tensor_pair(a[0], a[1])
    return [torch.fmod(x, y) if ctx.attr("fmod", 0) else torch.remainder(x, y)]


def unary(name: str, since: int, fn: Callable[[Tensor], Tensor], differentiable: bool = True,
          adaptive: Callable[[Tensor], Tensor] | None = None) -> None:
    """Register a one-input, attribute-free operator (with `adaptive`, its surrogate-gradient form)."""
    surrogate = None if adaptive is None else (lambda ctx, a: [adaptive(a[0])])
    register(name, since, differentiable=differentiable, adaptive=surrogate)(lambda ctx, a: [fn(a[0])])


def _straight_through(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """`fn` forward, identity backward."""
    return lambda x: straight_through(fn(x), x)


# Opset 6 dropped the legacy `consumed_inputs` attribute; the semantics are unchanged since.
unary("Sqrt", 6, torch.sqrt)
unary("Exp", 6, torch.exp)
unary("Log", 6, torch.log)
unary("Abs", 6, torch.abs)
unary("Neg", 6, torch.neg)
unary("Reciprocal", 6, torch.reciprocal)
unary("Erf", 9, torch.erf)
unary("Floor", 6, torch.floor, differentiable=False, adaptive=_straight_through(torch.floor))
unary("Ceil", 6, torch.ceil, differentiable=False, adaptive=_straight_through(torch.ceil))
# ONNX and torch both round half to even.
unary("Round", 11, torch.round, differentiable=False, adaptive=_straight_through(torch.round))
unary("Sign", 9, torch.sign, differentiable=False, adaptive=smooth_sign)


def variadic(name: str, since: int, fn: Callable[[Tensor, Tensor], Tensor],
             finish: Callable[[Tensor, int], Tensor] | None = None) -> None:
    """Register an n-input broadcasting reduction (Max, Min, Sum, Mean)."""

    def impl(ctx: NodeContext, a: list[Any]) -> list[Any]:
        parts = [as_tensor(t) for t in a if t is not None]
        out = parts[0]
        for t in parts[1:]:
            out = fn(out, t)
        return [finish(out, len(parts)) if finish else out]

    register(name, since)(impl)


# Opset 8 introduced multidirectional broadcasting for these.
variadic("Max", 8, torch.maximum)
variadic("Min", 8, torch.minimum)
variadic("Sum", 8, torch.add)
variadic("Mean", 8, torch.add, lambda total, n: total / n)
