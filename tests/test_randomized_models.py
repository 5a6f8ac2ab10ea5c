"""Randomized models: judged by majority vote over repeated onnxruntime calls, replicas checked in
distribution, gradients averaged over draws (EOT)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from robustcheck import load_model
from robustcheck.randomized_oracle import ORACLE_DRAWS, majority_votes, overshoot, vote_labels
from robustcheck.replica import REGISTRY, NodeContext


def _noisy_linear(tmp_path: Path, sigma: float = 0.5) -> Path:
    """x + N(0, σ²) noise, then a fixed 4 → 3 linear map: a randomized classifier."""
    w = np.array([[2.0, -1.0, 0.0], [0.0, 2.0, -1.0], [-1.0, 0.0, 2.0], [0.5, 0.5, 0.5]], np.float32)
    nodes = [helper.make_node("RandomNormalLike", ["x"], ["noise"], scale=sigma),
             helper.make_node("Add", ["x", "noise"], ["noisy"]), helper.make_node("MatMul", ["noisy", "w"], ["y"])]
    graph = helper.make_graph(nodes, "noisy", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
                              initializer=[numpy_helper.from_array(w, "w")])
    path = tmp_path / "noisy.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    return path


def test_votes_take_more_draws_only_where_the_decision_is_close() -> None:
    rng = np.random.default_rng(0)
    calls = []

    def call(x: np.ndarray) -> np.ndarray:  # row 0: always class 2; row 1: a fair coin between 0 and 1
        calls.append(len(x))
        logits = np.zeros((len(x), 3))
        logits[:, 2] = 1.0
        if len(x) == 2:
            logits[1] = [1.0, 0.0, 0.0] if rng.random() < 0.5 else [0.0, 1.0, 0.0]
        else:
            logits[0] = [1.0, 0.0, 0.0] if rng.random() < 0.5 else [0.0, 1.0, 0.0]
        return logits

    counts = majority_votes(call, np.zeros((2, 1)), 3)
    assert counts[0].tolist() == [0, 0, ORACLE_DRAWS]  # decided after the first round
    assert counts[1].sum() > ORACLE_DRAWS and counts[1, 2] == 0  # the coin got more draws
    assert vote_labels(counts)[0] == 2
    assert vote_labels(np.zeros((1, 3), np.int64)).tolist() == [-1]  # no finite answer: no class


def test_a_rejected_candidate_is_pushed_along_its_perturbation() -> None:
    x = np.zeros((3, 2), np.float32)
    cand = np.array([[0.5, 0.0], [0.0, 0.0], [0.2, 0.2]], np.float32)

    def judge(rows: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        accepted = c.sum(axis=1) >= 0.58  # only a 1.2× stretch of row 0 gets there; row 2 never does
        return np.where(accepted, 7, 0), accepted

    out, labels, ok = overshoot(x, cand, np.zeros(3, np.int64), np.zeros(3, bool), (0.0, 1.0), judge)
    np.testing.assert_allclose(out[0], [0.6, 0.0], rtol=1e-6)
    assert ok.tolist() == [True, False, False] and labels.tolist() == [7, 0, 0]
    assert (out[1:] == cand[1:]).all()


def test_a_noisy_model_is_randomized_judged_by_votes_and_its_replica_matches_in_distribution(tmp_path) -> None:
    model = load_model(_noisy_linear(tmp_path))
    assert model.randomized and model.gradient_mode == "adaptive"
    assert model.parity.kind == "distribution" and model.parity.passed
    assert 0.8 < model.parity.spread_ratio < 1.25
    x = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]], np.float32)
    assert model.predict(x).tolist() == [0, 1, 2]  # single calls flip now and then; the vote does not
    xt = torch.from_numpy(x).requires_grad_(True)
    model.torch_logits(xt)[:, 0].sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(), np.tile([2.0, 0.0, -1.0, 0.5], (3, 1)), rtol=1e-6)


def test_a_replica_drawing_from_another_distribution_is_refused(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = REGISTRY.lookup("", "RandomNormalLike", 17)

    def twice_the_noise(ctx: NodeContext, a: list[Any]) -> list[Any]:
        return [2.0 * out for out in entry.fn(ctx, a)]

    monkeypatch.setitem(REGISTRY._entries, entry.key, dataclasses.replace(entry, fn=twice_the_noise))
    model = load_model(_noisy_linear(tmp_path))
    assert model.replica is None and "in distribution" in model.replica_reason
    assert model.parity.spread_ratio > 1.25
