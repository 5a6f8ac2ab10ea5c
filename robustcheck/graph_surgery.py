"""Choosing the scores output of a graph, cutting a probability head, pruning, and ordering nodes.

Subgraphs (If/Loop/Scan bodies) may read values of the enclosing graph by name without
listing them as node inputs; those implicit inputs count as dependencies of the node that
owns the subgraph, both for the order and for what pruning keeps.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import Literal

import onnx

from robustcheck.errors import ModelError

OutputKind = Literal["logits", "cut-softmax", "cut-logsoftmax", "log-probabilities"]

_FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16)


def _subgraphs(node: onnx.NodeProto) -> Iterable[onnx.GraphProto]:
    for attr in node.attribute:
        if attr.HasField("g"):
            yield attr.g
        yield from attr.graphs


def implicit_inputs(node: onnx.NodeProto) -> set[str]:
    """Names a node's subgraphs (at any depth) read from outside themselves."""
    names: set[str] = set()
    for graph in _subgraphs(node):
        names |= _free_names(graph)
    return names


def _free_names(graph: onnx.GraphProto) -> set[str]:
    defined = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    defined |= {s.values.name for s in graph.sparse_initializer}
    used: set[str] = set()
    for node in graph.node:
        used.update(i for i in node.input if i)
        used |= implicit_inputs(node)
        defined.update(node.output)
    return used - defined


def _dependencies(node: onnx.NodeProto) -> set[str]:
    deps = {i for i in node.input if i}
    if node.attribute:
        deps |= implicit_inputs(node)
    return deps


def topological_order(nodes: Sequence[onnx.NodeProto]) -> list[onnx.NodeProto]:
    """Nodes ordered so each runs after the producers of its inputs, explicit or implicit.

    onnxruntime accepts unsorted graphs, so robustcheck must too. Kahn's algorithm with a
    first-in-first-out queue seeded in file order: linear in the graph's size, and a graph that
    is already sorted comes back unchanged. Names produced by no node (graph inputs,
    initializers) are available from the start. On a cycle the remaining nodes are appended
    in file order and onnxruntime's verdict stands.
    """
    order = _order([tuple(n.output) for n in nodes], [_dependencies(n) for n in nodes])
    return [nodes[i] for i in order]


def _order(outputs: Sequence[tuple[str, ...]], deps: Sequence[set[str]]) -> list[int]:
    """topological_order on node indices, given each node's outputs and dependencies."""
    producer: dict[str, int] = {}
    for index, outs in enumerate(outputs):
        for out in outs:
            if out:
                producer.setdefault(out, index)
    if all(producer.get(name, -1) < index for index, names in enumerate(deps) for name in names):
        return list(range(len(outputs)))  # already sorted (the usual case)
    waiting = [0] * len(outputs)
    consumers: list[list[int]] = [[] for _ in outputs]
    for index, names in enumerate(deps):
        for source in {producer[name] for name in names if name in producer and producer[name] != index}:
            waiting[index] += 1
            consumers[source].append(index)
    queue = deque(i for i, count in enumerate(waiting) if count == 0)
    order: list[int] = []
    while queue:
        index = queue.popleft()
        order.append(index)
        for consumer in consumers[index]:
            waiting[consumer] -= 1
            if waiting[consumer] == 0:
                queue.append(consumer)
    if len(order) < len(outputs):
        placed = set(order)
        order += [i for i in range(len(outputs)) if i not in placed]
    return order


def _producer(graph: onnx.GraphProto, name: str) -> onnx.NodeProto | None:
    # From the end: in the usual sorted graph an output's producer is among the last nodes.
    for node in reversed(graph.node):
        if name in node.output:
            return node
    return None


def choose_output(
    proto: onnx.ModelProto, wanted: str | None, label: str
) -> tuple[str, OutputKind, str | None, tuple[str, ...]]:
    """Pick the float tensor output holding the scores and cut a trailing Softmax/LogSoftmax.

    Non-tensor outputs (ZipMap's sequences of maps) and label tensors are ignored.
    """
    def is_float_tensor(value: onnx.ValueInfoProto) -> bool:
        return value.type.HasField("tensor_type") and value.type.tensor_type.elem_type in _FLOAT_TYPES

    candidates = [o.name for o in proto.graph.output if is_float_tensor(o)]
    ignored = tuple(o.name for o in proto.graph.output if not is_float_tensor(o))
    if wanted is not None:
        if wanted not in candidates:
            names = ", ".join(candidates) or "none"
            raise ModelError(f"{label}: output {wanted!r} is not a float tensor output (float outputs: {names})")
        chosen = wanted
    elif not candidates:
        raise ModelError(f"{label}: no float tensor output to read scores from")
    else:
        chosen = candidates[0]
        ignored += tuple(candidates[1:])
    name, node = chosen, _producer(proto.graph, chosen)
    seen: set[str] = set()
    while node is not None and node.op_type == "Identity" and node.input and name not in seen:
        seen.add(name)
        name, node = node.input[0], _producer(proto.graph, node.input[0])
    if node is not None and node.op_type in ("Softmax", "LogSoftmax") and not node.domain and node.input:
        kind: OutputKind = "cut-softmax" if node.op_type == "Softmax" else "cut-logsoftmax"
        return node.input[0], kind, node.name or node.op_type, ignored
    return chosen, "logits", None, ignored


def prune_to(proto: onnx.ModelProto, output: str) -> onnx.ModelProto:
    """A copy of the graph computing only `output` (dropping ZipMap/label branches and cut heads),
    its nodes in topological order."""
    pruned = onnx.ModelProto()
    pruned.CopyFrom(proto)
    graph = pruned.graph
    nodes = list(graph.node)
    outputs = [tuple(n.output) for n in nodes]
    deps = [_dependencies(n) for n in nodes]
    needed = {output}
    keep: list[int] = []
    for index in reversed(_order(outputs, deps)):
        if any(o in needed for o in outputs[index]):
            keep.append(index)
            needed |= deps[index]
    keep.reverse()
    if keep != list(range(len(nodes))):
        del graph.node[:]
        graph.node.extend(nodes[i] for i in keep)
    existing = {o.name: o for o in graph.output}
    del graph.output[:]
    if output in existing:
        graph.output.append(existing[output])
    else:
        graph.output.append(onnx.helper.make_empty_tensor_value_info(output))
    dropped = {t.name for t in graph.initializer if t.name not in needed}
    kept_inits = [t for t in graph.initializer if t.name not in dropped]
    del graph.initializer[:]
    graph.initializer.extend(kept_inits)
    # An initializer listed as a graph input (old exporters' defaults) goes with its initializer:
    # left behind, it would be an input nobody feeds.
    kept_inputs = [v for v in graph.input if v.name not in dropped]
    del graph.input[:]
    graph.input.extend(kept_inputs)
    return pruned
