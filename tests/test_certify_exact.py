"""The exact verifier against brute force, and its verdicts against onnxruntime.

Brute force on 2-D ReLU networks: enumerate every activation pattern, solve one LP per pattern
(and per class) for the smallest margin and the smallest distance at which the class wins; the
MILP's verdicts and minimal distances must agree, and CROWN must stay below them.
"""

from __future__ import annotations

import itertools

import highspy
import numpy as np
import pytest
import torch
from certify_nets import random_mlp

from robustcheck.certify import certified_radius, minimal_distance, verify_exact
from robustcheck.certify.certifier import Certifier
from robustcheck.certify.network import AffineNode
from robustcheck.model import load_model


def _layers(model) -> list[tuple[np.ndarray, np.ndarray]]:
    """(W, b) of each Gemm of a random_mlp, float64 as the certifier sees them."""
    graph = Certifier(model).graph(np.zeros(model.input_spec.sample_shape))
    layers = []
    for node in graph.nodes:
        if isinstance(node, AffineNode):
            w = node.args[1].numpy()
            layers.append((w, node.offset.reshape(-1).numpy()))
    return layers


def _pattern_lp(layers, pattern, center, box, objective) -> float:
    """min over {x in box, activation pattern fixed} of objective(...) — an LP in x (and t)."""
    n = len(center)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    # columns: x (n), t (1), margin-helper none; pre-activations are affine in x under a pattern
    lo = np.concatenate([box[0], [0.0]])
    hi = np.concatenate([box[1], [highspy.kHighsInf]])
    h.addVars(n + 1, lo, hi)
    rows: list[tuple[np.ndarray, float, float]] = []
    a, c = np.eye(n), np.zeros(n)  # current layer value = a @ x + c  (a: (units, n))
    k = 0
    for w, b in layers[:-1]:
        za, zc = w @ a, w @ c + b
        units = len(b)
        on = pattern[k:k + units]
        k += units
        for u in range(units):
            if on[u]:
                rows.append((np.concatenate([za[u], [0.0]]), -zc[u], highspy.kHighsInf))
            else:
                rows.append((np.concatenate([za[u], [0.0]]), -highspy.kHighsInf, -zc[u]))
        a, c = za * on[:, None], zc * on
    w, b = layers[-1]
    out_a, out_c = w @ a, w @ c + b
    for coeffs, low, high in objective(out_a, out_c, rows):
        rows.append((coeffs, low, high))
    for coeffs, low, high in rows:
        idx = np.flatnonzero(coeffs).astype(np.int32)
        h.addRow(low, high, len(idx), idx, coeffs[idx])
    h.changeColCost(n, 1.0)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return np.inf
    return h.getInfo().objective_function_value


def brute_force_distance(layers, center: np.ndarray, y: int, norm: str) -> float:
    """The minimal distance (L∞ or L1) at which some class j ≠ y reaches z_j ≥ z_y, over all patterns."""
    n = len(center)
    units = sum(len(b) for _, b in layers[:-1])
    best = np.inf
    for pattern in itertools.product([0.0, 1.0], repeat=units):
        for j in range(len(layers[-1][1])):
            if j == y:
                continue

            def objective(out_a, out_c, rows, j=j):
                extra = [(np.concatenate([out_a[j] - out_a[y], [0.0]]), out_c[y] - out_c[j], highspy.kHighsInf)]
                for i in range(n):  # t ≥ |x_i − c_i| (L∞)
                    e = np.zeros(n + 1)
                    e[i], e[n] = 1.0, 1.0
                    extra.append((e, center[i], highspy.kHighsInf))
                    e = np.zeros(n + 1)
                    e[i], e[n] = -1.0, 1.0
                    extra.append((e, -center[i], highspy.kHighsInf))
                return extra

            if norm == "linf":
                best = min(best, _pattern_lp(layers, np.array(pattern), center, (np.zeros(n), np.ones(n)), objective))
            else:
                best = min(best, _l1_pattern(layers, np.array(pattern), center, y, j))
    return best


def _l1_pattern(layers, pattern, center, y, j) -> float:
    """L1 version: x = c + p − q, p, q ≥ 0, minimise Σ(p + q) (variables p, q instead of x)."""
    n = len(center)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.addVars(2 * n, np.zeros(2 * n), np.concatenate([1 - center, center]))
    a, c = np.eye(n), center.copy()  # layer value = a @ (p − q) + c
    k = 0
    for w, b in layers[:-1]:
        za, zc = w @ a, w @ c + b
        on = pattern[k:k + len(b)]
        k += len(b)
        for u in range(len(b)):
            coeffs = np.concatenate([za[u], -za[u]])
            idx = np.arange(2 * n, dtype=np.int32)
            if on[u]:
                h.addRow(-zc[u], highspy.kHighsInf, 2 * n, idx, coeffs)
            else:
                h.addRow(-highspy.kHighsInf, -zc[u], 2 * n, idx, coeffs)
        a, c = za * on[:, None], zc * on
    w, b = layers[-1]
    oa, oc = w @ a, w @ c + b
    coeffs = np.concatenate([oa[j] - oa[y], oa[y] - oa[j]])
    h.addRow(oc[y] - oc[j], highspy.kHighsInf, 2 * n, np.arange(2 * n, dtype=np.int32), coeffs)
    h.changeColsCost(2 * n, np.arange(2 * n, dtype=np.int32), np.ones(2 * n))
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return np.inf
    return h.getInfo().objective_function_value


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """2-D inputs, two hidden layers of 4 ReLUs, 3 classes: 256 activation patterns."""
    return load_model(random_mlp(tmp_path_factory.mktemp("tiny") / "tiny.onnx", seed=7, sizes=[2, 4, 4, 3]))


