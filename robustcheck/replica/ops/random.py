"""Random operators, drawn anew on every forward (never constant-folded): RandomNormal(Like),
RandomUniform(Like), Bernoulli, Multinomial, and Dropout (random in training mode only).

The replica samples from the same distributions as onnxruntime, not the same draws (the
`seed` attributes are ignored); its parity with onnxruntime is checked in distribution.
"""

from __future__ import annotations

from typing import Any

import torch

from robustcheck.replica.coercion import as_tensor, ints, optional_input, torch_dtype
from robustcheck.replica.registry import NodeContext, register

Tensor = torch.Tensor


def _draw(ctx: NodeContext, shape: list[int], dtype: torch.dtype) -> Tensor:
    if ctx.op_type.startswith("RandomNormal"):
        return torch.randn(shape, dtype=dtype) * ctx.attr("scale", 1.0) + ctx.attr("mean", 0.0)
    low, high = ctx.attr("low", 0.0), ctx.attr("high", 1.0)
    return torch.rand(shape, dtype=dtype) * (high - low) + low


@register("RandomUniformLike", 1, differentiable=False, random=True)
@register("RandomNormalLike", 1, differentiable=False, random=True)
def _random_like(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    dtype = torch_dtype(ctx.attr("dtype")) if ctx.attr("dtype") is not None else x.dtype
    return [_draw(ctx, list(x.shape), dtype)]


@register("RandomUniform", 1, differentiable=False, random=True)
@register("RandomNormal", 1, differentiable=False, random=True)
def _random(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [_draw(ctx, ints(ctx.attr("shape")), torch_dtype(ctx.attr("dtype", 1)))]


@register("Bernoulli", 15, differentiable=False, random=True)
def _bernoulli(ctx: NodeContext, a: list[Any]) -> list[Any]:
    # onnxruntime 1.32's CPU kernel draws 1 with probability 1 - p where the ONNX spec says p
    # (measured: input 0.1 gives a mean of 0.9). The oracle decides what the model does, so the
    # replica draws as onnxruntime does; the parity case fails the day onnxruntime changes it.
    p = as_tensor(a[0])
    dtype = torch_dtype(ctx.attr("dtype")) if ctx.attr("dtype") is not None else p.dtype
    return [torch.bernoulli(1.0 - p.detach().to(torch.float64)).to(dtype)]


@register("Multinomial", 7, differentiable=False, random=True)
def _multinomial(ctx: NodeContext, a: list[Any]) -> list[Any]:
    """Samples of class indices per row; the input holds unnormalised log-probabilities."""
    probs = torch.softmax(as_tensor(a[0]).detach().to(torch.float64), dim=-1)
    samples = torch.multinomial(probs, int(ctx.attr("sample_size", 1)), replacement=True)
    return [samples.to(torch_dtype(ctx.attr("dtype", 6)))]


@register("Dropout", 7, never_fold=True)
def _dropout_inference(ctx: NodeContext, a: list[Any]) -> list[Any]:
    # Before opset 12 Dropout has no training mode at inference: the identity, mask all true.
    x = a[0]
    return [x, torch.ones_like(x, dtype=torch.bool)][: ctx.num_outputs]


def _training(ctx: NodeContext, constant_inputs: list[Any]) -> bool:
    """Dropout draws a mask when its training_mode input is true (or not a constant)."""
    if len(constant_inputs) < 3:
        return False
    mode = constant_inputs[2]
    return mode is None or bool(as_tensor(mode).reshape(-1)[0])


@register("Dropout", 12, random=_training)
def _dropout(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    ratio_input, mode = optional_input(a, 1), optional_input(a, 2)
    ratio = 0.5 if ratio_input is None else float(as_tensor(ratio_input).reshape(-1)[0])
    if mode is None or not bool(as_tensor(mode).reshape(-1)[0]) or ratio == 0.0:
        return [x, torch.ones_like(x, dtype=torch.bool)][: ctx.num_outputs]
    keep = torch.rand(x.shape, dtype=torch.float32) >= ratio
    return [x * keep.to(x.dtype) / (1.0 - ratio), keep][: ctx.num_outputs]
