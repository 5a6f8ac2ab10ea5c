"""Fuzzing the loaders: whatever the bytes, only a one-line ModelError / DataError naming the file escapes."""

from __future__ import annotations

import io
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from robustcheck import DataError, ModelError, load_model
from robustcheck.data import load_dataset

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def _valid_model_bytes() -> bytes:
    """A small valid classifier using an If, a Softmax head and a second (label) output."""
    rng = np.random.default_rng(0)
    branch = [helper.make_graph([helper.make_node("Mul", ["z", f"k{i}"], [f"b{i}"])], f"b{i}", [],
                                [helper.make_tensor_value_info(f"b{i}", TensorProto.FLOAT, ["N", 3])],
                                initializer=[numpy_helper.from_array(np.array(k, np.float32), f"k{i}")])
              for i, k in enumerate((1.0, -1.0))]
    nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["z"]), helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
             helper.make_node("Greater", ["s", "zero"], ["c"]),
             helper.make_node("If", ["c"], ["logits"], then_branch=branch[0], else_branch=branch[1]),
             helper.make_node("Softmax", ["logits"], ["p"], axis=1),
             helper.make_node("ArgMax", ["p"], ["label"], axis=1, keepdims=0)]
    graph = helper.make_graph(
        nodes, "fuzz", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", 3]),
         helper.make_tensor_value_info("label", TensorProto.INT64, ["N"])],
        initializer=[numpy_helper.from_array(rng.normal(size=(4, 3)).astype(np.float32), "W"),
                     numpy_helper.from_array(rng.normal(size=3).astype(np.float32), "B"),
                     numpy_helper.from_array(np.array(0.0, np.float32), "zero")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _valid_cnn_bytes() -> bytes:
    """A small valid CNN the replica can build: Conv, Relu, MaxPool, Flatten, Gemm, Softmax."""
    rng = np.random.default_rng(1)
    nodes = [helper.make_node("Conv", ["x", "K", "KB"], ["c"], pads=[1, 1, 1, 1], strides=[1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["m"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["m"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "W"], ["z"], transB=1),
             helper.make_node("Softmax", ["z"], ["p"], axis=1)]
    graph = helper.make_graph(
        nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 4, 4])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", 3])],
        initializer=[numpy_helper.from_array(rng.normal(size=(2, 1, 3, 3)).astype(np.float32), "K"),
                     numpy_helper.from_array(rng.normal(size=2).astype(np.float32), "KB"),
                     numpy_helper.from_array(rng.normal(size=(3, 8)).astype(np.float32), "W")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


VALID = _valid_model_bytes()
VALID_CNN = _valid_cnn_bytes()


def _mutated(data: st.DataObject) -> bytes:
    raw = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "cut", "splice", "zero"]))
        at = data.draw(st.integers(0, len(raw) - 1))
        if kind == "flip":
            raw[at] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            raw = raw[:at] + raw[at + data.draw(st.integers(1, 16)):]
        elif kind == "splice":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=12))
        else:
            raw[at:at + 4] = b"\0\0\0\0"
        if not raw:
            break
    return bytes(raw)


