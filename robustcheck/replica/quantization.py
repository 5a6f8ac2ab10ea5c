"""Integer arithmetic of quantized operators, as onnxruntime's CPU kernels (MLAS) do it.

The replica carries a quantized tensor as a float tensor holding its integer values, so that
gradients can pass (autograd has no integer tensors); zero points and scales keep their own
dtype, and a zero point's dtype is what tells an operator its integer type and range.

onnxruntime's arithmetic, reproduced here:
- QuantizeLinear: saturate(round_half_even(x / scale) + zero_point), x / scale in float32;
- integer products accumulate exactly in int32; the replica accumulates in float32 when every
  partial sum provably stays below 2**24 (float32 integers are then exact) and in float64 otherwise;
- requantisation: float32(accumulator + int32 bias) × float32 multiplier (e.g. x_scale × w_scale
  / y_scale, in that order), rounded half to even, plus the output zero point, saturated.
Rounding and saturation take their backward rule from gradient_rules.py (exact or clipped
straight-through, by mode).
"""

from __future__ import annotations

from typing import Any

import torch

from robustcheck.replica.coercion import as_tensor
from robustcheck.replica.gradient_rules import saturated
from robustcheck.replica.registry import UnsupportedGraph

Tensor = torch.Tensor

#: Integer types of quantized tensors and their ranges.
INTEGER_RANGES: dict[torch.dtype, tuple[int, int]] = {
    torch.uint8: (0, 255),
    torch.int8: (-128, 127),
    torch.int16: (-32768, 32767),
    torch.int32: (-(2**31), 2**31 - 1),
}
FLOAT32_EXACT = 2**24


def integer_range(zero_point: Any, default: torch.dtype = torch.uint8) -> tuple[int, int]:
    """The range of the integer type a zero point (or its absence: `default`) stands for."""
    dtype = default if zero_point is None else as_tensor(zero_point).dtype
    if dtype == torch.uint16:
        return (0, 65535)
    if dtype not in INTEGER_RANGES:
        raise UnsupportedGraph(f"quantized type {dtype} (int8, uint8, int16, uint16 and int32 are supported)")
    return INTEGER_RANGES[dtype]


def zero_point_value(zero_point: Any, like: Tensor) -> Tensor:
    """A zero point as a float tensor (0 when absent), detached: it is a parameter, not data."""
    if zero_point is None:
        return torch.zeros((), dtype=like.dtype if like.is_floating_point() else torch.float32)
    return as_tensor(zero_point).detach().to(like.dtype if like.is_floating_point() else torch.float32)


def along_axis(value: Tensor, rank: int, axis: int) -> Tensor:
    """A per-tensor (scalar) or per-axis (1-D) parameter shaped to broadcast along `axis` of a rank-`rank` tensor."""
    if value.dim() == 0 or value.numel() == 1:
        return value.reshape(())
    shape = [1] * rank
    shape[axis % rank] = value.numel()
    return value.reshape(shape)


def integers(x: Any, dtype: torch.dtype = torch.float32) -> Tensor:
    """An integer tensor (a real one from an initializer, or the replica's float-held one) as `dtype` floats."""
    t = as_tensor(x)
    return t if t.dtype == dtype else t.to(dtype)


def quantize(x: Tensor, scale: Tensor, zero_point: Any, axis: int, adaptive: bool,
             default: torch.dtype = torch.uint8, clip: bool = True) -> Tensor:
    """ONNX QuantizeLinear with onnxruntime's arithmetic; float-held integers out (`clip`: see `saturated`)."""
    low, high = integer_range(zero_point, default)
    x32 = x.float()
    s = along_axis(as_tensor(scale).detach().float(), x.dim(), axis)
    zp = along_axis(zero_point_value(zero_point, x32), x.dim(), axis)
    return saturated(x32 / s, low - zp, high - zp, adaptive, clip) + zp


def dequantize(x: Any, scale: Tensor, zero_point: Any, axis: int) -> Tensor:
    """ONNX DequantizeLinear: (x - zero_point) × scale in float32."""
    q = integers(x)
    s = along_axis(as_tensor(scale).float(), q.dim(), axis)
    zp = along_axis(zero_point_value(zero_point, q), q.dim(), axis)
    return (q - zp) * s


def requantize(accumulator: Tensor, multiplier: Tensor, zero_point: Any, axis: int, adaptive: bool) -> Tensor:
    """An int32 accumulator (held exactly in float32 or float64) to the output's integers."""
    low, high = integer_range(zero_point)
    value = accumulator.to(torch.float32) * along_axis(multiplier, accumulator.dim(), axis)
    zp = zero_point_value(zero_point, value)
    return saturated(value, float(low) - zp, float(high) - zp, adaptive) + zp


def accumulation_dtype(terms: int, x_bound: float, w_bound: float) -> torch.dtype:
    """float32 when `terms` products of magnitude ≤ x_bound × w_bound cannot leave float32's exact integers."""
    return torch.float32 if terms * x_bound * w_bound < FLOAT32_EXACT else torch.float64


def centred(x: Any, zero_point: Any, dtype: torch.dtype) -> Tensor:
    """x - zero_point (a per-tensor zero point) as exact integers in `dtype`."""
    return integers(x, dtype) - zero_point_value(zero_point, integers(x, dtype))


def bound_of(zero_point: Any, default: torch.dtype = torch.uint8) -> float:
    """The largest |x - zero_point| an integer of this type can give."""
    low, high = integer_range(zero_point, default)
    return float(high - low)
