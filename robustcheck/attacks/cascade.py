"""Fixed-ε verdicts as AutoAttack gives them: the per-sample worst case over a cascade of attacks.

Croce & Hein (ICML 2020) define robust accuracy at ε as the share of samples that no attack of an
ensemble breaks within ε, and run the attacks one after the other on the samples still standing.
`AutoAttackCascade` does that at exactly ε in the attack's norm:

1. `min-<norm>`: the minimal-norm ensemble (`ensemble.MinimalNorm`); a sample it breaks at a
   distance ≤ ε is broken (a caller that already holds that run passes it as `prior`);
2. `apgd-ce`: APGD on the cross-entropy (one run; AutoAttack's first attack);
3. `apgd-t`: APGD-T, the targeted DLR loss towards the top `target_classes` classes;
4. `square`: Square Attack (Andriushchenko et al., ECCV 2020; oracle queries only), when
   `square` is set — the gate sets it when a gradient-masking finding fired — and the norm is L∞
   (robustcheck's Square Attack is the L∞ one).

`extras["broken_by"]` names the stage that broke each sample ("" where none did) and
`extras["winner"]` the ensemble member for stage 1. Every stage's candidates are verified by
onnxruntime within ε before they count, and the base class verifies the final ones again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from robustcheck.attacks.apgd import APGD, APGDTargeted
from robustcheck.attacks.base import Attack, BatchOutput, BoundedAttack
from robustcheck.attacks.blackbox import SquareAttack
from robustcheck.attacks.ensemble import MinimalNorm
from robustcheck.attacks.params import MAX_ITERATIONS, param
from robustcheck.attacks.refine import is_adversarial
from robustcheck.attacks.result import EPSILON_SLACK
from robustcheck.metrics import distances
from robustcheck.model import Model

STAGES = ("min-norm", "apgd-ce", "apgd-t", "square")


@dataclass
class StageOutcome:
    """The cascade's per-sample state: best candidate, who broke it, and the ensemble's winner."""

    x_adv: np.ndarray
    broken_by: np.ndarray
    winner: np.ndarray


@dataclass(kw_only=True)
class AutoAttackCascade(BoundedAttack):
    """Minimal-norm ensemble within ε → APGD-CE → APGD-T → (Square); see the module docstring."""

    name = "autoattack"
    stochastic = True

    norm: str = param("linf", choices=("linf", "l2", "l1"), doc="the ball's norm")  # type: ignore[misc]
    min_norm_steps: int = param(200, low=1, high=MAX_ITERATIONS, doc="gradient steps per ensemble member")
    steps: int = param(100, low=1, high=MAX_ITERATIONS, doc="APGD iterations per run")
    target_classes: int = param(9, low=1, high=1000, doc="APGD-T: runner-up classes aimed at")
    square: bool = param(False, doc="finish with Square Attack (L∞ only), as after a gradient-masking finding")
    square_queries: int = param(5000, low=1, high=MAX_ITERATIONS, doc="Square Attack's queries per sample")
    min_norm: bool = param(True, doc="stage 1: the minimal-norm ensemble (off when the caller ran it or another "
                                     "attack already)")

    def stage_labels(self) -> list[str]:
        """The stages this cascade runs, in order, by the names `broken_by` uses."""
        first = [f"min-{self.norm}"] if self.min_norm else []
        return first + ["apgd-ce", "apgd-t"] + (["square"] if self.square and self.norm == "linf" else [])

    def run_batch(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                  generator: torch.Generator) -> BatchOutput:
        out = self.cascade(model, x, y, targets, generator, prior=None)
        return BatchOutput(out.x_adv, extras={"broken_by": out.broken_by, "winner": out.winner})

    def cascade(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                generator: torch.Generator, prior: tuple[np.ndarray, np.ndarray] | None) -> StageOutcome:
        """Run the stages on the samples still standing. `prior` = (candidates, ensemble winners)
        of a minimal-norm run of this norm on the same rows replaces stage 1."""
        state = StageOutcome(x.copy(), np.full(len(x), "", dtype=object), np.full(len(x), "", dtype=object))
        for label in self.stage_labels():
            todo = np.flatnonzero(state.broken_by == "")
            if not len(todo):
                break
            sub_t = None if targets is None else targets[todo]
            winners = None
            if label.startswith("min-"):
                if prior is not None:
                    cand, winners = prior[0][todo], prior[1][todo]
                else:
                    run = MinimalNorm(norm=self.norm, steps=self.min_norm_steps)
                    done = run.run_batch(model, x[todo], y[todo], sub_t, generator)
                    cand, winners = done.x_adv, done.extras["winner"]
            else:
                cand = self._stage(label).run_batch(model, x[todo], y[todo], sub_t, generator).x_adv
            cand = cand.astype(x.dtype, copy=False)
            hit = self._within(model, x[todo], cand, y[todo], sub_t)
            rows = todo[hit]
            state.x_adv[rows] = cand[hit]
            state.broken_by[rows] = label
            if winners is not None:
                state.winner[rows] = np.asarray(winners, dtype=object)[hit]
        return StageOutcome(state.x_adv, state.broken_by.astype(str), state.winner.astype(str))

    def _stage(self, label: str) -> Attack:
        if label == "apgd-ce":
            return APGD(norm=self.norm, epsilon=self.epsilon, steps=self.steps, loss="ce")
        if label == "apgd-t":
            return APGDTargeted(norm=self.norm, epsilon=self.epsilon, steps=self.steps,
                                target_classes=self.target_classes)
        return SquareAttack(epsilon=self.epsilon, queries=self.square_queries)

    def _within(self, model: Model, x: np.ndarray, cand: np.ndarray, y: np.ndarray,
                targets: np.ndarray | None) -> np.ndarray:
        """Per row: the oracle calls `cand` adversarial, it is in the box and within ε."""
        if not len(x):
            return np.zeros(0, dtype=bool)
        close = distances(x, cand)[self.norm] <= self.epsilon * (1 + EPSILON_SLACK)
        return close & model.in_box(cand, 1e-6) & is_adversarial(model, cand, y, targets)
