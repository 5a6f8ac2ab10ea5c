"""Gradient-free probes that query only the oracle (onnxruntime): they need no replica.

RandomNoise draws uniform corners of the L∞ ball. SquareAttack is the score-based L∞ attack
of Andriushchenko et al., "Square Attack: a query-efficient black-box adversarial attack via
random search" (ECCV 2020): random square patches of ±ε, kept when the margin loss improves.
When they succeed where gradient attacks failed, the gradients are not to be trusted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from robustcheck.attacks.base import BatchOutput, BoundedAttack
from robustcheck.attacks.params import MAX_ITERATIONS, param
from robustcheck.metrics import channel_axis, margin
from robustcheck.model import Model


def _oracle_margin(model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None) -> np.ndarray:
    """`metrics.margin` of the oracle's logits, in float64: ≤ 0 when (about to be) adversarial."""
    z = torch.from_numpy(model.oracle_logits(x).astype(np.float64))
    return margin(z, torch.from_numpy(y), None if targets is None else torch.from_numpy(targets)).numpy()


@dataclass(kw_only=True)
class RandomNoise(BoundedAttack):
    """`draws` random sign vectors of size ε (L∞ corners), kept on the first oracle success."""

    name = "random-noise"
    norm = "linf"
    needs_replica = False
    stochastic = True

    draws: int = param(20, low=1, high=MAX_ITERATIONS, doc="random corners tried per sample")

    def run_batch(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                  generator: torch.Generator) -> BatchOutput:
        lo, hi = model.input_range
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        best = x.copy()
        done = np.zeros(len(x), dtype=bool)
        for _ in range(self.draws):
            noise = rng.choice([-1.0, 1.0], size=x.shape).astype(x.dtype) * self.epsilon
            cand = np.clip(x + noise, lo, hi).astype(x.dtype)
            ok = _oracle_margin(model, cand, y, targets) <= 0
            new = ok & ~done
            best[new] = cand[new]
            done |= ok
            if done.all():
                break
        return BatchOutput(best)


@dataclass(kw_only=True)
class SquareAttack(BoundedAttack):
    """Square Attack (L∞, margin loss), oracle queries only; `queries` per sample."""

    name = "square"
    norm = "linf"
    needs_replica = False
    stochastic = True

    queries: int = param(1000, low=1, high=MAX_ITERATIONS, doc="oracle queries per sample")
    p_init: float = param(0.8, low=0.0, high=1.0, low_open=True, doc="initial fraction of the image a square covers")

    def run_batch(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                  generator: torch.Generator) -> BatchOutput:
        lo, hi = model.input_range
        eps = self.epsilon
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        axis = channel_axis(model.input_spec.layout)
        # View every sample as (channels, height, width); non-images become one row of features.
        if axis == 1:
            to_chw, from_chw = (lambda a: a), (lambda a: a)
        elif axis == 3:
            to_chw, from_chw = (lambda a: a.transpose(0, 3, 1, 2)), (lambda a: a.transpose(0, 2, 3, 1))
        else:
            shape = x.shape
            to_chw = lambda a: a.reshape(len(a), 1, 1, -1)  # noqa: E731
            from_chw = lambda a: a.reshape((len(a),) + shape[1:])  # noqa: E731
        x_chw = to_chw(x)
        n, c, h, w = x_chw.shape
        # Initialisation: vertical stripes of ±ε.
        stripes = rng.choice([-eps, eps], size=(n, c, 1, w)).astype(x.dtype)
        adv = np.clip(x_chw + stripes, lo, hi)
        current = _oracle_margin(model, from_chw(adv), y, targets)
        for i in range(1, self.queries):
            active = current > 0
            if not active.any():
                break
            p = self._p(i)
            side = max(1, min(h, int(round(math.sqrt(p * h * w))))) if h > 1 else 1
            side_w = side if h > 1 else max(1, int(round(p * w)))
            idx = np.flatnonzero(active)
            cand = adv[idx].copy()
            for k in range(len(idx)):
                r = rng.integers(0, h - side + 1)
                s = rng.integers(0, w - side_w + 1)
                window = (slice(None), slice(r, r + side), slice(s, s + side_w))
                cand[k][window] = np.clip(x_chw[idx[k]][window] + rng.choice([-eps, eps], size=(c, 1, 1)), lo, hi)
            new_margin = _oracle_margin(model, from_chw(cand), y[idx], None if targets is None else targets[idx])
            improved = new_margin < current[idx]
            adv[idx[improved]] = cand[improved]
            current[idx[improved]] = new_margin[improved]
        return BatchOutput(from_chw(adv).astype(x.dtype))

    def _p(self, i: int) -> float:
        """The paper's piecewise-constant schedule of the square's area fraction (for 10,000 queries)."""
        scaled = int(i / self.queries * 10000)
        halvings = sum(scaled > t for t in (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000))
        return self.p_init / 2**halvings
