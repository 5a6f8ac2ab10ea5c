"""Exact verification with the MILP: fixed-ε verdicts and the minimal adversarial distance.

A fixed-ε query first tries CROWN; classes CROWN cannot rule out get one feasibility MILP each
(margin z_y − z_j ≤ 0 inside the region; stop at the first feasible point), most threatening
first, under one time limit. Infeasible for every class: robust. A feasible point is a witness
only once onnxruntime misclassifies it inside the box and within ε; a solver point that
onnxruntime still classifies correctly (a tie within float32 rounding) is retried with a margin
a little below 0, and otherwise leaves the verdict unknown. No witness and no proof by the time
limit: unknown.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np
import torch

from robustcheck import metrics
from robustcheck.certify.branch_and_bound import branching_scores, search
from robustcheck.certify.certifier import Certifier, spec_rows
from robustcheck.certify.input_set import InputSet
from robustcheck.certify.milp import INF, MilpEncoding
from robustcheck.model import Model

# Retries of a solver point onnxruntime does not confirm: margin ≤ −RETRY·(1 + max |logit|).
_RETRY_MARGINS = (1e-4, 1e-2)


@dataclass(frozen=True)
class ExactVerdict:
    """One sample at one ε: robust, violated (with an onnxruntime-checked witness) or unknown."""

    status: str
    method: str  # "crown", "milp", "misclassified"
    witness: np.ndarray | None
    witness_label: int | None
    distance: float | None  # the witness's distance in the query's norm
    binaries: int
    wall_time: float


@dataclass(frozen=True)
class ExactResult:
    """`verify_exact` over a batch: one verdict per sample."""

    norm: str
    epsilon: float
    time_limit: float
    verdicts: list[ExactVerdict]

    @property
    def status(self) -> np.ndarray:
        return np.array([v.status for v in self.verdicts])

    @property
    def witnesses(self) -> list[np.ndarray | None]:
        return [v.witness for v in self.verdicts]


def verify_exact(model: Model, x: np.ndarray, y: np.ndarray, *, norm: str = "linf", epsilon: float,
                 time_limit: float = 10.0, tighten: bool = True) -> ExactResult:
    """Decide per sample whether an adversarial example exists within `epsilon` (L∞ or L1, ∩ the box)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64).reshape(-1)
    certifier = Certifier(model)
    verdicts = [query(certifier, x[i], int(y[i]), norm, float(epsilon), time_limit, tighten) for i in range(len(x))]
    return ExactResult(norm, float(epsilon), time_limit, verdicts)


def query(certifier: Certifier, x: np.ndarray, y: int, norm: str, epsilon: float, time_limit: float,
          tighten: bool = True, solver: str = "bab") -> ExactVerdict:
    """The exact verdict for one sample (no batch axis) at one ε."""
    start = time.perf_counter()
    model = certifier.model
    if int(model.predict(x[None].astype(model.input_spec.dtype))[0]) != y:
        label = int(model.predict(x[None].astype(model.input_spec.dtype))[0])
        return ExactVerdict("violated", "misclassified", x.astype(model.input_spec.dtype), label, 0.0, 0, 0.0)
    slack = certifier.slack(x)
    bound = certifier.bound(x, y, norm, epsilon)
    if bound.margin_lower > slack:
        return ExactVerdict("robust", "crown", None, None, None, 0, time.perf_counter() - start)
    graph = certifier.graph(x)
    region = certifier.region(x, norm, epsilon)
    enc = MilpEncoding(graph, region, tighten=tighten)
    classes = [j for j in np.argsort(bound.class_lower) if j != y and bound.class_lower[j] <= slack]
    margins = _margin_columns(enc, y, classes)
    if solver == "bab":
        return _branch_and_bound(enc, certifier, x, y, region, margins, classes, start + time_limit, start)
    scale = slack / 1e-5  # 1 + max |logit|
    h = enc.h
    h.setOptionValue("mip_max_improving_sols", 1)
    unknown = False
    for col in margins:
        remaining = time_limit - (time.perf_counter() - start)
        if remaining <= 0:
            unknown = True
            break
        h.setOptionValue("time_limit", float(remaining))
        found = None
        for cut in (0.0,) + tuple(-r * scale for r in _RETRY_MARGINS):
            h.changeColBounds(int(col), -INF, cut)
            h.changeColCost(int(col), 1.0)
            h.run()
            status = h.getModelStatus()
            if status == highspy.HighsModelStatus.kInfeasible:
                break
            if h.getInfo().primal_solution_status != 2:  # no feasible point (time limit)
                unknown = True
                break
            point = np.asarray(h.getSolution().col_value)[enc.input_columns]
            found = checked_witness(model, x, y, point, region)
            if found is not None:
                break
        else:
            unknown = True  # solver points onnxruntime does not confirm
        h.changeColCost(int(col), 0.0)
        h.changeColBounds(int(col), -INF, INF)
        if found is not None:
            label = int(model.predict(found[None])[0])
            dist = float(metrics.distances(x[None], found[None])[norm][0])
            return ExactVerdict("violated", "milp", found, label, dist, enc.binaries, time.perf_counter() - start)
        if unknown:
            break
    verdict = "unknown" if unknown else "robust"
    return ExactVerdict(verdict, "milp", None, None, None, enc.binaries, time.perf_counter() - start)


