"""Robustness properties: the verdict layer between attack results and test outcomes.

`assert_robust` is the public API for hand-written tests; the plugin's items use the same
`RobustnessViolation` (carrying a `record.Counterexample`) so a failure reads the same
wherever it comes from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from robustcheck import metrics
from robustcheck.attacks import Attack, AttackResult
from robustcheck.errors import ClaimFailure
from robustcheck.model import Model
from robustcheck.record import NORM_LABELS, Counterexample


class RobustnessViolation(ClaimFailure):
    """A verified adversarial example inside the claimed ε. Its message is the report."""

    def __init__(self, counterexample: Counterexample, smallest: Counterexample | None = None, found: int = 1,
                 saved: Sequence[str] = ()) -> None:
        self.counterexample = counterexample
        self.smallest = smallest
        self.found = found
        c = counterexample
        lines = [f"{c.model}: {c.property} violated: sample {c.sample_index}, {c.label_change()}",
                 f"  distances: {c.distance_text()}"]
        if saved:
            lines.append("  saved: " + "  ".join(saved))
        if c.reproduce:
            lines.append(f"  reproduce: {c.reproduce}")
        if smallest is not None and smallest.sample_index != c.sample_index:
            lines.append(f"  smallest of {found} counterexamples found: sample {smallest.sample_index}, "
                         f"{NORM_LABELS.get(smallest.norm, smallest.norm)} {smallest.distance:.4g}")
        super().__init__("\n".join(lines))


def require_finite_epsilon(epsilon: float) -> float:
    """ε as a float; a non-finite or non-positive ε can never support a verdict (NaN compares false)."""
    eps = float(epsilon)
    if not math.isfinite(eps) or eps <= 0:
        raise ValueError(f"epsilon must be a positive finite number, got {epsilon!r}")
    return eps


def confidences(model: Model, x: np.ndarray) -> np.ndarray:
    """The oracle's class probabilities for `x` (`metrics.probabilities` of its logits)."""
    return metrics.probabilities(model.oracle_logits(x))


def counterexample(model: Model, result: AttackResult, i: int, *, property: str, attack: str,
                   epsilon: float | None, sample_index: int | None = None,
                   dataset_index: int | None = None) -> Counterexample:
    """Describe row `i` of `result` (which must be a verified success) as a `Counterexample`."""
    probs = confidences(model, np.stack([result.x[i], result.x_adv[i]]))
    y, adv = int(result.y[i]), int(result.adv_labels[i])
    return Counterexample(
        model=model.name, property=property, attack=attack, norm=result.norm,
        sample_index=i if sample_index is None else sample_index, dataset_index=dataset_index,
        true_label=y, adv_label=adv, target=None if result.targets is None else int(result.targets[i]),
        confidence_true=float(probs[0, y]), confidence_adv=float(probs[1, adv]),
        distances={k: float(v[i]) for k, v in result.distances.items()}, epsilon=epsilon,
    )


def assert_robust(
    model: Model,
    x: np.ndarray,
    y: np.ndarray,
    attack: Attack,
    epsilon: float,
    *,
    targets: Sequence[int] | np.ndarray | None = None,
    seed: int = 0,
) -> AttackResult:
    """Assert that `attack` finds no adversarial example within `epsilon` (in the attack's norm).

    Every candidate is verified by onnxruntime. Raises `RobustnessViolation` describing the
    counterexample with the smallest distortion; returns the attack result otherwise.
    """
    eps = require_finite_epsilon(epsilon)
    result = attack.run(model, x, y, targets=None if targets is None else np.asarray(targets), seed=seed)
    hits = np.flatnonzero(result.within(eps))
    if len(hits):
        best = int(hits[np.argmin(result.distances[result.norm][hits])])
        found = counterexample(model, result, best, property=f"robust[{attack.name}@{eps:g}]", attack=attack.name,
                               epsilon=eps)
        raise RobustnessViolation(found, found=len(hits))
    return result


def robust_accuracy(model: Model, x: np.ndarray, y: np.ndarray, attack: Attack, epsilon: float, *,
                    seed: int = 0) -> float:
    """`metrics.robust_accuracy` over all of `x`: classified correctly by the oracle and not
    flipped by `attack` within `epsilon` (only the correct rows are attacked)."""
    eps = require_finite_epsilon(epsilon)
    correct = model.predict(x) == y
    broken = np.zeros(len(x), dtype=bool)
    if correct.any():
        broken[correct] = attack.run(model, x[correct], y[correct], seed=seed).within(eps)
    return metrics.robust_accuracy(correct, broken)
