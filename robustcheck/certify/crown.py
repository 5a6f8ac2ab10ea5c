"""CROWN (Zhang et al., NeurIPS 2018): backward linear bound propagation over a BoundGraph.

A bound on rows·v (v a node's value) is carried backwards as rows·v ≥ A·x + bias: through an
affine node exactly (its vector-Jacobian product and offset), through a piecewise node by the
relaxation that keeps the inequality (relaxation.py), down to the input, where the region's
`min_linear` turns it into a number. Upper bounds are lower bounds of −rows.

Intermediate bounds, in execution order: every node gets interval bounds from its inputs
(cheap); a node that feeds a ReLU gets CROWN bounds for its unstable neurons, and a node feeding
a MaxPool (directly or through a ReLU) gets CROWN bounds for every neuron, since the MaxPool
relaxation reads all of them and interval bounds there are loose.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from robustcheck.certify import patches
from robustcheck.certify.input_set import InputSet
from robustcheck.certify.network import AffineNode, BoundGraph, MaxPoolNode, Node, ReluNode
from robustcheck.certify.relaxation import (
    MaxPoolRelaxation,
    ReluRelaxation,
    maxpool_backward,
    maxpool_interval,
    maxpool_relaxation,
    relu_backward,
    relu_interval,
    relu_relaxation,
)

Tensor = torch.Tensor

# Rows carried backwards at once: bounds memory at about CHUNK_BYTES for the widest node.
CHUNK_BYTES = 96 * 1024 * 1024
PATCH_CHUNK = 2048  # neurons per batch of patch rows

Relaxation = ReluRelaxation | MaxPoolRelaxation
# A rule for piecewise nodes: (node, rows at its output) -> (rows at its input, bias per row).
PiecewiseRule = Callable[[Node, Tensor], tuple[Tensor, Tensor]]


@dataclass
class Bounds:
    """Lower/upper bounds of every node's value over one region, and the relaxations they imply."""

    region: InputSet
    lower: dict[str, Tensor] = field(default_factory=dict)
    upper: dict[str, Tensor] = field(default_factory=dict)
    relaxations: dict[str, Relaxation] = field(default_factory=dict)
    crown_rows: int = 0  # neurons bounded by CROWN (not interval arithmetic)

    def unstable_count(self, graph: BoundGraph) -> int:
        """ReLU-type neurons whose input bounds straddle 0."""
        return sum(int(r.unstable.sum()) for r in self.relaxations.values() if isinstance(r, ReluRelaxation))


def propagate(graph: BoundGraph, start: str, rows: Tensor, rule: PiecewiseRule) -> tuple[Tensor, Tensor]:
    """Carry rows·v_start back to the input: (A (S, *input_shape), bias (S,)), v_start·rows ≥ A·x + bias
    under `rule`'s relaxations. Rows start in the shape (S, *shape of start)."""
    pending: dict[str, Tensor] = {start: rows}
    bias = torch.zeros(len(rows), dtype=rows.dtype)
    position = graph.position.get(start, -1)
    for node in reversed(graph.nodes[: position + 1]):
        a = pending.pop(node.name, None)
        if a is None:
            continue
        if isinstance(node, AffineNode):
            bias = bias + a.reshape(len(a), -1) @ node.offset.reshape(-1)
            for name, part in zip(node.inputs, node.backward(a)):
                pending[name] = pending[name] + part if name in pending else part
        else:
            part, extra = rule(node, a)
            bias = bias + extra
            pending[node.input] = pending[node.input] + part if node.input in pending else part
    a_in = pending.get(graph.input_name)
    if a_in is None:
        a_in = torch.zeros((len(rows),) + graph.input_shape, dtype=rows.dtype)
    return a_in, bias


def crown_rule(graph: BoundGraph, bounds: Bounds, slopes: dict[str, Tensor] | None = None) -> PiecewiseRule:
    """The CROWN relaxation rule for lower bounds; `slopes` optionally gives α-CROWN's free slopes."""

    def rule(node: Node, rows: Tensor) -> tuple[Tensor, Tensor]:
        relax = bounds.relaxations[node.name]
        if isinstance(relax, ReluRelaxation):
            return relu_backward(relax, rows, None if slopes is None else slopes.get(node.name))
        assert isinstance(node, MaxPoolNode)
        return maxpool_backward(relax, rows, graph.shapes[node.input])

    return rule


def lower_bounds(graph: BoundGraph, bounds: Bounds, start: str, rows: Tensor,
                 slopes: dict[str, Tensor] | None = None) -> Tensor:
    """CROWN lower bounds of rows·v_start over the region, per row."""
    a_in, bias = propagate(graph, start, rows, crown_rule(graph, bounds, slopes))
    return bias + bounds.region.min_linear(a_in)


