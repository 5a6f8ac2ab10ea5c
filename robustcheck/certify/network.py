"""The replica's graph as the certifier sees it: affine nodes and piecewise-linear nodes, in float64.

`BoundGraph.build` walks the same steps the replica runs (robustcheck/replica/graph.py) once, on
a reference input of batch 1, and classifies every step that depends on the input:

- affine in its variable inputs (Conv, Gemm/MatMul with a constant weight, Add/Sub, Mul/Div by a
  constant, BatchNormalization, Flatten/Reshape/Transpose, Average/GlobalAveragePool,
  Identity/Dropout): kept as its offset f(0) and its vector-Jacobian product, which carries
  linear bounds backwards exactly (the replica's own operator code, differentiated by
  `torch.func`, so padding, strides, groups and broadcasting mean what they mean in the replica);
- piecewise linear (Relu, LeakyRelu, MaxPool): relaxed by CROWN, encoded exactly by the MILP;
- Shape/Size of a variable tensor: a constant (the batch is fixed at 1).

Anything else makes the model "not verifiable", naming every such operator and node.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.func import vjp, vmap

from robustcheck.errors import RobustcheckError
from robustcheck.replica.coercion import ints
from robustcheck.replica.ops.window_padding import explicit_pads
from robustcheck.replica.registry import NodeContext

Tensor = torch.Tensor

AFFINE_OPS = frozenset({"Conv", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "BatchNormalization", "Flatten",
                        "Reshape", "Transpose", "AveragePool", "GlobalAveragePool", "Identity", "Dropout"})
PIECEWISE_OPS = frozenset({"Relu", "LeakyRelu", "MaxPool"})
SHAPE_OPS = frozenset({"Shape", "Size"})
SUPPORTED_OPS = AFFINE_OPS | PIECEWISE_OPS
# Ops affine in one variable input at position 0 only (the others are constant weights/parameters).
_FIRST_INPUT_ONLY = frozenset({"Conv", "Div", "BatchNormalization", "Flatten", "Reshape", "Transpose", "AveragePool",
                               "GlobalAveragePool", "Identity", "Dropout"})


class NotVerifiable(RobustcheckError):
    """The model's graph holds operators the certifier cannot bound (the message names them)."""


@dataclass
class AffineNode:
    """y = Σ_i L_i x_i + offset over the variable inputs x_i."""

    name: str
    op: str
    inputs: tuple[str, ...]
    offset: Tensor
    backward: Callable[[Tensor], tuple[Tensor, ...]]  # rows A (S, *out) -> (S, *in_i) per input
    abs_forward: Callable[[list[Tensor]], Tensor]  # radii r_i -> Σ |L_i| r_i (interval propagation)
    forward: Callable[[list[Tensor]], Tensor]
    ctx: NodeContext
    args: list[Any]  # the node's inputs with constants in place (variable positions hold a reference value)


@dataclass
class ReluNode:
    """y = x for x ≥ 0, slope·x below (Relu: slope 0; LeakyRelu: its alpha)."""

    name: str
    op: str
    input: str
    slope: float

    def apply(self, x: Tensor) -> Tensor:
        return torch.where(x >= 0, x, self.slope * x)


@dataclass
class MaxPoolNode:
    """y[o] = max over window o of x; `windows` (outputs, K) holds flat input indices, -1 for padding."""

    name: str
    op: str
    input: str
    windows: Tensor
    out_shape: tuple[int, ...]
    ctx: NodeContext

    def apply(self, x: Tensor) -> Tensor:
        flat = x.reshape(-1)
        vals = torch.where(self.windows >= 0, flat[self.windows.clamp_min(0)], -math.inf)
        return vals.amax(dim=1).reshape(self.out_shape)


Node = AffineNode | ReluNode | MaxPoolNode


