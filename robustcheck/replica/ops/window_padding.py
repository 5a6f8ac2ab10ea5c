"""Padding geometry shared by the sliding-window operators (Conv, MaxPool, AveragePool)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from robustcheck.replica.coercion import ints
from robustcheck.replica.registry import NodeContext

Tensor = torch.Tensor


def explicit_pads(ctx: NodeContext, x: Tensor, kernel: list[int]) -> tuple[list[int], list[int]]:
    """Begin and end padding per spatial axis, resolving `pads` and `auto_pad`."""
    spatial = x.dim() - 2
    pads = ints(ctx.attr("pads")) or [0] * (2 * spatial)
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if auto_pad == "VALID":
        return [0] * spatial, [0] * spatial
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        strides = ints(ctx.attr("strides")) or [1] * spatial
        dil = ints(ctx.attr("dilations")) or [1] * spatial
        begin, end = [], []
        for i in range(spatial):
            size = x.shape[2 + i]
            out = -(-size // strides[i])
            total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - size)
            small, big = total // 2, total - total // 2
            begin.append(small if auto_pad == "SAME_UPPER" else big)
            end.append(big if auto_pad == "SAME_UPPER" else small)
        return begin, end
    return pads[:spatial], pads[spatial:]


def torch_pad_order(begin: Sequence[int], end: Sequence[int]) -> list[int]:
    """ONNX begin/end pads as F.pad's (last axis first) flat list."""
    flat: list[int] = []
    for i in reversed(range(len(begin))):
        flat += [begin[i], end[i]]
    return flat


def symmetric_padding(
    ctx: NodeContext, x: Tensor, kernel: Sequence[int], value: float = 0.0
) -> tuple[Tensor, list[int]]:
    """Symmetric padding for torch, or `x` pre-padded with `value` when the padding is asymmetric."""
    begin, end = explicit_pads(ctx, x, list(kernel))
    if begin == end:
        return x, begin
    return F.pad(x, torch_pad_order(begin, end), value=value), [0] * len(begin)


def crop_ceil_mode(ctx: NodeContext, y: Tensor, x: Tensor, kernel: Sequence[int], begin: Sequence[int],
                   end: Sequence[int]) -> Tensor:
    """Drop the trailing windows torch keeps in ceil mode after pre-padding.

    onnxruntime keeps a last, partial window only when it starts inside the input or its
    leading padding; torch, given an input already padded at the end, also keeps one that
    starts in the trailing padding.
    """
    spatial = len(kernel)
    strides = ints(ctx.attr("strides")) or [1] * spatial
    dil = ints(ctx.attr("dilations")) or [1] * spatial
    index: list[slice] = [slice(None), slice(None)]
    for i in range(spatial):
        size = x.shape[2 + i]
        out = -(-(size + begin[i] + end[i] - dil[i] * (kernel[i] - 1) - 1) // strides[i]) + 1
        if (out - 1) * strides[i] >= size + begin[i]:
            out -= 1
        index.append(slice(0, out))
    return y[tuple(index)]
