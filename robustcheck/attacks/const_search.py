"""The outer loop C&W-L2 and EAD share: the binary search over c, early abort, the best example.

Carlini & Wagner (S&P 2017, §V) minimise ‖δ‖ + c·f(x+δ) and pick c per sample by binary search:
c starts at `initial_const`; after a search step a sample that succeeded takes c as its upper
bound, one that failed as its lower bound; the next c is the midpoint once an upper bound exists,
else ten times larger. EAD (Chen et al., AAAI 2018) uses the same search. Within a search step
the reference codes abort early when the loss, checked every 10% of the iterations, stops
falling; the per-sample descents of C&W-L∞/L0 apply the same rule row by row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from robustcheck.attacks.objectives import ObjectiveAttack
from robustcheck.attacks.params import param

#: Upper bound of c meaning "no success yet", as in the reference implementation.
UPPER_UNSET = 1e10
#: A loss above this fraction of the previous check's counts as no longer improving.
STALL_RATIO = 0.9999


def check_interval(max_iterations: int) -> int:
    """Iterations between two early-abort checks: 10% of the budget (at least 1)."""
    return max(1, max_iterations // 10)


@dataclass(kw_only=True)
class ConstSearchAttack(ObjectiveAttack):
    """A C&W-family attack that searches c by bisection: C&W-L2 and EAD."""

    binary_search_steps: int = param(9, low=1, high=100, doc="search steps over c")
    confidence: float = param(0.0, low=0.0, doc="κ: the margin by which the adversarial class must win")


class ConstSearch:
    """Per-sample binary search over c (see the module docstring)."""

    def __init__(self, n: int, initial_const: float) -> None:
        self.const = torch.full((n,), float(initial_const))
        self.lower = torch.zeros(n)
        self.upper = torch.full((n,), UPPER_UNSET)

    def update(self, found: torch.Tensor) -> None:
        """After a search step: `found` marks the samples that succeeded with their current c."""
        self.upper = torch.where(found, torch.minimum(self.upper, self.const), self.upper)
        self.lower = torch.where(found, self.lower, torch.maximum(self.lower, self.const))
        self.const = torch.where(self.upper < UPPER_UNSET, (self.lower + self.upper) / 2, self.const * 10)

    def final(self) -> torch.Tensor:
        """Per sample: the smallest c that succeeded, else the next c the search would try."""
        return torch.where(self.upper < UPPER_UNSET, self.upper, self.const)


class AbortEarly:
    """The reference's early abort for one search step over the whole batch."""

    def __init__(self, max_iterations: int, enabled: bool) -> None:
        self.every = check_interval(max_iterations)
        self.enabled = enabled
        self.previous = math.inf

    def due(self, iteration: int) -> bool:
        """A check happens at this iteration (from iteration 0, as the reference)."""
        return self.enabled and iteration % self.every == 0

    def stalled(self, loss: float) -> bool:
        """At a check: True when `loss` no longer improves on the previous check's."""
        if loss > self.previous * STALL_RATIO:
            return True
        self.previous = loss
        return False


class BestExample:
    """Per sample, the successful candidate with the lowest score so far (the original input until then)."""

    def __init__(self, x0: torch.Tensor) -> None:
        self.x = x0.clone()
        self.score = torch.full((len(x0),), math.inf)

    def update(self, ok: torch.Tensor, score: torch.Tensor, candidate: torch.Tensor) -> None:
        better = ok & (score < self.score)
        if bool(better.any()):
            self.score[better] = score[better]
            self.x[better] = candidate[better]

    def update_rows(self, rows: torch.Tensor, ok_score: torch.Tensor, candidate: torch.Tensor) -> None:
        """`update` for the successful `rows` only (`ok_score` and `candidate` have one row each)."""
        better = ok_score < self.score[rows]
        self.x[rows[better]] = candidate[better]
        self.score[rows[better]] = ok_score[better]