@pytest.mark.parametrize("norm", ["linf", "l1"])
def test_minimal_distance_matches_brute_force_on_2d_networks(tiny, norm: str) -> None:
    layers = _layers(tiny)
    rng = np.random.default_rng(11)
    xs = rng.uniform(0.1, 0.9, (6, 2))
    ys = tiny.predict(xs.astype(np.float32))
    exact = minimal_distance(tiny, xs, ys, norm=norm, rtol=1e-4, time_limit=30)
    crown = certified_radius(tiny, xs, ys, norm=norm)
    for i in range(len(xs)):
        truth = brute_force_distance(layers, xs[i], int(ys[i]), norm)
        if not np.isfinite(truth):  # no other class reachable inside the box
            assert exact.upper[i] == np.inf and crown.radius[i] <= exact.lower[i] + 1e-9
            continue
        assert exact.lower[i] <= truth * (1 + 1e-6) + 1e-9, (i, exact.lower[i], truth)
        assert exact.upper[i] >= truth * (1 - 1e-6) - 1e-9, (i, exact.upper[i], truth)
        assert exact.upper[i] <= truth * (1 + 2e-3) + 1e-6, (i, exact.upper[i], truth)
        assert crown.radius[i] <= truth * (1 + 1e-6) + 1e-9
        witness = exact.witnesses[i]
        assert witness is not None and tiny.predict(witness[None])[0] != ys[i]


def test_fixed_epsilon_verdicts_match_brute_force(tiny) -> None:
    layers = _layers(tiny)
    rng = np.random.default_rng(12)
    xs = rng.uniform(0.1, 0.9, (5, 2))
    ys = tiny.predict(xs.astype(np.float32))
    truths = [brute_force_distance(layers, xs[i], int(ys[i]), "linf") for i in range(len(xs))]
    for factor in (0.8, 1.25):
        eps = np.array([t if np.isfinite(t) else 0.5 for t in truths]) * factor
        for i in range(len(xs)):
            verdict = verify_exact(tiny, xs[i:i + 1], ys[i:i + 1], epsilon=float(eps[i]), time_limit=20).verdicts[0]
            expected = "robust" if factor < 1 or not np.isfinite(truths[i]) else "violated"
            assert verdict.status == expected, (i, factor, verdict.status)
            if verdict.status == "violated":
                assert verdict.witness is not None
                assert np.abs(verdict.witness.astype(np.float64) - xs[i]).max() <= eps[i] * (1 + 1e-6)
                assert tiny.predict(verdict.witness[None])[0] != ys[i]


def test_one_dimensional_network_against_a_dense_grid(tmp_path) -> None:
    model = load_model(random_mlp(tmp_path / "line.onnx", seed=0, sizes=[1, 6, 6, 2]))
    grid = np.linspace(0, 1, 200_001)
    graph = Certifier(model).graph(np.zeros(1))
    with torch.no_grad():
        z = graph.trace(torch.as_tensor(grid.reshape(-1, 1)))[graph.output_name].numpy()  # batch-safe MLP
    xs = np.array([[0.3], [0.6], [0.8]])
    ys = model.predict(xs.astype(np.float32))
    exact = minimal_distance(model, xs, ys, norm="linf", rtol=1e-5)
    crown = certified_radius(model, xs, ys, norm="linf")
    for i, (x0, y) in enumerate(zip(xs[:, 0], ys)):
        flips = np.flatnonzero(z.argmax(axis=1) != y)
        assert len(flips), "the grid must cross a decision boundary"
        truth = np.abs(grid[flips] - x0).min()
        assert crown.radius[i] <= exact.lower[i] + 1e-9
        assert exact.lower[i] <= truth + 1e-5 and exact.upper[i] >= truth - 1e-5, (x0, exact.lower[i], truth)


def test_unknown_when_out_of_time(tmp_path) -> None:
    model = load_model(random_mlp(tmp_path / "wide.onnx", seed=4, sizes=[8, 30, 30, 4]))
    x = np.full((1, 8), 0.5)
    y = model.predict(x.astype(np.float32))
    crown = certified_radius(model, x, y, norm="linf")
    verdict = verify_exact(model, x, y, epsilon=float(crown.radius[0]) * 3 + 0.01, time_limit=0.0).verdicts[0]
    assert verdict.status in ("unknown", "violated")
    if verdict.status == "violated":  # found before the clock was read: it must be real
        assert model.predict(verdict.witness[None])[0] != y[0]
