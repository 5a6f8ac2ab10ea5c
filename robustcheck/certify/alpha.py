"""α-CROWN (Xu et al., ICLR 2021): optimise the free ReLU slopes of the final bound per row.

Any slope in [slope_min, slope_max] keeps the relaxation sound, so every iterate's bound is a
valid certificate; the best one seen per row is returned. Intermediate bounds stay CROWN's.
"""

from __future__ import annotations

import torch

from robustcheck.certify.crown import Bounds, lower_bounds
from robustcheck.certify.network import BoundGraph
from robustcheck.certify.relaxation import ReluRelaxation

Tensor = torch.Tensor


def alpha_lower_bounds(graph: BoundGraph, bounds: Bounds, rows: Tensor, *, steps: int = 20,
                       lr: float = 0.1) -> Tensor:
    """The best lower bounds of rows·output found by projected Adam over the free slopes."""
    relaxed = {name: r for name, r in bounds.relaxations.items()
               if isinstance(r, ReluRelaxation) and bool(r.unstable.any())}
    with torch.no_grad():
        best = lower_bounds(graph, bounds, graph.output_name, rows)
    if not relaxed or steps <= 0:
        return best
    slopes = {}
    for name, r in relaxed.items():
        start = r.lower_slope if r.free_is_lower else r.upper_slope
        slopes[name] = start.expand((len(rows),) + tuple(start.shape)).clone().requires_grad_(True)
    opt = torch.optim.Adam(list(slopes.values()), lr=lr)
    for _ in range(steps):
        value = lower_bounds(graph, bounds, graph.output_name, rows, slopes)
        best = torch.maximum(best, value.detach())
        opt.zero_grad()
        (-value.sum()).backward()
        opt.step()
        with torch.no_grad():
            for name, s in slopes.items():
                s.clamp_(relaxed[name].slope_min, relaxed[name].slope_max)
    with torch.no_grad():
        best = torch.maximum(best, lower_bounds(graph, bounds, graph.output_name, rows, slopes))
    return best
