"""Per-operator parity of the torch replica against onnxruntime, as Hypothesis properties.

Each case builds a one-node graph with onnx.helper (float data inputs, integer inputs as
initializers), runs it in onnxruntime and through the replica, and compares the outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from robustcheck.replica import UnsupportedGraph, build_replica

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def run_both(op: str, inputs: list[np.ndarray], attrs: dict[str, Any] | None = None, *, consts: dict[str, np.ndarray] | None = None,
             opset: int = 17, outputs: int = 1, domain: str = "") -> tuple[list[np.ndarray], list[np.ndarray], Any]:
    """Outputs of onnxruntime and the replica for one node; float inputs are graph inputs."""
    consts = consts or {}
    names = [f"in{i}" for i in range(len(inputs))]
    node_inputs = names + list(consts)
    out_names = [f"out{i}" for i in range(outputs)]
    node = helper.make_node(op, node_inputs, out_names, domain=domain, **(attrs or {}))
    graph = helper.make_graph(
        [node], "one", [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(x.shape)) for n, x in zip(names, inputs)],
        [helper.make_empty_tensor_value_info(o) for o in out_names],
        initializer=[numpy_helper.from_array(v, k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = sess.run(None, dict(zip(names, inputs)))
    replica = _multi_input_replica(model, names, out_names)
    with torch.no_grad():
        got = replica(*[torch.from_numpy(x) for x in inputs])
    return expected, [g.numpy() for g in got], replica


def _multi_input_replica(model: onnx.ModelProto, names: list[str], outs: list[str]) -> Callable[..., list[torch.Tensor]]:
    # The replica takes one data input; extra float inputs become initializers bound per call.
    def call(*tensors: torch.Tensor) -> list[torch.Tensor]:
        m = onnx.ModelProto()
        m.CopyFrom(model)
        for name, t in zip(names[1:], tensors[1:]):
            m.graph.initializer.append(numpy_helper.from_array(t.numpy(), name))
        r = build_replica(m, names[0], outs)
        out = r(tensors[0])
        return list(out) if isinstance(out, tuple) else [out]

    return call


def close(expected: list[np.ndarray], got: list[np.ndarray], rtol: float = 1e-4, atol: float = 1e-5) -> None:
    assert len(expected) == len(got)
    for e, g in zip(expected, got):
        assert e.shape == g.shape, (e.shape, g.shape)
        if e.dtype == bool or e.dtype.kind in "iu":
            np.testing.assert_array_equal(g, e)
        else:
            np.testing.assert_allclose(g, e, rtol=rtol, atol=atol)


def arrays(shape: tuple[int, ...], low: float = -3.0, high: float = 3.0) -> st.SearchStrategy[np.ndarray]:
    return st.integers(0, 2**31 - 1).map(
        lambda s: np.random.default_rng(s).uniform(low, high, size=shape).astype(np.float32))


shapes = st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple)

UNARY = {
    "Abs": {}, "Neg": {}, "Exp": {}, "Erf": {}, "Relu": {}, "Sigmoid": {}, "Tanh": {}, "Softplus": {}, "Floor": {},
    "Ceil": {}, "Round": {}, "Sign": {}, "Elu": {"alpha": 0.7}, "Selu": {}, "HardSigmoid": {"alpha": 0.3, "beta": 0.4},
    "HardSwish": {}, "LeakyRelu": {"alpha": 0.05}, "Identity": {},
}


@pytest.mark.parametrize("op", sorted(UNARY))
@SETTINGS
@given(data=st.data())
def test_unary(op: str, data: st.DataObject) -> None:
    x = data.draw(shapes.flatmap(arrays))
    close(*run_both(op, [x], UNARY[op])[:2])


@pytest.mark.parametrize("op", ["Sqrt", "Log", "Reciprocal"])
@SETTINGS
@given(data=st.data())
def test_unary_positive(op: str, data: st.DataObject) -> None:
    x = data.draw(shapes.flatmap(lambda s: arrays(s, 0.1, 3.0)))
    close(*run_both(op, [x])[:2])


@SETTINGS
@given(data=st.data())
def test_gelu_opset20(data: st.DataObject) -> None:
    x = data.draw(shapes.flatmap(arrays))
    approximate = data.draw(st.sampled_from(["none", "tanh"]))
    close(*run_both("Gelu", [x], {"approximate": approximate}, opset=20)[:2])


def broadcast_pair(draw: Callable[..., Any]) -> tuple[np.ndarray, np.ndarray]:
    shape = draw(shapes)
    other = tuple(1 if draw(st.booleans()) else d for d in shape)[draw(st.integers(0, len(shape) - 1)):]
    return draw(arrays(shape)), draw(arrays(other or (1,)))


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "PRelu", "Equal", "Greater",
                                "GreaterOrEqual", "Less", "LessOrEqual"])
@SETTINGS
@given(data=st.data())
def test_binary_broadcasting(op: str, data: st.DataObject) -> None:
    a, b = broadcast_pair(data.draw)
    if op == "Div":
        b = np.where(np.abs(b) < 0.1, 1.0, b).astype(np.float32)
    if op in ("Equal",):
        b = np.round(b)
        a = np.round(a)
    close(*run_both(op, [a, b])[:2])


@SETTINGS
@given(data=st.data())
def test_pow_and_where_and_clip(data: st.DataObject) -> None:
    a, b = broadcast_pair(data.draw)
    close(*run_both("Pow", [np.abs(a) + 0.1, b])[:2], rtol=1e-3)
    close(*_where(a, b, a > 0)[:2])
    lo, hi = sorted(data.draw(st.lists(st.floats(-2, 2, width=32), min_size=2, max_size=2)))
    close(*run_both("Clip", [a], consts={"lo": np.array(lo, np.float32), "hi": np.array(hi, np.float32)})[:2])


def _where(a: np.ndarray, b: np.ndarray, cond: np.ndarray) -> Any:
    # Where(cond, a, b) with cond as a constant: the data input must be first for the replica.
    node = helper.make_node("Where", ["cond", "in0", "in1"], ["out0"])
    graph = helper.make_graph([node], "w", [helper.make_tensor_value_info("in0", TensorProto.FLOAT, list(a.shape)),
                                            helper.make_tensor_value_info("in1", TensorProto.FLOAT, list(b.shape))],
                              [helper.make_empty_tensor_value_info("out0")],
                              initializer=[numpy_helper.from_array(cond, "cond")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"in0": a, "in1": b})
    got = _multi_input_replica(model, ["in0", "in1"], ["out0"])(torch.from_numpy(a), torch.from_numpy(b))
    return expected, [g.numpy() for g in got]


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("opset", [11, 13])
@SETTINGS
@given(data=st.data())
def test_softmax_axes(op: str, opset: int, data: st.DataObject) -> None:
    x = data.draw(shapes.filter(lambda s: len(s) >= 2).flatmap(arrays))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    close(*run_both(op, [x], {"axis": axis}, opset=opset)[:2])


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceL1",
                                "ReduceSumSquare", "ReduceLogSumExp"])
@SETTINGS
@given(data=st.data())
def test_reductions(op: str, data: st.DataObject) -> None:
    x = data.draw(shapes.flatmap(lambda s: arrays(s, -1.5, 1.5)))
    axes = sorted(set(data.draw(st.lists(st.integers(-x.ndim, x.ndim - 1), min_size=1, max_size=x.ndim))),
                  key=lambda v: v % x.ndim)
    axes = list({v % x.ndim: v for v in axes}.values())
    keep = data.draw(st.sampled_from([0, 1]))
    close(*run_both(op, [x], {"keepdims": keep}, consts={"axes": np.array(axes, np.int64)}, opset=18)[:2], rtol=1e-3)


@SETTINGS
@given(data=st.data())
def test_conv(data: st.DataObject) -> None:
    group = data.draw(st.sampled_from([1, 2]))
    cin, cout = 2 * group, 2 * group
    k = data.draw(st.integers(1, 3))
    size = data.draw(st.integers(k + 2, 8))
    x = data.draw(arrays((2, cin, size, size)))
    w = data.draw(arrays((cout, cin // group, k, k)))
    b = data.draw(arrays((cout,)))
    pads = data.draw(st.lists(st.integers(0, k - 1 if k > 1 else 0), min_size=4, max_size=4))
    attrs = {"group": group, "strides": [data.draw(st.integers(1, 2))] * 2, "pads": pads,
             "dilations": [data.draw(st.integers(1, 2))] * 2}
    if data.draw(st.booleans()):
        attrs = {"group": group, "auto_pad": data.draw(st.sampled_from(["SAME_UPPER", "SAME_LOWER", "VALID"]))}
    close(*run_both("Conv", [x, w, b], attrs)[:2], rtol=1e-3, atol=1e-4)


@SETTINGS
@given(data=st.data())
def test_conv_transpose(data: st.DataObject) -> None:
    x = data.draw(arrays((1, 2, 4, 4)))
    w = data.draw(arrays((2, 3, 3, 3)))
    stride = data.draw(st.integers(1, 2))
    pads = data.draw(st.lists(st.integers(0, 1), min_size=4, max_size=4))
    close(*run_both("ConvTranspose", [x, w], {"strides": [stride, stride], "pads": pads})[:2], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@SETTINGS
@given(data=st.data())
def test_pools(op: str, data: st.DataObject) -> None:
    k = data.draw(st.integers(1, 3))
    x = data.draw(arrays((2, 3, data.draw(st.integers(k + 1, 8)), data.draw(st.integers(k + 1, 8)))))
    pads = data.draw(st.lists(st.integers(0, k // 2), min_size=4, max_size=4))
    attrs: dict[str, Any] = {"kernel_shape": [k, k], "strides": [data.draw(st.integers(1, 2))] * 2, "pads": pads,
                             "ceil_mode": data.draw(st.sampled_from([0, 1]))}
    if op == "AveragePool":
        attrs["count_include_pad"] = data.draw(st.sampled_from([0, 1]))
    close(*run_both(op, [x], attrs)[:2])


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pools(op: str) -> None:
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 4)).astype(np.float32)
    close(*run_both(op, [x])[:2])


def test_normalisations() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    c = [rng.normal(size=3).astype(np.float32) for _ in range(2)]
    var = rng.uniform(0.5, 2, size=3).astype(np.float32)
    close(*run_both("BatchNormalization", [x, c[0], c[1], c[0] * 0.1, var])[:2])
    close(*run_both("InstanceNormalization", [x, c[0], c[1]])[:2], rtol=1e-3, atol=1e-4)
    scale, bias = rng.normal(size=(5,)).astype(np.float32), rng.normal(size=(5,)).astype(np.float32)
    close(*run_both("LayerNormalization", [x, scale, bias], {"axis": -1})[:2], rtol=1e-3, atol=1e-4)


@SETTINGS
@given(data=st.data())
def test_gemm_and_matmul(data: st.DataObject) -> None:
    m, k, n = (data.draw(st.integers(1, 5)) for _ in range(3))
    ta, tb = data.draw(st.booleans()), data.draw(st.booleans())
    a = data.draw(arrays((k, m) if ta else (m, k)))
    b = data.draw(arrays((n, k) if tb else (k, n)))
    c = data.draw(arrays((n,)))
    close(*run_both("Gemm", [a, b, c], {"transA": int(ta), "transB": int(tb), "alpha": 0.5, "beta": 2.0})[:2], rtol=1e-4)
    # The exporters' nn.Linear form (transB, unit alpha/beta), with 1-D, 2-D or no bias.
    bias = data.draw(st.sampled_from([c, c.reshape(1, n), None]))
    inputs = [a if not ta else a.T.copy(), b if tb else b.T.copy()] + ([] if bias is None else [bias])
    close(*run_both("Gemm", inputs, {"transB": 1})[:2], rtol=1e-4)
    close(*run_both("MatMul", [data.draw(arrays((2, m, k))), data.draw(arrays((k, n)))])[:2], rtol=1e-4)


@SETTINGS
@given(data=st.data())
def test_shape_ops(data: st.DataObject) -> None:
    x = data.draw(arrays((2, 3, 4)))
    close(*run_both("Flatten", [x], {"axis": data.draw(st.integers(0, 2))})[:2])
    close(*run_both("Reshape", [x], consts={"shape": np.array([0, -1], np.int64)})[:2])
    perm = data.draw(st.permutations([0, 1, 2]))
    close(*run_both("Transpose", [x], {"perm": list(perm)})[:2])
    close(*run_both("Unsqueeze", [x], consts={"axes": np.array([0, -1], np.int64)})[:2])
    close(*run_both("Squeeze", [x[:1]], consts={"axes": np.array([0], np.int64)})[:2])
    close(*run_both("Squeeze", [x[:1]], {"axes": [0]}, opset=11)[:2])
    close(*run_both("Concat", [x, x * 2], {"axis": data.draw(st.integers(-3, 2))})[:2])
    close(*run_both("Split", [x], {"axis": 1}, consts={"split": np.array([1, 2], np.int64)}, outputs=2)[:2])
    close(*run_both("Split", [x], {"axis": 2, "num_outputs": 2}, opset=18, outputs=2)[:2])
    close(*run_both("Expand", [x[:, :1]], consts={"shape": np.array([2, 3, 4], np.int64)})[:2])
    close(*run_both("Tile", [x], consts={"repeats": np.array([1, 2, 1], np.int64)})[:2])
    close(*run_both("Shape", [x])[:2])
    close(*run_both("Shape", [x], {"start": -2}, opset=15)[:2])
    close(*run_both("Size", [x])[:2])
    close(*run_both("Cast", [x], {"to": TensorProto.INT64})[:2])
    close(*run_both("ArgMax", [x], {"axis": 1, "keepdims": 0})[:2])
    close(*run_both("TopK", [x], {"axis": -1}, consts={"k": np.array([2], np.int64)}, outputs=2)[:2])
    close(*run_both("Dropout", [x])[:2])
    close(*run_both("Einsum", [x, x], {"equation": "abc,abc->ab"})[:2], rtol=1e-4)


@SETTINGS
@given(data=st.data())
def test_slice_gather_pad(data: st.DataObject) -> None:
    x = data.draw(arrays((3, 5, 4)))
    starts = [data.draw(st.integers(-5, 4)), data.draw(st.integers(-4, 3))]
    ends = [data.draw(st.sampled_from([-1, 5, 2**62, -(2**62)])), data.draw(st.integers(-4, 4))]
    steps = [data.draw(st.sampled_from([1, 2, -1, -2])), data.draw(st.sampled_from([1, -1]))]
    consts = {"starts": np.array(starts, np.int64), "ends": np.array(ends, np.int64),
              "axes": np.array([1, 2], np.int64), "steps": np.array(steps, np.int64)}
    close(*run_both("Slice", [x], consts=consts)[:2])
    idx = np.array(data.draw(st.lists(st.integers(-5, 4), min_size=1, max_size=3)), np.int64)
    close(*run_both("Gather", [x], {"axis": 1}, consts={"idx": idx})[:2])
    pads = np.array(data.draw(st.lists(st.integers(0, 2), min_size=6, max_size=6)), np.int64)
    mode = data.draw(st.sampled_from(["constant", "reflect", "edge"]))
    close(*run_both("Pad", [x], {"mode": mode}, consts={"pads": pads})[:2])


def test_constant_of_shape() -> None:
    x = np.zeros((2, 2), np.float32)
    value = numpy_helper.from_array(np.array([1.5], np.float32))
    node = helper.make_node("ConstantOfShape", ["shape"], ["c"], value=value)
    add = helper.make_node("Add", ["in0", "c"], ["out0"])
    graph = helper.make_graph([node, add], "g", [helper.make_tensor_value_info("in0", TensorProto.FLOAT, [2, 2])],
                              [helper.make_empty_tensor_value_info("out0")],
                              initializer=[numpy_helper.from_array(np.array([2, 2], np.int64), "shape")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"in0": x})
    got = build_replica(model, "in0", ["out0"])(torch.from_numpy(x))
    np.testing.assert_allclose(got.numpy(), expected[0])


def test_unsupported_operators_are_named() -> None:
    node = helper.make_node("LinearClassifier", ["x"], ["label", "scores"], domain="ai.onnx.ml",
                            coefficients=[0.1] * 8, intercepts=[0.0, 0.0], classlabels_ints=[0, 1])
    graph = helper.make_graph([node], "ml", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
                              [helper.make_empty_tensor_value_info("scores")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    with pytest.raises(UnsupportedGraph, match="ai.onnx.ml.LinearClassifier"):
        build_replica(model, "x", ["scores"])
    q = helper.make_node("QLinearConv", ["x"] + [f"c{i}" for i in range(7)], ["y"])
    graph = helper.make_graph([q], "q", [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 1, 4, 4])],
                              [helper.make_empty_tensor_value_info("y")])
    with pytest.raises(UnsupportedGraph, match="QLinearConv"):
        build_replica(helper.make_model(graph), "x", ["y"])


def test_unsupported_model_still_works_through_the_oracle(tmp_path) -> None:
    from robustcheck import ReplicaUnavailable, load_model
    from robustcheck.attacks import CarliniWagnerL2

    node = helper.make_node("LinearClassifier", ["x"], ["label", "scores"], domain="ai.onnx.ml",
                            coefficients=[0.5, -0.2, 0.1, 0.3, -0.4, 0.2, 0.6, -0.1], intercepts=[0.1, -0.1],
                            classlabels_ints=[0, 1], post_transform="NONE")
    graph = helper.make_graph([node], "ml", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
                              [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
                               helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, 2])])
    path = tmp_path / "linear.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 8
    onnx.save_model(model, str(path))
    loaded = load_model(path)
    assert loaded.replica is None and "ai.onnx.ml.LinearClassifier" in loaded.replica_reason
    assert loaded.predict(np.random.default_rng(0).uniform(size=(5, 4)).astype(np.float32)).shape == (5,)
    with pytest.raises(ReplicaUnavailable):
        CarliniWagnerL2().run(loaded, np.zeros((1, 4), np.float32), np.zeros(1, np.int64))


def test_nondifferentiable_operators_are_recorded() -> None:
    nodes = [helper.make_node("Round", ["x"], ["r"]), helper.make_node("Greater", ["r", "zero"], ["g"]),
             helper.make_node("Where", ["g", "x", "zero"], ["out"])]
    graph = helper.make_graph(nodes, "nd", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
                              [helper.make_empty_tensor_value_info("out")],
                              initializer=[numpy_helper.from_array(np.array(0.0, np.float32), "zero")])
    replica = build_replica(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), "x", ["out"])
    assert set(replica.nondifferentiable) == {"Round", "Greater"}