def _branch_and_bound(enc: MilpEncoding, certifier: Certifier, x: np.ndarray, y: int, region: InputSet,
                      margins: np.ndarray, classes: list[int], deadline: float, start: float) -> ExactVerdict:
    model, graph = certifier.model, enc.graph

    def confirm(point: np.ndarray) -> np.ndarray | None:
        with torch.no_grad():
            z = graph.forward(torch.as_tensor(point.reshape(graph.input_shape), dtype=torch.float64))
        if int(z.reshape(-1).argmax()) == y:
            return None
        return checked_witness(model, x, y, point, region)

    unknown = False
    rows = spec_rows(graph, y)
    others = [j for j in range(int(np.prod(graph.output_shape))) if j != y]
    for j, col in zip(classes, margins):
        scores = branching_scores(enc, rows[others.index(j)][None])
        outcome = search(enc, int(col), confirm, deadline, scores)
        if outcome.status == "violated" and outcome.point is not None:
            label = int(model.predict(outcome.point[None])[0])
            dist = float(metrics.distances(x[None], outcome.point[None])[region.norm][0])
            return ExactVerdict("violated", "milp", outcome.point, label, dist, enc.binaries,
                                time.perf_counter() - start)
        if outcome.status == "unknown":
            unknown = True
            if time.perf_counter() > deadline:
                break
    return ExactVerdict("unknown" if unknown else "robust", "milp", None, None, None, enc.binaries,
                        time.perf_counter() - start)


def _margin_columns(enc: MilpEncoding, y: int, classes: list[int]) -> np.ndarray:
    """Columns m_j = z_y − z_j for `classes`, tied to the network by equalities."""
    graph = enc.graph
    rows = spec_rows(graph, y)
    others = [j for j in range(int(np.prod(graph.output_shape))) if j != y]
    picked = rows[[others.index(j) for j in classes]]
    coeffs, const = enc.expressions(graph.output_name, picked)
    cols = enc._add_columns(np.full(len(classes), -INF), np.full(len(classes), INF))
    tie = np.zeros((len(classes), enc.ncols))
    tie[:, : coeffs.shape[1]] = -coeffs
    tie[np.arange(len(classes)), cols] += 1.0
    enc.add_rows(tie, const, const)
    return cols


def checked_witness(model: Model, x: np.ndarray, y: int, point: np.ndarray, region: InputSet) -> np.ndarray | None:
    """`point` as a model input inside the box and region, if onnxruntime misclassifies it; else None."""
    low, high = (t.reshape(-1).numpy() for t in region.bounding_box())
    candidate = np.clip(point, low, high)
    dtype = np.dtype(model.input_spec.dtype)
    cast = candidate.astype(dtype)
    center = x.reshape(-1).astype(dtype)
    # Rounding must not carry a coordinate outside the box: step back towards the sample.
    outside = (cast.astype(np.float64) > high) | (cast.astype(np.float64) < low)
    cast[outside] = np.nextafter(cast[outside], center[outside])
    cast = cast.reshape(x.shape)
    if region.norm == "l1":
        dist = float(np.abs(cast.astype(np.float64) - x).sum())
        if dist > region.epsilon * (1 + 1e-6):
            return None
    if not model.in_box(cast[None])[0] or int(model.predict(cast[None])[0]) == y:
        return None
    return cast


def clean_margin(certifier: Certifier, x: np.ndarray, y: int) -> float:
    """z_y − max_{j≠y} z_j at x in the float64 bound graph (the exact ε = 0 bound)."""
    graph = certifier.graph(x)
    with torch.no_grad():
        z = graph.forward(torch.as_tensor(x[None], dtype=torch.float64)).reshape(-1).numpy()
    return float(z[y] - np.delete(z, y).max())
