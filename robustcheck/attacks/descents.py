"""Optimisation pieces of the C&W attacks: the tanh box, Adam (batched and per sample), and the
per-sample descents C&W-L∞ and C&W-L0 share (with their common hyper-parameters)."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from robustcheck.attacks.const_search import STALL_RATIO, check_interval
from robustcheck.attacks.objectives import ObjectiveAttack
from robustcheck.attacks.params import param
from robustcheck.metrics import atleast_kd


class TanhBox:
    """tanh change of variables between w ∈ ℝ and x ∈ [lo, hi]."""

    def __init__(self, lo: float, hi: float) -> None:
        self.mid, self.half = (hi + lo) / 2, (hi - lo) / 2

    def to_x(self, w: torch.Tensor) -> torch.Tensor:
        return torch.tanh(w) * self.half + self.mid

    def to_w(self, x: torch.Tensor) -> torch.Tensor:
        # Clamp away from ±1 so that atanh is finite for inputs on the box edge.
        return torch.atanh(torch.clamp((x - self.mid) / self.half, -1 + 1e-6, 1 - 1e-6))


def adam(w: torch.Tensor, lr: float) -> torch.optim.Adam:
    """Adam over the whole batch's w; the fused kernel where this torch has it (same maths, one pass)."""
    try:
        return torch.optim.Adam([w], lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam([w], lr=lr)


class PerSampleAdam:
    """Adam (torch's defaults) whose state and step count restart per sample."""

    def __init__(self, w: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.w, self.lr, self.betas, self.eps = w.clone(), lr, betas, eps
        self.m = torch.zeros_like(w)
        self.v = torch.zeros_like(w)
        self.t = torch.zeros(len(w), dtype=torch.long)

    def step(self, rows: torch.Tensor, grad: torch.Tensor) -> None:
        b1, b2 = self.betas
        self.t[rows] += 1
        t = self.t[rows].double()
        m = self.m[rows].mul_(b1).add_(grad, alpha=1 - b1)
        v = self.v[rows].mul_(b2).addcmul_(grad, grad, value=1 - b2)
        self.m[rows], self.v[rows] = m, v
        step = atleast_kd((self.lr / (1 - b1 ** t)).float(), grad.dim())
        denom = (v / atleast_kd((1 - b2 ** t).float(), grad.dim())).sqrt_().add_(self.eps)
        self.w[rows] -= step * m / denom

    def reset(self, rows: torch.Tensor, w: torch.Tensor) -> None:
        self.w[rows] = w
        self.m[rows] = 0
        self.v[rows] = 0
        self.t[rows] = 0


class Descents:
    """Per-sample Adam descents on c·f + penalty that end and restart independently: the
    bookkeeping C&W L∞ and L0 share. Each sample has its own Adam state, its own c (from
    `initial_const`, multiplied by `const_factor` when a descent fails) and its own early-abort
    check; the last 50 values of f are kept as the loss trace (NaN for samples not descending
    at that step)."""

    TRACE_STEPS = 50

    def __init__(self, w0: torch.Tensor, *, learning_rate: float, initial_const: float, max_iterations: int,
                 abort_early: bool, const_factor: float) -> None:
        n = len(w0)
        self.adam = PerSampleAdam(w0, learning_rate)
        self.const = torch.full((n,), float(initial_const))
        self.previous = torch.full((n,), math.inf)
        self.max_iterations = max_iterations
        self.check_every = check_interval(max_iterations)
        self.abort_early = abort_early
        self.const_factor = const_factor
        self._rows: deque[torch.Tensor] = deque(maxlen=self.TRACE_STEPS)

    def params(self, rows: torch.Tensor) -> torch.Tensor:
        """The current w of `rows`, as a fresh leaf to differentiate."""
        return self.adam.w[rows].clone().requires_grad_(True)

    def record(self, rows: torch.Tensor, f: torch.Tensor) -> None:
        row = torch.full((len(self.const),), math.nan)
        row[rows] = f.detach()
        self._rows.append(row)

    def advance(self, rows: torch.Tensor, grad: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
        """One Adam step for `rows`; returns those whose descent has now failed (out of
        iterations, or loss no longer improving at a check) with their c already multiplied."""
        self.adam.step(rows, grad)
        t = self.adam.t[rows]
        at_check = (t % self.check_every == 0) if self.abort_early else torch.zeros_like(t, dtype=torch.bool)
        stalled = at_check & (loss > self.previous[rows] * STALL_RATIO)
        self.previous[rows[at_check]] = loss[at_check]
        lost = rows[stalled | (t >= self.max_iterations)]
        self.const[lost] *= self.const_factor
        return lost

    def restart(self, rows: torch.Tensor, w: torch.Tensor) -> None:
        """Start a new descent for `rows` from `w`, with fresh Adam state."""
        self.adam.reset(rows, w)
        self.previous[rows] = math.inf

    def trace(self) -> np.ndarray | None:
        return torch.stack(list(self._rows), dim=1).numpy().astype(np.float64) if self._rows else None


@dataclass(kw_only=True)
class DescentAttack(ObjectiveAttack):
    """A C&W-family attack whose samples descend independently, c growing on each failed
    descent: C&W-L∞ and C&W-L0."""

    largest_const: float = param(20.0, low=0.0, high=1e12, low_open=True, doc="a sample stops once c passes this")
    const_factor: float = param(2.0, low=1.0, high=1e3, low_open=True, doc="c grows by this factor after a failure")

    def descents(self, w0: torch.Tensor) -> Descents:
        """Fresh per-sample descents from `w0` with this attack's settings."""
        return Descents(w0, learning_rate=self.learning_rate, initial_const=self.initial_const,
                        max_iterations=self.max_iterations, abort_early=self.abort_early,
                        const_factor=self.const_factor)
