"""Normalisation at inference: BatchNormalization, Instance/LayerNormalization (Dropout is in random.py)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from robustcheck.replica.coercion import axis, optional_input
from robustcheck.replica.registry import NodeContext, UnsupportedGraph, register


@register("BatchNormalization", 7)
def _batch_norm(ctx: NodeContext, a: list[Any]) -> list[Any]:
    if ctx.attr("training_mode", 0):
        raise UnsupportedGraph("BatchNormalization in training mode")
    if not ctx.attr("spatial", 1):  # opsets 7-8 only: per-activation statistics
        raise UnsupportedGraph("BatchNormalization with spatial = 0")
    x, scale, bias, mean, var = a[:5]
    shape = [1, -1] + [1] * (x.dim() - 2)
    inv = torch.rsqrt(var.reshape(shape) + ctx.attr("epsilon", 1e-5))
    return [(x - mean.reshape(shape)) * inv * scale.reshape(shape) + bias.reshape(shape)]


@register("InstanceNormalization", 6)
def _instance_norm(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x, scale, bias = a[:3]
    return [F.instance_norm(x, weight=scale, bias=bias, eps=ctx.attr("epsilon", 1e-5))]


@register("LayerNormalization", 17)
def _layer_norm(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x, scale = a[0], a[1]
    bias = optional_input(a, 2)
    ax = axis(ctx.attr("axis", -1), x.dim())
    shape = list(x.shape[ax:])
    scale = scale.expand(shape) if scale.dim() != len(shape) else scale
    if bias is not None and bias.dim() != len(shape):
        bias = bias.expand(shape)
    return [F.layer_norm(x, shape, weight=scale, bias=bias, eps=ctx.attr("epsilon", 1e-5))]
