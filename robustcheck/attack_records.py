"""An attack run's record (success, distortions, robustness curve) from its per-sample outcomes.

One home for this arithmetic, used by a model run (from an `AttackResult`) and by the merge of
sharded runs (from the per-sample lists the parts recorded), so a merged record is computed
exactly as an unsharded one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from robustcheck.attacks.result import EPSILON_SLACK
from robustcheck.record import AttackRecord, CurvePoint, Distortion

#: Points of every curve over ε (attack distortion curves and the certified bracket curve).
CURVE_POINTS = 25
NORMS = ("l0", "l1", "l2", "linf")


def within(success: np.ndarray, distance: np.ndarray, epsilon: float) -> np.ndarray:
    """Per sample: a verified adversarial example within ε (the same slack as AttackResult.within)."""
    return success & (distance <= epsilon * (1 + EPSILON_SLACK))


def robust_fraction(pool: int, broken: int, evaluated: int) -> float:
    """Robust accuracy over `evaluated` rows of which `pool` are correct and `broken` of those broken
    (equal to metrics.robust_accuracy on the rows: count / rows in float64)."""
    return float(np.float64(pool - broken) / evaluated) if evaluated else 0.0


def curve(success: np.ndarray, distance: np.ndarray, *, minimal_norm: bool, epsilon: float | None,
          evaluated: int) -> list[CurvePoint]:
    """Robust accuracy on the evaluated rows against ε: from the per-sample minimal distortions of a
    minimal-norm run; before the attack and at its ε for a bounded one."""
    pool = len(success)
    finite = distance[success]
    if not minimal_norm or not len(finite):
        start = CurvePoint(0.0, robust_fraction(pool, 0, evaluated))
        if not epsilon:
            return [start]
        return [start, CurvePoint(float(epsilon), robust_fraction(pool, int(within(success, distance, epsilon).sum()),
                                                                   evaluated))]
    grid = np.linspace(0.0, float(finite.max()) * 1.05, CURVE_POINTS)
    return [CurvePoint(float(e), robust_fraction(pool, int(within(success, distance, float(e)).sum()), evaluated))
            for e in grid]


def _stat(values: np.ndarray, fn: Any) -> float | None:
    return float(fn(values)) if len(values) else None


def build(label: str, norm: str, params: dict[str, Any], success: np.ndarray,
          distances: Mapping[str, np.ndarray], *, wall_time: float, replica_disagreements: int,
          epsilon: float | None, targeted: bool, minimal_norm: bool, evaluated: int,
          keep_samples: bool = False, rows: Sequence[int] | None = None) -> AttackRecord:
    """The record of an attack run over pool rows with these per-sample outcomes (`distances` are
    inf where the attack failed); `keep_samples` stores every norm's per-sample distances, which
    the merge of a sample-split run needs to recompute the distortion statistics, with `rows`, the
    pool rows they belong to (default: the whole pool in order)."""
    ok = np.asarray(success, dtype=bool)
    dist = [Distortion(n, int(ok.sum()), *(_stat(distances[n][ok], f) for f in (np.mean, np.median, np.min, np.max)))
            for n in NORMS if n in distances]
    mins = [None if not s else float(d) for s, d in zip(ok, distances[norm])]
    samples = {n: [None if not s else float(d) for s, d in zip(ok, distances[n])] for n in NORMS
               if n in distances} if keep_samples else {}
    return AttackRecord(
        attack=label, norm=norm, params=params, samples=len(ok), success_rate=float(ok.mean()) if len(ok) else 0.0,
        wall_time_s=wall_time, replica_disagreements=replica_disagreements, epsilon=epsilon, distortion=dist,
        min_distances=mins, curve=curve(ok, np.asarray(distances[norm]), minimal_norm=minimal_norm, epsilon=epsilon,
                                        evaluated=evaluated),
        targeted=targeted, sample_distances=samples,
        pool_rows=[int(r) for r in (range(len(ok)) if rows is None else rows)] if keep_samples else [])


def per_sample(values: Sequence[float | None]) -> tuple[np.ndarray, np.ndarray]:
    """(success, distance) arrays from a recorded per-sample list (None: the attack failed)."""
    success = np.array([v is not None for v in values], dtype=bool)
    distance = np.array([np.inf if v is None else float(v) for v in values], dtype=np.float64)
    return success, distance
