"""Node order and pruning: subgraphs' implicit inputs count, unsorted graphs load, deep graphs load."""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from robustcheck import load_model
from robustcheck.graph_surgery import implicit_inputs, prune_to, topological_order

W = np.arange(12, dtype=np.float32).reshape(4, 3) / 10 - 0.5
B = np.array([0.1, -0.2, 0.3], np.float32)


def _if_model(*, shuffled: bool, nested: bool = False) -> onnx.ModelProto:
    """logits = h·2 if sum(x) > 2 else h·(-1) with h = 3·sigmoid(x·W + B): h is computed in the outer
    graph and read by the branches without being a node input (an implicit input). `cond` is
    ready two steps before `h`, so an order built from explicit inputs alone runs the If too early."""
    def branch(name: str, factor: float) -> onnx.GraphProto:
        nodes = [helper.make_node("Mul", ["h", f"{name}_k"], [f"{name}_out"])]
        inits = [numpy_helper.from_array(np.array(factor, np.float32), f"{name}_k")]
        if nested:  # the branch holds a second If whose branches read `h` two levels up
            inner = [helper.make_graph([helper.make_node("Identity", ["h"], [f"{name}_{s}_h"])], f"{name}_{s}", [],
                                       [helper.make_tensor_value_info(f"{name}_{s}_h", TensorProto.FLOAT, ["N", 3])])
                     for s in ("a", "b")]
            nodes = [helper.make_node("If", ["cond"], [f"{name}_h"], then_branch=inner[0], else_branch=inner[1]),
                     helper.make_node("Mul", [f"{name}_h", f"{name}_k"], [f"{name}_out"])]
        return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT,
                                                                                 ["N", 3])], initializer=inits)

    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h0"], name="matmul"),
        helper.make_node("Add", ["h0", "B"], ["h1"], name="bias"),
        helper.make_node("Sigmoid", ["h1"], ["h2"], name="sigmoid"),
        helper.make_node("Mul", ["h2", "three"], ["h"], name="scale"),
        helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0, name="total"),
        helper.make_node("Greater", ["total", "two"], ["cond"], name="cond"),
        helper.make_node("If", ["cond"], ["logits"], then_branch=branch("then", 2.0), else_branch=branch("else", -1.0),
                         name="choose"),
    ]
    if shuffled:  # the If first, the producer of `h` (only read implicitly) last
        nodes.reverse()
    graph = helper.make_graph(nodes, "if_outer", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
                              initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "B"),
                                           numpy_helper.from_array(np.array(2.0, np.float32), "two"),
                                           numpy_helper.from_array(np.array(3.0, np.float32), "three")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _expected(x: np.ndarray) -> np.ndarray:
    return 3 / (1 + np.exp(-(x @ W + B))) * (2.0 if x.sum() > 2 else -1.0)


@pytest.mark.parametrize("nested", [False, True], ids=["if", "nested-if"])
def test_if_branches_reading_the_outer_graph_load_sorted_or_not(tmp_path: Path, nested: bool) -> None:
    sorted_model = _if_model(shuffled=False, nested=nested)
    onnx.checker.check_model(sorted_model, full_check=True)
    shuffled = _if_model(shuffled=True, nested=nested)
    choose = next(n for n in sorted_model.graph.node if n.op_type == "If")
    assert implicit_inputs(choose) == ({"h", "cond"} if nested else {"h"})
    for name, model in (("sorted", sorted_model), ("shuffled", shuffled)):
        path = tmp_path / f"{name}.onnx"
        onnx.save_model(model, str(path))
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])  # onnxruntime accepts both
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the checker refuses the shuffled order: a warning
            loaded = load_model(path, input_range=(0.0, 1.0))
        assert loaded.replica is None and "If" in loaded.replica_reason  # the oracle carries it
        for x in (np.full((2, 4), 0.1, np.float32), np.full((3, 4), 0.9, np.float32)):
            np.testing.assert_allclose(loaded.oracle_logits(x), _expected(x), rtol=1e-5)


def test_pruning_keeps_what_subgraphs_read(tmp_path: Path) -> None:
    model = _if_model(shuffled=True)
    # A second output computed from `h` (and nothing the If needs) is dropped; `h`'s producer stays.
    model.graph.node.insert(0, helper.make_node("Relu", ["total"], ["side"]))
    model.graph.output.append(helper.make_tensor_value_info("side", TensorProto.FLOAT, []))
    pruned = prune_to(model, "logits")
    # Ready nodes are taken in file order.
    assert [n.name for n in pruned.graph.node] == ["total", "matmul", "cond", "bias", "sigmoid", "scale", "choose"]
    assert {t.name for t in pruned.graph.initializer} == {"W", "B", "two", "three"}


STEP = np.array([2**-10, -(2**-9), 2**-11], np.float32)


def _chain(n: int) -> list[onnx.NodeProto]:
    return [helper.make_node("Add", [f"v{i}", "c"], [f"v{i + 1}"], name=f"add{i}") for i in range(n)]


def test_topological_order_is_stable_and_complete() -> None:
    nodes = _chain(50)
    assert topological_order(nodes) == nodes  # already sorted: unchanged
    shuffled = nodes[:]
    random.Random(0).shuffle(shuffled)
    assert [n.name for n in topological_order(shuffled)] == [n.name for n in nodes]
    # Independent nodes keep their file order; a cycle leaves its nodes in file order at the end.
    free = [helper.make_node("Relu", ["x"], [f"r{i}"], name=f"r{i}") for i in range(3)]
    cycle = [helper.make_node("Neg", ["b"], ["a"], name="a"), helper.make_node("Neg", ["a"], ["b"], name="b")]
    mixed = [cycle[0], free[2], free[0], cycle[1], free[1]]
    assert [n.name for n in topological_order(mixed)] == ["r2", "r0", "r1", "a", "b"]


def test_a_deep_reversed_chain_loads_and_runs(tmp_path: Path) -> None:
    # 20,000 chained nodes listed in reverse: the order must be rebuilt (quadratic before issue 18).
    n = 20_000
    nodes = _chain(n)
    nodes.reverse()
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("v0", TensorProto.FLOAT, ["N", 3])],
                              [helper.make_tensor_value_info(f"v{n}", TensorProto.FLOAT, ["N", 3])],
                              initializer=[numpy_helper.from_array(STEP, "c")])
    path = tmp_path / "chain.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_model(path)
    assert model.parity is not None and model.parity.passed, model.replica_reason
    # Powers of two on a 2^-10 grid: every partial sum is exact in float32, so equality is exact.
    x = (np.round(np.random.default_rng(0).uniform(size=(4, 3)) * 1024) / 1024).astype(np.float32)
    np.testing.assert_array_equal(model.oracle_logits(x), x + n * STEP)
    np.testing.assert_array_equal(model.replica_logits(x), x + n * STEP)
