"""Gradient-free probes that query only the oracle (onnxruntime): they need no replica.

RandomNoise draws uniform corners of the L∞ ball. SquareAttack is the score-based L∞ attack
of Andriushchenko et al., "Square Attack: a query-efficient black-box adversarial attack via
random search" (ECCV 2020): random square patches of ±ε, kept when the margin loss improves.
When they succeed where gradient attacks failed, the gradients are not to be trusted.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from robustcheck.attacks.base import Attack, BatchOutput
from robustcheck.model import Model


def _margin(model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None) -> np.ndarray:
    """Oracle margin, ≤ 0 when adversarial: z_y − max_{j≠y} z_j (targeted: max_{j≠t} z_j − z_t)."""
    z = model.oracle_logits(x).astype(np.float64)
    classes = y if targets is None else targets
    chosen = z[np.arange(len(z)), classes]
    z[np.arange(len(z)), classes] = -np.inf
    others = z.max(axis=1)
    return chosen - others if targets is None else others - chosen


class RandomNoise(Attack):
    """`draws` random sign vectors of size ε (L∞ corners), kept on the first oracle success."""

    name = "random-noise"
    norm = "linf"
    needs_replica = False

    def __init__(self, *, epsilon: float = 0.3, draws: int = 20, batch_size: int = 100) -> None:
        super().__init__(batch_size=batch_size)
        self._epsilon = float(epsilon)
        self.draws = draws

    def _run_batch(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                   generator: torch.Generator) -> BatchOutput:
        lo, hi = model.input_range
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        best = x.copy()
        done = np.zeros(len(x), dtype=bool)
        for _ in range(self.draws):
            noise = rng.choice([-1.0, 1.0], size=x.shape).astype(x.dtype) * self._epsilon
            cand = np.clip(x + noise, lo, hi).astype(x.dtype)
            ok = _margin(model, cand, y, targets) <= 0
            new = ok & ~done
            best[new] = cand[new]
            done |= ok
            if done.all():
                break
        return BatchOutput(best)


class SquareAttack(Attack):
    """Square Attack (L∞, margin loss), oracle queries only; `queries` per sample."""

    name = "square"
    norm = "linf"
    needs_replica = False

    def __init__(self, *, epsilon: float = 0.3, queries: int = 1000, p_init: float = 0.8, batch_size: int = 100) -> None:
        super().__init__(batch_size=batch_size)
        self._epsilon = float(epsilon)
        self.queries = queries
        self.p_init = p_init

    def _run_batch(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                   generator: torch.Generator) -> BatchOutput:
        lo, hi = model.input_range
        eps = self._epsilon
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        layout = model.input_spec.layout
        # View every sample as (channels, height, width); non-images become one row of features.
        if layout == "NCHW":
            to_chw, from_chw = (lambda a: a), (lambda a: a)
        elif layout == "NHWC":
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
        margin = _margin(model, from_chw(adv), y, targets)
        for i in range(1, self.queries):
            active = margin > 0
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
            new_margin = _margin(model, from_chw(cand), y[idx], None if targets is None else targets[idx])
            improved = new_margin < margin[idx]
            adv[idx[improved]] = cand[improved]
            margin[idx[improved]] = new_margin[improved]
        return BatchOutput(from_chw(adv).astype(x.dtype))

    def _p(self, i: int) -> float:
        """The paper's piecewise-constant schedule of the square's area fraction (for 10,000 queries)."""
        scaled = int(i / self.queries * 10000)
        halvings = sum(scaled > t for t in (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000))
        return self.p_init / 2**halvings
