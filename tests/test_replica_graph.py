"""The replica as a graph: registry lookup, unsupported operators, folding, and errors that name their node."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from robustcheck.replica import REGISTRY, NodeFailure, OpEntry, OpKey, UnsupportedGraph, build_replica
from robustcheck.replica.registry import NodeContext, OpRegistry


def _model(nodes: list[onnx.NodeProto], inits: dict[str, np.ndarray] | None = None, opset: int = 17,
           x_shape: list[Any] | None = None) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape or ["N", 4])],
                              [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)],
                              initializer=[numpy_helper.from_array(v, k) for k, v in (inits or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _noop(ctx: NodeContext, a: list[Any]) -> list[Any]:
    return a


def test_registry_refuses_duplicates_and_picks_the_version_in_force() -> None:
    registry = OpRegistry()
    for since in (13, 1, 18):
        registry.add(OpEntry(OpKey("", "Op", since), _noop))
    with pytest.raises(ValueError, match="Op-13 is registered twice"):
        registry.add(OpEntry(OpKey("", "Op", 13), _noop))
    assert [registry.lookup("", "Op", v).key.since_version for v in (1, 12, 13, 17, 18, 30)] == [1, 1, 13, 13, 18, 18]
    assert registry.lookup("ai.onnx", "Op", 13).key.since_version == 13  # another spelling of the default domain
    assert registry.lookup("", "Op", 0) is None and registry.lookup("com.example", "Op", 13) is None
    assert [registry.until(OpKey("", "Op", v)) for v in (1, 13, 18)] == [12, 17, None]


def test_the_shipped_registry_refuses_a_second_registration() -> None:
    entry = REGISTRY.lookup("", "Relu", 17)
    with pytest.raises(ValueError, match="Relu-6 is registered twice"):
        REGISTRY.add(entry)


def test_each_opset_uses_its_own_implementation() -> None:
    # Clip: bounds were attributes before opset 11 and inputs from it on.
    x = np.linspace(-2, 2, 8, dtype=np.float32).reshape(2, 4)
    old = _model([helper.make_node("Clip", ["x"], ["y"], min=-0.5, max=0.5)], opset=10)
    new = _model([helper.make_node("Clip", ["x", "lo", "hi"], ["y"])],
                 {"lo": np.array(-0.5, np.float32), "hi": np.array(0.5, np.float32)}, opset=11)
    for model in (old, new):
        np.testing.assert_allclose(build_replica(model, "x", ["y"])(torch.from_numpy(x)).numpy(), np.clip(x, -0.5, 0.5))


def test_unsupported_operators_and_versions_are_named() -> None:
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
    # QLinearConv exists from opset 10 on; at opset 9 the version is named.
    with pytest.raises(UnsupportedGraph, match=r"QLinearConv \(opset 9\)"):
        build_replica(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)]), "x", ["y"])
    # Add before opset 7 had legacy broadcast attributes; the replica implements it from 7 on.
    with pytest.raises(UnsupportedGraph, match=r"Add \(opset 6\)"):
        build_replica(_model([helper.make_node("Add", ["x", "x"], ["y"])], opset=6), "x", ["y"])


def test_unsupported_model_still_works_through_the_oracle(tmp_path: Path) -> None:
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
    replica = build_replica(_model(nodes, {"zero": np.array(0.0, np.float32)}), "x", ["out"])
    assert set(replica.nondifferentiable) == {"Round", "Greater"}


def test_constants_are_folded_once_but_random_operators_never() -> None:
    nodes = [helper.make_node("ConstantOfShape", ["shape"], ["c"],
                              value=numpy_helper.from_array(np.array([1.5], np.float32))),
             helper.make_node("RandomUniformLike", ["c"], ["noise"]),
             helper.make_node("Add", ["x", "c"], ["xc"]), helper.make_node("Add", ["xc", "noise"], ["y"])]
    model = _model(nodes, {"shape": np.array([2, 4], np.int64)}, x_shape=[2, 4])
    replica = build_replica(model, "x", ["y"])
    assert [step.ctx.op_type for step in replica._steps] == ["RandomUniformLike", "Add", "Add"]
    x = torch.zeros(2, 4)
    first, second = replica(x), replica(x)
    assert not torch.equal(first, second)
    assert ((first >= 1.5) & (first <= 2.5)).all()
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": x.numpy()})
    assert ((expected[0] >= 1.5) & (expected[0] <= 2.5)).all()


def test_a_failure_while_folding_names_the_node() -> None:
    # A Reshape of a constant to an impossible shape fails at build time (onnxruntime refuses it too).
    nodes = [helper.make_node("Reshape", ["w", "bad_shape"], ["w2"], name="reshape_w"),
             helper.make_node("MatMul", ["x", "w2"], ["y"], name="fc")]
    model = _model(nodes, {"w": np.ones((4, 3), np.float32), "bad_shape": np.array([5, -1], np.int64)})
    with pytest.raises(NodeFailure, match=r"^node 'reshape_w' \(Reshape, opset 17\): RuntimeError: shape '\[5, -1\]'"):
        build_replica(model, "x", ["y"])
    with pytest.raises(Exception, match="reshape"):
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_a_failure_while_running_names_the_node() -> None:
    # Gemm weights that do not fit the input: onnxruntime refuses the graph; the replica builds
    # (nothing to fold) and names the node when it runs.
    nodes = [helper.make_node("Relu", ["x"], ["h"]), helper.make_node("Gemm", ["h", "w"], ["y"], name="fc_3", transB=1)]
    model = _model(nodes, {"w": np.ones((2, 5), np.float32)})
    replica = build_replica(model, "x", ["y"])
    with pytest.raises(NodeFailure, match=r"^node 'fc_3' \(Gemm, opset 17\): RuntimeError: .*cannot be multiplied"):
        replica(torch.ones(3, 4))
    with pytest.raises(Exception, match="fc_3"):
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    unnamed = _model([helper.make_node("Relu", ["x"], ["h"]), helper.make_node("Gemm", ["h", "w"], ["y"], transB=1)],
                     {"w": np.ones((2, 5), np.float32)})
    with pytest.raises(NodeFailure, match=r"^unnamed node #1 \(Gemm, opset 17\)"):
        build_replica(unnamed, "x", ["y"])(torch.ones(3, 4))


@pytest.mark.filterwarnings("ignore:.*onnx.checker rejects")
def test_the_model_layer_reports_a_broken_operator_by_its_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from robustcheck import load_model

    def broken(ctx: NodeContext, a: list[Any]) -> list[Any]:
        raise ValueError("deliberately broken")

    entry = REGISTRY.lookup("", "Relu", 17)
    monkeypatch.setitem(REGISTRY._entries, entry.key, dataclasses.replace(entry, fn=broken))
    nodes = [helper.make_node("Gemm", ["x", "w"], ["h"], name="fc_1", transB=1),
             helper.make_node("Relu", ["h"], ["y"], name="act_1")]
    model = _model(nodes, {"w": np.ones((3, 4), np.float32)})
    path = tmp_path / "broken.onnx"
    onnx.save_model(model, str(path))
    loaded = load_model(path)
    assert loaded.replica is None
    assert loaded.replica_reason == ("replica failed to run (node 'act_1' (Relu, opset 17): ValueError: "
                                     "deliberately broken)")
    assert loaded.predict(np.zeros((2, 4), np.float32)).shape == (2,)  # the oracle is untouched
