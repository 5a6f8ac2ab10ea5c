"""Robustness properties: the verdict layer between attack results and test outcomes.

`assert_robust` is the public API for hand-written tests; the plugin's items use the same
`RobustnessViolation` so a failure reads the same wherever it comes from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from robustcheck.attacks import Attack, AttackResult
from robustcheck.metrics import robust_accuracy as robust_fraction
from robustcheck.model import Model


@dataclass(frozen=True)
class ViolationDetail:
    """One verified counterexample, in plain numbers."""

    model: str
    property: str
    sample_index: int
    true_label: int
    adv_label: int
    confidence_true: float
    confidence_adv: float
    distances: dict[str, float]
    epsilon: float | None
    norm: str
    target: int | None = None
    saved: tuple[str, ...] = ()
    reproduce: str | None = None

    def lines(self) -> list[str]:
        d = self.distances
        target = "" if self.target is None else f" (target {self.target})"
        out = [
            f"{self.model}: {self.property} violated: sample {self.sample_index}, "
            f"label {self.true_label} ({self.confidence_true:.1%}) -> {self.adv_label} ({self.confidence_adv:.1%}){target}",
            f"  distances: L0 {d['l0']:.0f}  L1 {d['l1']:.4g}  L2 {d['l2']:.4g}  Linf {d['linf']:.4g}"
            + ("" if self.epsilon is None else f"  (epsilon {self.epsilon:g} in {self.norm.upper()})"),
        ]
        if self.saved:
            out.append("  saved: " + "  ".join(self.saved))
        if self.reproduce:
            out.append(f"  reproduce: {self.reproduce}")
        return out


class RobustnessViolation(AssertionError):
    """A verified adversarial example inside the claimed ε. Its message is the report."""

    def __init__(self, detail: ViolationDetail, smallest: ViolationDetail | None = None, found: int = 1) -> None:
        self.detail = detail
        self.smallest = smallest
        self.found = found
        lines = detail.lines()
        if smallest is not None and smallest.sample_index != detail.sample_index:
            lines.append(f"  smallest of {found} counterexamples found: sample {smallest.sample_index}, "
                         f"L{smallest.norm.removeprefix('l')} {smallest.distances[smallest.norm]:.4g}")
        super().__init__("\n".join(lines))


def confidences(model: Model, x: np.ndarray) -> np.ndarray:
    """Oracle softmax probabilities (float64, computed stably from the logits)."""
    z = model.oracle_logits(x).astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def violation_detail(model: Model, result: AttackResult, i: int, *, property: str, epsilon: float | None,
                     sample_index: int | None = None) -> ViolationDetail:
    """Describe sample `i` of `result` (which must be a verified success) for a failure message."""
    probs = confidences(model, np.stack([result.x[i], result.x_adv[i]]))
    y, adv = int(result.y[i]), int(result.adv_labels[i])
    return ViolationDetail(
        model=model.name, property=property, sample_index=i if sample_index is None else sample_index,
        true_label=y, adv_label=adv, confidence_true=float(probs[0, y]), confidence_adv=float(probs[1, adv]),
        distances={k: float(v[i]) for k, v in result.distances.items()}, epsilon=epsilon, norm=result.norm,
        target=None if result.targets is None else int(result.targets[i]),
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
    result = attack.run(model, x, y, targets=None if targets is None else np.asarray(targets), seed=seed)
    hits = np.flatnonzero(result.within(epsilon))
    if len(hits):
        best = int(hits[np.argmin(result.distances[result.norm][hits])])
        detail = violation_detail(model, result, best, property=f"robust[{attack.name}@{epsilon:g}]", epsilon=epsilon)
        raise RobustnessViolation(detail, found=len(hits))
    return result


def robust_accuracy(model: Model, x: np.ndarray, y: np.ndarray, attack: Attack, epsilon: float, *,
                    seed: int = 0) -> float:
    """`metrics.robust_accuracy` over all of `x`: classified correctly by the oracle and not
    flipped by `attack` within `epsilon` (only the correct rows are attacked)."""
    correct = model.predict(x) == y
    broken = np.zeros(len(x), dtype=bool)
    if correct.any():
        broken[correct] = attack.run(model, x[correct], y[correct], seed=seed).within(epsilon)
    return robust_fraction(correct, broken)
