"""What an item's evaluation hands back, and the words its outcome is reported in.

`Evaluation` is built once by an item's `evaluate`; its `failure` (a `ClaimFailure`) is
raised after the evaluation is kept, so a failed claim is recorded with all its figures. A
gate is met only by finite numbers; anything that is neither a failed claim nor robustcheck's
own error becomes one internal-error line (the traceback only under -v / --tb=long).
Import-light: pytest and the record types.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

from robustcheck.errors import ClaimFailure, RobustcheckError, first_line
from robustcheck.figures import Figures, RobustAccuracyFigures
from robustcheck.record import AttackRecord, BaselineDelta, Counterexample, Finding


class GateFailure(ClaimFailure):
    """A gate (threshold) was not met; the message is the report."""


@dataclass
class Evaluation:
    """What an item measured, built once; `failure` is raised after it is recorded."""

    figures: Figures
    attacks: list[AttackRecord] = field(default_factory=list)
    counterexamples: list[Counterexample] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    baseline: list[BaselineDelta] = field(default_factory=list)
    failure: ClaimFailure | None = None
    warnings: list[str] = field(default_factory=list)
    # Set by a part of a sample-split model when its figures cannot decide the claim alone: the
    # item is reported skipped with this message, and `python -m robustcheck merge` decides.
    partial: str | None = None


def gate_met(value: float, minimum: float, epsilon: float | None = None) -> bool:
    """A figure meets its gate: never when the figure, the gate or the claimed ε is not finite."""
    numbers = [value, minimum] + ([] if epsilon is None else [epsilon])
    return all(math.isfinite(v) for v in numbers) and value >= minimum


def internal_error_line(exc: BaseException) -> str:
    """The one line an unexpected exception becomes (the traceback only under -v / --tb=long)."""
    detail = f": {first_line(exc)}" if str(exc).strip() else ""
    return (f"internal error in robustcheck: {type(exc).__name__}{detail} "
            "(run with --tb=long or -v for the traceback)")


def outcome_message(exc: BaseException | None) -> str:
    """An item's message: the failure's own report, a robustcheck error's line, or one internal-error line."""
    if exc is None:
        return ""
    if isinstance(exc, (ClaimFailure, RobustcheckError)):
        return str(exc)
    if isinstance(exc, pytest.skip.Exception):
        return str(exc.msg)
    return internal_error_line(exc)


def clean_accuracy_failure(model: str, accuracy: float, rows: int, gate: float) -> str:
    return f"{model}: clean accuracy {accuracy:.2%} on {rows} samples is below the gate {gate:.2%}"


def robust_accuracy_failure(model: str, figures: RobustAccuracyFigures, smallest: Counterexample | None,
                            saved: tuple[str, str] | None, reproduce: str) -> str:
    """The report of a robust-accuracy gate that failed (items and the merge of sharded runs)."""
    under = figures.attack + (" then the AutoAttack cascade" if len(figures.broken_by) > 1 else "")
    by = "".join(f", {k} {v}" for k, v in figures.broken_by.items()) if len(figures.broken_by) > 1 else ""
    lines = [f"{model}: robust accuracy {figures.robust_accuracy:.1%} under {under} at "
             f"{figures.norm.upper()} epsilon {figures.epsilon:g} is below the gate {figures.min:.1%} "
             f"({figures.broken} of {figures.samples} samples broken{by})"]
    if smallest is not None:
        lines.append(f"  smallest counterexample: {smallest.describe()}")
        if saved is not None:
            lines.append(f"  saved: {saved[0]}  {saved[1]}")
    lines.append(f"  reproduce: {reproduce}")
    return "\n".join(lines)


def partial_message(share: str) -> str:
    return (f"part {share} of this model's samples (sharded run): the verdict is decided when the shards are "
            "merged (python -m robustcheck merge)")
