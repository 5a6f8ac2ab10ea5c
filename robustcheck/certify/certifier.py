"""One model, ready to certify: its BoundGraph, and CROWN margins per (sample, region).

The margin lower bound of a sample over a region is min_{j≠y} lower(z_y − z_j): CROWN (or
α-CROWN) and, for networks trained with interval bounds where intervals can beat CROWN, the
interval bound with the last affine layers folded into the specification; the larger one
counts (both are sound). A sample is proven when the oracle classifies it correctly and the
bound exceeds a small slack covering float32 rounding in onnxruntime against float64 bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from robustcheck.certify.alpha import alpha_lower_bounds
from robustcheck.certify.crown import Bounds, compute_bounds, lower_bounds
from robustcheck.certify.input_set import CERTIFY_NORMS, InputSet
from robustcheck.certify.network import AffineNode, BoundGraph, NotVerifiable
from robustcheck.model import Model

Tensor = torch.Tensor

# A margin bound must exceed MARGIN_SLACK · (1 + max |clean logit|) to prove a sample: float32
# evaluation in onnxruntime may differ from the float64 bounds by rounding.
MARGIN_SLACK = 1e-5


@dataclass(frozen=True)
class SampleBound:
    """CROWN's view of one sample in one region."""

    margin_lower: float  # lower bound of z_y − max_{j≠y} z_j over the region
    class_lower: np.ndarray  # per class j: lower bound of z_y − z_j (inf at j = y)
    unstable: int  # ReLU-type neurons whose input straddles 0
    bounds: Bounds


class Certifier:
    """CROWN over one model's replica graph (built once per input shape)."""

    def __init__(self, model: Model, *, alpha: bool = False, alpha_steps: int = 20) -> None:
        if model.output_spec.kind == "log-probabilities":
            raise NotVerifiable(f"{model.path.name}: not verifiable: the output holds probabilities, not logits "
                                "(no Softmax node to cut)")
        self.model = model
        self.alpha = alpha
        self.alpha_steps = alpha_steps
        self._graph: BoundGraph | None = None

    def graph(self, sample: np.ndarray) -> BoundGraph:
        if self._graph is None or self._graph.input_shape != (1,) + tuple(sample.shape):
            self._graph = BoundGraph.build(self.model.require_replica(), sample[None], self.model.path.name)
        return self._graph

    def region(self, x: np.ndarray, norm: str, epsilon: float) -> InputSet:
        if norm not in CERTIFY_NORMS:
            raise ValueError(f"norm must be one of {', '.join(CERTIFY_NORMS)}; got {norm!r}")
        center = torch.as_tensor(np.asarray(x, dtype=np.float64)[None])
        return InputSet.around(center, epsilon, norm, self.model.input_range)

    def bound(self, x: np.ndarray, y: int, norm: str, epsilon: float) -> SampleBound:
        """Margin lower bounds of one sample (model layout, no batch axis) over its ε-region."""
        graph = self.graph(x)
        region = self.region(x, norm, epsilon)
        bounds = compute_bounds(graph, region)
        rows = spec_rows(graph, y)
        if self.alpha:
            crown = alpha_lower_bounds(graph, bounds, rows, steps=self.alpha_steps)
        else:
            with torch.no_grad():
                crown = lower_bounds(graph, bounds, graph.output_name, rows)
        best = torch.maximum(crown, folded_interval_bounds(graph, bounds, rows)).numpy()
        per_class = np.full(graph.output_shape[-1], np.inf)
        per_class[[j for j in range(len(per_class)) if j != y]] = best
        return SampleBound(float(best.min()), per_class, bounds.unstable_count(graph), bounds)

    def slack(self, x: np.ndarray) -> float:
        logits = self.model.oracle_logits(np.asarray(x)[None])
        return MARGIN_SLACK * (1.0 + float(np.abs(logits).max()))


def spec_rows(graph: BoundGraph, y: int) -> Tensor:
    """Rows e_y − e_j for every class j ≠ y, shaped like the output node."""
    classes = int(np.prod(graph.output_shape))
    if not 0 <= y < classes:
        raise ValueError(f"label {y} is outside the model's {classes} classes")
    others = [j for j in range(classes) if j != y]
    rows = torch.zeros(len(others), classes, dtype=torch.float64)
    rows[:, y] = 1.0
    rows[torch.arange(len(others)), others] = -1.0
    return rows.reshape((len(others),) + graph.output_shape)


def folded_interval_bounds(graph: BoundGraph, bounds: Bounds, rows: Tensor) -> Tensor:
    """Interval bounds of rows·output with the trailing affine nodes folded into the rows
    (Gowal et al.'s specification folding): exact through affine nodes, intervals after."""
    pending = {graph.output_name: rows}
    bias = torch.zeros(len(rows), dtype=torch.float64)
    for node in reversed(graph.nodes):
        if not isinstance(node, AffineNode):
            break
        a = pending.pop(node.name, None)
        if a is None:
            continue
        bias = bias + a.reshape(len(a), -1) @ node.offset.reshape(-1)
        for name, part in zip(node.inputs, node.backward(a)):
            pending[name] = pending[name] + part if name in pending else part
    for name, a in pending.items():
        flat = a.reshape(len(a), -1)
        lower, upper = bounds.lower[name].reshape(-1), bounds.upper[name].reshape(-1)
        bias = bias + flat.clamp(min=0) @ lower + flat.clamp(max=0) @ upper
    return bias
