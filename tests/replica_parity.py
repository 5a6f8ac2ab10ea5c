"""Running one small ONNX graph in onnxruntime and through the replica, for the parity tests,
and the table of parity cases (one per registered implementation) the tests fill."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from hypothesis import strategies as st
from onnx import helper, numpy_helper

from robustcheck.replica import build_replica

MS_DOMAIN = "com.microsoft"

Case = Callable[[st.DataObject, str, int], None]
CASES: dict[str, Case] = {}
CASE_OPSETS: dict[str, int] = {}


def case(*keys: str, opset: int | None = None) -> Callable[[Case], Case]:
    """Register a parity case for registry keys like "Clip-11" (called with data, op type, opset)."""

    def wrap(fn: Case) -> Case:
        for key in keys:
            assert key not in CASES, f"two cases for {key}"
            CASES[key] = fn
            if opset is not None:
                CASE_OPSETS[key] = opset
        return fn

    return wrap


def one_node_model(op: str, inputs: dict[str, np.ndarray], consts: dict[str, np.ndarray], attrs: dict[str, Any],
                   opset: int, outputs: int, order: list[str] | None, domain: str = "") -> onnx.ModelProto:
    """A graph of one `op` node: `inputs` are graph inputs, `consts` initializers; `order` the node's inputs
    ("" for an absent optional input). A com.microsoft node gets that domain at version 1 beside `opset`."""
    out_names = [f"out{i}" for i in range(outputs)]
    node = helper.make_node(op, order if order is not None else list(inputs) + list(consts), out_names, domain=domain,
                            **attrs)
    graph = helper.make_graph(
        [node], "one",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(x.dtype), list(x.shape))
         for n, x in inputs.items()],
        [helper.make_empty_tensor_value_info(o) for o in out_names],
        initializer=[numpy_helper.from_array(v, k) for k, v in consts.items()])
    imports = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=imports)
    model.ir_version = 8
    return model


def run_model(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Outputs of onnxruntime and of the replica. The replica takes the first input as its data
    input; the other graph inputs are bound as initializers."""
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, inputs)
    names = list(inputs)
    bound = onnx.ModelProto()
    bound.CopyFrom(model)
    for name in names[1:]:
        bound.graph.initializer.append(numpy_helper.from_array(inputs[name], name))
    replica = build_replica(bound, names[0], [o.name for o in model.graph.output])
    with torch.no_grad():
        out = replica(torch.from_numpy(np.ascontiguousarray(inputs[names[0]])))
    got = list(out) if isinstance(out, tuple) else [out]
    return expected, [g.numpy() for g in got]


def run_both(op: str, inputs: list[np.ndarray], attrs: dict[str, Any] | None = None, *,
             consts: dict[str, np.ndarray] | None = None, opset: int = 17, outputs: int = 1,
             order: list[str] | None = None, domain: str = "") -> tuple[list[np.ndarray], list[np.ndarray]]:
    """onnxruntime's and the replica's outputs for one node; `inputs` are named in0, in1, ..."""
    named = {f"in{i}": x for i, x in enumerate(inputs)}
    return run_model(one_node_model(op, named, consts or {}, attrs or {}, opset, outputs, order, domain), named)


def close(expected: list[np.ndarray], got: list[np.ndarray], rtol: float = 1e-4, atol: float = 1e-5) -> None:
    assert len(expected) == len(got)
    for e, g in zip(expected, got):
        assert e.shape == g.shape, (e.shape, g.shape)
        assert e.dtype == g.dtype, (e.dtype, g.dtype)
        if e.dtype == bool or e.dtype.kind in "iu":
            np.testing.assert_array_equal(g, e)
        else:
            np.testing.assert_allclose(g, e, rtol=rtol, atol=atol)


def arrays(shape: tuple[int, ...], low: float = -3.0, high: float = 3.0) -> st.SearchStrategy[np.ndarray]:
    return st.integers(0, 2**31 - 1).map(
        lambda s: np.random.default_rng(s).uniform(low, high, size=shape).astype(np.float32))


shapes = st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple)
