"""Issue 14's goals at reduced budgets, on twins of the shipped baseline (tests/twins.py): adaptive
attacks break input-quantization and quantized twins like the float model; exact gradients show the
gap; EOT finds what single draws miss; fixed-batch graphs run on any batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from twins import build_twins

from robustcheck.attacks import PGD, CarliniWagnerL2
from robustcheck.data import correctly_classified
from robustcheck.model import Model, load_model

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = 8
#: A reduced C&W-L2 budget that still reaches every sample of the float baseline.
CW = {"binary_search_steps": 3, "max_iterations": 300, "initial_const": 1.0, "learning_rate": 0.02}


@pytest.fixture(scope="session")
def twins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_twins(tmp_path_factory.mktemp("twins"))


@pytest.fixture(scope="session")
def twin(twins, heldout):
    cache: dict[str, Model] = {}

    def get(name: str) -> Model:
        if name not in cache:
            path = ROOT / "models" / "baseline.onnx" if name == "baseline" else twins[name]
            cache[name] = load_model(path, parity_inputs=heldout.x[:16])
        return cache[name]

    return get


@pytest.fixture(scope="session")
def baseline_cw(twin, heldout):
    model = twin("baseline")
    data = correctly_classified(model, heldout, limit=SAMPLES)
    return data, CarliniWagnerL2(**CW).run(model, data.x, data.y)


def _median_l2(result) -> float:
    return float(np.median(result.distances["l2"][result.success])) if result.success.any() else np.inf


#: Median C&W-L2 distance allowed over the float baseline's at this reduced budget (8 samples):
#: coarse 3-bit steps (1/7) make the nearest adversarial input genuinely farther.
#: (The thermometer twin is measured in benchmarks/twins.py: its C&W run costs minutes of CPU.)
DISTANCE_RATIO = {"rounded": 1.10, "3bit": 1.25}


@pytest.mark.parametrize("name", list(DISTANCE_RATIO))
def test_adaptive_cw_breaks_input_quantization_and_exact_gradients_show_the_gap(twin, baseline_cw, name) -> None:
    model = twin(name)
    assert model.gradient_mode == "adaptive" and model.replica.adaptive_ops
    data, base = baseline_cw
    assert base.success.all()
    adaptive = CarliniWagnerL2(**CW).run(model, data.x, data.y)
    assert adaptive.success.all(), adaptive.success
    assert _median_l2(adaptive) <= DISTANCE_RATIO[name] * _median_l2(base)
    assert (model.predict(adaptive.x_adv) != data.y).all()
    with model.gradients("exact"):
        exact = PGD(norm="l2", epsilon=2.0, steps=10, loss="margin").run(model, data.x, data.y)
    bounded = PGD(norm="l2", epsilon=2.0, steps=10, loss="margin").run(model, data.x, data.y)
    assert exact.success.mean() < bounded.success.mean()


#: (norm, ε) pairs at which a twin's adaptive robust accuracy must match the float model's. The
#: 3-bit twin is checked at L∞ only for being no MORE robust: its rounding turns an L∞ 0.1 change of
#: a 0 or 1 pixel into a full step of 1/7, so it is genuinely weaker there (benchmarks/twins.md).
MATCHED = {"rounded": [("l2", 1.0), ("linf", 0.1)], "3bit": [("linf", 0.1)]}


@pytest.mark.parametrize("name", list(MATCHED))
def test_adaptive_robust_accuracy_is_no_better_than_the_float_models(twin, heldout, name) -> None:
    base, model = twin("baseline"), twin(name)
    data = correctly_classified(base, heldout, limit=16)
    assert (model.predict(data.x) == data.y).all()
    for norm, eps in MATCHED[name]:
        attack = PGD(norm=norm, epsilon=eps, steps=20, loss="margin")
        float_broken = int(attack.run(base, data.x, data.y, seed=0).success.sum())
        twin_broken = int(attack.run(model, data.x, data.y, seed=0).success.sum())
        assert twin_broken >= float_broken - 1, (norm, eps, float_broken, twin_broken)
        if name == "rounded":  # rounding to 1/255 changes nothing an attack needs
            assert abs(twin_broken - float_broken) <= 1, (norm, eps, float_broken, twin_broken)


@pytest.mark.parametrize("name", ["int8-qdq", "int8-qlinear", "uint8-dynamic"])
def test_quantized_replica_is_within_one_output_step(twin, heldout, name) -> None:
    model = twin(name)
    assert model.replica is not None and model.parity.passed, model.replica_reason
    x = heldout.x[:100]
    oracle, mirror = model.oracle_logits(x), model.replica_logits(x)
    step = model.parity.output_step or 1e-4 * np.abs(oracle).max()  # dynamic graphs: float outputs
    assert (np.abs(oracle - mirror) <= step * (1 + 1e-5)).mean() >= 0.999
    assert (oracle.argmax(1) == mirror.argmax(1)).all()


@pytest.mark.parametrize("name", ["int8-qlinear", "uint8-dynamic"])
def test_cw_breaks_quantized_models_like_the_float_one(twin, baseline_cw, name) -> None:
    model = twin(name)
    data, base = baseline_cw
    result = CarliniWagnerL2(**CW).run(model, data.x, data.y)
    assert result.success.all()
    assert _median_l2(result) <= 1.15 * _median_l2(base)
    assert (model.predict(result.x_adv) != data.y).all()  # onnxruntime, asked again
    if name == "uint8-dynamic":
        assert model.oracle_batch == 1 and model.replica.sample_batch == 1


@pytest.fixture()
def noise_twin(twin):
    model = twin("noise")
    assert model.randomized and model.parity.kind == "distribution" and model.parity.passed
    before = model.eot_draws
    yield model
    model.eot_draws = before


def test_eot_finds_examples_that_single_draw_attacks_miss(noise_twin, heldout) -> None:
    model = noise_twin
    data = correctly_classified(model, heldout, limit=16)
    attack = PGD(norm="l2", epsilon=1.0, steps=15, loss="margin")
    with model.gradients("exact"):  # one draw per gradient
        single = attack.run(model, data.x, data.y, seed=1)
    model.eot_draws = 10
    eot = attack.run(model, data.x, data.y, seed=1)
    assert eot.success.sum() > single.success.sum()
    assert (eot.success & ~single.success).any()
    votes = model.oracle_votes(eot.x_adv[eot.success])
    # A fresh vote of another 32+ noisy calls agrees on most (PGD keeps its deepest iterate on a
    # randomized model; one near the expected boundary can still flip back).
    assert (votes.argmax(1) != data.y[eot.success]).mean() >= 0.75


def test_eot_robust_accuracy_converges_in_the_number_of_draws(noise_twin, heldout) -> None:
    # The goal (20 → 40 draws moves robust accuracy by ≤ 2 points on 100 images,
    # benchmarks/twins.py) at a reduced budget: 10 → 20 draws, 16 images, one sample of slack.
    model = noise_twin
    data = correctly_classified(model, heldout, limit=16)
    attack = PGD(norm="l2", epsilon=2.0, steps=15, loss="margin")
    broken = {}
    for draws in (10, 20):
        model.eot_draws = draws
        broken[draws] = int(attack.run(model, data.x, data.y, seed=1).success.sum())
    assert abs(broken[10] - broken[20]) <= 1, broken


def test_a_batch_one_export_runs_on_any_batch(twin, heldout) -> None:
    model = twin("batch1")
    assert model.input_spec.fixed_batch == 1 and model.replica is not None, model.replica_reason
    x = heldout.x[:16]
    np.testing.assert_allclose(model.replica_logits(x), model.oracle_logits(x), atol=1e-4)
    xt = torch.from_numpy(x).requires_grad_(True)
    model.torch_logits(xt).sum().backward()
    assert xt.grad is not None and xt.grad.abs().sum() > 0
