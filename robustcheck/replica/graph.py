"""Building the replica from an ONNX graph, and running it.

Build: every node is resolved in the registry for the model's opset of its domain; nodes
whose inputs are all constant are evaluated once (constant folding, never for random
operators); the rest become the steps `forward` runs in order. Initializers and folded
values become buffers (no parameter gradients are ever needed).

Modes (gradient_rules.py): the steps of the `exact` mode use each operator's exact function;
the `adaptive` mode swaps in the surrogate-gradient functions of the operators that have one.
A graph without such operators has one list of steps, shared by both modes, so it pays nothing.

Per-sample graphs: with `sample_batch` set (the model layer does it for a graph whose input has
a fixed batch size, which older exporters also bake into Reshape constants, or that couples the
samples of a batch, as DynamicQuantizeLinear does), the graph runs on any batch through
`torch.func.vmap` over chunks of that size, exactly as onnxruntime runs it one call per chunk.

A failure inside a node, at build or run time, names the node and its operator:
`node 'conv_3' (Conv, opset 17): <reason>`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import onnx
import torch
from onnx import numpy_helper

from robustcheck.errors import first_line
from robustcheck.replica.coercion import node_attributes, to_tensor
from robustcheck.replica.gradient_rules import ReplicaMode
from robustcheck.replica.registry import REGISTRY, NodeContext, OpEntry, OpFn, UnsupportedGraph, normalise_domain

Tensor = torch.Tensor


class NodeFailure(Exception):
    """An operator failed on its node (the message names the node, its operator and opset)."""


def node_error(ctx: NodeContext, exc: BaseException) -> Exception:
    """`exc` re-worded to name the node; an UnsupportedGraph stays one."""
    if isinstance(exc, UnsupportedGraph):
        return UnsupportedGraph(f"{ctx.label}: {exc}")
    detail = f": {first_line(exc)}" if str(exc).strip() else ""
    return NodeFailure(f"{ctx.label}: {type(exc).__name__}{detail}")


@dataclass(slots=True)
class _Step:
    fn: OpFn
    ctx: NodeContext
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def opset_imports(model: onnx.ModelProto) -> dict[str, int]:
    """The model's opset version per (normalised) domain."""
    return {normalise_domain(imp.domain): int(imp.version) for imp in model.opset_import}


def _resolve(nodes: Sequence[onnx.NodeProto], imports: dict[str, int]) -> list[OpEntry]:
    """The registry entry of every node; raises UnsupportedGraph naming every operator that has none."""
    entries: list[OpEntry] = []
    missing: set[str] = set()
    resolved: dict[tuple[str, str], OpEntry | None] = {}
    for node in nodes:
        domain = normalise_domain(node.domain)
        opset = imports.get(domain, 0)
        key = (domain, node.op_type)
        if key in resolved:
            entry = resolved[key]
        else:
            entry = resolved[key] = REGISTRY.lookup(domain, node.op_type, opset)
        if entry is None:
            name = f"{domain}.{node.op_type}" if domain else node.op_type
            missing.add(f"{name} (opset {opset})" if REGISTRY.knows(domain, node.op_type) else name)
        else:
            entries.append(entry)
    if missing:
        raise UnsupportedGraph("unsupported operators: " + ", ".join(sorted(missing)))
    return entries


