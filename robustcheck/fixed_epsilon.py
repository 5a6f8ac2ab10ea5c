"""Fixed-ε robust accuracy as the per-sample worst case over attacks (AutoAttack's convention).

Croce & Hein (ICML 2020) and RobustBench count a sample as robust at ε only when no attack of an
ensemble breaks it within ε. A `robust-accuracy` item therefore takes its check's attack first
(typically a minimal-norm ensemble `min-<norm>`, or C&W): a sample it broke within ε is broken.
The samples still standing get `AutoAttackCascade` at exactly ε in the check's norm, stage 1
off: APGD-CE, then APGD-T (targeted DLR), then Square Attack when `square` is set — the item sets
it when a gradient-masking finding of severity error fired for the model. L0 checks have no
cascade (APGD has no L0 ball). Every candidate is verified by onnxruntime within ε.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from robustcheck.attacks import AttackResult, AutoAttackCascade, attack_spec
from robustcheck.config import Check

if TYPE_CHECKING:
    from robustcheck.model_run import ModelRun

#: Norms the AutoAttack cascade has a ball for.
CASCADE_NORMS = ("linf", "l2", "l1")


@dataclass(frozen=True)
class WorstCase:
    """The check's attack run over the pool and the per-sample worst case at ε."""

    #: The check's attack over the pool (its minimal distortions, winners, record).
    result: AttackResult
    #: `result` with the rows a cascade stage broke replaced by that stage's candidate.
    combined: AttackResult
    epsilon: float
    #: Attack label → samples it broke within ε (the check's attack, then the cascade stages).
    broken_by: dict[str, int]
    #: Minimal-norm ensemble member → samples whose smallest perturbation it found.
    winners: dict[str, int]

    @property
    def broken(self) -> np.ndarray:
        """Per pool row: broken within ε by some attack."""
        return self.combined.within(self.epsilon)


def cascade_label(norm: str) -> str:
    return f"autoattack-{norm}"


def worst_case(run: ModelRun, check: Check, *, square: bool = False) -> WorstCase:
    """The per-sample worst case at the check's ε: its attack, then the cascade on the rest."""
    result = run.attack_pool(check.attack, check)
    broken = result.within(check.epsilon)
    counts = {check.attack: int(broken.sum())}
    winner = result.extras.get("winner")
    winners = {} if winner is None else dict(Counter(str(w) for w in np.asarray(winner)[result.success]))
    rest = np.flatnonzero(~broken)
    if check.norm not in CASCADE_NORMS or not len(rest):
        return WorstCase(result, result, check.epsilon, counts, winners)
    label = cascade_label(check.norm)
    params = {**run.attack_params(label), "epsilon": check.epsilon, "min_norm": False, "square": square}
    attack = attack_spec(label).make(params)
    assert isinstance(attack, AutoAttackCascade)
    key = (label, check.attack, check.epsilon, square, tuple(rest.tolist()))
    extra = run.cached_run(key, lambda seed: attack.run(run.model, run.pool.x[rest], run.pool.y[rest], seed=seed))
    hit = extra.within(check.epsilon)
    stages = np.asarray(extra.extras["broken_by"])
    for stage in attack.stage_labels():
        counts[stage] = int((stages == stage)[hit].sum())
    return WorstCase(result, merge(result, extra, rest[hit], hit), check.epsilon, counts, winners)


def merge(result: AttackResult, extra: AttackResult, rows: np.ndarray, hit: np.ndarray) -> AttackResult:
    """`result` with pool `rows` taken from `extra`'s rows `hit` (oracle-verified candidates)."""
    def put(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = a.copy()
        out[rows] = b[hit]
        return out

    return replace(result, x_adv=put(result.x_adv, extra.x_adv), success=put(result.success, extra.success),
                   adv_labels=put(result.adv_labels, extra.adv_labels),
                   distances={k: put(v, extra.distances[k]) for k, v in result.distances.items()},
                   replica_disagrees=put(result.replica_disagrees, extra.replica_disagrees))
