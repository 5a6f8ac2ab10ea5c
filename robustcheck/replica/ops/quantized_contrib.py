"""onnxruntime's quantized contrib operators (domain com.microsoft), as its quantizer emits them:
QGemm, QLinearAdd, QLinearMul, QLinearSigmoid, QLinearLeakyRelu, QLinearAveragePool,
QLinearGlobalAveragePool, QLinearConcat.

Element-wise ones are computed the way onnxruntime's lookup tables are built (dequantize,
apply the float function, quantize); QGemm and the global average pool accumulate integers and
requantize (replica/quantization.py). QLinearAdd/Mul use float arithmetic where onnxruntime's
x86 kernels use fixed-point multipliers: within one output step, as the parity tests measure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from robustcheck.replica.coercion import as_tensor, axis, ints, optional_input
from robustcheck.replica.gradient_rules import saturated
from robustcheck.replica.ops.pooling import average_pool
from robustcheck.replica.ops.quantized import register_rounding
from robustcheck.replica.ops.window_padding import explicit_pads, torch_pad_order
from robustcheck.replica.quantization import (
    accumulation_dtype,
    bound_of,
    dequantize,
    integer_range,
    integers,
    quantize,
    requantize,
    zero_point_value,
)
from robustcheck.replica.registry import NodeContext, OpFn

Tensor = torch.Tensor
MS = "com.microsoft"


def _channels_last(ctx: NodeContext, x: Tensor, to_first: bool) -> Tensor:
    """NHWC <-> NCHW for the ops with a `channels_last` attribute."""
    if not ctx.attr("channels_last", 0):
        return x
    rank = x.dim()
    perm = [0, rank - 1, *range(1, rank - 1)] if to_first else [0, *range(2, rank), 1]
    return x.permute(perm)


def _qgemm(adaptive: bool) -> OpFn:
    def impl(ctx: NodeContext, a: list[Any]) -> list[Any]:
        lhs, a_scale, a_zero, rhs, b_scale, b_zero = a[:6]
        bias, y_scale, y_zero = optional_input(a, 6), optional_input(a, 7), optional_input(a, 8)
        lhs_t, rhs_t = as_tensor(lhs), as_tensor(rhs)
        if ctx.attr("transA", 0):
            lhs_t = lhs_t.transpose(0, 1)
        if ctx.attr("transB", 0):
            rhs_t = rhs_t.transpose(0, 1)
        dtype = accumulation_dtype(int(rhs_t.shape[0]), bound_of(a_zero), bound_of(b_zero, rhs_t.dtype))
        b_zp = zero_point_value(b_zero, integers(rhs_t, dtype)).reshape(-1)
        acc = torch.matmul(integers(lhs_t, dtype) - zero_point_value(a_zero, integers(lhs_t, dtype)),
                           integers(rhs_t, dtype) - (b_zp if b_zp.numel() > 1 else b_zp.reshape(())))
        if bias is not None:
            acc = acc + integers(bias, dtype)
        scale = ctx.attr("alpha", 1.0) * as_tensor(a_scale).float() * as_tensor(b_scale).float().reshape(-1)
        if y_scale is None:
            return [acc.to(torch.float32) * scale]
        return [requantize(acc, scale / as_tensor(y_scale).float(), y_zero, -1, adaptive)]

    return impl


def _binary(combine: Callable[[Tensor, Tensor], Tensor]) -> Callable[[bool], OpFn]:
    def factory(adaptive: bool) -> OpFn:
        def impl(ctx: NodeContext, a: list[Any]) -> list[Any]:
            x, x_scale, x_zero, y, y_scale, y_zero, z_scale, z_zero = a[:8]
            value = combine(dequantize(x, as_tensor(x_scale), x_zero, 1), dequantize(y, as_tensor(y_scale), y_zero, 1))
            return [quantize(value, as_tensor(z_scale), z_zero, 1, adaptive)]

        return impl

    return factory


def _unary(fn: Callable[[NodeContext, Tensor], Tensor]) -> Callable[[bool], OpFn]:
    """Dequantize, apply `fn` in float32, quantize: what onnxruntime's 256-entry tables hold."""

    def factory(adaptive: bool) -> OpFn:
        def impl(ctx: NodeContext, a: list[Any]) -> list[Any]:
            x, x_scale, x_zero, y_scale, y_zero = a[:5]
            value = fn(ctx, dequantize(x, as_tensor(x_scale), x_zero, 1))
            return [quantize(value, as_tensor(y_scale), y_zero, 1, adaptive)]

        return impl

    return factory


