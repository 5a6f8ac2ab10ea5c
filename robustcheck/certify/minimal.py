"""The exact minimal adversarial distance (L∞ or L1) by bisection over exact fixed-ε queries.

Per sample the bracket starts at [CROWN's certified radius, the smallest verified witness
distance] and shrinks: a robust verdict at ε raises the lower end to ε, a violated one lowers
the upper end to its witness's distance, after pulling the witness towards the sample along
the segment as far as onnxruntime still misclassifies it. It stops when upper ≤ lower·(1 + rtol)
(the distance is then known to that tolerance), or when a query is unknown or time runs out
(the bracket is reported as it stands).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from robustcheck import metrics
from robustcheck.certify.api import certified_radius
from robustcheck.certify.certifier import Certifier
from robustcheck.certify.exact import query
from robustcheck.model import Model

_SEGMENT_STEPS = 14


@dataclass(frozen=True)
class MinimalDistance:
    """Per sample: lower ≤ the true minimal adversarial distance ≤ upper (upper has a witness)."""

    norm: str
    lower: np.ndarray
    upper: np.ndarray
    witnesses: list[np.ndarray | None]
    exact: np.ndarray  # upper ≤ lower·(1 + rtol)
    queries: np.ndarray
    wall_time: np.ndarray


def minimal_distance(model: Model, x: np.ndarray, y: np.ndarray, *, norm: str = "linf", rtol: float = 1e-3,
                     time_limit: float = 60.0, query_time_limit: float = 10.0,
                     upper: np.ndarray | None = None, witnesses: list[np.ndarray | None] | None = None
                     ) -> MinimalDistance:
    """Bracket each sample's minimal adversarial distance in `norm` ("linf" or "l1") within
    `time_limit` seconds per sample. `upper`/`witnesses` may seed the upper end with verified
    adversarial examples (e.g. an attack's)."""
    if norm not in ("linf", "l1"):
        raise ValueError(f"exact minimal distances are for the linf and l1 norms; got {norm!r}")
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64).reshape(-1)
    certifier = Certifier(model)
    crown = certified_radius(model, x, y, norm=norm, upper=upper)
    lows, highs = np.zeros(len(x)), np.full(len(x), np.inf)
    found: list[np.ndarray | None] = [None] * len(x)
    queries, times = np.zeros(len(x), dtype=np.int64), np.zeros(len(x))
    for i in range(len(x)):
        t0 = time.perf_counter()
        if not crown.correct[i]:
            found[i] = x[i].astype(model.input_spec.dtype)
            lows[i] = highs[i] = 0.0
            continue
        seed = None if witnesses is None else witnesses[i]
        if seed is not None:
            found[i] = seed
            highs[i] = float(metrics.distances(x[i][None], seed[None])[norm][0])
        lows[i], highs[i], found[i], queries[i] = _bisect(
            certifier, x[i], int(y[i]), norm, float(crown.radius[i]), highs[i], found[i], rtol,
            t0 + time_limit, query_time_limit)
        times[i] = time.perf_counter() - t0 + crown.wall_time[i]
    exact = highs <= lows * (1 + rtol)
    return MinimalDistance(norm, lows, highs, found, exact, queries, times)


def _bisect(certifier: Certifier, x: np.ndarray, y: int, norm: str, lo: float, hi: float,
            witness: np.ndarray | None, rtol: float, deadline: float, query_limit: float
            ) -> tuple[float, float, np.ndarray | None, int]:
    model = certifier.model
    cap = {"linf": 1.0, "l1": float(x.size)}[norm] * (model.input_range[1] - model.input_range[0])
    used = 0
    while hi > lo * (1 + rtol) and time.perf_counter() < deadline:
        if math.isinf(hi):
            eps = min(cap, 2 * lo if lo > 0 else cap / 64)
        else:
            eps = (lo + hi) / 2
        limit = min(query_limit, deadline - time.perf_counter())
        verdict = query(certifier, x, y, norm, eps, max(limit, 0.0))
        used += 1
        if verdict.status == "robust":
            lo = eps
            if eps >= cap:
                break
        elif verdict.status == "violated" and verdict.witness is not None:
            witness = shorten(model, x, y, verdict.witness)
            hi = float(metrics.distances(x[None], witness[None])[norm][0])
        else:
            break
    return lo, hi, witness, used


def shorten(model: Model, x: np.ndarray, y: int, witness: np.ndarray) -> np.ndarray:
    """The point closest to `x` on the segment x → witness that onnxruntime still misclassifies
    (bisection on the segment; always a verified point, at worst the witness itself)."""
    dtype = np.dtype(model.input_spec.dtype)
    direction = witness.astype(np.float64) - x
    good, bad = 1.0, 0.0
    best = witness
    for _ in range(_SEGMENT_STEPS):
        t = (good + bad) / 2
        point = (x + t * direction).astype(dtype)
        if model.in_box(point[None])[0] and int(model.predict(point[None])[0]) != y:
            good, best = t, point
        else:
            bad = t
    return best
