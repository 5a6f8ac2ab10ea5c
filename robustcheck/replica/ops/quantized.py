"""Quantized operators of the ONNX domain: Quantize/DequantizeLinear, DynamicQuantizeLinear,
QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger.

Arithmetic as onnxruntime does it (see replica/quantization.py); quantized tensors travel as
float tensors holding their integers. Each rounding operator is registered twice: exact (zero
gradient through the rounding) and adaptive (clipped straight-through).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from robustcheck.replica.coercion import as_tensor, ints, optional_input, torch_dtype
from robustcheck.replica.ops.window_padding import symmetric_padding
from robustcheck.replica.quantization import (
    accumulation_dtype,
    along_axis,
    bound_of,
    centred,
    dequantize,
    integers,
    quantize,
    requantize,
    zero_point_value,
)
from robustcheck.replica.registry import NodeContext, OpFn, UnsupportedGraph, register

Tensor = torch.Tensor
Factory = Callable[[bool], OpFn]


def register_rounding(op_type: str, since: int, factory: Factory, *, domain: str = "",
                      per_sample: bool = False) -> None:
    """Register `factory(False)` as the exact implementation and `factory(True)` as the adaptive one."""
    register(op_type, since, domain=domain, differentiable=False, adaptive=factory(True),
             per_sample=per_sample)(factory(False))


# -- QuantizeLinear / DequantizeLinear -----------------------------------------------------------

def _check_plain(ctx: NodeContext) -> None:
    if ctx.attr("block_size", 0):
        raise UnsupportedGraph(f"{ctx.op_type} with block_size (blocked quantization)")


def _quantize_linear(axis_attribute: bool) -> Factory:
    def factory(adaptive: bool) -> OpFn:
        def impl(ctx: NodeContext, a: list[Any]) -> list[Any]:
            _check_plain(ctx)
            axis = ctx.attr("axis", 1) if axis_attribute else 1
            zero_point = optional_input(a, 2)
            default = torch.uint8
            if zero_point is None and ctx.attr("output_dtype"):
                default = torch_dtype(ctx.attr("output_dtype"))
            return [quantize(as_tensor(a[0]), as_tensor(a[1]), zero_point, axis, adaptive, default)]

        return impl

    return factory


register_rounding("QuantizeLinear", 10, _quantize_linear(False))
register_rounding("QuantizeLinear", 13, _quantize_linear(True))


@register("DequantizeLinear", 10)
def _dequantize_per_tensor(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [dequantize(a[0], as_tensor(a[1]), optional_input(a, 2), 1)]


@register("DequantizeLinear", 13)
def _dequantize(ctx: NodeContext, a: list[Any]) -> list[Any]:
    _check_plain(ctx)
    return [dequantize(a[0], as_tensor(a[1]), optional_input(a, 2), ctx.attr("axis", 1))]


# -- DynamicQuantizeLinear: one scale over the whole tensor (the batch included) ------------------

def _dynamic_quantize(adaptive: bool) -> OpFn:
    def impl(ctx: NodeContext, a: list[Any]) -> list[Any]:
        x = as_tensor(a[0]).float()
        # Exact: the scale keeps its true gradient (through the extreme values). Adaptive: the
        # scale is a constant, so that quantize-then-rescale is the identity for the backward.
        source = x.detach() if adaptive else x
        low = torch.clamp(source.amin(), max=0.0)
        high = torch.clamp(source.amax(), min=0.0)
        scale = torch.where(high == low, torch.ones_like(high), (high - low) / 255.0)
        zero_point = torch.round(torch.clamp(0.0 - low.detach() / scale.detach(), 0.0, 255.0)).to(torch.uint8)
        # The range spans every value by construction: no clipping of the straight-through gradient.
        return [quantize(x, scale, zero_point, 1, adaptive, clip=False), scale, zero_point]

    return impl


register_rounding("DynamicQuantizeLinear", 11, _dynamic_quantize, per_sample=True)


# -- integer convolution and matrix products ----------------------------------------------------

def _conv_integers(ctx: NodeContext, x: Any, w: Any, x_zero: Any, w_zero: Any) -> Tensor:
    """Σ (x - x_zero)(w - w_zero) exactly, as float32 or float64 integers (NCHW, groups, pads)."""
    weight = as_tensor(w)
    spatial = weight.dim() - 2
    if spatial not in (1, 2, 3):
        raise UnsupportedGraph(f"{ctx.op_type} with {spatial} spatial axes")
    terms = int(weight[0].numel())
    dtype = accumulation_dtype(terms, bound_of(x_zero), bound_of(w_zero, weight.dtype))
    xs = centred(x, x_zero, dtype)
    w_zp = zero_point_value(w_zero, integers(weight, dtype))
    ws = integers(weight, dtype) - along_axis(w_zp, weight.dim(), 0)
    xs, padding = symmetric_padding(ctx, xs, list(weight.shape[2:]))
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[spatial]
    return conv(xs, ws, None, stride=ints(ctx.attr("strides")) or 1, padding=padding,
                dilation=ints(ctx.attr("dilations")) or 1, groups=ctx.attr("group", 1))


def _matmul_integers(a: Any, b: Any, a_zero: Any, b_zero: Any) -> Tensor:
    """Σ (a - a_zero)(b - b_zero) exactly; b's zero point may be per column (its last axis)."""
    rhs = as_tensor(b)
    dtype = accumulation_dtype(int(rhs.shape[-2]), bound_of(a_zero), bound_of(b_zero, rhs.dtype))
    lhs = as_tensor(a)
    a_zp = zero_point_value(a_zero, integers(lhs, dtype))
    if a_zp.dim() == 1 and a_zp.numel() > 1:  # per-row zero point of A
        a_zp = a_zp.reshape(-1, 1)
    b_zp = zero_point_value(b_zero, integers(rhs, dtype))
    return torch.matmul(integers(lhs, dtype) - a_zp, integers(rhs, dtype) - b_zp)


