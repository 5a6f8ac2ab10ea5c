"""Diagnostics against positive and negative controls (trained networks, real exports)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from controls import NoisyInput, RoundedInput, ScaledSoftmax, export, train_mlp, trained_baseline

from robustcheck.data import correctly_classified, load_dataset
from robustcheck.diagnostics import Finding, attack_failure_indicators, diagnose
from robustcheck.model import load_model

ROOT = Path(__file__).resolve().parents[1]
TRAIN = None


def _train_split():
    global TRAIN
    if TRAIN is None:
        data = load_dataset(ROOT / "models" / "data" / "t10k-images-idx3-ubyte.gz",
                            labels=ROOT / "models" / "data" / "t10k-labels-idx1-ubyte.gz", scale=1 / 255, limit=8000)
        TRAIN = (data.x, data.y)
    return TRAIN


@pytest.fixture(scope="module")
def controls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("controls")
    x, y = _train_split()
    mlp = train_mlp(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "scaled-softmax": export(ScaledSoftmax(trained_baseline()), folder / "scaled.onnx"),
            "rounded-input": export(RoundedInput(trained_baseline()), folder / "rounded.onnx"),
            "noisy-input": export(NoisyInput(trained_baseline()), folder / "noisy.onnx"),
            "kwta": export(train_mlp(x, y, kwta_ratio=0.1), folder / "kwta.onnx"),
            "mlp": export(mlp, folder / "mlp.onnx"),
            "baseline-dynamo": export(trained_baseline(), folder / "baseline-dynamo.onnx", dynamo=True),
        }


def _diagnose(path: Path, heldout, budget: str = "smoke") -> list[Finding]:
    model = load_model(path, parity_inputs=heldout.x[:16])
    data = correctly_classified(model, heldout, limit=32)
    return diagnose(model, data.x, data.y, budget=budget)


def _errors(findings: list[Finding]) -> set[str]:
    return {f.id for f in findings if f.severity == "error"}


@pytest.mark.parametrize(("name", "expected"), [
    ("scaled-softmax", "vanishing-softmax-gradients"),
    ("rounded-input", "nondifferentiable-ops"),
    ("noisy-input", "randomized-model"),
    ("kwta", "shattered-gradients"),
])
def test_positive_controls_raise_their_finding(controls, heldout, name: str, expected: str) -> None:
    findings = _diagnose(controls[name], heldout)
    assert expected in _errors(findings), [(f.id, f.severity) for f in findings]
    finding = next(f for f in findings if f.id == expected)
    assert finding.evidence and finding.explanation and finding.remedy


def test_kwta_jumps_are_measured_and_its_selection_operators_reported(controls, heldout) -> None:
    findings = {f.id: f for f in _diagnose(controls["kwta"], heldout)}
    shattered = findings["shattered-gradients"].evidence
    # The scan's evidence: most samples keep a jump after 14 halvings, where continuous models keep ~6e-5.
    assert shattered["jump_fraction"] >= 0.5 and shattered["median_change_ratio"] > 0.5, shattered
    assert {"TopK", "GreaterOrEqual"} & set(findings["nondifferentiable-ops"].evidence["operators"])


@pytest.mark.parametrize("name", ["distilled", "distilled-softmax"])
def test_distilled_models_show_masking(shipped, correct100, name: str) -> None:
    data = correct100(name)
    errors = _errors(diagnose(shipped(name), data.x[:32], data.y[:32], budget="smoke"))
    assert {"vanishing-softmax-gradients", "weak-vs-strong"} <= errors, errors


@pytest.mark.parametrize("name", ["mlp", "baseline-dynamo"])
def test_clean_controls_raise_no_error(controls, heldout, name: str) -> None:
    findings = _diagnose(controls[name], heldout)
    assert not _errors(findings), [(f.id, f.severity, f.evidence) for f in findings if f.severity == "error"]


def test_shipped_baseline_raises_no_error(shipped, correct100) -> None:
    data = correct100("baseline")
    findings = diagnose(shipped("baseline"), data.x[:32], data.y[:32], budget="smoke")
    assert not _errors(findings), [(f.id, f.evidence) for f in findings]


def test_findings_are_plain_data(shipped, correct100) -> None:
    import dataclasses
    import json

    data = correct100("distilled-softmax")
    for finding in diagnose(shipped("distilled-softmax"), data.x[:16], data.y[:16], budget="smoke"):
        json.dumps(dataclasses.asdict(finding), allow_nan=False)
        assert finding.severity in ("error", "warning", "info")


def test_attack_failure_indicators_flag_incomplete_optimisation(shipped, correct100) -> None:
    from robustcheck.attacks import CarliniWagnerL2

    data = correct100("baseline")
    # Far too few iterations and a tiny constant: the loss is still falling when the attack stops.
    result = CarliniWagnerL2(binary_search_steps=1, max_iterations=20, initial_const=1e-3,
                             abort_early=False).run(shipped("baseline"), data.x[:16], data.y[:16])
    assert result.success_rate < 1.0
    ids = {f.id for f in attack_failure_indicators(result)}
    assert "incomplete-optimisation:cw-l2" in ids, ids
    assert np.isfinite(result.loss_trace).all()


def test_readme_lists_exactly_the_checks() -> None:
    """The README's finding table and the check table name the same ids."""
    import re

    from robustcheck.diagnostics import CHECKS
    from robustcheck.diagnostics.checks import NO_SAMPLES

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### What the gradient-masking item checks", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("| `")]
    listed = {name for line in table for name in re.findall(r"`([a-z0-9-]+)`", line.split("|")[1])}
    assert listed == {c.id for c in CHECKS} | {NO_SAMPLES.id}


def test_rules_read_like_their_criteria() -> None:
    from robustcheck.diagnostics import Rule

    beats = Rule("error", "fgsm_ce", ">", 0.1, plus="pgd_ce")
    assert beats.describe() == "error: fgsm_ce > pgd_ce + 0.1"
    assert beats.holds({"fgsm_ce": 0.6, "pgd_ce": 0.3}) and not beats.holds({"fgsm_ce": 0.4, "pgd_ce": 0.3})
    share = Rule("warning", "disagreements", ">", 0.05, times="candidates")
    assert share.holds({"disagreements": 6, "candidates": 100})
    assert not share.holds({"disagreements": 5, "candidates": 100})
    assert not Rule("error", "x", ">=", 0.5).holds({"x": float("nan")}) and not Rule("error", "x", ">=", 0.5).holds({})
    assert Rule.always("info").holds({})
