"""Random operators: drawn anew on every forward (never constant-folded), non-differentiable."""

from __future__ import annotations

from typing import Any

import torch

from robustcheck.replica.coercion import torch_dtype
from robustcheck.replica.registry import NodeContext, register


@register("RandomUniformLike", 1, differentiable=False, never_fold=True)
@register("RandomNormalLike", 1, differentiable=False, never_fold=True)
def _random_like(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    dtype = torch_dtype(ctx.attr("dtype")) if ctx.attr("dtype") is not None else x.dtype
    if ctx.op_type == "RandomNormalLike":
        out = torch.randn(x.shape, dtype=dtype) * ctx.attr("scale", 1.0) + ctx.attr("mean", 0.0)
    else:
        low, high = ctx.attr("low", 0.0), ctx.attr("high", 1.0)
        out = torch.rand(x.shape, dtype=dtype) * (high - low) + low
    return [out]
