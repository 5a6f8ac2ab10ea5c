"""ONNX graph -> differentiable torch module.

onnxruntime gives no gradients, so attacks run on this replica of the graph, built here one
small function per operator and checked against onnxruntime on every load (see model.py).
Each operator function takes the node's attributes and its input tensors and returns its
output tensors. Operators whose gradient is zero or undefined almost everywhere (Round,
comparisons, random ops, ...) are marked non-differentiable: the diagnostics report them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper

Tensor = torch.Tensor
OpFn = Callable[["NodeContext", list[Any]], list[Any]]


@dataclass
class OpInfo:
    fn: OpFn
    differentiable: bool = True


OPS: dict[str, OpInfo] = {}


def register(*names: str, differentiable: bool = True) -> Callable[[OpFn], OpFn]:
    """Register an operator implementation under one or more ONNX op types."""

    def wrap(fn: OpFn) -> OpFn:
        for name in names:
            OPS[name] = OpInfo(fn, differentiable)
        return fn

    return wrap


@dataclass
class NodeContext:
    """What an operator function sees of its node: attributes, opset, name."""

    op_type: str
    attrs: dict[str, Any]
    opset: int
    name: str
    num_outputs: int
    subgraphs: dict[str, Any] = field(default_factory=dict)

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)


class UnsupportedGraph(Exception):
    """The graph uses operators (or domains) the replica cannot build."""


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in node.attribute:
        value = helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, onnx.TensorProto):
            value = numpy_helper.to_array(value)
        out[a.name] = value
    return out


def _to_tensor(array: np.ndarray) -> Tensor:
    if array.dtype == np.float64:
        return torch.from_numpy(array.copy())
    if array.dtype.kind == "U" or array.dtype.kind == "O":
        raise UnsupportedGraph("string tensors")
    return torch.from_numpy(np.ascontiguousarray(array).copy())


class OnnxReplica(torch.nn.Module):
    """A torch module that evaluates one ONNX graph (single data input, chosen outputs).

    Initializers become buffers (no parameter gradients are ever needed). Nodes whose
    inputs are all constant are folded once at build time.
    """

    def __init__(self, model: onnx.ModelProto, input_name: str, output_names: Sequence[str]) -> None:
        super().__init__()
        graph = model.graph
        self.opset = _default_opset(model)
        self.input_name = input_name
        self.output_names = list(output_names)
        unsupported = sorted(
            {f"{n.domain + '.' if n.domain not in ('', 'ai.onnx') else ''}{n.op_type}" for n in graph.node
             if n.domain not in ("", "ai.onnx") or n.op_type not in OPS}
        )
        if unsupported:
            raise UnsupportedGraph("unsupported operators: " + ", ".join(unsupported))
        constants: dict[str, Any] = {}
        for init in graph.initializer:
            constants[init.name] = _to_tensor(numpy_helper.to_array(init))
        self.nondifferentiable: list[str] = []
        steps: list[tuple[NodeContext, list[str], list[str]]] = []
        for node in graph.node:
            ctx = NodeContext(node.op_type, _attrs(node), self.opset, node.name, len(node.output))
            info = OPS[node.op_type]
            if all((not i) or i in constants for i in node.input) and node.op_type not in _NEVER_FOLD:
                args = [constants[i] if i else None for i in node.input]
                with torch.no_grad():
                    outs = info.fn(ctx, args)
                for name, value in zip(node.output, outs):
                    if name:
                        constants[name] = value
                continue
            if not info.differentiable and node.op_type not in self.nondifferentiable:
                self.nondifferentiable.append(node.op_type)
            steps.append((ctx, list(node.input), list(node.output)))
        self._steps = steps
        needed = {i for _, ins, _ in steps for i in ins} | set(self.output_names)
        self._const_names: dict[str, str] = {}
        for idx, (name, value) in enumerate(constants.items()):
            if name in needed:
                buffer_name = f"c{idx}"
                if isinstance(value, Tensor):
                    self.register_buffer(buffer_name, value, persistent=False)
                else:
                    setattr(self, buffer_name, value)
                self._const_names[name] = buffer_name

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, ...]:
        env: dict[str, Any] = {name: getattr(self, b) for name, b in self._const_names.items()}
        env[self.input_name] = x
        for ctx, ins, outs in self._steps:
            args = [env[i] if i else None for i in ins]
            results = OPS[ctx.op_type].fn(ctx, args)
            for name, value in zip(outs, results):
                if name:
                    env[name] = value
        if len(self.output_names) == 1:
            return env[self.output_names[0]]
        return tuple(env[n] for n in self.output_names)


# Random ops must draw anew on every call, never once at build time.
_NEVER_FOLD = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Dropout"}


def _default_opset(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    return 1


def build_replica(model: onnx.ModelProto, input_name: str, output_names: Sequence[str]) -> OnnxReplica:
    """Build the replica; raises UnsupportedGraph naming every operator it cannot build."""
    replica = OnnxReplica(model, input_name, output_names)
    replica.eval()
    return replica


# ---------------------------------------------------------------------------------------
# Helpers shared by operator functions

def _ints(value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, Tensor):
        return [int(v) for v in value.reshape(-1).tolist()]
    if isinstance(value, np.ndarray):
        return [int(v) for v in value.reshape(-1).tolist()]
    if isinstance(value, (int, np.integer)):
        return [int(value)]
    return [int(v) for v in value]


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def _as_tensor(value: Any, like: Tensor | None = None) -> Tensor:
    if isinstance(value, Tensor):
        return value
    t = torch.as_tensor(value)
    if like is not None and t.is_floating_point():
        t = t.to(like.dtype)
    return t


def _promote(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    a, b = _as_tensor(a), _as_tensor(b)
    return a, b


_ONNX_TO_TORCH_DTYPE = {
    onnx.TensorProto.FLOAT: torch.float32,
    onnx.TensorProto.DOUBLE: torch.float64,
    onnx.TensorProto.FLOAT16: torch.float16,
    onnx.TensorProto.BFLOAT16: torch.bfloat16,
    onnx.TensorProto.INT64: torch.int64,
    onnx.TensorProto.INT32: torch.int32,
    onnx.TensorProto.INT16: torch.int16,
    onnx.TensorProto.INT8: torch.int8,
    onnx.TensorProto.UINT8: torch.uint8,
    onnx.TensorProto.BOOL: torch.bool,
}


def torch_dtype(onnx_type: int) -> torch.dtype:
    if onnx_type not in _ONNX_TO_TORCH_DTYPE:
        raise UnsupportedGraph(f"tensor type {onnx.TensorProto.DataType.Name(onnx_type)}")
    return _ONNX_TO_TORCH_DTYPE[onnx_type]


# ---------------------------------------------------------------------------------------
# Elementwise arithmetic

@register("Add")
def _add(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [torch.add(*_promote(a[0], a[1]))]


@register("Sub")
def _sub(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [torch.sub(*_promote(a[0], a[1]))]


@register("Mul")
def _mul(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [torch.mul(*_promote(a[0], a[1]))]


@register("Div")
def _div(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x, y = _promote(a[0], a[1])
    if not x.is_floating_point() and not y.is_floating_point():
        return [torch.div(x, y, rounding_mode="trunc")]
    return [x / y]


@register("Pow")
def _pow(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x, y = _promote(a[0], a[1])
    return [torch.pow(x, y.to(x.dtype) if x.is_floating_point() else y).to(x.dtype)]


def _unary(name: str, fn: Callable[[Tensor], Tensor], differentiable: bool = True) -> None:
    register(name, differentiable=differentiable)(lambda ctx, a: [fn(a[0])])


_unary("Sqrt", torch.sqrt)
_unary("Exp", torch.exp)
_unary("Log", torch.log)
_unary("Abs", torch.abs)
_unary("Neg", torch.neg)
_unary("Reciprocal", torch.reciprocal)
_unary("Erf", torch.erf)
_unary("Relu", torch.relu)
_unary("Sigmoid", torch.sigmoid)
_unary("Tanh", torch.tanh)
_unary("Softplus", F.softplus)
_unary("Identity", lambda x: x)
_unary("Floor", torch.floor, differentiable=False)
_unary("Ceil", torch.ceil, differentiable=False)
_unary("Round", torch.round, differentiable=False)  # ONNX and torch both round half to even
_unary("Sign", torch.sign, differentiable=False)
_unary("Not", torch.logical_not, differentiable=False)


@register("LeakyRelu")
def _leaky_relu(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [F.leaky_relu(a[0], ctx.attr("alpha", 0.01))]


@register("Clip")
def _clip(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    if ctx.opset < 11:
        lo, hi = ctx.attr("min", -math.inf), ctx.attr("max", math.inf)
    else:
        lo = a[1] if len(a) > 1 and a[1] is not None else None
        hi = a[2] if len(a) > 2 and a[2] is not None else None
        lo = None if lo is None else float(lo)
        hi = None if hi is None else float(hi)
    if lo is not None and hi is not None and lo > hi:
        return [torch.full_like(x, hi)]
    lo = None if lo == -math.inf else lo
    hi = None if hi == math.inf else hi
    return [torch.clamp(x, lo, hi)]


# ---------------------------------------------------------------------------------------
# Linear algebra and convolution

@register("MatMul")
def _matmul(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [torch.matmul(a[0], a[1])]


@register("Gemm")
def _gemm(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x, w = a[0], a[1]
    bias = a[2] if len(a) > 2 else None
    if (ctx.attr("transB", 0) and not ctx.attr("transA", 0) and ctx.attr("alpha", 1.0) == 1.0
            and ctx.attr("beta", 1.0) == 1.0 and (bias is None or bias.dim() == 1)):
        return [F.linear(x, w, bias)]  # the exporters' nn.Linear form: one fused kernel, as natively
    if ctx.attr("transA", 0):
        x = x.transpose(0, 1)
    if ctx.attr("transB", 0):
        w = w.transpose(0, 1)
    y = ctx.attr("alpha", 1.0) * (x @ w)
    if len(a) > 2 and a[2] is not None:
        y = y + ctx.attr("beta", 1.0) * a[2]
    return [y]


def _conv_padding(ctx: NodeContext, x: Tensor, kernel: Sequence[int], value: float = 0.0) -> tuple[Tensor, list[int]]:
    """Resolve ONNX pads / auto_pad: symmetric padding for torch, or pre-padding with `value` when asymmetric."""
    begin, end = _explicit_pads(ctx, x, list(kernel))
    if begin == end:
        return x, begin
    flat: list[int] = []
    for i in reversed(range(len(begin))):
        flat += [begin[i], end[i]]
    return F.pad(x, flat, value=value), [0] * len(begin)


@register("Conv")
def _conv(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x, w = a[0], a[1]
    b = a[2] if len(a) > 2 else None
    spatial = x.dim() - 2
    x, padding = _conv_padding(ctx, x, list(w.shape[2:]))
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[spatial]
    return [conv(x, w, b, stride=_ints(ctx.attr("strides")) or 1, padding=padding,
                 dilation=_ints(ctx.attr("dilations")) or 1, groups=ctx.attr("group", 1))]


# ---------------------------------------------------------------------------------------
# Pooling and normalisation

def _explicit_pads(ctx: NodeContext, x: Tensor, kernel: list[int]) -> tuple[list[int], list[int]]:
    spatial = x.dim() - 2
    pads = _ints(ctx.attr("pads")) or [0] * (2 * spatial)
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if auto_pad == "VALID":
        return [0] * spatial, [0] * spatial
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        strides = _ints(ctx.attr("strides")) or [1] * spatial
        dil = _ints(ctx.attr("dilations")) or [1] * spatial
        begin, end = [], []
        for i in range(spatial):
            size = x.shape[2 + i]
            out = -(-size // strides[i])
            total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - size)
            small, big = total // 2, total - total // 2
            begin.append(small if auto_pad == "SAME_UPPER" else big)
            end.append(big if auto_pad == "SAME_UPPER" else small)
        return begin, end
    return pads[:spatial], pads[spatial:]


@register("MaxPool")
def _max_pool(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    kernel = _ints(ctx.attr("kernel_shape"))
    spatial = len(kernel)
    x, padding = _conv_padding(ctx, x, kernel, value=-math.inf)
    pool = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[spatial]
    y = pool(x, kernel, stride=_ints(ctx.attr("strides")) or [1] * spatial, padding=padding,
             dilation=_ints(ctx.attr("dilations")) or 1, ceil_mode=bool(ctx.attr("ceil_mode", 0)))
    return [y]


@register("AveragePool")
def _avg_pool(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    kernel = _ints(ctx.attr("kernel_shape"))
    spatial = len(kernel)
    count_include_pad = bool(ctx.attr("count_include_pad", 0))
    begin, end = _explicit_pads(ctx, x, kernel)
    strides = _ints(ctx.attr("strides")) or [1] * spatial
    ceil_mode = bool(ctx.attr("ceil_mode", 0))
    pool = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[spatial]
    if begin == end and all(2 * p <= k for p, k in zip(begin, kernel)):
        return [pool(x, kernel, stride=strides, padding=begin, ceil_mode=ceil_mode,
                     count_include_pad=count_include_pad)]
    flat: list[int] = []
    for i in reversed(range(spatial)):
        flat += [begin[i], end[i]]
    padded = F.pad(x, flat)
    total = pool(padded, kernel, stride=strides, ceil_mode=ceil_mode) * float(np.prod(kernel))
    if count_include_pad:
        return [total / float(np.prod(kernel))]
    ones = F.pad(torch.ones_like(x[:1, :1]), flat)
    counts = pool(ones, kernel, stride=strides, ceil_mode=ceil_mode) * float(np.prod(kernel))
    return [total / counts]


@register("GlobalAveragePool")
def _global_avg_pool(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    return [x.mean(dim=tuple(range(2, x.dim())), keepdim=True)]


@register("GlobalMaxPool")
def _global_max_pool(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    return [x.amax(dim=tuple(range(2, x.dim())), keepdim=True)]


@register("BatchNormalization")
def _batch_norm(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x, scale, bias, mean, var = a[:5]
    shape = [1, -1] + [1] * (x.dim() - 2)
    inv = torch.rsqrt(var.reshape(shape) + ctx.attr("epsilon", 1e-5))
    return [(x - mean.reshape(shape)) * inv * scale.reshape(shape) + bias.reshape(shape)]


@register("Dropout")
def _dropout(ctx: NodeContext, a: list[Any]) -> list[Any]:
    # Inference semantics: identity (training_mode inputs are ignored, as onnxruntime does
    # when training_mode is false). The mask output, when requested, is all true.
    x = a[0]
    return [x, torch.ones_like(x, dtype=torch.bool)][: ctx.num_outputs]


@register("Softmax", "LogSoftmax")
def _softmax(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    fn = torch.softmax if ctx.op_type == "Softmax" else torch.log_softmax
    if ctx.opset >= 13:
        return [fn(x, dim=ctx.attr("axis", -1))]
    axis = _axis(ctx.attr("axis", 1), x.dim())
    flat = x.reshape(int(np.prod(x.shape[:axis])), -1)
    return [fn(flat, dim=1).reshape(x.shape)]


# ---------------------------------------------------------------------------------------
# Shape manipulation

@register("Flatten")
def _flatten(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    axis = _axis(ctx.attr("axis", 1), x.dim())
    lead = int(np.prod(x.shape[:axis])) if axis > 0 else 1
    return [x.reshape(lead, -1)]


@register("Reshape")
def _reshape(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    shape = _ints(ctx.attr("shape")) if ctx.opset < 5 else _ints(a[1])
    allowzero = ctx.attr("allowzero", 0)
    if not allowzero:
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return [x.reshape(shape)]


@register("Shape", differentiable=True)
def _shape(ctx: NodeContext, a: list[Any]) -> list[Any]:
    dims = list(a[0].shape)
    start, end = ctx.attr("start", 0), ctx.attr("end", None)
    dims = dims[start:end]
    return [torch.tensor(dims, dtype=torch.int64)]


@register("Transpose")
def _transpose(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    perm = _ints(ctx.attr("perm")) or list(reversed(range(x.dim())))
    return [x.permute(perm)]


@register("Constant")
def _constant(ctx: NodeContext, a: list[Any]) -> list[Any]:
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in ctx.attrs:
            value = ctx.attrs[key]
            if key in ("value_float", "value_floats"):
                return [torch.tensor(value, dtype=torch.float32)]
            if key in ("value_int", "value_ints"):
                return [torch.tensor(value, dtype=torch.int64)]
            return [_to_tensor(np.asarray(value))]
    raise UnsupportedGraph(f"Constant node {ctx.name!r} with attributes {sorted(ctx.attrs)}")


@register("Cast")
def _cast(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [_as_tensor(a[0]).to(torch_dtype(ctx.attr("to")))]


@register("Squeeze")
def _squeeze(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    axes = _ints(ctx.attr("axes")) if ctx.opset < 13 else _ints(a[1] if len(a) > 1 else None)
    if not axes:
        return [x.squeeze()]
    axes = sorted((_axis(ax, x.dim()) for ax in axes), reverse=True)
    for ax in axes:
        x = x.squeeze(ax)
    return [x]


@register("Unsqueeze")
def _unsqueeze(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    axes = _ints(ctx.attr("axes")) if ctx.opset < 13 else _ints(a[1])
    rank = x.dim() + len(axes)
    for ax in sorted(_axis(ax, rank) for ax in axes):
        x = x.unsqueeze(ax)
    return [x]


@register("Concat")
def _concat(ctx: NodeContext, a: list[Any]) -> list[Any]:
    parts = [_as_tensor(t) for t in a if t is not None]
    return [torch.cat(parts, dim=ctx.attr("axis"))]


@register("Gather")
def _gather(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x, idx = _as_tensor(a[0]), _as_tensor(a[1]).long()
    axis = _axis(ctx.attr("axis", 0), x.dim())
    idx = torch.where(idx < 0, idx + x.shape[axis], idx)
    out = torch.index_select(x, axis, idx.reshape(-1))
    shape = list(x.shape[:axis]) + list(idx.shape) + list(x.shape[axis + 1:])
    return [out.reshape(shape)]


# ---------------------------------------------------------------------------------------
# Comparisons, selection and randomness (non-differentiable: recorded for the diagnostics)

def _compare(name: str, fn: Callable[[Tensor, Tensor], Tensor]) -> None:
    register(name, differentiable=False)(lambda ctx, a: [fn(*_promote(a[0], a[1]))])


_compare("Equal", torch.eq)
_compare("Greater", torch.gt)
_compare("GreaterOrEqual", torch.ge)
_compare("Less", torch.lt)
_compare("LessOrEqual", torch.le)
_compare("And", torch.logical_and)
_compare("Or", torch.logical_or)


@register("Where")
def _where(ctx: NodeContext, a: list[Any]) -> list[Any]:
    cond, x, y = _as_tensor(a[0]).bool(), _as_tensor(a[1]), _as_tensor(a[2])
    return [torch.where(cond, x, y)]


@register("TopK")
def _topk(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x, k = a[0], int(_ints(a[1])[0]) if ctx.opset >= 10 else int(ctx.attr("k"))
    axis = ctx.attr("axis", -1)
    values, indices = torch.topk(x, k, dim=axis, largest=bool(ctx.attr("largest", 1)), sorted=bool(ctx.attr("sorted", 1)))
    return [values, indices]


@register("RandomNormalLike", "RandomUniformLike", differentiable=False)
def _random_like(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    dtype = torch_dtype(ctx.attr("dtype")) if ctx.attr("dtype") is not None else x.dtype
    if ctx.op_type == "RandomNormalLike":
        out = torch.randn(x.shape, dtype=dtype) * ctx.attr("scale", 1.0) + ctx.attr("mean", 0.0)
    else:
        low, high = ctx.attr("low", 0.0), ctx.attr("high", 1.0)
        out = torch.rand(x.shape, dtype=dtype) * (high - low) + low
    return [out]


# ---------------------------------------------------------------------------------------
# More activations

@register("PRelu")
def _prelu(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x, slope = a[0], _as_tensor(a[1], a[0])
    return [torch.where(x >= 0, x, x * slope)]


@register("Elu")
def _elu(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [F.elu(a[0], alpha=ctx.attr("alpha", 1.0))]


@register("Selu")
def _selu(ctx: NodeContext, a: list[Any]) -> list[Any]:
    alpha, gamma = ctx.attr("alpha", 1.67326319217681884765625), ctx.attr("gamma", 1.05070102214813232421875)
    x = a[0]
    return [gamma * torch.where(x > 0, x, alpha * (torch.exp(x) - 1))]


@register("HardSigmoid")
def _hard_sigmoid(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [torch.clamp(ctx.attr("alpha", 0.2) * a[0] + ctx.attr("beta", 0.5), 0.0, 1.0)]


@register("HardSwish")
def _hard_swish(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    return [x * torch.clamp(x / 6.0 + 0.5, 0.0, 1.0)]


@register("Gelu")
def _gelu(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [F.gelu(a[0], approximate="tanh" if ctx.attr("approximate", "none") == "tanh" else "none")]


def _variadic(name: str, fn: Callable[[Tensor, Tensor], Tensor], finish: Callable[[Tensor, int], Tensor] | None = None) -> None:
    def impl(ctx: NodeContext, a: list[Any]) -> list[Any]:
        parts = [_as_tensor(t) for t in a if t is not None]
        out = parts[0]
        for t in parts[1:]:
            out = fn(out, t)
        return [finish(out, len(parts)) if finish else out]

    register(name)(impl)


_variadic("Max", torch.maximum)
_variadic("Min", torch.minimum)
_variadic("Sum", torch.add)
_variadic("Mean", torch.add, lambda total, n: total / n)


# ---------------------------------------------------------------------------------------
# Normalisation and transposed convolution

@register("InstanceNormalization")
def _instance_norm(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x, scale, bias = a[:3]
    return [F.instance_norm(x, weight=scale, bias=bias, eps=ctx.attr("epsilon", 1e-5))]


@register("LayerNormalization")
def _layer_norm(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x, scale = a[0], a[1]
    bias = a[2] if len(a) > 2 else None
    axis = _axis(ctx.attr("axis", -1), x.dim())
    shape = list(x.shape[axis:])
    scale = scale.expand(shape) if scale.dim() != len(shape) else scale
    if bias is not None and bias.dim() != len(shape):
        bias = bias.expand(shape)
    return [F.layer_norm(x, shape, weight=scale, bias=bias, eps=ctx.attr("epsilon", 1e-5))][: 1]


@register("ConvTranspose")
def _conv_transpose(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x, w = a[0], a[1]
    b = a[2] if len(a) > 2 else None
    spatial = x.dim() - 2
    strides = _ints(ctx.attr("strides")) or [1] * spatial
    pads = _ints(ctx.attr("pads")) or [0] * (2 * spatial)
    dilations = _ints(ctx.attr("dilations")) or [1] * spatial
    output_padding = _ints(ctx.attr("output_padding")) or [0] * spatial
    if ctx.attr("auto_pad", "NOTSET") not in ("NOTSET", "VALID") or ctx.attr("output_shape") is not None:
        raise UnsupportedGraph("ConvTranspose with auto_pad SAME or output_shape")
    conv = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[spatial]
    y = conv(x, w, b, stride=strides, padding=0, output_padding=output_padding, groups=ctx.attr("group", 1),
             dilation=dilations)
    # Crop the pads (possibly asymmetric) from the full result.
    index = [slice(None), slice(None)]
    for i in range(spatial):
        index.append(slice(pads[i], y.shape[2 + i] - pads[spatial + i]))
    return [y[tuple(index)]]


# ---------------------------------------------------------------------------------------
# Shapes, slicing, padding and reductions

@register("Split")
def _split(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    axis = _axis(ctx.attr("axis", 0), x.dim())
    if ctx.opset < 13:
        sizes = _ints(ctx.attr("split"))
    else:
        sizes = _ints(a[1]) if len(a) > 1 and a[1] is not None else []
    if not sizes:
        parts = ctx.attr("num_outputs", ctx.num_outputs)
        chunk = -(-x.shape[axis] // parts)
        sizes = [min(chunk, x.shape[axis] - i * chunk) for i in range(parts)]
    return list(torch.split(x, sizes, dim=axis))


@register("Slice")
def _slice(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    if ctx.opset < 10:
        starts, ends = _ints(ctx.attr("starts")), _ints(ctx.attr("ends"))
        axes = _ints(ctx.attr("axes")) or list(range(len(starts)))
        steps = [1] * len(starts)
    else:
        starts, ends = _ints(a[1]), _ints(a[2])
        axes = _ints(a[3]) if len(a) > 3 and a[3] is not None else list(range(len(starts)))
        steps = _ints(a[4]) if len(a) > 4 and a[4] is not None else [1] * len(starts)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = _axis(axis, x.dim())
        size = x.shape[axis]
        if step > 0:
            start = max(0, min(size, start + size if start < 0 else start))
            end = max(0, min(size, end + size if end < 0 else end))
            x = x.narrow(axis, start, max(0, end - start))[(slice(None),) * axis + (slice(None, None, step),)]
        else:
            start = max(-1, min(size - 1, start + size if start < 0 else start))
            end = max(-1, min(size - 1, end + size if end < 0 else end))
            if start <= end:
                x = x.narrow(axis, 0, 0)
            else:
                x = torch.index_select(x, axis, torch.arange(start, end, step))
    return [x]


@register("ConstantOfShape")
def _constant_of_shape(ctx: NodeContext, a: list[Any]) -> list[Any]:
    value = ctx.attr("value")
    fill = _to_tensor(np.asarray(value)).reshape(-1) if value is not None else torch.zeros(1)
    return [fill.expand(_ints(a[0])).clone() if _ints(a[0]) else fill.reshape(())]


@register("Expand")
def _expand(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x, shape = _as_tensor(a[0]), _ints(a[1])
    target = torch.broadcast_shapes(tuple(x.shape), tuple(shape))
    return [x.expand(target)]


@register("Tile")
def _tile(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [_as_tensor(a[0]).repeat(_ints(a[1]))]


@register("Range")
def _range(ctx: NodeContext, a: list[Any]) -> list[Any]:
    start, limit, delta = (_as_tensor(v) for v in a[:3])
    return [torch.arange(start.item(), limit.item(), delta.item(), dtype=start.dtype)]


@register("Pad")
def _pad(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    if ctx.opset < 11:
        pads, value = _ints(ctx.attr("pads")), float(ctx.attr("value", 0.0))
    else:
        pads = _ints(a[1])
        value = float(a[2]) if len(a) > 2 and a[2] is not None and _as_tensor(a[2]).numel() else 0.0
    rank = x.dim()
    axes = list(range(rank))
    if ctx.opset >= 18 and len(a) > 3 and a[3] is not None:
        axes = [_axis(v, rank) for v in _ints(a[3])]
    begin, end = pads[: len(axes)], pads[len(axes):]
    flat: list[int] = []
    for axis in reversed(range(rank)):
        k = axes.index(axis) if axis in axes else None
        flat += [0, 0] if k is None else [begin[k], end[k]]
    mode = ctx.attr("mode", "constant")
    if mode == "constant":
        return [F.pad(x, flat, value=value)]
    # reflect / edge on any axis: gather with index arrays, one axis at a time.
    for k, axis in enumerate(axes):
        size = x.shape[axis]
        idx = torch.arange(-begin[k], size + end[k])
        if mode == "edge":
            idx = idx.clamp(0, size - 1)
        else:
            period = 2 * (size - 1) if size > 1 else 1
            idx = torch.remainder(idx, period)
            idx = torch.where(idx >= size, period - idx, idx)
        x = torch.index_select(x, axis, idx)
    return [x]


def _reduce(name: str, fn: Callable[[Tensor, tuple[int, ...], bool], Tensor], axes_input_from: int) -> None:
    def impl(ctx: NodeContext, a: list[Any]) -> list[Any]:
        x = a[0]
        if ctx.opset >= axes_input_from:
            axes = _ints(a[1]) if len(a) > 1 and a[1] is not None else []
        else:
            axes = _ints(ctx.attr("axes"))
        keep = bool(ctx.attr("keepdims", 1))
        if not axes:
            if ctx.attr("noop_with_empty_axes", 0):
                return [x]
            axes = list(range(x.dim()))
        return [fn(x, tuple(_axis(v, x.dim()) for v in axes), keep)]

    register(name)(impl)


_reduce("ReduceSum", lambda x, d, k: x.sum(dim=d, keepdim=k), 13)
_reduce("ReduceMean", lambda x, d, k: x.mean(dim=d, keepdim=k), 18)
_reduce("ReduceMax", lambda x, d, k: x.amax(dim=d, keepdim=k), 18)
_reduce("ReduceMin", lambda x, d, k: x.amin(dim=d, keepdim=k), 18)
_reduce("ReduceProd", lambda x, d, k: _prod(x, d, k), 18)
_reduce("ReduceL2", lambda x, d, k: x.pow(2).sum(dim=d, keepdim=k).sqrt(), 18)
_reduce("ReduceL1", lambda x, d, k: x.abs().sum(dim=d, keepdim=k), 18)
_reduce("ReduceSumSquare", lambda x, d, k: x.pow(2).sum(dim=d, keepdim=k), 18)
_reduce("ReduceLogSumExp", lambda x, d, k: torch.logsumexp(x, dim=d, keepdim=k), 18)


def _prod(x: Tensor, dims: tuple[int, ...], keep: bool) -> Tensor:
    for d in sorted(dims, reverse=True):
        x = x.prod(dim=d, keepdim=keep)
    return x


@register("ArgMax", "ArgMin", differentiable=False)
def _argmax(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    fn = torch.argmax if ctx.op_type == "ArgMax" else torch.argmin
    return [fn(x, dim=ctx.attr("axis", 0), keepdim=bool(ctx.attr("keepdims", 1)))]


@register("CastLike")
def _cast_like(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [_as_tensor(a[0]).to(_as_tensor(a[1]).dtype)]


@register("Size")
def _size(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [torch.tensor(_as_tensor(a[0]).numel(), dtype=torch.int64)]


@register("Mod")
def _mod(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x, y = _promote(a[0], a[1])
    return [torch.fmod(x, y) if ctx.attr("fmod", 0) else torch.remainder(x, y)]


@register("Einsum")
def _einsum(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [torch.einsum(ctx.attr("equation"), *a)]


@register("IsNaN", differentiable=False)
def _isnan(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return [torch.isnan(a[0])]


@register("IsInf", differentiable=False)
def _isinf(ctx: NodeContext, a: list[Any]) -> list[Any]:
    x = a[0]
    pos, neg = ctx.attr("detect_positive", 1), ctx.attr("detect_negative", 1)
    return [(torch.isposinf(x) & bool(pos)) | (torch.isneginf(x) & bool(neg))]
