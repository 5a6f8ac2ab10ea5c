"""What the operators of a graph say about how it must be run, read before any replica exists.

- random operators: onnxruntime's output varies between calls, so the model is judged by votes
  (randomized_oracle.py) and attacked with EOT;
- batch-coupling operators (DynamicQuantizeLinear: one scale over the whole tensor, the batch
  included): a sample's output depends on the other samples of its call, so the oracle runs one
  sample per call, as the model would be served.

Both come from the replica's operator registry (its `random` and `per_sample` flags), so an
operator is described once.
"""

from __future__ import annotations

import onnx
from onnx import numpy_helper

from robustcheck.replica import REGISTRY
from robustcheck.replica.graph import opset_imports
from robustcheck.replica.registry import NodeContext, normalise_domain


def _nodes(proto: onnx.ModelProto) -> list[tuple[onnx.NodeProto, int]]:
    imports = opset_imports(proto)
    return [(node, imports.get(normalise_domain(node.domain), 0)) for node in proto.graph.node]


def random_operators(proto: onnx.ModelProto) -> list[str]:
    """Operator types of the main graph that draw random numbers (Dropout only in training mode)."""
    constants = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    found: list[str] = []
    for node, opset in _nodes(proto):
        entry = REGISTRY.lookup(node.domain, node.op_type, opset)
        if entry is None or not entry.random or node.op_type in found:
            continue
        ctx = NodeContext(node.op_type, {}, opset, node.name, len(node.output))
        if entry.draws_random(ctx, [constants.get(i) for i in node.input]):
            found.append(node.op_type)
    return found


def batch_coupling_operators(proto: onnx.ModelProto) -> list[str]:
    """Operator types of the main graph that mix the samples of a batch."""
    found: list[str] = []
    for node, opset in _nodes(proto):
        entry = REGISTRY.lookup(node.domain, node.op_type, opset)
        if entry is not None and entry.per_sample and node.op_type not in found:
            found.append(node.op_type)
    return found
