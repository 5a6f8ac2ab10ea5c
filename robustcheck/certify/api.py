"""The certification API: `certify` at a fixed ε and `certified_radius` by bisection over ε."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from robustcheck.certify.certifier import Certifier
from robustcheck.model import Model


@dataclass(frozen=True)
class Certificate:
    """Per sample: proven robust within ε (certified) and the margin lower bound behind it."""

    norm: str
    epsilon: float
    method: str
    certified: np.ndarray  # bool (N,): correct and margin_lower > slack
    margin_lower: np.ndarray  # (N,) lower bound of z_y − max_{j≠y} z_j over the region
    correct: np.ndarray  # bool (N,): the oracle classifies the clean sample correctly
    unstable: np.ndarray  # (N,) ReLU-type neurons CROWN had to relax
    wall_time: float

    @property
    def certified_accuracy(self) -> float:
        """Share of ALL samples proven robust (misclassified ones count as not robust)."""
        return float(self.certified.mean()) if len(self.certified) else 0.0


@dataclass(frozen=True)
class CertifiedRadius:
    """Per sample: the largest ε proven (`radius`, 0 when misclassified) and the smallest ε tried
    that was not proven (`unproven`, inf when the search never failed)."""

    norm: str
    method: str
    radius: np.ndarray
    unproven: np.ndarray
    correct: np.ndarray
    evaluations: np.ndarray  # CROWN runs per sample
    wall_time: np.ndarray  # seconds per sample


def _check_batch(model: Model, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64).reshape(-1)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} samples but y has {len(y)} labels")
    return x, y


def certify(model: Model, x: np.ndarray, y: np.ndarray, *, norm: str = "linf", epsilon: float,
            alpha: bool = False) -> Certificate:
    """Prove robustness of each sample within `epsilon` (L∞, L2 or L1 ball ∩ the input box) with
    CROWN (α-CROWN when `alpha`). Raises NotVerifiable naming unsupported operators."""
    start = time.perf_counter()
    x, y = _check_batch(model, x, y)
    certifier = Certifier(model, alpha=alpha)
    correct = model.predict(x.astype(model.input_spec.dtype)) == y
    margins = np.empty(len(x))
    unstable = np.zeros(len(x), dtype=np.int64)
    certified = np.zeros(len(x), dtype=bool)
    for i in range(len(x)):
        bound = certifier.bound(x[i], int(y[i]), norm, epsilon)
        margins[i], unstable[i] = bound.margin_lower, bound.unstable
        certified[i] = bool(correct[i]) and bound.margin_lower > certifier.slack(x[i])
    return Certificate(norm, float(epsilon), "alpha-crown" if alpha else "crown", certified, margins, correct,
                       unstable, time.perf_counter() - start)


def certified_radius(model: Model, x: np.ndarray, y: np.ndarray, *, norm: str = "linf",
                     upper: np.ndarray | float | None = None, rtol: float = 0.01, alpha: bool = False,
                     max_evaluations: int = 40) -> CertifiedRadius:
    """The largest ε CROWN proves per sample, by bisection (geometric once a proven ε is known)
    between 0 and `upper` (e.g. the attack's distance; default: the input box's diameter),
    until the bracket's ratio is within 1 + rtol."""
    x, y = _check_batch(model, x, y)
    certifier = Certifier(model, alpha=alpha)
    correct = model.predict(x.astype(model.input_spec.dtype)) == y
    lo_box, hi_box = model.input_range
    size = int(np.prod(x.shape[1:]))
    diameter = {"linf": 1.0, "l2": math.sqrt(size), "l1": float(size)}[norm] * (hi_box - lo_box)
    caps = np.broadcast_to(np.asarray(diameter if upper is None else upper, dtype=np.float64), (len(x),))
    radius, unproven = np.zeros(len(x)), np.full(len(x), np.inf)
    evaluations, times = np.zeros(len(x), dtype=np.int64), np.zeros(len(x))
    for i in range(len(x)):
        t0 = time.perf_counter()
        if correct[i]:
            slack = certifier.slack(x[i])
            proven = lambda eps, i=i, slack=slack: certifier.bound(x[i], int(y[i]), norm, eps).margin_lower > slack  # noqa: E731
            radius[i], unproven[i], evaluations[i] = _bisect(proven, float(min(caps[i], diameter)), rtol,
                                                             max_evaluations)
        times[i] = time.perf_counter() - t0
    return CertifiedRadius(norm, "alpha-crown" if alpha else "crown", radius, unproven, correct, evaluations, times)


def _bisect(proven: Callable[[float], bool], cap: float, rtol: float, budget: int) -> tuple[float, float, int]:
    """(largest proven ε, smallest unproven ε, evaluations) for a predicate that holds below some ε.

    Large ε are expensive for CROWN (every neuron unstable), so the search starts small and grows
    fourfold until a failure (or `cap`), then bisects geometrically."""
    lo, hi, used = 0.0, cap, 0
    guess = cap / 1024
    while used < budget and guess < hi:
        used += 1
        if not proven(guess):
            hi = guess
            break
        lo, guess = guess, guess * 4
    else:
        if used < budget and lo > 0 and guess >= hi:
            used += 1
            if proven(hi):
                return hi, math.inf, used
    while used < budget and hi > 1e-12 and (lo == 0 or hi / lo > 1 + rtol):
        mid = hi / 4 if lo == 0 else math.sqrt(lo * hi)
        used += 1
        if proven(mid):
            lo = mid
        else:
            hi = mid
    return lo, hi, used
