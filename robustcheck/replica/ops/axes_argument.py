"""Operators whose `axes` moved from an attribute to an optional second input (Squeeze and
Unsqueeze in opset 13, ReduceSum in 13, the other reductions in 18)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from robustcheck.replica.coercion import ints, optional_input
from robustcheck.replica.registry import NodeContext, register

AxesFn = Callable[[NodeContext, torch.Tensor, list[int]], list[Any]]


def register_axes_versions(op_type: str, input_since: int, fn: AxesFn) -> None:
    """Register `fn(ctx, x, axes)` twice: axes from the attribute (opset 1) and from input 1
    (from `input_since` on)."""
    register(op_type, 1)(lambda ctx, a: fn(ctx, a[0], ints(ctx.attr("axes"))))
    register(op_type, input_since)(lambda ctx, a: fn(ctx, a[0], ints(optional_input(a, 1))))
