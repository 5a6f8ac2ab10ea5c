"""Exhaustive and random sweeps: the references Hypothesis's search is measured against, and
the fixed-level accuracy the `accuracy-under` items report.

* `dense_grid_smallest`: every point of a dense parameter grid, nearest the identity first, and
  per sample the smallest magnitude that flips it (a sample stops at its first failing ring).
* `accuracy_under`: accuracy over samples when every direction at one fixed level must keep the
  label (the -C benchmarks' fixed-severity figure, worst case over the directions).
* `worst_of_k`: Engstrom et al.'s random worst-of-k over a composition's full parameter box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robustcheck.transforms.families import Params
from robustcheck.transforms.probe import TransformProbe
from robustcheck.transforms.spec import TransformSpec

#: Images per oracle batch in the sweeps.
BATCH = 1024


@dataclass(frozen=True)
class GridResult:
    """Per sample: the smallest failing magnitude on the grid (NaN: none) and images judged."""

    smallest: np.ndarray
    calls: np.ndarray


def grid_rings(spec: TransformSpec, step: float | None = None) -> list[tuple[float, list[Params]]]:
    """A single transformation's dense grid, as rings of equal magnitude in increasing order.

    Translation: the square lattice of shifts with spacing `step` (default the family's step),
    ring j holding the 8j shifts with max(|dx|, |dy|) = j·step. Every other family: its grid
    levels, each with its directions.
    """
    if len(spec.families) != 1:
        raise ValueError("a dense grid is defined for a single transformation")
    family, top = spec.families[0], spec.max_magnitudes[0]
    if family.name == "translate":
        step = step or family.step
        rings = []
        for j in range(1, int(np.floor(top / step + 1e-9)) + 1):
            span = np.arange(-j, j + 1) * step
            ring = [{"dx": float(a), "dy": float(b)} for a in span for b in span
                    if max(abs(a), abs(b)) > (j - 0.5) * step]
            rings.append((j * step, ring))
        return rings
    return [(spec.magnitudes(k)[0], spec.directions(k, 0)) for k in range(1, spec.steps + 1)]


def dense_grid_smallest(probe: TransformProbe, x: np.ndarray, y: np.ndarray,
                        rings: list[tuple[float, list[Params]]]) -> GridResult:
    """Scan the rings outwards for every sample; a sample stops at its first ring that flips it."""
    n = len(x)
    smallest = np.full(n, np.nan)
    calls = np.zeros(n, dtype=np.int64)
    for magnitude, ring in rings:
        alive = np.flatnonzero(np.isnan(smallest))
        if not len(alive):
            break
        per_batch = max(1, BATCH // len(ring))
        for start in range(0, len(alive), per_batch):
            rows = alive[start:start + per_batch]
            xs = np.repeat(x[rows], len(ring), axis=0)
            before = probe.calls
            _, predicted, _ = probe.judge(xs, np.repeat(y[rows], len(ring)), ring * len(rows))
            calls[rows] += (probe.calls - before) // len(rows)
            flipped = (predicted != np.repeat(y[rows], len(ring))).reshape(len(rows), len(ring)).any(axis=1)
            smallest[rows[flipped]] = magnitude
    return GridResult(smallest, calls)


def accuracy_under(probe: TransformProbe, x: np.ndarray, y: np.ndarray, level: int,
                   offsets: np.ndarray | None = None) -> np.ndarray:
    """Per sample: still classified correctly in every direction at grid `level` (offset per
    sample: the noise seed, the translation ring's turn; default the sample's position)."""
    offsets = np.arange(len(x)) if offsets is None else offsets
    ok = np.ones(len(x), dtype=bool)
    for start in range(0, len(x), max(1, BATCH // 16)):
        rows = np.arange(start, min(len(x), start + max(1, BATCH // 16)))
        params = [probe.spec.directions(level, int(offsets[i])) for i in rows]
        counts = [len(p) for p in params]
        flat = [p for group in params for p in group]
        labels = np.repeat(y[rows], counts)
        _, predicted, _ = probe.judge(np.repeat(x[rows], counts, axis=0), labels, flat)
        wrong = np.split(predicted != labels, np.cumsum(counts)[:-1])
        ok[rows] = [not w.any() for w in wrong]
    return ok


def uniform_params(spec: TransformSpec, rng: np.random.Generator) -> Params:
    """One parameter set drawn uniformly from the spec's full parameter box (each component
    anywhere within its max), the search space of Engstrom et al.'s random attack."""
    out: Params = {}
    for family, top in zip(spec.families, spec.max_magnitudes):
        m = float(rng.uniform(0, top))
        choices = family.directions(m, int(rng.integers(0, 2**16)))
        point = dict(choices[int(rng.integers(0, len(choices)))])
        if family.name == "translate":
            point = {"dx": float(rng.uniform(-top, top)), "dy": float(rng.uniform(-top, top))}
        out.update(point)
    return out


def worst_of_k(probe: TransformProbe, x: np.ndarray, y: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Per sample: whether any of `k` uniform random parameter sets flips it (k images each)."""
    rng = np.random.default_rng(seed)
    params = [uniform_params(probe.spec, rng) for _ in range(k * len(x))]
    flipped = np.zeros(len(x), dtype=bool)
    for start in range(0, len(x), max(1, BATCH // k)):
        rows = np.arange(start, min(len(x), start + max(1, BATCH // k)))
        chunk = [p for i in rows for p in params[i * k:(i + 1) * k]]
        _, predicted, _ = probe.judge(np.repeat(x[rows], k, axis=0), np.repeat(y[rows], k), chunk)
        flipped[rows] = (predicted != np.repeat(y[rows], k)).reshape(len(rows), k).any(axis=1)
    return flipped


#: Fractions of a claim's max at which the reports plot accuracy.
CURVE_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)


def accuracy_curve(probe: TransformProbe, x: np.ndarray, y: np.ndarray, correct: np.ndarray,
                   fractions: tuple[float, ...] = CURVE_FRACTIONS) -> list[tuple[int, float]]:
    """(grid level, accuracy) at fractions of the spec's max, over every row of `x` (rows the
    model already gets wrong, `correct == False`, count as wrong and are not transformed)."""
    out = []
    rows = np.flatnonzero(correct)
    for f in fractions:
        k = int(round(f * probe.spec.steps))
        ok = np.zeros(len(x), dtype=bool)
        ok[rows] = accuracy_under(probe, x[rows], y[rows], k, offsets=rows) if k else True
        out.append((k, float(ok.mean()) if len(x) else 0.0))
    return out