class OnnxReplica(torch.nn.Module):
    """A torch module that evaluates one ONNX graph (single data input, chosen outputs)."""

    def __init__(self, model: onnx.ModelProto, input_name: str, output_names: Sequence[str]) -> None:
        super().__init__()
        graph = model.graph
        imports = opset_imports(model)
        self.input_name = input_name
        self.output_names = list(output_names)
        entries = _resolve(graph.node, imports)
        constants: dict[str, Any] = {}
        for init in graph.initializer:
            try:
                constants[init.name] = to_tensor(numpy_helper.to_array(init))
            except UnsupportedGraph as exc:
                raise UnsupportedGraph(f"initializer {init.name!r}: {exc}") from None
        self.nondifferentiable: list[str] = []
        #: Operator types with a surrogate gradient in adaptive mode, and those drawing random numbers.
        self.adaptive_ops: list[str] = []
        self.random_ops: list[str] = []
        self.per_sample_ops: list[str] = []
        self.mode: ReplicaMode = "exact"
        #: Run the graph on chunks of this many samples (vmap), or on the whole batch when None.
        self.sample_batch: int | None = None
        steps: list[_Step] = []
        adaptive_steps: list[_Step] = []
        for index, (node, entry) in enumerate(zip(graph.node, entries)):
            inputs, outputs = tuple(node.input), tuple(node.output)
            ctx = NodeContext(node.op_type, {}, imports.get(entry.key.domain, 0), node.name, len(outputs), index,
                              tuple(bool(i) and i in constants for i in inputs))
            try:
                if node.attribute:
                    ctx.attrs = node_attributes(node)
                if not entry.never_fold and all((not i) or i in constants for i in inputs):
                    with torch.no_grad():
                        outs = entry.fn(ctx, [constants[i] if i else None for i in inputs])
                    constants.update((name, value) for name, value in zip(outputs, outs) if name)
                    continue
            except Exception as exc:
                raise node_error(ctx, exc) from exc
            if not entry.differentiable and node.op_type not in self.nondifferentiable:
                self.nondifferentiable.append(node.op_type)
            step = _Step(entry.fn, ctx, inputs, outputs)
            steps.append(step)
            adaptive_steps.append(step if entry.adaptive is None else _Step(entry.adaptive, ctx, inputs, outputs))
            _note(self.adaptive_ops, node.op_type, entry.adaptive is not None)
            _note(self.random_ops, node.op_type, entry.draws_random(ctx, [constants.get(i) for i in inputs]))
            _note(self.per_sample_ops, node.op_type, entry.per_sample)
        self._steps = steps
        self._adaptive_steps = adaptive_steps if self.adaptive_ops else steps
        needed = {i for step in steps for i in step.inputs} | set(self.output_names)
        self._const_names: dict[str, str] = {}
        for idx, (name, value) in enumerate(constants.items()):
            if name in needed:
                buffer_name = f"c{idx}"
                if isinstance(value, Tensor):
                    self.register_buffer(buffer_name, value, persistent=False)
                else:
                    setattr(self, buffer_name, value)
                self._const_names[name] = buffer_name

    @property
    def randomized(self) -> bool:
        return bool(self.random_ops)

    def graph_view(self) -> tuple[list[_Step], dict[str, Any]]:
        """The steps in execution order and the constant values they read, for analyses that
        interpret the same graph (robustcheck.certify). Read-only by convention."""
        return list(self._steps), {name: getattr(self, b) for name, b in self._const_names.items()}

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, ...]:
        steps = self._adaptive_steps if self.mode == "adaptive" else self._steps
        if self.sample_batch is None:
            return self._run(steps, x)
        return self._run_per_sample(steps, x, self.sample_batch)

    def _run_per_sample(self, steps: list[_Step], x: Tensor, size: int) -> Tensor | tuple[Tensor, ...]:
        n = len(x)
        pad = (-n) % size
        if pad:
            x = torch.cat([x, x[:1].expand(pad, *x.shape[1:])])
        chunks = x.reshape(len(x) // size, size, *x.shape[1:])
        out = torch.func.vmap(lambda chunk: self._run(steps, chunk), randomness="different")(chunks)
        if isinstance(out, tuple):
            return tuple(o.reshape(-1, *o.shape[2:])[:n] for o in out)
        return out.reshape(-1, *out.shape[2:])[:n]

    def _run(self, steps: list[_Step], x: Tensor) -> Tensor | tuple[Tensor, ...]:
        env: dict[str, Any] = {name: getattr(self, b) for name, b in self._const_names.items()}
        env[self.input_name] = x
        step: _Step | None = None
        try:
            for step in steps:
                results = step.fn(step.ctx, [env[i] if i else None for i in step.inputs])
                for name, value in zip(step.outputs, results):
                    if name:
                        env[name] = value
        except Exception as exc:
            if step is None:
                raise
            raise node_error(step.ctx, exc) from exc
        if len(self.output_names) == 1:
            return env[self.output_names[0]]
        return tuple(env[n] for n in self.output_names)


def _note(names: list[str], op_type: str, condition: bool) -> None:
    if condition and op_type not in names:
        names.append(op_type)


def build_replica(model: onnx.ModelProto, input_name: str, output_names: Sequence[str]) -> OnnxReplica:
    """Build the replica; raises UnsupportedGraph naming every operator it cannot build, and
    UnsupportedGraph or NodeFailure naming the node whose folding or attributes fail."""
    replica = OnnxReplica(model, input_name, output_names)
    replica.eval()
    return replica
