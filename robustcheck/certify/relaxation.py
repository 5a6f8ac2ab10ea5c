"""Linear relaxations of the piecewise-linear nodes, given bounds [l, u] on their inputs.

ReLU-type (y = x for x ≥ 0, a·x below; Relu is a = 0): for a ≤ 1 the function is convex, so
the chord through (l, f(l)) and (u, f(u)) bounds it from above and every line through the
origin with slope in [a, 1] bounds it from below (CROWN picks 1 when u ≥ −l, else a; α-CROWN
optimises the slope per bound). For a > 1 the roles swap. Stable neurons (l ≥ 0 or u ≤ 0)
are exact.

MaxPool: y ≥ x_k for every window member, so y ≥ x_k* with k* the member of largest lower bound;
when l_k* ≥ u_j for every other member j the max is x_k* exactly; otherwise y ≤ max_j u_j, or
the line y ≤ x_k* + max_{j≠k*} u_j − l_k*, whichever is smaller at the middle of x_k*'s range.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from robustcheck.certify.network import MaxPoolNode, ReluNode

Tensor = torch.Tensor


@dataclass
class ReluRelaxation:
    """Per neuron: lower line s_l·x + b_l, upper line s_u·x + b_u; `free` marks the side whose
    slope may be chosen in [slope_min, slope_max] (through the origin, unstable neurons only)."""

    lower_slope: Tensor
    lower_bias: Tensor
    upper_slope: Tensor
    upper_bias: Tensor
    unstable: Tensor
    free_is_lower: bool
    slope_min: float
    slope_max: float


def relu_relaxation(node: ReluNode, low: Tensor, high: Tensor) -> ReluRelaxation:
    a = node.slope
    unstable = (low < 0) & (high > 0)
    stable_slope = torch.where(low >= 0, torch.ones_like(low), torch.full_like(low, a))
    width = torch.where(unstable, high - low, torch.ones_like(low))
    chord = torch.where(unstable, (high - a * low) / width, stable_slope)
    chord_bias = torch.where(unstable, low * (a - chord), torch.zeros_like(low))
    convex = a <= 1.0
    lo_s, hi_s = (a, 1.0) if convex else (1.0, a)
    # Adaptive choice through the origin: the steeper slope when the positive side is wider.
    if convex:
        adaptive = torch.where(high >= -low, torch.full_like(low, hi_s), torch.full_like(low, lo_s))
    else:
        adaptive = torch.where(high >= -low, torch.full_like(low, lo_s), torch.full_like(low, hi_s))
    free = torch.where(unstable, adaptive, stable_slope)
    zero = torch.zeros_like(low)
    if convex:
        return ReluRelaxation(free, zero, chord, chord_bias, unstable, True, lo_s, hi_s)
    return ReluRelaxation(chord, chord_bias, free, zero, unstable, False, lo_s, hi_s)


def relu_interval(node: ReluNode, low: Tensor, high: Tensor) -> tuple[Tensor, Tensor]:
    """Exact output range of a ReLU-type node over [low, high] (extremes at the ends or at 0)."""
    fl, fh = node.apply(low), node.apply(high)
    zero_inside = (low < 0) & (high > 0)
    out_low = torch.minimum(fl, fh)
    out_high = torch.maximum(fl, fh)
    out_low = torch.where(zero_inside, torch.minimum(out_low, torch.zeros_like(low)), out_low)
    out_high = torch.where(zero_inside, torch.maximum(out_high, torch.zeros_like(low)), out_high)
    return out_low, out_high


def relu_backward(relax: ReluRelaxation, rows: Tensor, free_slope: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """rows·y ≥ rows_in·x + bias for the lower bound of rows·y; returns (rows_in, bias per row)."""
    pos, neg = rows.clamp(min=0), rows.clamp(max=0)
    s_l, s_u = relax.lower_slope, relax.upper_slope
    if free_slope is not None:
        if relax.free_is_lower:
            s_l = torch.where(relax.unstable, free_slope, s_l)
        else:
            s_u = torch.where(relax.unstable, free_slope, s_u)
    rows_in = pos * s_l + neg * s_u
    bias = (pos * relax.lower_bias + neg * relax.upper_bias).flatten(1).sum(dim=1)
    return rows_in, bias


@dataclass
class MaxPoolRelaxation:
    """Per output window: the member x_k* (flat input index) and the upper bound y ≤ x_k*·take + offset."""

    argmax: Tensor
    upper_takes_member: Tensor
    upper_offset: Tensor
    input_numel: int


def maxpool_relaxation(node: MaxPoolNode, low: Tensor, high: Tensor) -> MaxPoolRelaxation:
    w = node.windows
    valid = w >= 0
    idx = w.clamp_min(0)
    lw = torch.where(valid, low.reshape(-1)[idx], -torch.inf)
    uw = torch.where(valid, high.reshape(-1)[idx], -torch.inf)
    k = lw.argmax(dim=1, keepdim=True)
    l_star = lw.gather(1, k).squeeze(1)
    u_star = uw.gather(1, k).squeeze(1)
    others = uw.scatter(1, k, -torch.inf).amax(dim=1)  # max upper bound of the other members
    top = torch.maximum(u_star, others)
    line_offset = torch.clamp(others - l_star, min=0.0)  # y ≤ x_k* + offset
    decisive = l_star >= others
    line_mid = (u_star - l_star) / 2 + torch.maximum(others, l_star)
    takes = decisive | (line_mid < top)
    offset = torch.where(decisive, torch.zeros_like(top), torch.where(takes, line_offset, top))
    return MaxPoolRelaxation(w.gather(1, k).squeeze(1), takes, offset, low.numel())


def maxpool_interval(node: MaxPoolNode, low: Tensor, high: Tensor) -> tuple[Tensor, Tensor]:
    return node.apply(low), node.apply(high)


def maxpool_backward(relax: MaxPoolRelaxation, rows: Tensor, in_shape: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """Lower-bound backward through a MaxPool: rows (S, *out) -> (rows_in (S, *in), bias)."""
    flat = rows.reshape(len(rows), -1)
    pos, neg = flat.clamp(min=0), flat.clamp(max=0)
    member = pos + torch.where(relax.upper_takes_member, neg, torch.zeros_like(neg))
    rows_in = torch.zeros(len(rows), relax.input_numel, dtype=rows.dtype)
    rows_in.index_add_(1, relax.argmax, member)
    bias = neg @ relax.upper_offset
    return rows_in.reshape((len(rows),) + in_shape), bias
