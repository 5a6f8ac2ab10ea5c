"""External data: every tensor of every (sub)graph is read from inside the model's folder, or refused
before anything is opened."""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from robustcheck import ModelError, load_model
from robustcheck.onnx_file import all_tensors

W_THEN = np.array([[1.0, -1.0], [0.5, 2.0], [-0.5, 0.25]], np.float32)
W_ELSE = -W_THEN


class OpenWatch:
    """A FIFO whose opening for reading, by anything in this process (Python or onnxruntime's C++),
    is seen: a writer thread blocks in open() until a reader arrives, then records it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self.opened = threading.Event()
        self._thread = threading.Thread(target=self._wait, daemon=True)
        self._thread.start()

    def _wait(self) -> None:
        fd = os.open(self.path, os.O_WRONLY)  # returns once someone opens the FIFO to read
        self.opened.set()
        os.close(fd)  # the reader sees end-of-file at once instead of hanging

    def close(self) -> None:
        if not self.opened.is_set():
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)  # release the writer
            self._thread.join(timeout=5)
            os.close(fd)


@pytest.fixture
def watch(tmp_path: Path) -> Iterator[OpenWatch]:
    w = OpenWatch(tmp_path / "secret.bin")
    yield w
    w.close()


def _if_model(then_weight: onnx.TensorProto) -> onnx.ModelProto:
    """scores = x·W_then if sum(x) > 0 else x·W_else; each weight is an initializer of its branch."""
    def branch(name: str, weight: onnx.TensorProto) -> onnx.GraphProto:
        return helper.make_graph([helper.make_node("MatMul", ["x", weight.name], [f"{name}_y"])], name, [],
                                 [helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, ["N", 2])],
                                 initializer=[weight])

    nodes = [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
             helper.make_node("Greater", ["s", "zero"], ["cond"]),
             helper.make_node("If", ["cond"], ["scores"], then_branch=branch("then", then_weight),
                              else_branch=branch("else", numpy_helper.from_array(W_ELSE, "w_else")))]
    graph = helper.make_graph(nodes, "if_ext", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 2])],
                              initializer=[numpy_helper.from_array(np.array(0.0, np.float32), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _external(name: str, array: np.ndarray, location: str, **extra: str) -> onnx.TensorProto:
    tensor = numpy_helper.from_array(array, name)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in {"location": location, **extra}.items():
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def _save(model: onnx.ModelProto, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def _load(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_model(path, input_range=(-1.0, 1.0))


def test_subgraph_external_data_inside_the_folder_is_used(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\0" * 8 + W_THEN.tobytes())
    path = _save(_if_model(_external("w_then", W_THEN, "weights.bin", offset="8")), folder / "m.onnx")
    model = _load(path)
    x = np.array([[0.5, 0.2, 0.1], [-0.5, -0.2, -0.1]], np.float32)
    np.testing.assert_allclose(model.oracle_logits(x[:1]), x[:1] @ W_THEN, rtol=1e-6)
    np.testing.assert_allclose(model.oracle_logits(x[1:]), x[1:] @ W_ELSE, rtol=1e-6)


@pytest.mark.parametrize("location", ["../secret.bin", "/secret.bin", "link/secret.bin", "link.bin"])
def test_subgraph_external_data_outside_the_folder_is_refused_unopened(tmp_path: Path, watch: OpenWatch,
                                                                       location: str) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "link").symlink_to(tmp_path)  # a folder symlink pointing out of the model's folder
    (folder / "link.bin").symlink_to(watch.path)  # a file symlink pointing out
    if location == "/secret.bin":
        location = str(watch.path)
    path = _save(_if_model(_external("w_then", W_THEN, location)), folder / "m.onnx")
    with pytest.raises(ModelError) as exc:
        _load(path)
    message = str(exc.value)
    assert "\n" not in message and str(path) in message
    assert "'w_then'" in message and "outside the model's folder" in message
    assert not watch.opened.is_set(), "the file outside the folder was opened"


def test_subgraph_external_data_is_not_resolved_against_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The probe: a model in models/ whose If branch names "secret.bin", a regular file that
    # exists only in the current directory. onnxruntime read it from there and its bytes decided
    # the predictions; now the name is resolved against the model's folder, where it is missing.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret.bin").write_bytes(W_THEN.tobytes())
    path = _save(_if_model(_external("w_then", W_THEN, "secret.bin")), tmp_path / "models" / "m.onnx")
    with pytest.raises(ModelError, match=r"external data file 'secret.bin' of tensor 'w_then' is missing"):
        _load(path)


def test_a_fifo_inside_the_folder_is_not_opened(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    fifo = OpenWatch(folder / "weights.bin")
    try:
        path = _save(_if_model(_external("w_then", W_THEN, "weights.bin")), folder / "m.onnx")
        with pytest.raises(ModelError, match="is missing or not a regular file"):
            _load(path)
        assert not fifo.opened.is_set()
    finally:
        fifo.close()


def _deep_loop_model(tensor: onnx.TensorProto) -> onnx.ModelProto:
    """A Constant holding `tensor` inside a Loop body inside an If branch (two levels down)."""
    body = helper.make_graph(
        [helper.make_node("Constant", [], ["w"], value=tensor), helper.make_node("Identity", ["c_in"], ["c_out"]),
         helper.make_node("MatMul", ["x", "w"], ["y"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("c_in", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])])
    loop = helper.make_node("Loop", ["one", "true"], ["ys"], body=body)
    squeeze = helper.make_node("Squeeze", ["ys", "zero_axis"], ["scores_then"])
    then_branch = helper.make_graph([loop, squeeze], "then", [],
                                    [helper.make_tensor_value_info("scores_then", TensorProto.FLOAT, ["N", 2])])
    model = _if_model(numpy_helper.from_array(W_THEN, "unused"))
    attr = next(a for a in model.graph.node[2].attribute if a.name == "then_branch")
    attr.CopyFrom(helper.make_attribute("then_branch", then_branch))
    model.graph.initializer.extend([numpy_helper.from_array(np.array(1, np.int64), "one"),
                                    numpy_helper.from_array(np.array(True), "true"),
                                    numpy_helper.from_array(np.array([0], np.int64), "zero_axis")])
    return model


def test_attribute_tensors_two_levels_down_are_checked_too(tmp_path: Path, watch: OpenWatch) -> None:
    folder = tmp_path / "models"
    (folder).mkdir()
    (folder / "w.bin").write_bytes(W_THEN.tobytes())
    good = _save(_deep_loop_model(_external("w_const", W_THEN, "w.bin")), folder / "good.onnx")
    x = np.array([[0.5, 0.2, 0.1]], np.float32)
    np.testing.assert_allclose(_load(good).oracle_logits(x), x @ W_THEN, rtol=1e-6)
    bad = _save(_deep_loop_model(_external("w_const", W_THEN, "../secret.bin")), folder / "bad.onnx")
    with pytest.raises(ModelError, match="'w_const' lies outside the model's folder"):
        _load(bad)
    assert not watch.opened.is_set()


def test_every_tensor_location_is_visited() -> None:
    # Sparse initializers, attribute tensors in subgraphs and model-local functions included.
    sparse = helper.make_sparse_tensor(numpy_helper.from_array(np.ones(2, np.float32), "sp"),
                                       numpy_helper.from_array(np.array([0, 3], np.int64), "sp_idx"), [4])
    model = _deep_loop_model(numpy_helper.from_array(W_THEN, "w_const"))
    model.graph.sparse_initializer.append(sparse)
    constant = helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.ones(1, np.float32), "f_const"))
    function = helper.make_function("local", "f", ["a"], ["b"], [constant, helper.make_node("Add", ["a", "k"], ["b"])],
                                    [helper.make_opsetid("", 17)])
    model.functions.append(function)
    names = {t.name for t in all_tensors(model)}
    assert {"zero", "w_else", "w_const", "one", "true", "zero_axis", "sp", "sp_idx", "f_const"} <= names


@pytest.mark.parametrize(("key", "value"), [("length", "twelve"), ("offset", "0x10"), ("length", "-4")])
def test_external_data_numbers_are_validated(tmp_path: Path, key: str, value: str) -> None:
    (tmp_path / "w.bin").write_bytes(W_THEN.tobytes())
    path = _save(_if_model(_external("w_then", W_THEN, "w.bin", **{key: value})), tmp_path / "m.onnx")
    with pytest.raises(ModelError) as exc:
        _load(path)
    message = str(exc.value)
    assert "\n" not in message and str(path) in message and "'w_then'" in message
    assert f"{key} {value!r}" in message and ("not a number" in message or "negative" in message)


def test_external_data_past_the_end_of_its_file(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(W_THEN.tobytes()[:10])
    path = _save(_if_model(_external("w_then", W_THEN, "w.bin", length="24")), tmp_path / "m.onnx")
    with pytest.raises(ModelError, match="runs past the end of 'w.bin'"):
        _load(path)


def test_the_size_cap_counts_subgraph_external_data(tmp_path: Path) -> None:
    big = np.zeros(1024, np.float32)
    (tmp_path / "w.bin").write_bytes(W_THEN.tobytes() + big.tobytes())
    model = _if_model(_external("w_then", W_THEN, "w.bin", length="24"))
    then_branch = next(a for a in model.graph.node[2].attribute if a.name == "then_branch").g
    then_branch.initializer.append(_external("unused", big, "w.bin", offset="24"))
    path = _save(model, tmp_path / "m.onnx")
    assert path.stat().st_size < 1000
    with pytest.raises(ModelError, match="external data of 4120 bytes exceeds the size cap of 1000 bytes"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load_model(path, max_bytes=1000)
