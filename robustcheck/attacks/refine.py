"""Forward-only polishing of minimal-norm results: a bisection on the segment x → x_adv.

Every point x + t·(x_adv − x), t ∈ [0, 1], lies in the input box (the box is convex and holds
both ends) and has Lp distance t·‖x_adv − x‖_p from x for every p ≥ 1, so the smallest t at
which onnxruntime still calls the point adversarial is a free improvement in every norm but
L0 (whose count does not shrink with t). The bisection asks the oracle only (no gradient), keeps
the smallest t it saw adversarial, and never returns a point it has not verified: rows whose
candidate is not adversarial at t = 1 come back unchanged.

Gradient attacks stop at iterates that overshoot the boundary by up to one step; on MNIST CNNs
this polish takes C&W-L2 6×500 results down by a few percent and FMN/DDN results with
annealed steps by about 1%.

For L1 and L0 a second forward-only path comes first (`refine_threshold`): the perturbation
shrunk towards x by a threshold λ on each coordinate, soft (|δ_i| − λ)₊ for L1 (the path of the
L1 proximal operator, along which ‖δ‖₁ falls monotonically) or hard (δ_i where |δ_i| > λ) for
L0 (the count falls); a bisection on λ keeps the largest λ onnxruntime still calls adversarial.
Every point of either path lies between x and x_adv coordinate by coordinate, so in the box.
"""

from __future__ import annotations

import numpy as np

from robustcheck.model import Model

#: Halvings of t: 2^-16 ≈ 1.5e-5 relative precision on the distance.
DEFAULT_STEPS = 16


def is_adversarial(model: Model, x_cand: np.ndarray, y: np.ndarray, targets: np.ndarray | None) -> np.ndarray:
    """The oracle's verdict per row (label ≠ y, or = target when targeted) for candidates in the box."""
    labels = model.predict(x_cand)
    return labels == targets if targets is not None else labels != y


def refine_segment(model: Model, x: np.ndarray, x_adv: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                   steps: int = DEFAULT_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """(polished candidates, adversarial per row): each adversarial row moved to the smallest
    verified t of the segment x → x_adv after `steps` halvings; other rows unchanged."""
    lo, hi = model.input_range
    ok = is_adversarial(model, x_adv, y, targets) if len(x) else np.zeros(0, dtype=bool)
    out = x_adv.copy()
    rows = np.flatnonzero(ok)
    if not len(rows) or steps <= 0:
        return out, ok
    x0, x1 = x[rows].astype(np.float64), x_adv[rows].astype(np.float64)
    shape = (-1,) + (1,) * (x.ndim - 1)
    low = np.zeros(len(rows))
    high = np.ones(len(rows))
    best = x_adv[rows].copy()
    for _ in range(steps):
        mid = (low + high) / 2
        cand = np.clip(x0 + mid.reshape(shape) * (x1 - x0), lo, hi).astype(x.dtype)
        adv = is_adversarial(model, cand, y[rows], None if targets is None else targets[rows])
        high = np.where(adv, mid, high)
        low = np.where(adv, low, mid)
        best[adv] = cand[adv]
    out[rows] = best
    return out, ok


def refine_threshold(model: Model, x: np.ndarray, x_adv: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                     kind: str, steps: int = DEFAULT_STEPS) -> np.ndarray:
    """Adversarial rows of `x_adv` with their perturbation soft- (`kind` "soft") or hard- ("hard")
    thresholded at the largest λ found adversarial by bisection; other rows unchanged."""
    ok = is_adversarial(model, x_adv, y, targets) if len(x) else np.zeros(0, dtype=bool)
    out = x_adv.copy()
    rows = np.flatnonzero(ok)
    if not len(rows) or steps <= 0:
        return out
    x0 = x[rows].astype(np.float64)
    delta = x_adv[rows].astype(np.float64) - x0
    mag = np.abs(delta)
    shape = (-1,) + (1,) * (x.ndim - 1)
    low = np.zeros(len(rows))
    high = mag.reshape(len(rows), -1).max(axis=1)
    best = x_adv[rows].copy()
    for _ in range(steps):
        mid = (low + high) / 2
        lam = mid.reshape(shape)
        if kind == "soft":
            shrunk = np.sign(delta) * np.maximum(mag - lam, 0.0)
        else:
            shrunk = np.where(mag > lam, delta, 0.0)
        cand = (x0 + shrunk).astype(x.dtype)
        adv = is_adversarial(model, cand, y[rows], None if targets is None else targets[rows])
        low = np.where(adv, mid, low)
        high = np.where(adv, high, mid)
        best[adv] = cand[adv]
    out[rows] = best
    return out


def polish(model: Model, x: np.ndarray, x_adv: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
           norm: str, steps: int = DEFAULT_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """The full forward-only polish of minimal-norm candidates in `norm`: the threshold path for
    L1 (soft) and L0 (hard), then the segment bisection. Returns (candidates, adversarial)."""
    if norm in ("l1", "l0") and steps > 0:
        x_adv = refine_threshold(model, x, x_adv, y, targets, "soft" if norm == "l1" else "hard", steps)
    return refine_segment(model, x, x_adv, y, targets, steps)


class VerifiedBest:
    """Per sample, the smallest-norm candidate onnxruntime has confirmed adversarial so far.

    Replica-driven attacks offer their iterates; only rows that would improve on the best are
    sent to the oracle, so an iterate the replica calls adversarial by a float's width (where the
    oracle may round the other way) never displaces a verified one.
    """

    def __init__(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None) -> None:
        self.model, self.y, self.targets = model, y, targets
        self.x = x.copy()
        self.size = np.full(len(x), np.inf)

    def offer(self, candidates: np.ndarray, sizes: np.ndarray, mask: np.ndarray) -> None:
        """Consider rows `mask` of `candidates` (whose norms are `sizes`)."""
        rows = np.flatnonzero(mask & (sizes < self.size))
        if not len(rows):
            return
        cand = candidates[rows].astype(self.x.dtype, copy=False)
        ok = is_adversarial(self.model, cand, self.y[rows], None if self.targets is None else self.targets[rows])
        self.x[rows[ok]] = cand[ok]
        self.size[rows[ok]] = sizes[rows[ok]]
