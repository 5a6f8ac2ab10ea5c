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
from robustcheck.figures import Figures
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
