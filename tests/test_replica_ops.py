"""Per-operator parity of the torch replica against onnxruntime, as Hypothesis properties.

Every registered implementation (domain, op, since-version) has a case here, run at an opset
inside the range that implementation serves: a one-node (or tiny) graph built with
onnx.helper, run by onnxruntime and by the replica, outputs compared.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx.defs
import pytest
import replica_cases_quantized  # noqa: F401  (registers the quantized operators' cases)
import replica_cases_random  # noqa: F401  (registers the random operators' cases)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from replica_parity import CASE_OPSETS, CASES, MS_DOMAIN, arrays, case, close, run_both, run_model, shapes

from robustcheck.replica import REGISTRY, OpKey

SETTINGS = settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
#: The opset a case runs at unless its implementation's range ends earlier (or starts later).
PREFERRED_OPSET = 17

def opset_for(key: OpKey) -> int:
    if str(key) in CASE_OPSETS:
        return CASE_OPSETS[str(key)]
    until = REGISTRY.until(key)
    return max(key.since_version, min(PREFERRED_OPSET, until if until is not None else PREFERRED_OPSET))


def broadcast_pair(draw: Callable[..., Any]) -> tuple[np.ndarray, np.ndarray]:
    shape = draw(shapes)
    other = tuple(1 if draw(st.booleans()) else d for d in shape)[draw(st.integers(0, len(shape) - 1)):]
    return draw(arrays(shape)), draw(arrays(other or (1,)))


def some_axes(data: st.DataObject, rank: int, min_size: int = 1) -> list[int]:
    """Distinct axes, possibly negative, each axis at most once."""
    axes = data.draw(st.lists(st.integers(-rank, rank - 1), min_size=min_size, max_size=rank))
    return list({v % rank: v for v in axes}.values())


# -- elementwise and activations ----------------------------------------------------------

UNARY_ATTRS: dict[str, dict[str, Any]] = {"Elu": {"alpha": 0.7}, "HardSigmoid": {"alpha": 0.3, "beta": 0.4},
                                          "LeakyRelu": {"alpha": 0.05}}


@case("Abs-6", "Neg-6", "Exp-6", "Erf-9", "Relu-6", "Sigmoid-6", "Tanh-6", "Softplus-1", "Floor-6", "Ceil-6",
      "Round-11", "Sign-9", "Elu-6", "Selu-6", "HardSigmoid-6", "HardSwish-14", "LeakyRelu-6", "Identity-1")
def _unary(data: st.DataObject, op: str, opset: int) -> None:
    x = data.draw(shapes.flatmap(arrays))
    close(*run_both(op, [x], UNARY_ATTRS.get(op), opset=opset))


@case("Sqrt-6", "Log-6", "Reciprocal-6")
def _unary_positive(data: st.DataObject, op: str, opset: int) -> None:
    close(*run_both(op, [data.draw(shapes.flatmap(lambda s: arrays(s, 0.1, 3.0)))], opset=opset))


@case("Gelu-20")
def _gelu(data: st.DataObject, op: str, opset: int) -> None:
    x = data.draw(shapes.flatmap(arrays))
    close(*run_both(op, [x], {"approximate": data.draw(st.sampled_from(["none", "tanh"]))}, opset=opset))


@case("Add-7", "Sub-7", "Mul-7", "Div-7", "Max-8", "Min-8", "Sum-8", "Mean-8", "PRelu-7", "Equal-7", "Greater-7",
      "GreaterOrEqual-12", "Less-7", "LessOrEqual-12")
def _binary(data: st.DataObject, op: str, opset: int) -> None:
    a, b = broadcast_pair(data.draw)
    if op == "Div":
        b = np.where(np.abs(b) < 0.1, 1.0, b).astype(np.float32)
    if op in ("Equal", "GreaterOrEqual", "LessOrEqual"):  # ties must occur
        a, b = np.round(a), np.round(b)
    close(*run_both(op, [a, b], opset=opset))


@case("Pow-7")
def _pow(data: st.DataObject, op: str, opset: int) -> None:
    a, b = broadcast_pair(data.draw)
    close(*run_both(op, [np.abs(a) + 0.1, b], opset=opset), rtol=1e-3)


@case("Mod-10")
def _mod(data: st.DataObject, op: str, opset: int) -> None:
    a, b = broadcast_pair(data.draw)
    b = np.where(np.abs(b) < 0.1, 1.5, b).astype(np.float32)
    close(*run_both(op, [a, b], {"fmod": 1}, opset=opset))  # float Mod must be fmod in ONNX
    ints_a = np.round(a * 3).astype(np.int64)
    ints_b = np.where(np.round(b * 3) == 0, 2, np.round(b * 3)).astype(np.int64)
    close(*run_both(op, [ints_a], {"fmod": data.draw(st.sampled_from([0, 1]))}, consts={"b": ints_b}, opset=opset))


@case("And-7", "Or-7")
def _logical(data: st.DataObject, op: str, opset: int) -> None:
    a, b = broadcast_pair(data.draw)
    close(*run_both(op, [a > 0, b > 0], opset=opset))


@case("Not-1")
def _not(data: st.DataObject, op: str, opset: int) -> None:
    close(*run_both(op, [data.draw(shapes.flatmap(arrays)) > 0], opset=opset))


@case("Where-9")
def _where(data: st.DataObject, op: str, opset: int) -> None:
    a, b = broadcast_pair(data.draw)
    close(*run_both(op, [a, b], consts={"cond": a > 0}, order=["cond", "in0", "in1"], opset=opset))


@case("Clip-6")
def _clip_attributes(data: st.DataObject, op: str, opset: int) -> None:
    x = data.draw(shapes.flatmap(arrays))
    lo, hi = sorted(data.draw(st.lists(st.floats(-2, 2, width=32), min_size=2, max_size=2)))  # onnxruntime: min ≤ max
    attrs = data.draw(st.sampled_from([{"min": lo, "max": hi}, {"min": lo}, {"max": hi}, {}]))
    close(*run_both(op, [x], attrs, opset=opset))


@case("Clip-11")
def _clip_inputs(data: st.DataObject, op: str, opset: int) -> None:
    x = data.draw(shapes.flatmap(arrays))
    lo, hi = (np.array(v, np.float32) for v in data.draw(st.lists(st.floats(-2, 2, width=32), min_size=2, max_size=2)))
    order = data.draw(st.sampled_from([["in0", "lo", "hi"], ["in0", "lo"], ["in0", "", "hi"], ["in0"]]))
    consts = {k: v for k, v in (("lo", lo), ("hi", hi)) if k in order}
    close(*run_both(op, [x], consts=consts, order=order, opset=opset))


@case("Softmax-1", "LogSoftmax-1", "Softmax-13", "LogSoftmax-13")
def _softmax(data: st.DataObject, op: str, opset: int) -> None:
    x = data.draw(shapes.filter(lambda s: len(s) >= 2).flatmap(arrays))
    attrs = data.draw(st.sampled_from([{}, {"axis": data.draw(st.integers(-x.ndim, x.ndim - 1))}]))
    close(*run_both(op, [x], attrs, opset=opset))


# -- reductions ---------------------------------------------------------------------------

REDUCTIONS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceL1",
              "ReduceSumSquare", "ReduceLogSumExp"]


@case(*(f"{op}-1" for op in REDUCTIONS))
def _reduce_attribute(data: st.DataObject, op: str, opset: int) -> None:
    x = data.draw(shapes.flatmap(lambda s: arrays(s, -1.5, 1.5)))
    attrs: dict[str, Any] = {"keepdims": data.draw(st.sampled_from([0, 1]))}
    if data.draw(st.booleans()):
        attrs["axes"] = some_axes(data, x.ndim)
    close(*run_both(op, [x], attrs, opset=opset), rtol=1e-3)


@case("ReduceSum-13", *(f"{op}-18" for op in REDUCTIONS if op != "ReduceSum"))
def _reduce_input(data: st.DataObject, op: str, opset: int) -> None:
    x = data.draw(shapes.flatmap(lambda s: arrays(s, -1.5, 1.5)))
    attrs = {"keepdims": data.draw(st.sampled_from([0, 1])), "noop_with_empty_axes": data.draw(st.sampled_from([0, 1]))}
    axes = data.draw(st.sampled_from([None, some_axes(data, x.ndim)]))
    consts = {} if axes is None else {"axes": np.array(axes, np.int64)}
    close(*run_both(op, [x], attrs, consts=consts, opset=opset), rtol=1e-3)


# -- linear, pooling, normalisation ---------------------------------------------------------

@case("Conv-1")
def _conv(data: st.DataObject, op: str, opset: int) -> None:
    group = data.draw(st.sampled_from([1, 2]))
    cin, cout, k = 2 * group, 2 * group, data.draw(st.integers(1, 3))
    size = data.draw(st.integers(k + 2, 8))
    x, w = data.draw(arrays((2, cin, size, size))), data.draw(arrays((cout, cin // group, k, k)))
    b = data.draw(arrays((cout,)))
    pads = data.draw(st.lists(st.integers(0, k - 1 if k > 1 else 0), min_size=4, max_size=4))
    attrs: dict[str, Any] = {"group": group, "strides": [data.draw(st.integers(1, 2))] * 2, "pads": pads,
                             "dilations": [data.draw(st.integers(1, 2))] * 2}
    if data.draw(st.booleans()):
        attrs = {"group": group, "auto_pad": data.draw(st.sampled_from(["SAME_UPPER", "SAME_LOWER", "VALID"]))}
    close(*run_both(op, [x, w, b], attrs, opset=opset), rtol=1e-3, atol=1e-4)


@case("ConvTranspose-1")
def _conv_transpose(data: st.DataObject, op: str, opset: int) -> None:
    x, w = data.draw(arrays((1, 2, 4, 4))), data.draw(arrays((2, 3, 3, 3)))
    stride = data.draw(st.integers(1, 2))
    pads = data.draw(st.lists(st.integers(0, 1), min_size=4, max_size=4))
    close(*run_both(op, [x, w], {"strides": [stride, stride], "pads": pads}, opset=opset), rtol=1e-3, atol=1e-4)


@case("MaxPool-1", "AveragePool-1")
def _pool(data: st.DataObject, op: str, opset: int) -> None:
    k = data.draw(st.integers(1, 3))
    x = data.draw(arrays((2, 3, data.draw(st.integers(k + 1, 8)), data.draw(st.integers(k + 1, 8)))))
    pads = data.draw(st.lists(st.integers(0, k // 2), min_size=4, max_size=4))
    attrs: dict[str, Any] = {"kernel_shape": [k, k], "strides": [data.draw(st.integers(1, 2))] * 2, "pads": pads,
                             "ceil_mode": data.draw(st.sampled_from([0, 1]))}
    if op == "AveragePool":
        attrs["count_include_pad"] = data.draw(st.sampled_from([0, 1]))
    close(*run_both(op, [x], attrs, opset=opset))


@case("GlobalAveragePool-1", "GlobalMaxPool-1")
def _global_pool(data: st.DataObject, op: str, opset: int) -> None:
    close(*run_both(op, [data.draw(arrays((2, 3, data.draw(st.integers(1, 5)), 4)))], opset=opset))


@case("BatchNormalization-7")
def _batch_norm(data: st.DataObject, op: str, opset: int) -> None:
    x = data.draw(arrays((2, 3, 4, 5)))
    scale, bias, mean = (data.draw(arrays((3,))) for _ in range(3))
    var = data.draw(arrays((3,), 0.5, 2.0))
    close(*run_both(op, [x, scale, bias, mean, var], {"epsilon": 1e-3}, opset=opset), rtol=1e-4, atol=1e-5)


@case("InstanceNormalization-6")
def _instance_norm(data: st.DataObject, op: str, opset: int) -> None:
    x, scale, bias = data.draw(arrays((2, 3, 4, 5))), data.draw(arrays((3,))), data.draw(arrays((3,)))
    close(*run_both(op, [x, scale, bias], opset=opset), rtol=1e-3, atol=1e-4)


@case("LayerNormalization-17")
def _layer_norm(data: st.DataObject, op: str, opset: int) -> None:
    x = data.draw(arrays((2, 3, 4, 5)))
    axis = data.draw(st.sampled_from([-1, -2, 2]))
    shape = x.shape[axis:]
    close(*run_both(op, [x, data.draw(arrays(shape)), data.draw(arrays(shape))], {"axis": axis}, opset=opset),
          rtol=1e-3, atol=1e-4)


@case("Dropout-7")
def _dropout(data: st.DataObject, op: str, opset: int) -> None:
    close(*run_both(op, [data.draw(shapes.flatmap(arrays))], opset=opset))


@case("Gemm-7")
def _gemm(data: st.DataObject, op: str, opset: int) -> None:
    m, k, n = (data.draw(st.integers(1, 5)) for _ in range(3))
    ta, tb = data.draw(st.booleans()), data.draw(st.booleans())
    a, b = data.draw(arrays((k, m) if ta else (m, k))), data.draw(arrays((n, k) if tb else (k, n)))
    c = data.draw(arrays((n,)))
    close(*run_both(op, [a, b, c], {"transA": int(ta), "transB": int(tb), "alpha": 0.5, "beta": 2.0}, opset=opset))
    # The exporters' nn.Linear form (transB, unit alpha/beta), with a 1-D or 2-D bias.
    bias = data.draw(st.sampled_from([c, c.reshape(1, n)]))
    close(*run_both(op, [a if not ta else a.T.copy(), b if tb else b.T.copy(), bias], {"transB": 1}, opset=opset))


@case("MatMul-1")
def _matmul(data: st.DataObject, op: str, opset: int) -> None:
    m, k, n = (data.draw(st.integers(1, 5)) for _ in range(3))
    close(*run_both(op, [data.draw(arrays((2, m, k))), data.draw(arrays((k, n)))], opset=opset), rtol=1e-4)


@case("Einsum-12")
def _einsum(data: st.DataObject, op: str, opset: int) -> None:
    x = data.draw(arrays((2, 3, 4)))
    equation = data.draw(st.sampled_from(["abc,abc->ab", "abc,abd->acd", "abc->cba"]))
    inputs = [x] if "," not in equation else [x, data.draw(arrays((2, 3, 4 if equation == "abc,abc->ab" else 5)))]
    close(*run_both(op, inputs, {"equation": equation}, opset=opset), rtol=1e-4)


# -- shape and data movement ------------------------------------------------------------------

@case("Flatten-1")
def _flatten(data: st.DataObject, op: str, opset: int) -> None:
    close(*run_both(op, [data.draw(arrays((2, 3, 4)))], {"axis": data.draw(st.integers(0, 3))}, opset=opset))


@case("Reshape-1")
def _reshape_attribute(data: st.DataObject, op: str, opset: int) -> None:
    shape = data.draw(st.sampled_from([[0, -1], [4, 0, -1], [-1], [6, 4]]))
    close(*run_both(op, [data.draw(arrays((2, 3, 4)))], {"shape": shape}, opset=opset))


@case("Reshape-5")
def _reshape_input(data: st.DataObject, op: str, opset: int) -> None:
    shape = data.draw(st.sampled_from([[0, -1], [4, 0, -1], [-1], [6, 4]]))
    close(*run_both(op, [data.draw(arrays((2, 3, 4)))], consts={"shape": np.array(shape, np.int64)}, opset=opset))


@case("Transpose-1")
def _transpose(data: st.DataObject, op: str, opset: int) -> None:
    attrs = data.draw(st.sampled_from([{}, {"perm": list(data.draw(st.permutations([0, 1, 2])))}]))
    close(*run_both(op, [data.draw(arrays((2, 3, 4)))], attrs, opset=opset))


@case("Squeeze-1", "Squeeze-13")
def _squeeze(data: st.DataObject, op: str, opset: int) -> None:
    x = data.draw(st.sampled_from([(1, 3, 1, 2), (2, 1), (1,)]).flatmap(arrays))
    ones = [i - x.ndim * data.draw(st.booleans()) for i, d in enumerate(x.shape) if d == 1]
    axes = data.draw(st.sampled_from([None, ones]))
    if axes is None:
        close(*run_both(op, [x], opset=opset))
    elif opset < 13:
        close(*run_both(op, [x], {"axes": axes}, opset=opset))
    else:
        close(*run_both(op, [x], consts={"axes": np.array(axes, np.int64)}, opset=opset))


@case("Unsqueeze-1", "Unsqueeze-13")
def _unsqueeze(data: st.DataObject, op: str, opset: int) -> None:
    x = data.draw(arrays((2, 3)))
    rank = x.ndim + data.draw(st.integers(1, 2))
    new = rank - x.ndim
    positions = data.draw(st.lists(st.integers(0, rank - 1), min_size=new, max_size=new, unique=True))
    axes = [p - rank if data.draw(st.booleans()) else p for p in positions]
    if opset < 13:
        close(*run_both(op, [x], {"axes": axes}, opset=opset))
    else:
        close(*run_both(op, [x], consts={"axes": np.array(axes, np.int64)}, opset=opset))


@case("Concat-4")
def _concat(data: st.DataObject, op: str, opset: int) -> None:
    x = data.draw(arrays((2, 3, 4)))
    close(*run_both(op, [x, x * 2, x - 1], {"axis": data.draw(st.integers(-3, 2))}, opset=opset))


@case("Split-2", "Split-13", "Split-18")
def _split(data: st.DataObject, op: str, opset: int) -> None:
    x = data.draw(arrays((2, 6, 5)))
    axis = data.draw(st.sampled_from([1, -1]))
    size = x.shape[axis]
    if data.draw(st.booleans()):  # explicit sizes
        first = data.draw(st.integers(1, size - 1))
        sizes = [first, size - first]
        if opset < 13:
            close(*run_both(op, [x], {"axis": axis, "split": sizes}, outputs=2, opset=opset))
        else:
            split = {"split": np.array(sizes, np.int64)}
            close(*run_both(op, [x], {"axis": axis}, consts=split, outputs=2, opset=opset))
    elif opset >= 18:  # num_outputs; the last part may be smaller
        parts = data.draw(st.integers(2, 3))
        close(*run_both(op, [x], {"axis": axis, "num_outputs": parts}, outputs=parts, opset=opset))
    else:  # equal parts by output count
        parts = data.draw(st.sampled_from([p for p in (1, 2, 3) if size % p == 0]))
        close(*run_both(op, [x], {"axis": axis}, outputs=parts, opset=opset))


SLICE_ENDS = st.sampled_from([-1, 5, 2**62, -(2**62), 2, 0])


@case("Slice-1")
def _slice_attributes(data: st.DataObject, op: str, opset: int) -> None:
    x = data.draw(arrays((3, 5, 4)))
    starts = [data.draw(st.integers(-5, 4)), data.draw(st.integers(-4, 3))]
    ends = [data.draw(SLICE_ENDS), data.draw(SLICE_ENDS)]
    attrs: dict[str, Any] = {"starts": starts, "ends": ends}
    if data.draw(st.booleans()):
        attrs["axes"] = [1, 2]
    close(*run_both(op, [x], attrs, opset=opset))


@case("Slice-10")
def _slice_inputs(data: st.DataObject, op: str, opset: int) -> None:
    x = data.draw(arrays((3, 5, 4)))
    starts = [data.draw(st.integers(-5, 4)), data.draw(st.integers(-4, 3))]
    ends = [data.draw(SLICE_ENDS), data.draw(SLICE_ENDS)]
    steps = [data.draw(st.sampled_from([1, 2, -1, -2])), data.draw(st.sampled_from([1, -1]))]
    consts = {"starts": np.array(starts, np.int64), "ends": np.array(ends, np.int64),
              "axes": np.array([1, 2], np.int64), "steps": np.array(steps, np.int64)}
    order = data.draw(st.sampled_from([["in0", "starts", "ends", "axes", "steps"], ["in0", "starts", "ends"]]))
    close(*run_both(op, [x], consts={k: consts[k] for k in order[1:]}, order=order, opset=opset))


@case("Gather-1")
def _gather(data: st.DataObject, op: str, opset: int) -> None:
    x = data.draw(arrays((3, 5, 4)))
    axis = data.draw(st.integers(-3, 2))
    size = x.shape[axis]
    idx = np.array(data.draw(st.lists(st.integers(-size, size - 1), min_size=1, max_size=4)), np.int64)
    idx = idx.reshape(data.draw(st.sampled_from([(-1,), (1, -1)])))
    close(*run_both(op, [x], {"axis": axis}, consts={"idx": idx}, opset=opset))


@case("Expand-8")
def _expand(data: st.DataObject, op: str, opset: int) -> None:
    x = data.draw(arrays((3, 1)))
    shape = data.draw(st.sampled_from([[2, 3, 4], [3, 4], [1, 1], [2, 1, 1]]))
    close(*run_both(op, [x], consts={"shape": np.array(shape, np.int64)}, opset=opset))


@case("Tile-6")
def _tile(data: st.DataObject, op: str, opset: int) -> None:
    repeats = data.draw(st.lists(st.integers(1, 3), min_size=3, max_size=3))
    close(*run_both(op, [data.draw(arrays((2, 3, 1)))], consts={"repeats": np.array(repeats, np.int64)}, opset=opset))


@case("Pad-2", "Pad-11", "Pad-18")
def _pad(data: st.DataObject, op: str, opset: int) -> None:
    x = data.draw(arrays((3, 5, 4)))
    mode = data.draw(st.sampled_from(["constant", "reflect", "edge"]))
    value = data.draw(st.floats(-2, 2, width=32))
    if opset >= 18 and data.draw(st.booleans()):  # pad only some axes
        axes = some_axes(data, 3)
        count = 2 * len(axes)
        pads = np.array(data.draw(st.lists(st.integers(0, 2), min_size=count, max_size=count)), np.int64)
        consts = {"pads": pads, "value": np.array(value, np.float32), "axes": np.array(axes, np.int64)}
        close(*run_both(op, [x], {"mode": mode}, consts=consts, opset=opset))
        return
    pads = data.draw(st.lists(st.integers(0, 2), min_size=6, max_size=6))
    if opset < 11:
        close(*run_both(op, [x], {"mode": mode, "pads": pads, "value": value}, opset=opset))
    else:
        consts = {"pads": np.array(pads, np.int64), "value": np.array(value, np.float32)}
        close(*run_both(op, [x], {"mode": mode}, consts=consts, opset=opset))


@case("Shape-1")
def _shape(data: st.DataObject, op: str, opset: int) -> None:
    attrs = data.draw(st.sampled_from([{}, {"start": -2}, {"start": 1, "end": -1}, {"end": 2}]))
    close(*run_both(op, [data.draw(shapes.flatmap(arrays))], attrs, opset=opset))


@case("Size-1")
def _size(data: st.DataObject, op: str, opset: int) -> None:
    close(*run_both(op, [data.draw(shapes.flatmap(arrays))], opset=opset))


@case("Range-11")
def _range(data: st.DataObject, op: str, opset: int) -> None:
    start, delta = data.draw(st.integers(-5, 5)), data.draw(st.sampled_from([1, 2, -1, 3]))
    limit = start + delta * data.draw(st.integers(0, 6))
    dtype = data.draw(st.sampled_from([np.float32, np.int64]))
    consts = {"limit": np.array(limit, dtype), "delta": np.array(delta, dtype)}
    close(*run_both(op, [np.array(start, dtype)], consts=consts, opset=opset))


@case("ConstantOfShape-9")
def _constant_of_shape(data: st.DataObject, op: str, opset: int) -> None:
    shape = np.array(data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)), np.int64)
    fill = data.draw(st.sampled_from([None, np.array([1.5], np.float32), np.array([7], np.int64)]))
    attrs = {} if fill is None else {"value": numpy_helper.from_array(fill)}
    close(*run_both(op, [shape], attrs, opset=opset))


@case("Constant-1")
def _constant(data: st.DataObject, op: str, opset: int) -> None:
    x = data.draw(arrays((2, 3)))
    value = data.draw(arrays((3,)))
    attrs = data.draw(st.sampled_from([{"value": numpy_helper.from_array(value)}, {"value_float": float(value[0])},
                                       {"value_floats": [float(v) for v in value]}]))
    nodes = [helper.make_node("Constant", [], ["c"], **attrs), helper.make_node("Add", ["in0", "c"], ["out0"])]
    graph = helper.make_graph(nodes, "constant", [helper.make_tensor_value_info("in0", TensorProto.FLOAT, [2, 3])],
                              [helper.make_empty_tensor_value_info("out0")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    close(*run_model(model, {"in0": x}))


@case("Cast-6")
def _cast(data: st.DataObject, op: str, opset: int) -> None:
    to = data.draw(st.sampled_from([TensorProto.INT64, TensorProto.INT32, TensorProto.DOUBLE, TensorProto.BOOL,
                                    TensorProto.FLOAT16]))
    close(*run_both(op, [data.draw(shapes.flatmap(arrays))], {"to": to}, opset=opset), rtol=1e-3, atol=1e-3)


@case("CastLike-15")
def _cast_like(data: st.DataObject, op: str, opset: int) -> None:
    like = data.draw(st.sampled_from([np.zeros(1, np.int64), np.zeros(1, np.float64), np.zeros(1, np.int32)]))
    close(*run_both(op, [data.draw(shapes.flatmap(arrays))], consts={"like": like}, opset=opset))


# -- resize ----------------------------------------------------------------------------------------

RESIZE_SCALES = [0.5, 0.6, 0.75, 1.0, 1.5, 1.7, 2.0, 3.0]


def _resize_input(data: st.DataObject) -> np.ndarray:
    shape = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3)), data.draw(st.integers(2, 7)),
             data.draw(st.integers(2, 7)))
    return data.draw(arrays(shape))


def _spatial_scales(data: st.DataObject, low: float = 0.0) -> np.ndarray:
    """Scales for an NCHW input: 1 on batch and channels (what onnxruntime's linear/cubic accept)."""
    pick = st.sampled_from([s for s in RESIZE_SCALES if s >= low])
    return np.array([1.0, 1.0, data.draw(pick), data.draw(pick)], np.float32)


@case("Upsample-7", opset=7)
@case("Upsample-9", opset=9)  # deprecated from opset 10 on: onnxruntime refuses it there
@case("Resize-10")
def _upsample(data: st.DataObject, op: str, opset: int) -> None:
    x = _resize_input(data)
    mode = data.draw(st.sampled_from(["nearest", "linear"]))
    scales = _spatial_scales(data, low=1.0 if op == "Upsample" else 0.0)
    if opset < 9:
        close(*run_both(op, [x], {"mode": mode, "scales": [float(s) for s in scales]}, opset=opset))
    else:
        close(*run_both(op, [x], {"mode": mode}, consts={"scales": scales}, opset=opset))


def _resize_attributes(data: st.DataObject, opset: int) -> dict[str, Any]:
    mode = data.draw(st.sampled_from(["nearest", "linear", "cubic"]))
    coordinates = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_crop_and_resize"]
    if opset < 13:
        coordinates.append("tf_half_pixel_for_nn")
    if opset >= 19:
        coordinates.append("half_pixel_symmetric")
    attrs: dict[str, Any] = {"mode": mode, "coordinate_transformation_mode": data.draw(st.sampled_from(coordinates))}
    if mode == "nearest":
        attrs["nearest_mode"] = data.draw(st.sampled_from(["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]))
    if mode == "cubic":
        attrs["cubic_coeff_a"] = data.draw(st.sampled_from([-0.75, -0.5]))
        attrs["exclude_outside"] = data.draw(st.sampled_from([0, 1]))
    if attrs["coordinate_transformation_mode"] == "tf_crop_and_resize":
        attrs["extrapolation_value"] = data.draw(st.sampled_from([0.0, -7.0]))
    if opset >= 18 and mode != "nearest" and data.draw(st.booleans()):
        attrs["antialias"] = 1
        attrs["exclude_outside"] = data.draw(st.sampled_from([0, 1]))
    return attrs


@case("Resize-11", "Resize-13", "Resize-18", "Resize-19")
def _resize(data: st.DataObject, op: str, opset: int) -> None:
    x = _resize_input(data)
    attrs = _resize_attributes(data, opset)
    crop = attrs["coordinate_transformation_mode"] == "tf_crop_and_resize"
    # cubic without antialiasing: onnxruntime accepts upsampling only, or the outer axes kept
    scales = _spatial_scales(data, low=1.0 if attrs["mode"] == "cubic" and not attrs.get("antialias") else 0.0)
    use_sizes = data.draw(st.booleans())
    axes = [2, 3] if opset >= 18 and data.draw(st.booleans()) else None
    if axes is not None:
        attrs["axes"] = axes
    spatial = axes if axes is not None else list(range(4))
    sizes = np.array([x.shape[d] if d < 2 else max(1, int(x.shape[d] * scales[d] + data.draw(st.integers(0, 1))))
                      for d in spatial], np.int64)
    if use_sizes and opset >= 18 and axes is not None:
        attrs["keep_aspect_ratio_policy"] = data.draw(st.sampled_from(["stretch", "not_larger", "not_smaller"]))
    if attrs["mode"] == "cubic" and not attrs.get("antialias") and use_sizes:
        sizes = np.array([max(s, x.shape[d]) for s, d in zip(sizes, spatial)], np.int64)
    roi = np.array([0.0] * len(spatial) + [1.0] * len(spatial), np.float32)
    if crop:
        for i, d in enumerate(spatial):
            if d >= 2:
                roi[i] = data.draw(st.sampled_from([0.0, 0.2, -0.1]))
                roi[len(spatial) + i] = data.draw(st.sampled_from([1.0, 0.8, 1.2]))
    consts: dict[str, np.ndarray] = {"roi": roi if crop or opset < 13 else np.zeros(0, np.float32)}
    if use_sizes:
        consts.update(scales=np.zeros(0, np.float32), sizes=sizes)
        order = ["in0", "roi", "" if opset >= 13 else "scales", "sizes"]
        if opset >= 13:
            del consts["scales"]
    else:
        consts["scales"] = scales if axes is None else scales[axes]
        order = ["in0", "roi", "scales"]
    if opset >= 13 and not crop:
        del consts["roi"]
        order[1] = ""
    close(*run_both(op, [x], attrs, consts=consts, opset=opset, order=order), rtol=1e-4, atol=1e-5)


# -- selection -----------------------------------------------------------------------------------

@case("ArgMax-1", "ArgMin-1")
def _arg_extreme(data: st.DataObject, op: str, opset: int) -> None:
    x = np.round(data.draw(arrays((3, 4, 5)))).astype(np.float32)  # ties
    attrs: dict[str, Any] = {"axis": data.draw(st.integers(-3, 2)), "keepdims": data.draw(st.sampled_from([0, 1]))}
    if opset >= 12:
        attrs["select_last_index"] = data.draw(st.sampled_from([0, 1]))
    close(*run_both(op, [x], attrs, opset=opset))


@case("TopK-1", "TopK-10")
def _topk(data: st.DataObject, op: str, opset: int) -> None:
    x = data.draw(arrays((3, 5, 4)))
    axis = data.draw(st.integers(-3, 2))
    k = data.draw(st.integers(1, x.shape[axis]))
    if opset < 10:
        close(*run_both(op, [x], {"axis": axis, "k": k}, outputs=2, opset=opset))
        return
    attrs = {"axis": axis}
    if opset >= 11:
        attrs["largest"] = data.draw(st.sampled_from([0, 1]))
    close(*run_both(op, [x], attrs, consts={"k": np.array([k], np.int64)}, outputs=2, opset=opset))


def _with_specials(x: np.ndarray, data: st.DataObject) -> np.ndarray:
    flat = x.reshape(-1).copy()
    for i in data.draw(st.lists(st.integers(0, flat.size - 1), max_size=3)):
        flat[i] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return flat.reshape(x.shape)


@case("IsNaN-9")
def _isnan(data: st.DataObject, op: str, opset: int) -> None:
    close(*run_both(op, [_with_specials(data.draw(shapes.flatmap(arrays)), data)], opset=opset))


@case("IsInf-10")
def _isinf(data: st.DataObject, op: str, opset: int) -> None:
    attrs = data.draw(st.sampled_from([{}, {"detect_positive": 0}, {"detect_negative": 0}]))
    close(*run_both(op, [_with_specials(data.draw(shapes.flatmap(arrays)), data)], attrs, opset=opset))


# -- the table itself ----------------------------------------------------------------------------

KEYS = REGISTRY.keys()


def test_every_registered_implementation_has_a_parity_case() -> None:
    registered = {str(k) for k in KEYS}
    assert sorted(registered - set(CASES)) == [], "implementations without a parity case"
    assert sorted(set(CASES) - registered) == [], "cases for implementations that are not registered"


def test_since_versions_are_real_onnx_since_versions() -> None:
    for key in KEYS:
        if key.domain == MS_DOMAIN:  # onnxruntime's contrib operators: all at version 1 (no onnx schema)
            assert key.since_version == 1, key
            continue
        assert onnx.defs.get_schema(key.op_type, key.since_version, key.domain).since_version == key.since_version, key


@pytest.mark.parametrize("key", KEYS, ids=str)
@SETTINGS
@given(data=st.data())
def test_parity(key: OpKey, data: st.DataObject) -> None:
    opset = opset_for(key)
    until = REGISTRY.until(key)
    assert key.since_version <= opset and (until is None or opset <= until), f"{key} tested at opset {opset}"
    assert REGISTRY.lookup(key.domain, key.op_type, opset).key == key
    CASES[str(key)](data, key.op_type, opset)

