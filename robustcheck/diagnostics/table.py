"""The shape of a diagnostic check: what it measures, how it is graded, what it says.

A `DiagnosticCheck` is one row of the table in `checks.py`: an id, a measuring function
(returns a `Measured`, or None when the check does not apply to this model), grading `Rule`s
(the first that holds gives the severity; none holding means no finding), and the title,
explanation and remedy texts (`str.format` templates over the measured values).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from robustcheck.record import Finding, Severity

Op = Literal[">", ">=", "<", "<=", "always"]
_OPS: dict[str, Callable[[Any, Any], bool]] = {">": operator.gt, ">=": operator.ge, "<": operator.lt,
                                               "<=": operator.le}


@dataclass(frozen=True)
class Rule:
    """`metric op threshold` (or `metric op other + threshold`, or `metric op threshold × other`).

    The comparison is written exactly as stated, so a rule reads like the paper's criterion
    and ties fall the way the words say ("FGSM beats PGD by more than 0.1": fgsm > pgd + 0.1).
    """

    severity: Severity
    metric: str = ""
    op: Op = "always"
    threshold: float = 0.0
    plus: str | None = None
    times: str | None = None

    @classmethod
    def always(cls, severity: Severity) -> Rule:
        return cls(severity)

    def holds(self, values: Mapping[str, Any]) -> bool:
        if self.op == "always":
            return True
        value = values.get(self.metric)
        if value is None or not math.isfinite(value):
            return False
        bound = self.threshold
        if self.plus is not None:
            bound = values[self.plus] + self.threshold
        if self.times is not None:
            bound = self.threshold * values[self.times]
        return _OPS[self.op](value, bound)

    def describe(self) -> str:
        if self.op == "always":
            return f"{self.severity}: always"
        bound = f"{self.threshold:g}"
        if self.plus is not None:
            bound = f"{self.plus} {'+' if self.threshold >= 0 else '-'} {abs(self.threshold):g}"
        if self.times is not None:
            bound = f"{self.threshold:g} × {self.times}"
        return f"{self.severity}: {self.metric} {self.op} {bound}"


@dataclass
class Measured:
    """A check's measurement: the evidence shown, values only the rules read, title parts, samples."""

    evidence: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    text: dict[str, str] = field(default_factory=dict)
    samples: Sequence[int] = ()

    def values(self) -> dict[str, Any]:
        return {**self.evidence, **self.metrics}


@dataclass(frozen=True)
class DiagnosticCheck:
    """One diagnostic: the single place its id, measurement, thresholds and texts are written."""

    id: str
    measure: Callable[..., Measured | None]
    rules: tuple[Rule, ...]
    title: str
    explanation: str | Mapping[str, str]  # a mapping gives one text per severity
    remedy: str
    #: Needs the torch replica's gradients (skipped, with a `no-replica` finding, without one).
    needs_replica: bool = False
    #: Findings that make this check meaningless (e.g. random outputs read as jumps).
    skip_if: tuple[str, ...] = ()
    #: Measured on each attack result given to `diagnose` (`measure(result)` instead of
    #: `measure(context)`); the finding id gets ":<attack label>".
    per_attack: bool = False

    def grade(self, measured: Measured | None, suffix: str = "") -> Finding | None:
        """The finding this measurement gives, or None (not applicable, or no rule holds)."""
        if measured is None:
            return None
        values = measured.values()
        severity = next((r.severity for r in self.rules if r.holds(values)), None)
        if severity is None:
            return None
        words = {**values, **measured.text}
        explanation = self.explanation if isinstance(self.explanation, str) else self.explanation[severity]
        return Finding(id=self.id + suffix, severity=severity, title=self.title.format(**words),
                       evidence=dict(measured.evidence), explanation=explanation.format(**words),
                       remedy=self.remedy.format(**words), samples=[int(s) for s in measured.samples])
