"""CROWN's bounds hold where they must and are exact where they can be.

- 1,000 random points of the region (and its extreme points) keep every node of every
  supported operator inside its [lower, upper] bounds, for L∞, L2 and L1 balls ∩ the box;
- ε = 0 gives the clean margin; a network without ReLUs gives the analytic optimum;
- patches mode equals dense rows under the same relaxations.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from certify_nets import OP_CASES, Builder, op_case, random_cnn
from torch.func import vmap

from robustcheck.certify import patches
from robustcheck.certify.alpha import alpha_lower_bounds
from robustcheck.certify.certifier import Certifier, spec_rows
from robustcheck.certify.crown import compute_bounds, lower_bounds
from robustcheck.model import load_model

EPSILON = {"linf": 0.12, "l2": 0.35, "l1": 0.9}


@pytest.fixture(scope="module")
def case_model(tmp_path_factory):
    cache: dict[str, object] = {}

    def get(name: str):
        if name not in cache:
            cache[name] = load_model(op_case(name, tmp_path_factory.mktemp("ops") / f"{name}.onnx"))
        return cache[name]

    return get


def region_points(center: np.ndarray, eps: float, norm: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """n points of {‖x − center‖ ≤ eps} ∩ [0, 1]: interior draws, the surface, and box vertices."""
    d = center.size
    if norm == "linf":
        pts = center + rng.uniform(-eps, eps, (n, d))
        pts[: n // 4] = center + eps * rng.choice([-1.0, 1.0], (n // 4, d))  # vertices
    elif norm == "l2":
        direction = rng.standard_normal((n, d))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        radius = eps * rng.uniform(0, 1, (n, 1)) ** (1 / d)
        radius[: n // 4] = eps  # the sphere
        pts = center + direction * radius
    else:
        direction = rng.laplace(size=(n, d))
        direction /= np.abs(direction).sum(axis=1, keepdims=True)
        radius = eps * rng.uniform(0, 1, (n, 1)) ** (1 / d)
        radius[: n // 4] = eps
        pts = center + direction * radius
        pts[: min(n // 8, 2 * d)] = center  # the vertices ±eps·e_i
        for k in range(min(n // 8, 2 * d)):
            pts[k, k % d] += eps if k < d else -eps
    return np.clip(pts, 0.0, 1.0)  # clipping towards an in-box center stays inside the ball


def _center(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    c = rng.uniform(0, 1, shape)
    c.reshape(-1)[:: 3] = 0.0  # pixels on the box's edge, as in MNIST
    return c


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
@pytest.mark.parametrize("case", sorted(OP_CASES))
def test_random_points_stay_within_bounds(case_model, case: str, norm: str) -> None:
    model = case_model(case)
    rng = np.random.default_rng(len(case))
    certifier = Certifier(model)
    center = _center(model.input_spec.sample_shape, rng)
    graph = certifier.graph(center)
    bounds = compute_bounds(graph, certifier.region(center, norm, EPSILON[norm]))
    pts = region_points(center.reshape(-1), EPSILON[norm], norm, 1000, rng)
    batch = torch.as_tensor(pts.reshape((len(pts),) + graph.input_shape))
    with torch.no_grad():
        values = vmap(graph.trace)(batch)
    for name, v in values.items():
        low, high = bounds.lower[name], bounds.upper[name]
        tol = 1e-9 * (1 + v.abs())
        assert (v >= low - tol).all(), f"{case}: node {name} below its lower bound"
        assert (v <= high + tol).all(), f"{case}: node {name} above its upper bound"
    unstable = bounds.unstable_count(graph)
    y = int(graph.forward(torch.as_tensor(center[None])).argmax())
    rows = spec_rows(graph, y)
    logits = values[graph.output_name].reshape(len(pts), -1)
    margins = logits[:, [y]] - logits
    others = [j for j in range(rows.shape[0] + 1) if j != y]
    with torch.no_grad():
        crown = lower_bounds(graph, bounds, graph.output_name, rows)
    alpha = alpha_lower_bounds(graph, bounds, rows, steps=5)
    assert (alpha >= crown - 1e-9).all()
    for bound in (crown, alpha):
        assert (margins[:, others].min(dim=0).values >= bound - 1e-9).all(), case
    if case.startswith(("gemm", "conv", "maxpool")):
        assert unstable > 0, f"{case}: the test region should leave ReLUs unstable"


@pytest.mark.parametrize("case", ["gemm-relu", "maxpool", "conv-stride-pad-dilation-groups", "batchnorm"])
def test_epsilon_zero_gives_the_clean_margin(case_model, case: str) -> None:
    model = case_model(case)
    certifier = Certifier(model)
    x = _center(model.input_spec.sample_shape, np.random.default_rng(1))
    y = int(model.predict(x[None].astype(np.float32))[0])
    with torch.no_grad():
        z = certifier.graph(x).forward(torch.as_tensor(x[None])).reshape(-1).numpy()
    clean = z[y] - np.delete(z, y).max()
    for norm in ("linf", "l2", "l1"):
        assert certifier.bound(x, y, norm, 0.0).margin_lower == pytest.approx(clean, abs=1e-9)


def test_linear_network_gives_the_analytic_optimum(tmp_path) -> None:
    b = Builder((6,), seed=3)
    b.gemm(5)
    b.op("Mul", [b.x, b.const(np.float32([1.0, -2.0, 0.5, 3.0, -1.0]))], (1, 5))
    b.gemm(3)
    model = load_model(b.save(tmp_path / "linear.onnx"))
    certifier = Certifier(model)
    x = np.full(6, 0.5)
    graph = certifier.graph(x)
    eye = torch.eye(6, dtype=torch.float64).reshape(6, 1, 6)
    with torch.no_grad():
        zero = graph.forward(torch.zeros(1, 6, dtype=torch.float64)).reshape(-1)
        jac = torch.stack([graph.forward(e) - zero for e in eye]).reshape(6, -1).numpy()  # (in, out)
    y = int(model.predict(x[None].astype(np.float32))[0])
    for norm, eps in (("linf", 0.3), ("l2", 0.2), ("l1", 0.25)):
        bound = certifier.bound(x, y, norm, eps)
        for j in range(3):
            if j == y:
                continue
            c = jac[:, y] - jac[:, j]
            out = graph.forward(torch.as_tensor(x[None])).reshape(-1)
            clean = float(out[y] - out[j])
            # the box [0, 1] is not active: every ball stays inside it around 0.5
            dual = {"linf": np.abs(c).sum() * eps, "l2": np.linalg.norm(c) * eps, "l1": np.abs(c).max() * eps}[norm]
            assert bound.class_lower[j] == pytest.approx(clean - dual, rel=1e-9, abs=1e-9), (norm, j)


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_patches_equal_dense_rows(tmp_path, norm: str) -> None:
    model = load_model(random_cnn(tmp_path / "cnn.onnx", seed=5))
    certifier = Certifier(model)
    x = _center(model.input_spec.sample_shape, np.random.default_rng(2))
    graph = certifier.graph(x)
    bounds = compute_bounds(graph, certifier.region(x, norm, EPSILON[norm]))
    assert graph.patchable and all(len(graph.shapes[n]) == 4 for n in graph.patchable)
    gen = torch.Generator().manual_seed(0)
    for name in sorted(graph.patchable):
        shape = graph.shapes[name]
        numel = int(np.prod(shape))
        index = torch.randperm(numel, generator=gen)[:20]
        sign = torch.where(torch.rand(len(index), generator=gen) > 0.5, 1.0, -1.0).to(torch.float64)
        rows = torch.zeros(len(index), numel, dtype=torch.float64)
        rows[torch.arange(len(index)), index] = sign
        with torch.no_grad():
            dense = lower_bounds(graph, bounds, name, rows.reshape((len(index),) + shape))
            patched = patches.lower_bounds(graph, bounds, name, index, sign)
        torch.testing.assert_close(patched, dense, rtol=1e-10, atol=1e-10)
