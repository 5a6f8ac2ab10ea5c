"""The replica's backward rules: exact forward in both modes, surrogate gradients checked against
finite differences of the smooth function each rule stands for (gradient_rules.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from replica_parity import MS_DOMAIN, one_node_model

from robustcheck.replica import build_replica
from robustcheck.replica.gradient_rules import SIGN_WIDTH, STEP_WIDTH

STEP = 1e-3  # central differences of the smooth surrogates (float64)


def _replica(op: str, x: np.ndarray, attrs: dict[str, Any] | None = None, consts: dict[str, np.ndarray] | None = None,
             order: list[str] | None = None, domain: str = "", mode: str = "adaptive") -> torch.nn.Module:
    model = one_node_model(op, {"in0": x}, consts or {}, attrs or {}, 17, 1, order, domain)
    replica = build_replica(model, "in0", ["out0"])
    replica.mode = mode
    return replica


def _grad(replica: torch.nn.Module, x: np.ndarray,
          weights: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(output, d sum(weights · output) / d input) in float64."""
    xt = torch.from_numpy(x).double().requires_grad_(True)
    out = replica(xt).double()
    w = torch.ones_like(out) if weights is None else weights
    (g,) = torch.autograd.grad((out * w).sum(), xt)
    return out.detach().numpy(), g.numpy()