@dataclass
class BoundGraph:
    """Nodes in execution order over one input of shape `input_shape` (batch 1), float64."""

    input_name: str
    input_shape: tuple[int, ...]
    output_name: str
    nodes: list[Node]
    shapes: dict[str, tuple[int, ...]]
    consumers: dict[str, list[Node]] = field(default_factory=dict)
    position: dict[str, int] = field(default_factory=dict)
    patchable: set[str] | None = None  # filled by crown on first use (patches.patchable_nodes)

    def __post_init__(self) -> None:
        self.position = {node.name: i for i, node in enumerate(self.nodes)}
        for node in self.nodes:
            for name in node_inputs(node):
                self.consumers.setdefault(name, []).append(node)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.shapes[self.output_name]

    def trace(self, x: Tensor) -> dict[str, Tensor]:
        """Every node's value for one input (shape `input_shape`), float64."""
        values = {self.input_name: x}
        for node in self.nodes:
            if isinstance(node, AffineNode):
                values[node.name] = node.forward([values[i] for i in node.inputs])
            else:
                values[node.name] = node.apply(values[node.input])
        return values

    def forward(self, x: Tensor) -> Tensor:
        """The graph's output for one input (shape `input_shape`), float64."""
        return self.trace(x)[self.output_name]

    def forward_batch(self, x: Tensor) -> Tensor:
        """Outputs (B, *output_shape[1:]) for inputs (B, *input_shape[1:])."""
        return vmap(lambda row: self.forward(row.unsqueeze(0)).squeeze(0))(x)

    def piecewise_nodes(self) -> list[ReluNode | MaxPoolNode]:
        return [n for n in self.nodes if not isinstance(n, AffineNode)]

    @classmethod
    def build(cls, replica: Any, sample: np.ndarray | Tensor, label: str = "model") -> BoundGraph:
        """Interpret `replica` (an OnnxReplica) for inputs shaped like `sample` (batch 1)."""
        steps, constants = replica.graph_view()
        consts = {k: _as_float64(v) for k, v in constants.items()}
        x = torch.as_tensor(np.asarray(sample), dtype=torch.float64)
        values: dict[str, Tensor] = {replica.input_name: x}
        nodes: list[Node] = []
        unsupported: list[str] = []
        for step in steps:
            ctx, inputs = step.ctx, step.inputs
            var_pos = [i for i, name in enumerate(inputs) if name in values]
            args = [values[n] if n in values else consts.get(n) if n else None for n in inputs]
            if not var_pos or ctx.op_type in SHAPE_OPS:
                with torch.no_grad():
                    outs = step.fn(ctx, args)
                consts.update((n, _as_float64(v)) for n, v in zip(step.outputs, outs) if n)
                continue
            problem = _unsupported_reason(ctx, var_pos, args)
            if problem:
                unsupported.append(f"{problem} ({ctx.label})")
                continue
            with torch.no_grad():
                outs = step.fn(ctx, args)
            values[step.outputs[0]] = outs[0]
            consts.update((n, v) for n, v in zip(step.outputs[1:], outs[1:]) if n)  # Dropout's mask: constant
            nodes.append(_make_node(step, ctx, var_pos, args, values))
        if unsupported:
            raise NotVerifiable(f"{label}: not verifiable: unsupported by the certifier: " + "; ".join(unsupported))
        (output,) = replica.output_names
        if output not in values:
            raise NotVerifiable(f"{label}: not verifiable: output {output!r} does not depend on the input")
        shapes = {name: tuple(v.shape) for name, v in values.items()}
        return cls(replica.input_name, tuple(x.shape), output, nodes, shapes)


def node_inputs(node: Node) -> tuple[str, ...]:
    return node.inputs if isinstance(node, AffineNode) else (node.input,)


def _as_float64(value: Any) -> Any:
    if isinstance(value, Tensor) and value.is_floating_point():
        return value.detach().to(torch.float64)
    return value


def _unsupported_reason(ctx: NodeContext, var_pos: list[int], args: list[Any]) -> str | None:
    op = ctx.op_type
    if op not in SUPPORTED_OPS:
        return op
    if any(not (isinstance(args[p], Tensor) and args[p].is_floating_point()) for p in var_pos):
        return f"{op} on a non-float tensor"
    if op in _FIRST_INPUT_ONLY and var_pos != [0]:
        return f"{op} whose parameters depend on the input"
    if op in ("Gemm", "MatMul", "Mul") and len(var_pos) != 1:
        return f"{op} of two input-dependent tensors"
    if op == "MaxPool" and ctx.num_outputs != 1:
        return "MaxPool with an Indices output"
    if op == "Gemm" and len(var_pos) == 1 and var_pos[0] == 2:
        return "Gemm whose bias depends on the input"
    return None


