"""The model layer: safe loading, one-line errors, outputs, input specs, chunking."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from robustcheck import ModelError, load_model


def _linear_model(path: Path, *, softmax: bool = False, batch: int | str = "N", classes: int = 4,
                  external: bool = False, extra_outputs: bool = False) -> Path:
    """A 6-feature linear classifier, optionally with a Softmax head or external weights."""
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.normal(size=(6, classes)).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.normal(size=(classes,)).astype(np.float32), "B")
    nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["z"])]
    outputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, [batch, classes])]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["z"], ["p"], axis=-1, name="head"))
        outputs = [helper.make_tensor_value_info("p", TensorProto.FLOAT, [batch, classes])]
    if extra_outputs:
        nodes.append(helper.make_node("ArgMax", ["z"], ["label"], axis=1, keepdims=0))
        outputs.append(helper.make_tensor_value_info("label", TensorProto.INT64, [batch]))
    graph = helper.make_graph(nodes, "linear", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 6])],
                              outputs, initializer=[w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if external:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=path.name + ".data", size_threshold=0)
    else:
        onnx.save_model(model, str(path))
    return path


def _one_line(exc: pytest.ExceptionInfo[ModelError], path: Path, words: str) -> None:
    message = str(exc.value)
    assert "\n" not in message
    assert str(path) in message
    assert words in message, message


def test_loads_a_linear_classifier(tmp_path: Path) -> None:
    model = load_model(_linear_model(tmp_path / "lin.onnx"))
    x = np.random.default_rng(0).uniform(size=(5, 6)).astype(np.float32)
    assert model.num_classes == 4
    assert model.output_spec.kind == "logits"
    assert model.predict(x).shape == (5,)
    assert model.parity is not None and model.parity.passed and model.parity.source == "random"
    np.testing.assert_allclose(model.replica_logits(x), model.oracle_logits(x), atol=1e-5)
    assert len(model.sha256) == 64
    assert model.spec().input.shape == ["N", 6]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty file"),
        (b"this is not an onnx model at all \x00\x01\x02" * 7, "not a valid ONNX model"),
        (b"\x08\x07\x12\x04skl\x00", "not a valid ONNX model"),
    ],
)
def test_bad_files_get_one_line_errors(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelError) as exc:
        load_model(path)
    _one_line(exc, path, words)


def test_truncated_file(tmp_path: Path) -> None:
    good = _linear_model(tmp_path / "good.onnx").read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelError) as exc:
        load_model(path)
    _one_line(exc, path, "not a valid ONNX model")


def test_missing_file_and_size_cap(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as exc:
        load_model(tmp_path / "nope.onnx")
    _one_line(exc, tmp_path / "nope.onnx", "no such file")
    path = _linear_model(tmp_path / "lin.onnx")
    with pytest.raises(ModelError) as exc:
        load_model(path, max_bytes=10)
    _one_line(exc, path, "exceeds the size cap")


def test_external_data_inside_the_folder_loads(tmp_path: Path) -> None:
    model = load_model(_linear_model(tmp_path / "ext.onnx", external=True))
    assert model.predict(np.zeros((2, 6), np.float32)).shape == (2,)


@pytest.mark.parametrize("location", ["/etc/passwd", "../outside.data", "sub/../../outside.data"])
def test_external_data_outside_the_folder_is_refused(tmp_path: Path, location: str) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    path = _linear_model(inner / "ext.onnx", external=True)
    (tmp_path / "outside.data").write_bytes((inner / "ext.onnx.data").read_bytes())
    proto = onnx.load_model(str(path), load_external_data=False)
    for tensor in proto.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    path.write_bytes(proto.SerializeToString())
    with pytest.raises(ModelError) as exc:
        load_model(path)
    _one_line(exc, path, "outside the model's folder")


def test_missing_external_data(tmp_path: Path) -> None:
    path = _linear_model(tmp_path / "ext.onnx", external=True)
    (tmp_path / "ext.onnx.data").unlink()
    with pytest.raises(ModelError) as exc:
        load_model(path)
    _one_line(exc, path, "is missing")


def test_checker_failure_is_a_warning_when_onnxruntime_runs_it(tmp_path: Path) -> None:
    # Nodes out of topological order: onnx.checker refuses, onnxruntime (and the replica) run it.
    nodes = [helper.make_node("Relu", ["a"], ["z"]), helper.make_node("Neg", ["x"], ["a"])]
    graph = helper.make_graph(nodes, "unsorted", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 3])])
    path = tmp_path / "unsorted.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.warns(UserWarning, match="onnx.checker rejects"):
        model = load_model(path)
    assert any("onnx.checker" in w for w in model.warnings)
    assert model.replica is not None and model.parity.passed


def test_graph_onnxruntime_cannot_run(tmp_path: Path) -> None:
    node = helper.make_node("NoSuchOp", ["x"], ["z"], domain="com.example")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 3])])
    path = tmp_path / "custom.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    onnx.save_model(model, str(path))
    with pytest.raises(ModelError) as exc:
        load_model(path)
    _one_line(exc, path, "onnxruntime cannot run the graph")


def test_softmax_head_is_cut(tmp_path: Path) -> None:
    logits = load_model(_linear_model(tmp_path / "a.onnx"))
    probs = load_model(_linear_model(tmp_path / "b.onnx", softmax=True))
    assert probs.output_spec.kind == "cut-softmax" and probs.output_spec.cut_node == "head"
    x = np.random.default_rng(2).uniform(size=(8, 6)).astype(np.float32)
    np.testing.assert_allclose(probs.oracle_logits(x), logits.oracle_logits(x), rtol=1e-6)
    np.testing.assert_allclose(probs.replica_logits(x), logits.oracle_logits(x), rtol=1e-5, atol=1e-6)


def test_probability_output_without_a_node_to_cut(tmp_path: Path) -> None:
    # Softmax written out as Exp / ReduceSum / Div: nothing to cut, so log-probabilities are attacked.
    nodes = [
        helper.make_node("Exp", ["x"], ["e"]),
        helper.make_node("ReduceSum", ["e", "axes"], ["s"], keepdims=1),
        helper.make_node("Div", ["e", "s"], ["p"]),
    ]
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    graph = helper.make_graph(nodes, "manual", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5])],
                              [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", 5])], initializer=[axes])
    path = tmp_path / "probs.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    model = load_model(path)
    assert model.output_spec.kind == "log-probabilities"
    x = np.random.default_rng(3).uniform(size=(4, 5)).astype(np.float32)
    expected = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(model.oracle_logits(x), expected, atol=1e-5)
    if model.replica is not None:
        np.testing.assert_allclose(model.replica_logits(x), expected, atol=1e-5)


def test_non_tensor_outputs_are_ignored_and_outputs_can_be_named(tmp_path: Path) -> None:
    model = load_model(_linear_model(tmp_path / "two.onnx", extra_outputs=True))
    assert model.output_spec.name == "z"
    assert "label" in model.output_spec.ignored_outputs
    path = tmp_path / "two.onnx"
    with pytest.raises(ModelError) as exc:
        load_model(path, output="label")
    _one_line(exc, path, "is not a float tensor output")


def test_fixed_batch_of_one_still_takes_batches(tmp_path: Path) -> None:
    model = load_model(_linear_model(tmp_path / "b1.onnx", batch=1))
    assert model.input_spec.fixed_batch == 1
    x = np.random.default_rng(4).uniform(size=(7, 6)).astype(np.float32)
    assert model.predict(x).shape == (7,)
    np.testing.assert_allclose(model.replica_logits(x), model.oracle_logits(x), atol=1e-5)


def test_wrong_input_shape_is_a_clear_error(tmp_path: Path) -> None:
    model = load_model(_linear_model(tmp_path / "lin.onnx"))
    with pytest.raises(ModelError, match="does not fit the model's input"):
        model.predict(np.zeros((2, 7), np.float32))


def test_input_range_and_layout_validation(tmp_path: Path) -> None:
    path = _linear_model(tmp_path / "lin.onnx")
    with pytest.raises(ModelError, match="low < high"):
        load_model(path, input_range=(1.0, 0.0))
    with pytest.raises(ModelError, match="needs a rank-4 input"):
        load_model(path, layout="NCHW")
    assert load_model(path, input_range=(0, 255)).input_range == (0.0, 255.0)


def test_importing_the_package_does_not_import_torch() -> None:
    code = "import sys, robustcheck, robustcheck.errors, robustcheck.record; " \
           "assert 'torch' not in sys.modules and 'onnxruntime' not in sys.modules, 'heavy import'"
    subprocess.run([sys.executable, "-c", code], check=True)


def _scores_model(path: Path, head: str) -> Path:
    """A 4-feature linear classifier whose scores go non-finite: everywhere ("log-of-negative",
    "divide-by-zero"), or only where the first feature exceeds 0.999 ("nan-corner")."""
    # Feature 0 pushes class 1 down, so an attack on class 1 walks towards the NaN corner.
    w = numpy_helper.from_array(np.array([[1, -1, 0], [0, 2, 0], [0, 2, 0], [0, 2, 0]], np.float32), "W")
    consts = {"two": 2.0, "zero": 0.0, "edge": 0.999, "nan": float("nan")}
    inits = [w] + [numpy_helper.from_array(np.array(v, np.float32), k) for k, v in consts.items()]
    inits.append(numpy_helper.from_array(np.array([0], np.int64), "first"))
    nodes = [helper.make_node("MatMul", ["x", "W"], ["z"])]
    if head == "log-of-negative":
        nodes += [helper.make_node("Sub", ["z", "two"], ["zm"]), helper.make_node("Sub", ["zm", "two"], ["zn"]),
                  helper.make_node("Abs", ["zn"], ["za"]), helper.make_node("Neg", ["za"], ["neg"]),
                  helper.make_node("Log", ["neg"], ["scores"])]
    elif head == "divide-by-zero":
        nodes += [helper.make_node("Div", ["z", "zero"], ["scores"])]
    else:
        nodes += [helper.make_node("Gather", ["x", "first"], ["x0"], axis=1),
                  helper.make_node("Greater", ["x0", "edge"], ["corner"]),
                  helper.make_node("Where", ["corner", "nan", "z"], ["scores"])]
    graph = helper.make_graph(nodes, head, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 3])], initializer=inits)
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.mark.parametrize("head", ["log-of-negative", "divide-by-zero"])
def test_non_finite_scores_on_valid_inputs_are_a_model_error(tmp_path: Path, head: str) -> None:
    path = _scores_model(tmp_path / f"{head}.onnx", head)
    with pytest.raises(ModelError) as exc:
        load_model(path)
    _one_line(exc, path, "output 'scores' gives non-finite scores (NaN or infinity) for 16 of 16 random inputs")


def test_non_finite_scores_during_a_run_are_never_a_prediction(tmp_path: Path) -> None:
    # Finite on the load-time probe, NaN in one corner of the input box.
    path = _scores_model(tmp_path / "corner.onnx", "nan-corner")
    model = load_model(path)
    x = np.full((3, 4), 0.5, np.float32)
    assert model.predict(x).shape == (3,)
    x[1, 0] = 1.0
    for judge in (model.oracle_logits, model.predict):
        with pytest.raises(ModelError) as exc:
            judge(x)
        _one_line(exc, path, "gives non-finite scores (NaN or infinity) for 1 of 3 inputs (first: row 1)")
    # An input that is not finite itself (a diverged candidate, never inside the box) gets no class.
    x[1, 0] = np.nan
    labels = model.predict(x)
    assert labels[1] == -1 and (labels[[0, 2]] >= 0).all()
    assert not model.in_box(x)[1]


def test_an_attack_candidate_with_non_finite_scores_is_an_error_not_a_verdict(tmp_path: Path) -> None:
    # FGSM's step takes feature 0 from 0.99 to 1.0, into the NaN corner: the verification by
    # onnxruntime must stop the run with the model's error, not count the row as adversarial or not.
    from robustcheck.attacks import FGSM

    path = _scores_model(tmp_path / "corner.onnx", "nan-corner")
    model = load_model(path)
    x = np.array([[0.99, 0.5, 0.5, 0.5]], np.float32)
    assert model.predict(x).tolist() == [1]
    with pytest.raises(ModelError) as exc:
        FGSM(epsilon=0.2).run(model, x, np.array([1]))
    _one_line(exc, path, "gives non-finite scores")
