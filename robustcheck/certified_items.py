"""The certification side of the plugin's items: `certified-accuracy[<norm>@<ε>]` and the
proven / violated / unrefuted verdicts that `robust[...]` items add per sample.

Both read CROWN's certificates through `ModelRun.certificate` (certify/), the attacks through
`ModelRun.attack_pool`, and refuse to report when the two contradict (certify/verdicts.py).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from robustcheck.certify.verdicts import bracket_curve, make_brackets, sample_statuses
from robustcheck.config import Check
from robustcheck.errors import ConfigError
from robustcheck.evaluation import Evaluation, GateFailure, gate_met
from robustcheck.figures import CertifiedAccuracyFigures, RobustPropertyFigures
from robustcheck.items import RobustcheckItem
from robustcheck.model_run import ModelRun

#: Pool samples whose certified radius is searched by bisection for the brackets (the first ones).
BRACKET_SAMPLES = 8


def with_sample_verdicts(run: ModelRun, check: Check, figures: RobustPropertyFigures,
                         found_index: int | None = None) -> RobustPropertyFigures:
    """`figures` with per pool sample proven / violated / unrefuted (untargeted claims only; CROWN
    runs when the model's `certify` is on). `found_index`: a pool sample Hypothesis broke."""
    if check.targeted:
        return figures
    violated = run.attack_pool(check.attack, check, whole=True).within(check.epsilon).copy()
    if found_index is not None:
        violated[found_index] = True
    proven, how = None, "off"
    if run.config.certify:
        from robustcheck.certify import NotVerifiable

        try:
            proven, how = run.certificate(check.norm, check.epsilon).certified, "crown"
        except NotVerifiable as exc:
            how = f"not verifiable: {exc}"
    status = sample_statuses(proven, violated, f"{run.name} {check.id}")
    return replace(figures, certification=how, proven=None if proven is None else status.count("proven"),
                   violated=status.count("violated"), unrefuted=status.count("unrefuted"), sample_status=status)


class CertifiedAccuracyItem(RobustcheckItem):
    """At least `min` of the eval rows are proven robust within ε by CROWN (misclassified rows
    count as not robust); brackets [certified radius, attack distance] for the first pool samples."""

    kind = "certified-accuracy"

    def evaluate(self, run: ModelRun) -> Evaluation:
        from robustcheck import metrics
        from robustcheck.certify import certified_radius

        check = self.check
        if check.min is None:
            raise ConfigError(f"{check.id}: a certified-accuracy check needs 'min'")
        where = f"{run.name} {check.id}"
        cert = run.certificate(check.norm, check.epsilon)  # NotVerifiable names the operators
        result = run.attack_pool(check.attack, check, whole=True)  # the bracket attack alone, no cascade
        violated = result.within(check.epsilon)
        status = sample_statuses(cert.certified, violated, where)
        proven = np.zeros(len(run.eval_set), dtype=bool)
        proven[run.eval_correct] = cert.certified
        accuracy = metrics.robust_accuracy(run.eval_correct, ~proven)
        broken = np.zeros(len(run.eval_set), dtype=bool)
        broken[run.eval_correct] = violated
        empirical = metrics.robust_accuracy(run.eval_correct, broken)
        n = min(BRACKET_SAMPLES, len(run.pool))
        attack = np.where(result.success[:n], result.distances[result.norm][:n], np.inf)
        # Capped at the attack's distance: a radius proven there contradicts the attack (make_brackets).
        radii = certified_radius(run.model, run.pool.x[:n], run.pool.y[:n], norm=check.norm, upper=attack, rtol=0.05)
        brackets = make_brackets(np.arange(n), run.pool.index[:n], radii.radius, attack, where)
        finite = [b.attack for b in brackets if b.attack is not None]
        ratios = [b.ratio for b in brackets if b.ratio is not None]
        figures = CertifiedAccuracyFigures(
            attack=check.attack, norm=check.norm, epsilon=check.epsilon, targeted=False, method=cert.method,
            certified_accuracy=accuracy, min=check.min, samples=len(run.eval_set),
            proven=status.count("proven"), violated=status.count("violated"), unrefuted=status.count("unrefuted"),
            empirical_accuracy=empirical, brackets=brackets,
            bracket_curve=bracket_curve(brackets, check.epsilon),
            median_certified=float(np.median(radii.radius)) if n else None,
            median_attack=float(np.median(finite)) if finite else None,
            median_ratio=float(np.median(ratios)) if ratios else None)
        failure = None
        if not gate_met(accuracy, check.min, check.epsilon):
            failure = GateFailure(
                f"{run.name}: certified accuracy {accuracy:.1%} at {check.norm.upper()} epsilon {check.epsilon:g} "
                f"is below the gate {check.min:.1%} ({figures.proven} proven, {figures.violated} violated by "
                f"{check.attack}, {figures.unrefuted} unrefuted of {len(run.pool)} correctly classified)\n"
                f"  reproduce: {self.reproduce()}")
        return Evaluation(figures, attacks=[run.attack_record(check.attack, result)], failure=failure)