def _average_pool(adaptive: bool) -> OpFn:
    """onnxruntime's QLinearAveragePool: dequantized values summed one by one in window order
    (row-major) in float32, divided by the count, then round(mean / y_scale + y_zero_point).
    Its rounding ties are common (a mean of integers at the input's own scale), so the order
    matters; 2-D windows follow it exactly, other ranks average with AveragePool (one step)."""

    def impl(ctx: NodeContext, a: list[Any]) -> list[Any]:
        x, x_scale, x_zero, y_scale, y_zero = a[:5]
        value = _channels_last(ctx, dequantize(x, as_tensor(x_scale), x_zero, 1), True)
        kernel = ints(ctx.attr("kernel_shape"))
        if value.dim() != 4 or ctx.attr("ceil_mode", 0) or any(d != 1 for d in ints(ctx.attr("dilations"))):
            mean = average_pool(ctx, value)
        else:
            mean = _window_mean(ctx, value, kernel)
        low, high = integer_range(y_zero)
        zp = zero_point_value(y_zero, mean)
        q = saturated(mean / as_tensor(y_scale).float() + zp, float(low), float(high), adaptive)
        return [_channels_last(ctx, q, False)]

    return impl


def _window_mean(ctx: NodeContext, x: Tensor, kernel: list[int]) -> Tensor:
    begin, end = explicit_pads(ctx, x, kernel)
    strides = ints(ctx.attr("strides")) or [1, 1]
    flat = torch_pad_order(begin, end)
    patches = F.unfold(F.pad(x, flat), tuple(kernel), stride=tuple(strides))
    n, c = x.shape[:2]
    size = kernel[0] * kernel[1]
    patches = patches.reshape(n, c, size, -1)
    total = patches[:, :, 0]
    for i in range(1, size):  # float32 sums in onnxruntime's order (padding adds exact zeros)
        total = total + patches[:, :, i]
    if ctx.attr("count_include_pad", 0):
        count = torch.full_like(total[:1, :1], float(size))
    else:
        ones = F.pad(torch.ones_like(x[:1, :1]), flat)
        count = F.unfold(ones, tuple(kernel), stride=tuple(strides)).sum(dim=1, keepdim=True)
    rows = (x.shape[2] + begin[0] + end[0] - kernel[0]) // strides[0] + 1
    return (total / count).reshape(n, c, rows, -1)


def _global_average_pool(adaptive: bool) -> OpFn:
    """Integer sums over the image, requantized with x_scale / (y_scale × image size) (MLAS)."""

    def impl(ctx: NodeContext, a: list[Any]) -> list[Any]:
        x, x_scale, x_zero, y_scale, y_zero = a[:5]
        q = _channels_last(ctx, integers(x, torch.float64), True)
        size = int(torch.tensor(q.shape[2:]).prod()) if q.dim() > 2 else 1
        total = q.sum(dim=tuple(range(2, q.dim())), keepdim=True) - zero_point_value(x_zero, q) * size
        multiplier = as_tensor(x_scale).float() / (as_tensor(y_scale).float() * float(size))
        return [_channels_last(ctx, requantize(total, multiplier.reshape(()), y_zero, 1, adaptive), False)]

    return impl


def _concat(adaptive: bool) -> OpFn:
    def impl(ctx: NodeContext, a: list[Any]) -> list[Any]:
        y_scale, y_zero = as_tensor(a[0]), a[1]
        parts = []
        for i in range(2, len(a) - 2, 3):
            x, x_scale, x_zero = a[i:i + 3]
            same = torch.equal(as_tensor(x_scale).float(), y_scale.float()) and torch.equal(
                zero_point_value(x_zero, y_scale.float()), zero_point_value(y_zero, y_scale.float()))
            parts.append(integers(x) if same else quantize(dequantize(x, as_tensor(x_scale), x_zero, 1), y_scale,
                                                           y_zero, 1, adaptive))
        return [torch.cat(parts, dim=axis(ctx.attr("axis"), parts[0].dim()))]

    return impl


register_rounding("QGemm", 1, _qgemm, domain=MS)
register_rounding("QLinearAdd", 1, _binary(torch.add), domain=MS)
register_rounding("QLinearMul", 1, _binary(torch.mul), domain=MS)
register_rounding("QLinearSigmoid", 1, _unary(lambda ctx, x: torch.sigmoid(x)), domain=MS)
register_rounding("QLinearLeakyRelu", 1, _unary(lambda ctx, x: F.leaky_relu(x, ctx.attr("alpha", 0.01))), domain=MS)
register_rounding("QLinearAveragePool", 1, _average_pool, domain=MS)
register_rounding("QLinearGlobalAveragePool", 1, _global_average_pool, domain=MS)
register_rounding("QLinearConcat", 1, _concat, domain=MS)
