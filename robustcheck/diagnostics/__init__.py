"""Gradient-masking and attack-failure diagnostics: say when a "robust" verdict may be false comfort.

`diagnose` runs the checks of `checks.CHECKS` on correctly classified samples and returns
`Finding`s (`robustcheck.record.Finding`), each with a stable id, a severity, the measured
evidence, an explanation and a remedy. The package:

- `checks.py`: the table — each check once: id, measuring function, thresholds, texts;
- `table.py`: what a check is (`DiagnosticCheck`, `Rule`, `Measured`);
- `measurements.py`: the measuring functions; `probes.py`: the probe attacks and gradients
  several checks share, run once per call; `loss_surface.py`: the discontinuity scan.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from robustcheck.attacks import AttackResult
from robustcheck.diagnostics.checks import CHECKS, NO_SAMPLES
from robustcheck.diagnostics.probes import Context
from robustcheck.diagnostics.table import DiagnosticCheck, Measured, Rule
from robustcheck.model import Model
from robustcheck.profiles import PROFILES, DiagnosticsBudget
from robustcheck.record import Finding, severity_rank

__all__ = ["CHECKS", "DiagnosticCheck", "Finding", "Measured", "Rule", "attack_failure_indicators", "diagnose"]


def diagnose(
    model: Model,
    x: np.ndarray,
    y: np.ndarray,
    *,
    results: Sequence[AttackResult] = (),
    budget: DiagnosticsBudget | str = "ci",
    seed: int = 0,
) -> list[Finding]:
    """Run every check on correctly classified samples `x`, `y`; reuse attack `results` where possible.

    `budget` is a `DiagnosticsBudget` or the name of a profile (smoke, ci, thorough) whose budget to use.
    """
    if isinstance(budget, str):
        if budget not in PROFILES:
            raise ValueError(f"budget must be a DiagnosticsBudget or one of {', '.join(PROFILES)}, got {budget!r}")
        budget = PROFILES[budget].diagnostics
    x, y = np.asarray(x)[: budget.samples], np.asarray(y)[: budget.samples]
    if not len(x):
        return [f for f in [NO_SAMPLES.grade(Measured({}))] if f is not None]
    ctx = Context(model, x, y, results, budget, seed)
    findings: list[Finding] = []
    for check in CHECKS:
        if check.per_attack or (check.needs_replica and model.replica is None):
            continue
        if any(f.id in check.skip_if for f in findings):
            continue
        finding = check.grade(check.measure(ctx))
        if finding is not None:
            findings.append(finding)
    for result in results:
        findings += attack_failure_indicators(result)
    unique: dict[str, Finding] = {}
    for f in findings:
        unique.setdefault(f.id, f)
    return sorted(unique.values(), key=lambda f: (severity_rank(f.severity), f.id))


def attack_failure_indicators(result: AttackResult) -> list[Finding]:
    """Pintor et al.'s indicators of attack failure on one attack run (they read its loss trace)."""
    label = result.attack + (f"@{result.epsilon:g}" if result.epsilon is not None else "")
    out = []
    for check in CHECKS:
        if check.per_attack:
            finding = check.grade(check.measure(result), suffix=f":{label}")
            if finding is not None:
                out.append(finding)
    return out
