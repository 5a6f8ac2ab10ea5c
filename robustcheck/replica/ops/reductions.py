"""Reductions over axes: ReduceSum, ReduceMean, ReduceMax, ... (axes an attribute, later an input)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from robustcheck.replica.coercion import axis
from robustcheck.replica.ops.axes_argument import register_axes_versions
from robustcheck.replica.registry import NodeContext

Tensor = torch.Tensor
Reduction = Callable[[Tensor, tuple[int, ...], bool], Tensor]


def _reduce(ctx: NodeContext, fn: Reduction, over_nothing: Callable[[Tensor], Tensor], x: Tensor,
            axes: list[int]) -> list[Any]:
    keep = bool(ctx.attr("keepdims", 1))
    if not axes:
        if ctx.attr("noop_with_empty_axes", 0):
            return [over_nothing(x)]
        axes = list(range(x.dim()))
    return [fn(x, tuple(axis(v, x.dim()) for v in axes), keep)]


def _same(x: Tensor) -> Tensor:
    return x


def reduction(name: str, fn: Reduction, axes_input_from: int, over_nothing: Callable[[Tensor], Tensor] = _same) -> None:
    """Register a reduction twice: axes as an attribute (opset 1) and as an input (from `axes_input_from`).

    `over_nothing` is the reduction over an empty set of axes (noop_with_empty_axes): what is
    left of it elementwise, |x| for ReduceL1, x² for ReduceSumSquare (as onnxruntime does).
    """
    register_axes_versions(name, axes_input_from, lambda ctx, x, axes: _reduce(ctx, fn, over_nothing, x, axes))


def _prod(x: Tensor, dims: tuple[int, ...], keep: bool) -> Tensor:
    for d in sorted(dims, reverse=True):
        x = x.prod(dim=d, keepdim=keep)
    return x


reduction("ReduceSum", lambda x, d, k: x.sum(dim=d, keepdim=k), 13)
reduction("ReduceMean", lambda x, d, k: x.mean(dim=d, keepdim=k), 18)
reduction("ReduceMax", lambda x, d, k: x.amax(dim=d, keepdim=k), 18)
reduction("ReduceMin", lambda x, d, k: x.amin(dim=d, keepdim=k), 18)
reduction("ReduceProd", _prod, 18)
reduction("ReduceL2", lambda x, d, k: x.pow(2).sum(dim=d, keepdim=k).sqrt(), 18, torch.abs)
reduction("ReduceL1", lambda x, d, k: x.abs().sum(dim=d, keepdim=k), 18, torch.abs)
reduction("ReduceSumSquare", lambda x, d, k: x.pow(2).sum(dim=d, keepdim=k), 18, torch.square)
reduction("ReduceLogSumExp", lambda x, d, k: torch.logsumexp(x, dim=d, keepdim=k), 18)