def _central(fn: Any, x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Central finite differences of sum(weights · fn(x)) per input element (float64)."""
    grad = np.zeros_like(x, dtype=np.float64)
    flat = grad.reshape(-1)
    for i in range(x.size):
        up, down = x.astype(np.float64).copy(), x.astype(np.float64).copy()
        up.reshape(-1)[i] += STEP
        down.reshape(-1)[i] -= STEP
        flat[i] = ((fn(up) - fn(down)) * weights).sum() / (2 * STEP)
    return grad


def _points(shape: tuple[int, ...], low: float, high: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, size=shape)


@pytest.mark.parametrize("op", ["Round", "Floor", "Ceil"])
def test_rounding_is_exact_forward_and_straight_through_backward(op: str) -> None:
    x = np.concatenate([_points((20,), -3, 3), np.array([-1.5, -0.5, 0.5, 1.5, 2.5])]).astype(np.float32)
    exact, adaptive = _replica(op, x, mode="exact"), _replica(op, x)
    out_exact, grad_exact = _grad(exact, x.astype(np.float64))
    out, grad = _grad(adaptive, x.astype(np.float64))
    np.testing.assert_array_equal(out, out_exact)  # halves to even, as onnxruntime
    np.testing.assert_array_equal(grad_exact, 0.0)
    np.testing.assert_allclose(grad, _central(lambda v: v, x, np.ones(x.shape)), atol=1e-9)


def test_sign_gradient_is_the_derivative_of_tanh() -> None:
    x = _points((30,), -2, 2, seed=1)
    out, grad = _grad(_replica("Sign", x.astype(np.float32)), x)
    np.testing.assert_array_equal(out, np.sign(x))
    np.testing.assert_allclose(grad, _central(lambda v: np.tanh(v / SIGN_WIDTH), x, np.ones(x.shape)), atol=1e-5)


@pytest.mark.parametrize("op", ["Greater", "Less", "GreaterOrEqual", "LessOrEqual"])
def test_comparison_gradients_are_sigmoid_steps_whose_width_follows_the_thresholds(op: str) -> None:
    sign = 1.0 if op.startswith("Greater") else -1.0
    x = _points((4, 1), 0, 1, seed=2)
    for thresholds, width in ((np.array([0.5]), STEP_WIDTH), ((np.arange(16) + 0.5) / 16, 1 / 16)):
        consts = {"t": thresholds.reshape(1, -1).astype(np.float64)}
        replica = _replica(op, x, consts=consts, order=["in0", "t"])
        out, grad = _grad(replica, x)
        expected = {"Greater": np.greater, "Less": np.less, "GreaterOrEqual": np.greater_equal,
                    "LessOrEqual": np.less_equal}[op](x, consts["t"])
        np.testing.assert_array_equal(out, expected.astype(np.float64))

        def smooth(v: np.ndarray, t: np.ndarray = consts["t"], w: float = width) -> np.ndarray:
            return 1 / (1 + np.exp(-sign * (v - t) / w))

        np.testing.assert_allclose(grad, _central(smooth, x, np.ones((4, len(thresholds)))), rtol=1e-4, atol=1e-7)


def test_exact_comparisons_stay_boolean_and_give_no_gradient() -> None:
    x = _points((5,), 0, 1).astype(np.float32)
    replica = _replica("Greater", x, consts={"t": np.float32(0.5)}, order=["in0", "t"], mode="exact")
    out = replica(torch.from_numpy(x).requires_grad_(True))
    assert out.dtype == torch.bool and not out.requires_grad


def test_cast_to_integers_passes_the_gradient_straight_through() -> None:
    x = _points((10,), -5, 300, seed=3)
    replica = _replica("Cast", x, {"to": TensorProto.INT32})
    out, grad = _grad(replica, x)
    np.testing.assert_array_equal(out, np.trunc(x))
    np.testing.assert_array_equal(grad, 1.0)


def test_quantize_linear_is_clipped_straight_through() -> None:
    scale, zero = np.float32(0.02), np.int8(-3)
    inside = _points((40,), -2.4, 2.4, seed=4)
    outside = np.array([-4.0, -3.0, 3.0, 5.0])
    x = np.concatenate([inside, outside])
    replica = _replica("QuantizeLinear", x.astype(np.float32), consts={"s": scale, "z": zero}, order=["in0", "s", "z"])
    out, grad = _grad(replica, x)
    expected = np.clip(np.round(x.astype(np.float32) / scale) + zero, -128, 127)
    np.testing.assert_array_equal(out, expected)

    def smooth(v: np.ndarray) -> np.ndarray:
        return np.clip(v / float(scale), -128 - float(zero), 127 - float(zero)) + float(zero)

    np.testing.assert_allclose(grad, _central(smooth, x, np.ones(x.shape)), rtol=1e-5)
    assert (grad[-4:] == 0).all() and (grad[:40] > 0).all()


def test_qlinear_conv_gradient_is_the_unrounded_requantisation() -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(0, 120, size=(1, 2, 5, 5)).astype(np.float64)
    w = rng.integers(-20, 20, size=(3, 2, 3, 3)).astype(np.int8)
    xs, ws, ys = np.float32(0.02), np.float32(0.01), np.float32(0.05)
    xz, yz = np.uint8(10), np.uint8(100)
    consts = {"xs": xs, "xz": xz, "w": w, "ws": ws, "wz": np.int8(0), "ys": ys, "yz": yz}
    order = ["in0", "xs", "xz", "w", "ws", "wz", "ys", "yz"]
    replica = _replica("QLinearConv", x.astype(np.uint8), consts=consts, order=order)
    weights = torch.from_numpy(rng.normal(size=(1, 3, 3, 3)))
    out, grad = _grad(replica, x, weights)
    multiplier = float(np.float32(xs * ws) / ys)

    def smooth(v: np.ndarray) -> np.ndarray:
        acc = F.conv2d(torch.from_numpy(v - float(xz)), torch.from_numpy(w.astype(np.float64))).numpy()
        return np.clip(acc * multiplier, -float(yz), 255 - float(yz)) + float(yz)

    assert np.abs(out - smooth(x)).max() <= 0.5 + 1e-6  # the forward is the rounded requantisation
    np.testing.assert_allclose(grad, _central(smooth, x, weights.numpy()), rtol=1e-4, atol=1e-8)
    np.testing.assert_array_equal(_grad(_replica("QLinearConv", x.astype(np.uint8), consts=consts, order=order,
                                                 mode="exact"), x, weights)[1], 0.0)


def test_qlinear_sigmoid_gradient_is_the_sigmoid_between_the_quantisers() -> None:
    x = np.arange(0, 256, 5).astype(np.float64)
    consts = {"xs": np.float32(0.05), "xz": np.uint8(128), "ys": np.float32(1 / 256), "yz": np.uint8(0)}
    replica = _replica("QLinearSigmoid", x.astype(np.uint8), consts=consts, order=["in0", "xs", "xz", "ys", "yz"],
                       domain=MS_DOMAIN)
    _, grad = _grad(replica, x)

    def smooth(v: np.ndarray) -> np.ndarray:
        return np.clip(256 / (1 + np.exp(-0.05 * (v - 128))), 0, 255)

    np.testing.assert_allclose(grad, _central(smooth, x, np.ones(x.shape)), rtol=1e-3, atol=1e-6)


def test_dynamic_quantization_is_straight_through_with_the_scale_held() -> None:
    x = _points((2, 6), -1, 3, seed=6)
    model = one_node_model("DynamicQuantizeLinear", {"in0": x.astype(np.float32)}, {}, {}, 17, 3, None)
    model.graph.node.append(helper.make_node("DequantizeLinear", ["out0", "out1", "out2"], ["deq"]))
    replica = build_replica(model, "in0", ["deq"])
    replica.mode = "adaptive"
    out, grad = _grad(replica, x)
    np.testing.assert_array_equal(grad, 1.0)  # quantize then dequantize: the identity backward
    scale = (x.max() - min(x.min(), 0)) / 255
    assert np.abs(out - x).max() <= scale / 2 + 1e-6


def test_graphs_without_rules_share_one_list_of_steps() -> None:
    x = np.zeros((2, 3), np.float32)
    plain = _replica("Relu", x)
    assert plain._adaptive_steps is plain._steps and plain.adaptive_ops == []
    rounded = _replica("Round", x)
    assert rounded._adaptive_steps is not rounded._steps and rounded.adaptive_ops == ["Round"]


def test_a_graph_with_only_steps_gets_a_zero_gradient_not_an_error(tmp_path) -> None:
    from robustcheck import load_model

    nodes = [helper.make_node("Greater", ["x", "t"], ["g"]), helper.make_node("Cast", ["g"], ["c"], to=1),
             helper.make_node("MatMul", ["c", "w"], ["y"])]
    graph = helper.make_graph(nodes, "steps", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
                              initializer=[numpy_helper.from_array(np.float32(0.5), "t"),
                                           numpy_helper.from_array(np.eye(4, 3, dtype=np.float32), "w")])
    path = tmp_path / "steps.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    model = load_model(path)
    assert model.gradient_mode == "adaptive"
    x = np.random.default_rng(0).uniform(size=(5, 4)).astype(np.float32)
    with model.gradients("exact"):
        _, grad = model.logits_and_grad(x, lambda z: z[:, 0])
    np.testing.assert_array_equal(grad, 0.0)
    _, grad = model.logits_and_grad(x, lambda z: z[:, 0])
    assert (grad[:, 0] > 0).all() and (grad[:, 1:] == 0).all()