def _expect_model_error_or_model(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzzed.onnx"
        path.write_bytes(content)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                model = load_model(path)
            except ModelError as exc:
                message = str(exc)
                assert "\n" not in message and str(path) in message, message
                return
        assert model.num_classes >= 2  # a mutation that still loads is a usable model
        model.predict(np.zeros((2,) + tuple(d or 1 for d in model.input_spec.sample_shape), np.float32))


@FUZZ
@given(content=st.binary(max_size=3000))
def test_random_bytes_never_escape_as_anything_but_a_model_error(content: bytes) -> None:
    _expect_model_error_or_model(content)


@FUZZ
@given(data=st.data())
def test_mutated_onnx_never_escapes_as_anything_but_a_model_error(data: st.DataObject) -> None:
    _expect_model_error_or_model(_mutated(data))


def test_the_unmutated_model_loads() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "valid.onnx"
        path.write_bytes(VALID)
        onnx.checker.check_model(onnx.load(str(path)), full_check=True)
        assert load_model(path).output_spec.kind == "cut-softmax"


# -- datasets -------------------------------------------------------------------------------

ARRAYS = st.one_of(
    st.tuples(st.sampled_from(["float32", "float64", "int64", "uint8", "bool", "complex64", "<U2"]),
              st.lists(st.integers(0, 3), max_size=3)),
)


def _expect_data_error_or_dataset(path: Path, **kwargs: object) -> None:
    try:
        data = load_dataset(path, **kwargs)  # type: ignore[arg-type]
    except DataError as exc:
        message = str(exc)
        assert "\n" not in message and str(path.parent) in message, message
        return
    assert len(data) >= 1 and data.x.dtype == np.float32 and np.isfinite(data.x).all()
    assert data.y.shape == data.index.shape == (len(data.x),)


@FUZZ
@given(content=st.binary(max_size=600), suffix=st.sampled_from([".npz", "-idx3-ubyte", ".idx.gz"]))
def test_random_bytes_as_a_dataset(content: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data{suffix}"
        path.write_bytes(content)
        _expect_data_error_or_dataset(path, labels=path)


@FUZZ
@given(members=st.dictionaries(st.sampled_from(["x", "y", "index", "extra"]), ARRAYS, max_size=4),
       raw_member=st.sampled_from([None, "x", "y.npy", "index"]), seed=st.integers(0, 2**16))
def test_random_npz_archives(members: dict[str, tuple[str, list[int]]], raw_member: str | None, seed: int) -> None:
    rng = np.random.default_rng(seed)
    arrays = {k: (rng.normal(size=shape) * 3).astype(dtype) if dtype != "<U2" else np.full(shape, "ab")
              for k, (dtype, shape) in members.items()}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.npz"
        np.savez(path, **arrays)
        if raw_member is not None:  # a member that is not .npy data
            with zipfile.ZipFile(path, "a") as archive, warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the member may shadow one np.savez wrote: deliberate
                archive.writestr(raw_member, rng.bytes(int(rng.integers(0, 40))))
        _expect_data_error_or_dataset(path)


def test_a_valid_archive_is_read() -> None:
    buffer = io.BytesIO()
    np.savez(buffer, x=np.ones((3, 2), np.float32), y=np.arange(3))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ok.npz"
        path.write_bytes(buffer.getvalue())
        assert len(load_dataset(path)) == 3


@pytest.mark.parametrize("content", [VALID[: len(VALID) // 3], VALID + b"\x00" * 7, VALID_CNN])
def test_known_damage(content: bytes) -> None:
    _expect_model_error_or_model(content)


def _structurally_mutated(data: st.DataObject) -> bytes:
    """A parseable model with one or more fields changed: types, shapes, attributes, ops, opsets, names."""
    model = onnx.load_from_string(data.draw(st.sampled_from([VALID, VALID_CNN])))
    graph = model.graph
    for _ in range(data.draw(st.integers(1, 3))):
        kind = data.draw(st.sampled_from(["elem_type", "dim", "attribute", "op_type", "drop_node", "drop_init",
                                          "opset", "ir_version", "rename", "empty_input", "init_dims"]))
        node = graph.node[data.draw(st.integers(0, len(graph.node) - 1))] if len(graph.node) else None
        if kind == "elem_type":
            value = data.draw(st.sampled_from(list(graph.input) + list(graph.output)))
            value.type.tensor_type.elem_type = data.draw(st.integers(0, 30))
        elif kind == "dim":
            value = data.draw(st.sampled_from(list(graph.input) + list(graph.output)))
            dims = value.type.tensor_type.shape.dim
            if len(dims):
                dim = dims[data.draw(st.integers(0, len(dims) - 1))]
                if data.draw(st.booleans()):
                    dim.dim_value = data.draw(st.integers(-3, 10))
                else:
                    dim.dim_param = data.draw(st.text(max_size=3))
        elif kind == "attribute" and node is not None and len(node.attribute):
            attr = node.attribute[data.draw(st.integers(0, len(node.attribute) - 1))]
            if attr.type == onnx.AttributeProto.INT:
                attr.i = data.draw(st.one_of(st.integers(-3, 5), st.integers(-(2**40), 2**40)))
            elif attr.type == onnx.AttributeProto.INTS and len(attr.ints):
                attr.ints[data.draw(st.integers(0, len(attr.ints) - 1))] = data.draw(st.integers(-3, 6))
            elif attr.type == onnx.AttributeProto.FLOAT:
                attr.f = data.draw(st.floats(allow_nan=True, allow_infinity=True, width=32))
        elif kind == "op_type" and node is not None:
            node.op_type = data.draw(st.sampled_from(["Relu", "Softmax", "Identity", "Conv", "If", "Loop", "Reshape",
                                                      "Gemm", "Nope", "MaxPool", "TopK", "Split"]))
        elif kind == "drop_node" and len(graph.node) > 1:
            del graph.node[data.draw(st.integers(0, len(graph.node) - 1))]
        elif kind == "drop_init" and len(graph.initializer):
            del graph.initializer[data.draw(st.integers(0, len(graph.initializer) - 1))]
        elif kind == "opset":
            model.opset_import[0].version = data.draw(st.integers(-1, 40))
        elif kind == "ir_version":
            model.ir_version = data.draw(st.integers(-1, 20))
        elif kind == "rename" and node is not None and len(node.output):
            node.output[0] = data.draw(st.sampled_from(["x", "p", "z", "", "W"]))
        elif kind == "empty_input" and node is not None and len(node.input):
            node.input[data.draw(st.integers(0, len(node.input) - 1))] = data.draw(st.sampled_from(["", "x", "p"]))
        elif kind == "init_dims" and len(graph.initializer):
            init = graph.initializer[data.draw(st.integers(0, len(graph.initializer) - 1))]
            if len(init.dims):
                init.dims[0] = data.draw(st.integers(-2, 9))
    return model.SerializeToString()


@FUZZ
@given(data=st.data())
def test_structurally_mutated_onnx_never_escapes_as_anything_but_a_model_error(data: st.DataObject) -> None:
    _expect_model_error_or_model(_structurally_mutated(data))