@register("ConvInteger", 10)
def _conv_integer(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [_conv_integers(ctx, a[0], a[1], optional_input(a, 2), optional_input(a, 3)).float()]


@register("MatMulInteger", 10)
def _matmul_integer(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [_matmul_integers(a[0], a[1], optional_input(a, 2), optional_input(a, 3)).float()]


def output_multiplier(x_scale: Any, w_scale: Any, y_scale: Any) -> Tensor:
    """x_scale × w_scale / y_scale in float32, in onnxruntime's order."""
    return (as_tensor(x_scale).float() * as_tensor(w_scale).float().reshape(-1)) / as_tensor(y_scale).float()


def _qlinear_conv(adaptive: bool) -> OpFn:
    def impl(ctx: NodeContext, a: list[Any]) -> list[Any]:
        x, x_scale, x_zero, w, w_scale, w_zero, y_scale, y_zero = a[:8]
        acc = _conv_integers(ctx, x, w, x_zero, w_zero)
        bias = optional_input(a, 8)
        if bias is not None:
            acc = acc + along_axis(integers(bias, acc.dtype), acc.dim(), 1)
        return [requantize(acc, output_multiplier(x_scale, w_scale, y_scale), y_zero, 1, adaptive)]

    return impl


def _qlinear_matmul(adaptive: bool) -> OpFn:
    def impl(ctx: NodeContext, a: list[Any]) -> list[Any]:
        x, x_scale, x_zero, w, w_scale, w_zero, y_scale, y_zero = a[:8]
        acc = _matmul_integers(x, w, x_zero, w_zero)
        return [requantize(acc, output_multiplier(x_scale, w_scale, y_scale), y_zero, -1, adaptive)]

    return impl


register_rounding("QLinearConv", 10, _qlinear_conv)
register_rounding("QLinearMatMul", 10, _qlinear_matmul)
