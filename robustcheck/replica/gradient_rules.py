"""Backward rules of the replica's two modes: `exact` and `adaptive`.

`exact`: true gradients. Round, Floor, quantisers and comparisons have a zero (or no) gradient
almost everywhere, so an attack on such a graph is blind; this is what the gradient-masking
diagnostics judge.

`adaptive` (BPDA, Athalye, Carlini & Wagner 2018): the forward stays exact, bit for bit, and
the backward is the gradient of a smooth surrogate g. `straight_through(exact, g(x))` returns
`exact + (g(x) - g(x).detach())`: the added term is exactly zero in float arithmetic (x - x = 0
for every finite x), so the value is the exact one while autograd sees g. Surrogates:

- Round, Floor, Ceil, casts to integer types: g(x) = x (straight-through);
- quantisers (QuantizeLinear, requantisation inside QLinear* ops): g(v) = clamp(v, qmin, qmax),
  the identity inside the representable range and zero outside it (clipped straight-through);
- Sign: g(x) = tanh(x / w); comparisons a > b (and <, ≥, ≤): g = sigmoid((a - b) / w). The width
  w is the spacing of the thresholds when the other operand is a constant holding several values
  (a thermometer code then gets a smooth staircase whose slope matches its steps), else a fixed
  width in the graph's own units (STEP_WIDTH, SIGN_WIDTH: suited to inputs in [0, 1]).
"""

from __future__ import annotations

from typing import Any, Literal

import torch

Tensor = torch.Tensor

ReplicaMode = Literal["exact", "adaptive"]
MODES: tuple[ReplicaMode, ...] = ("exact", "adaptive")

#: Width of the sigmoid standing in for a comparison against a single threshold: slope 1 at the
#: threshold, as a straight-through unit step would have.
STEP_WIDTH = 0.25
#: Width of tanh(x / w) standing in for Sign, a step of height 2: slope 2 at 0, as for the comparisons.
SIGN_WIDTH = 0.5


def straight_through(exact: Tensor, surrogate: Tensor) -> Tensor:
    """`exact`'s value with `surrogate`'s gradient (`exact` itself where gradients are off).

    Grad mode, not `requires_grad`, decides: inside torch.func.vmap (per-sample graphs) tensors
    report requires_grad False although autograd tracks them.
    """
    if not torch.is_grad_enabled():
        return exact
    return exact.detach().to(surrogate.dtype) + (surrogate - surrogate.detach())


def rounded(x: Tensor, adaptive: bool) -> Tensor:
    """Round half to even; straight-through in adaptive mode."""
    return straight_through(torch.round(x), x) if adaptive else torch.round(x)


def saturated(v: Tensor, low: Any, high: Any, adaptive: bool, clip: bool = True) -> Tensor:
    """round(v) clamped to [low, high]: the quantiser's integer; clipped straight-through in
    adaptive mode (`clip=False`: plain straight-through, for a range that holds v by construction)."""
    exact = torch.clamp(torch.round(v), low, high)
    if not adaptive:
        return exact
    return straight_through(exact, torch.clamp(v, low, high) if clip else v)


def threshold_width(other: Tensor | None) -> float:
    """The surrogate width of a comparison against the constant `other` (see the module docstring)."""
    if other is not None and other.numel() > 1 and other.is_floating_point():
        values = torch.unique(other.detach().flatten())
        if len(values) > 1:
            gaps = values[1:] - values[:-1]
            return float(gaps.median())
    return STEP_WIDTH


def smooth_step(exact: Tensor, difference: Tensor, width: float) -> Tensor:
    """A comparison's 0/1 result (as `difference`'s float type) with the gradient of sigmoid(difference / width)."""
    return straight_through(exact.to(difference.dtype), torch.sigmoid(difference / width))


def smooth_sign(x: Tensor) -> Tensor:
    """sign(x) with the gradient of tanh(x / SIGN_WIDTH)."""
    return straight_through(torch.sign(x), torch.tanh(x / SIGN_WIDTH))