def _make_node(step: Any, ctx: NodeContext, var_pos: list[int], args: list[Any], values: dict[str, Tensor]) -> Node:
    name, op = step.outputs[0], ctx.op_type
    if op in ("Relu", "LeakyRelu"):
        slope = 0.0 if op == "Relu" else float(ctx.attr("alpha", 0.01))
        return ReluNode(name, op, step.inputs[0], slope)
    if op == "MaxPool":
        windows = _pool_windows(ctx, args[0], values[name])
        return MaxPoolNode(name, op, step.inputs[0], windows, tuple(values[name].shape), ctx)
    return _affine_node(step, ctx, var_pos, args)


def _affine_node(step: Any, ctx: NodeContext, var_pos: list[int], args: list[Any]) -> AffineNode:
    fn = step.fn
    inputs = tuple(step.inputs[p] for p in var_pos)

    def forward(vs: list[Tensor], ctx_: NodeContext = ctx, base: list[Any] = args) -> Tensor:
        full = list(base)
        for p, v in zip(var_pos, vs):
            full[p] = v
        return fn(ctx_, full)[0]

    zeros = [torch.zeros_like(args[p]) for p in var_pos]
    offset, vjp_fn = vjp(lambda *vs: forward(list(vs)), *zeros)  # type: ignore[misc]  # torch stubs: 2-tuple
    offset = offset.detach()
    batched = vmap(vjp_fn)

    def backward(rows: Tensor) -> tuple[Tensor, ...]:
        return tuple(batched(rows))

    out_shape = tuple(offset.shape)
    if ctx.op_type in ("Add", "Sub"):
        def abs_forward(radii: list[Tensor]) -> Tensor:
            return sum((torch.broadcast_to(r, out_shape) for r in radii), torch.zeros(out_shape, dtype=torch.float64))
    else:
        abs_ctx = NodeContext(ctx.op_type, dict(ctx.attrs), ctx.opset, ctx.name, ctx.num_outputs, ctx.index)
        for key in ("alpha", "beta"):
            if key in abs_ctx.attrs:
                abs_ctx.attrs[key] = abs(abs_ctx.attrs[key])
        abs_args = [a.abs() if isinstance(a, Tensor) and a.is_floating_point() else a for a in args]
        abs_zero = forward([torch.zeros_like(z) for z in zeros], abs_ctx, abs_args)

        def abs_forward(radii: list[Tensor]) -> Tensor:
            return forward(radii, abs_ctx, abs_args) - abs_zero

    return AffineNode(step.outputs[0], ctx.op_type, inputs, offset, backward, abs_forward, forward, ctx, args)


def _pool_windows(ctx: NodeContext, x: Tensor, y: Tensor) -> Tensor:
    """Flat input indices of every MaxPool window (rows in the output's flat order), -1 for padding."""
    kernel = ints(ctx.attr("kernel_shape"))
    spatial = len(kernel)
    strides = ints(ctx.attr("strides")) or [1] * spatial
    dil = ints(ctx.attr("dilations")) or [1] * spatial
    begin, _ = explicit_pads(ctx, x, kernel)
    in_sp, out_sp = list(x.shape[2:]), list(y.shape[2:])
    per_axis = []  # (out_d, k_d) input coordinate along each axis, -1 outside
    for d in range(spatial):
        coord = (torch.arange(out_sp[d])[:, None] * strides[d] - begin[d] + torch.arange(kernel[d])[None, :] * dil[d])
        per_axis.append(torch.where((coord >= 0) & (coord < in_sp[d]), coord, -1))
    # Combine axes: index over (out_0..out_s, k_0..k_s).
    flat = torch.zeros([1] * (2 * spatial), dtype=torch.long)
    valid = torch.ones([1] * (2 * spatial), dtype=torch.bool)
    stride_in = 1
    for d in reversed(range(spatial)):
        shape = [1] * (2 * spatial)
        shape[d], shape[spatial + d] = out_sp[d], kernel[d]
        c = per_axis[d].reshape(shape)
        flat = flat + c.clamp_min(0) * stride_in
        valid = valid & (c >= 0)
        stride_in *= in_sp[d]
    per_channel = torch.where(valid, flat, -1).reshape(int(np.prod(out_sp)), int(np.prod(kernel)))
    channels = x.shape[0] * x.shape[1]
    base = torch.arange(channels)[:, None, None] * stride_in
    windows = torch.where(per_channel[None] >= 0, per_channel[None] + base, -1)
    return windows.reshape(channels * per_channel.shape[0], -1)
