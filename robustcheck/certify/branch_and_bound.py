"""Branch and bound over the MILP's binaries, HiGHS solving the LP relaxation at every node.

HiGHS's own MIP solver spends most of its time on the root (cut rounds, heuristics, strong
branching) and gains little on these small big-M programs; a plain depth-first search that
fixes one binary per level (for a ReLU: its phase), warm-starts each LP from its parent's basis
and prunes nodes whose margin bound is positive answers the same question faster. Every LP
point is also run through the network: a point the network itself misclassifies is a witness
candidate long before the LP is integral.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import highspy
import numpy as np
import torch

from robustcheck.certify.crown import crown_rule, propagate
from robustcheck.certify.milp import INF, MilpEncoding
from robustcheck.certify.network import Node
from robustcheck.certify.relaxation import ReluRelaxation

_INTEGRAL = 1e-6


@dataclass(frozen=True)
class SearchOutcome:
    """robust: every node pruned; violated: `point` is confirmed; unknown: out of time or a tie."""

    status: str
    point: np.ndarray | None
    nodes: int


def branching_scores(enc: MilpEncoding, row: torch.Tensor) -> np.ndarray:
    """Per binary, how much of the CROWN bound on `row`·output its ReLU's relaxation costs (BaBSR,
    Bunel et al. 2020: |negative coefficient| × the upper line's intercept); 0 for MaxPool binaries."""
    captured: dict[str, torch.Tensor] = {}
    crown = crown_rule(enc.graph, enc.bounds)

    def rule(node: Node, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        captured[node.name] = rows.reshape(-1)
        return crown(node, rows)

    with torch.no_grad():
        propagate(enc.graph, enc.graph.output_name, row, rule)
    scores = np.zeros(len(enc.binary_owner))
    for k, (name, neuron) in enumerate(enc.binary_owner):
        relax = enc.bounds.relaxations.get(name)
        if isinstance(relax, ReluRelaxation) and name in captured:
            coeff = float(captured[name][neuron])
            scores[k] = max(0.0, -coeff) * float(relax.upper_bias.reshape(-1)[neuron]) + 1e-9 * abs(coeff)
    return scores


def search(enc: MilpEncoding, margin_col: int, confirm: Callable[[np.ndarray], np.ndarray | None],
           deadline: float, scores: np.ndarray | None = None, cut: float = 0.0) -> SearchOutcome:
    """Is there a point of the MILP with margin column ≤ `cut`? `confirm` turns an input point into
    a verified witness or None; `scores` rank the binaries to branch on (else: most fractional)."""
    h = enc.h
    h.setOptionValue("solve_relaxation", True)
    h.setOptionValue("presolve", "off")
    bins = np.asarray(enc.binary_columns, dtype=np.int32)
    h.changeColCost(margin_col, 1.0)
    stack: list[dict[int, float]] = [{}]
    nodes, unresolved = 0, False
    try:
        while stack:
            if time.perf_counter() > deadline:
                return SearchOutcome("unknown", None, nodes)
            fixed = stack.pop()
            nodes += 1
            if len(bins):
                low, high = np.zeros(len(bins)), np.ones(len(bins))
                for k, v in fixed.items():
                    low[k] = high[k] = v
                h.changeColsBounds(len(bins), bins, low, high)
            h.run()
            status = h.getModelStatus()
            if status == highspy.HighsModelStatus.kInfeasible:
                continue
            if status != highspy.HighsModelStatus.kOptimal:
                unresolved = True
                continue
            if h.getInfo().objective_function_value > cut:
                continue
            solution = np.asarray(h.getSolution().col_value)
            found = confirm(solution[enc.input_columns])
            if found is not None:
                return SearchOutcome("violated", found, nodes)
            values = solution[bins] if len(bins) else np.zeros(0)
            frac = np.minimum(values, 1 - values)
            if fixed:
                frac[list(fixed)] = -1.0
            if not len(frac) or frac.max() <= _INTEGRAL:
                unresolved = True  # an integral LP point the oracle does not confirm: a float tie
                continue
            k = int(frac.argmax()) if scores is None else int(np.where(frac > _INTEGRAL, scores + 1e-12, -1.0).argmax())
            nearer = float(round(values[k]))
            stack.append({**fixed, k: 1.0 - nearer})
            stack.append({**fixed, k: nearer})
    finally:
        h.changeColCost(margin_col, 0.0)
        if len(bins):
            h.changeColsBounds(len(bins), bins, np.zeros(len(bins)), np.ones(len(bins)))
        h.changeColBounds(margin_col, -INF, INF)
    return SearchOutcome("unknown" if unresolved else "robust", None, nodes)