def compute_bounds(graph: BoundGraph, region: InputSet,
                   known: dict[str, tuple[Tensor, Tensor]] | None = None) -> Bounds:
    """Bounds on every node over `region` (see the module docstring for which are CROWN).

    `known` gives sound bounds already established for some affine nodes (e.g. by LP
    tightening); they replace CROWN there and are intersected with the interval bounds."""
    known = known or {}
    bounds = Bounds(region)
    low, high = region.bounding_box()
    bounds.lower[graph.input_name], bounds.upper[graph.input_name] = low, high
    if graph.input_name in _pre_activations(graph):
        _relax_consumers(graph, bounds, graph.input_name)
    for node in graph.nodes:
        if isinstance(node, AffineNode):
            low, high = _interval(node, bounds)
            if node.name in known:
                low, high = torch.maximum(low, known[node.name][0]), torch.minimum(high, known[node.name][1])
            bounds.lower[node.name], bounds.upper[node.name] = low, high
            selected = _rows_needing_crown(graph, node.name, low, high)
            if selected.any() and node.name not in known:
                _tighten(graph, bounds, node.name, selected)
        else:
            l_in, u_in = bounds.lower[node.input], bounds.upper[node.input]
            if isinstance(node, ReluNode):
                bounds.lower[node.name], bounds.upper[node.name] = relu_interval(node, l_in, u_in)
            else:
                bounds.lower[node.name], bounds.upper[node.name] = maxpool_interval(node, l_in, u_in)
        if node.name in _pre_activations(graph):
            _relax_consumers(graph, bounds, node.name)
    return bounds


def _pre_activations(graph: BoundGraph) -> set[str]:
    return {n.input for n in graph.piecewise_nodes()}


def _relax_consumers(graph: BoundGraph, bounds: Bounds, name: str) -> None:
    low, high = bounds.lower[name], bounds.upper[name]
    for consumer in graph.consumers.get(name, []):
        if isinstance(consumer, ReluNode):
            bounds.relaxations[consumer.name] = relu_relaxation(consumer, low, high)
        elif isinstance(consumer, MaxPoolNode):
            bounds.relaxations[consumer.name] = maxpool_relaxation(consumer, low, high)


def _interval(node: AffineNode, bounds: Bounds) -> tuple[Tensor, Tensor]:
    lows = [bounds.lower[i] for i in node.inputs]
    highs = [bounds.upper[i] for i in node.inputs]
    center = node.forward([(lo + hi) / 2 for lo, hi in zip(lows, highs)])
    radius = node.abs_forward([(hi - lo) / 2 for lo, hi in zip(lows, highs)]).clamp_min(0)
    return center - radius, center + radius


def _rows_needing_crown(graph: BoundGraph, name: str, low: Tensor, high: Tensor) -> Tensor:
    """Flat mask of the neurons of `name` whose bounds CROWN should tighten."""
    consumers = graph.consumers.get(name, [])
    feeds_pool = any(isinstance(c, MaxPoolNode) for c in consumers) or any(
        isinstance(c, ReluNode) and any(isinstance(g, MaxPoolNode) for g in graph.consumers.get(c.name, []))
        for c in consumers)
    lo, hi = low.reshape(-1), high.reshape(-1)
    if feeds_pool:
        mask = hi > lo
        if all(isinstance(c, ReluNode) and c.slope == 0 for c in consumers):
            mask &= hi > 0  # a ReLU that is off everywhere outputs exactly 0
        return mask
    if any(isinstance(c, ReluNode) for c in consumers):
        return (lo < 0) & (hi > 0)
    return torch.zeros_like(lo, dtype=torch.bool)


def _tighten(graph: BoundGraph, bounds: Bounds, name: str, selected: Tensor) -> None:
    """CROWN bounds for the selected neurons of `name`, intersected with the current ones."""
    index = torch.nonzero(selected).squeeze(1)
    numel = selected.numel()
    shape = graph.shapes[name]
    if graph.patchable is None:
        graph.patchable = patches.patchable_nodes(graph)
    patched = name in graph.patchable
    widest = max(int(torch.tensor(s).prod()) for s in graph.shapes.values())
    chunk = PATCH_CHUNK if patched else max(1, CHUNK_BYTES // (8 * widest * 2))
    low, high = bounds.lower[name].reshape(-1).clone(), bounds.upper[name].reshape(-1).clone()
    for start in range(0, len(index), chunk):
        part = index[start:start + chunk]
        if patched:
            signs = torch.cat([torch.ones(len(part)), -torch.ones(len(part))]).to(torch.float64)
            values = patches.lower_bounds(graph, bounds, name, torch.cat([part, part]), signs)
        else:
            eye = torch.zeros(len(part), numel, dtype=torch.float64)
            eye[torch.arange(len(part)), part] = 1.0
            rows = torch.cat([eye, -eye]).reshape((2 * len(part),) + shape)
            values = lower_bounds(graph, bounds, name, rows)
        low[part] = torch.maximum(low[part], values[: len(part)])
        high[part] = torch.minimum(high[part], -values[len(part):])
    bounds.crown_rows += len(index)
    bounds.lower[name], bounds.upper[name] = low.reshape(shape), high.reshape(shape)
