"""A certified radius never exceeds a verified adversarial distance.

Hypothesis draws small random networks (MLPs and CNNs with max-pooling) and samples; whatever
onnxruntime confirms as adversarial (the exact verifier's witnesses, PGD's successes, random
points) must lie farther than CROWN's radius, and no random point inside the radius may be
adversarial. The same holds on the shipped CNNs against robustcheck's attacks.
"""

from __future__ import annotations

import numpy as np
import pytest
from certify_nets import random_cnn, random_mlp
from conftest import HELDOUT, MODELS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robustcheck import metrics
from robustcheck.attacks import make_attack
from robustcheck.certify import certified_radius, certify, minimal_distance
from robustcheck.data import correctly_classified, load_dataset
from robustcheck.model import Model, load_model


def _points_in_ball(x: np.ndarray, eps: float, norm: str, n: int, rng: np.random.Generator) -> np.ndarray:
    flat = x.reshape(-1)
    if norm == "linf":
        pts = flat + rng.uniform(-eps, eps, (n, flat.size))
        pts[: n // 2] = flat + eps * rng.choice([-1.0, 1.0], (n // 2, flat.size))
    else:
        d = rng.standard_normal((n, flat.size))
        pts = flat + eps * d / np.linalg.norm(d, axis=1, keepdims=True)
    return np.clip(pts, 0, 1).reshape((n,) + x.shape).astype(np.float32)


def _random_case(tmp_path, seed: int, kind: str) -> tuple[Model, np.ndarray, np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(seed)
    path = tmp_path / f"{kind}-{seed}.onnx"
    if kind == "mlp":
        model = load_model(random_mlp(path, seed, [6, int(rng.integers(3, 8)), int(rng.integers(3, 8)), 3]))
    else:
        model = load_model(random_cnn(path, seed, channels=int(rng.integers(2, 4))))
    x = rng.uniform(0, 1, (1,) + tuple(model.input_spec.sample_shape))
    x.reshape(-1)[rng.random(x.size) < 0.3] = 0.0
    return model, x, model.predict(x.astype(np.float32)), rng


def _check_radius(model: Model, x: np.ndarray, y: np.ndarray, norm: str, radius: float, exact: bool,
                  rng: np.random.Generator) -> None:
    """Fail when anything onnxruntime confirms as adversarial lies within `radius`."""
    found: list[float] = []
    if exact:
        bracket = minimal_distance(model, x, y, norm="linf", rtol=0.01, time_limit=10)
        assert radius <= bracket.lower[0] * (1 + 1e-9) + 1e-12, f"certified {radius:g} beyond the exact minimum"
        if bracket.witnesses[0] is not None:
            assert model.predict(bracket.witnesses[0][None])[0] != y[0]
            found.append(float(metrics.distances(x, bracket.witnesses[0][None])[norm][0]))
    result = make_attack(f"pgd-{norm}", {"epsilon": float(2 * radius + 0.03), "steps": 20}).run(
        model, x.astype(np.float32), y, seed=0)
    if result.success[0]:
        found.append(float(result.distances[norm][0]))
    points = _points_in_ball(x[0], radius, norm, 400, rng)
    flipped = model.predict(points) != y[0]
    assert not flipped.any(), f"a point inside the certified radius {radius:g} is adversarial"
    wide = _points_in_ball(x[0], 4 * radius + 0.1, norm, 400, rng)
    hits = wide[model.predict(wide) != y[0]]
    if len(hits):
        found += list(metrics.distances(np.repeat(x.astype(np.float32), len(hits), axis=0), hits)[norm])
    for d in found:
        assert radius <= d * (1 + 1e-6), f"certified {radius:g} beyond a verified adversarial example at {d:g}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), kind=st.sampled_from(["mlp", "cnn"]), norm=st.sampled_from(["linf", "l2"]))
def test_certified_radius_never_exceeds_a_verified_adversarial_distance(tmp_path, seed: int, kind: str,
                                                                         norm: str) -> None:
    model, x, y, rng = _random_case(tmp_path, seed, kind)
    radius = float(certified_radius(model, x, y, norm=norm, rtol=0.05).radius[0])
    _check_radius(model, x, y, norm, radius, exact=norm == "linf" and kind == "mlp", rng=rng)


@pytest.mark.parametrize("seed", [3, 6])
def test_the_soundness_check_catches_an_inflated_radius(tmp_path, seed: int) -> None:
    # Seeds whose CROWN radius is within 1 % of the exact minimum: a certifier 10 % too generous must be caught.
    model, x, y, rng = _random_case(tmp_path, seed, "mlp")
    radius = float(certified_radius(model, x, y, norm="linf", rtol=0.01).radius[0])
    _check_radius(model, x, y, "linf", radius, exact=True, rng=rng)
    with pytest.raises(AssertionError, match="beyond"):
        _check_radius(model, x, y, "linf", 1.1 * radius, exact=True, rng=rng)


@pytest.mark.parametrize(("name", "norm", "attack"), [("certified", "linf", "cw-linf"), ("baseline", "l2", "cw-l2")])
def test_shipped_models_are_never_certified_where_an_attack_succeeds(name: str, norm: str, attack: str) -> None:
    model = load_model(MODELS / f"{name}.onnx")
    data = correctly_classified(model, load_dataset(HELDOUT, limit=40), limit=2)
    params = {"max_iterations": 300} if attack == "cw-linf" else {"binary_search_steps": 5, "max_iterations": 300}
    result = make_attack(attack, params).run(model, data.x, data.y, seed=0)
    assert result.success.any()
    for i in np.flatnonzero(result.success):
        d = float(result.distances[norm][i])
        cert = certify(model, data.x[i:i + 1], data.y[i:i + 1], norm=norm, epsilon=d)
        assert not cert.certified[0] and cert.margin_lower[0] <= 0, (name, i, d)
