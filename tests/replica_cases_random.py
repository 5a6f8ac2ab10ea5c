"""Parity cases of the random operators: the same distribution, not the same draws."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st
from onnx import TensorProto
from replica_parity import case, close, one_node_model, run_both, run_model


def _moments(out: np.ndarray, mean: float, std: float) -> None:
    """4,096 draws: the sample mean within 6 standard errors, the spread within 10%."""
    assert abs(out.mean() - mean) <= 6 * std / np.sqrt(out.size)
    assert abs(out.std() - std) <= 0.1 * std


def _normal_or_uniform(data: st.DataObject, op: str) -> tuple[dict[str, Any], float, float, float, float]:
    a = data.draw(st.floats(-3, 3, width=32))
    b = a + data.draw(st.floats(0.125, 3, width=32))
    if op.startswith("RandomNormal"):
        return {"mean": a, "scale": b - a}, a, b - a, -np.inf, np.inf
    return {"low": a, "high": b}, (a + b) / 2, (b - a) / np.sqrt(12), a, b


@case("RandomNormalLike-1", "RandomUniformLike-1", "RandomNormal-1", "RandomUniform-1")
def _random(data: st.DataObject, op: str, opset: int) -> None:
    x = np.zeros((64, 64), np.float32)
    attrs, mean, std, low, high = _normal_or_uniform(data, op)
    attrs["seed"] = 1.0
    dtype = data.draw(st.sampled_from([None, TensorProto.DOUBLE]))
    if dtype is not None:
        attrs["dtype"] = dtype
    torch.manual_seed(data.draw(st.integers(0, 2**16)))
    if op.endswith("Like"):
        expected, got = run_both(op, [x], attrs, opset=opset)
    else:  # no input: the node's output is added to the graph's input, which is all zeros
        model = one_node_model(op, {}, {}, {**attrs, "shape": [64, 64]}, opset, 1, [])
        model.graph.node[0].output[0] = "noise"
        from onnx import helper

        model.graph.node.append(helper.make_node("Add", ["in0", "noise"], ["out0"]))
        model.graph.input.append(helper.make_tensor_value_info("in0", dtype or TensorProto.FLOAT, [64, 64]))
        expected, got = run_model(model, {"in0": x.astype(np.float64 if dtype else np.float32)})
    for out in expected + got:
        assert out.shape == x.shape and out.dtype == (np.float64 if dtype else np.float32)
        _moments(out, mean, std)
        assert out.min() >= low and out.max() <= high


@case("Bernoulli-15")
def _bernoulli(data: st.DataObject, op: str, opset: int) -> None:
    p = np.full((64, 64), data.draw(st.sampled_from([0.1, 0.5, 0.8])), np.float32)
    torch.manual_seed(data.draw(st.integers(0, 2**16)))
    expected, got = run_both(op, [p], {"seed": 2.0}, opset=opset)
    for out in expected + got:  # onnxruntime 1.32 draws 1 with probability 1 - p (see replica/ops/random.py)
        assert out.dtype == np.float32 and set(np.unique(out)) <= {0.0, 1.0}
        _moments(out, 1.0 - float(p[0, 0]), float(np.sqrt(p[0, 0] * (1 - p[0, 0]))))


@case("Multinomial-7")
def _multinomial(data: st.DataObject, op: str, opset: int) -> None:
    logits = np.log(np.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]], np.float32))
    torch.manual_seed(data.draw(st.integers(0, 2**16)))
    dtype = data.draw(st.sampled_from([TensorProto.INT32, TensorProto.INT64]))
    expected, got = run_both(op, [logits], {"sample_size": 4000, "dtype": dtype}, opset=opset)
    probs = np.exp(logits)
    for out in expected + got:
        assert out.shape == (2, 4000) and out.dtype == (np.int32 if dtype == TensorProto.INT32 else np.int64)
        for row in range(2):
            freq = np.bincount(out[row], minlength=3) / 4000
            assert np.all(np.abs(freq - probs[row]) <= 6 * np.sqrt(probs[row] * (1 - probs[row]) / 4000))


@case("Dropout-12")
def _dropout(data: st.DataObject, op: str, opset: int) -> None:
    x = np.random.default_rng(data.draw(st.integers(0, 2**16))).uniform(1, 3, (64, 64)).astype(np.float32)
    ratio = np.float32(data.draw(st.sampled_from([0.2, 0.5])))
    close(*run_both(op, [x], consts={"r": ratio, "t": np.array(False)}, order=["in0", "r", "t"], opset=opset))
    torch.manual_seed(data.draw(st.integers(0, 2**16)))
    expected, got = run_both(op, [x], consts={"r": ratio, "t": np.array(True)}, order=["in0", "r", "t"], outputs=2,
                             opset=opset)
    for out, mask in (expected, got):
        assert mask.dtype == np.bool_
        np.testing.assert_allclose(out[mask], x[mask] / (1 - ratio), rtol=1e-6)
        assert (out[~mask] == 0).all()
        kept = mask.mean()
        assert abs(kept - (1 - ratio)) <= 6 * np.sqrt(ratio * (1 - ratio) / mask.size)
