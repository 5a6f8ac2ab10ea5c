"""ONNX graph -> differentiable torch module (the replica).

onnxruntime gives no gradients, so attacks run on this replica of the graph, checked against
onnxruntime on every load (see robustcheck/parity.py). The package keeps apart:

- `registry.py`: operator implementations keyed by (domain, op type, since-version);
- `graph.py`: building (resolution, constant folding, buffers) and running the graph;
- `ops/`: the operator functions, one module per family (elementwise, activations, linear,
  pooling, normalization, shape, reductions, selection, random);
- `coercion.py`: turning attribute and input values into ints, axes, dtypes and tensors.

Operators whose gradient is zero or undefined almost everywhere (Round, comparisons, random
operators, ...) are registered as non-differentiable; the diagnostics report them.
"""

from robustcheck.replica import ops as _ops  # noqa: F401  (registers every operator)
from robustcheck.replica.graph import NodeFailure, OnnxReplica, build_replica
from robustcheck.replica.registry import REGISTRY, NodeContext, OpEntry, OpKey, UnsupportedGraph, register

__all__ = [
    "REGISTRY",
    "NodeContext",
    "NodeFailure",
    "OnnxReplica",
    "OpEntry",
    "OpKey",
    "UnsupportedGraph",
    "build_replica",
    "register",
]
