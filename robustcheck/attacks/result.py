"""`AttackResult`: the per-sample outcome of one attack run, plain data built once by `Attack.run`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robustcheck import metrics

#: Relative slack on ε when judging "within ε" (float32 candidates on the ball's surface).
EPSILON_SLACK = 1e-6


@dataclass(frozen=True)
class AttackResult:
    """Per-sample outcome of one attack on a batch of inputs (arrays: one row per sample).

    `success` is the oracle's verdict: its label is wrong (untargeted) or the target, the input
    is finite and in the box, and, for bounded attacks, within `epsilon` in `norm`. `x_adv` is
    the original input where the attack failed (never a zeros image) and `distances` are inf
    there. `clean_labels` are the oracle's labels of `x`.
    """

    attack: str
    norm: str
    params: dict[str, Any]
    x: np.ndarray
    y: np.ndarray
    targets: np.ndarray | None
    x_adv: np.ndarray
    success: np.ndarray
    adv_labels: np.ndarray
    clean_labels: np.ndarray
    distances: dict[str, np.ndarray]
    #: Per sample: the replica's label of the returned candidate differs from the oracle's.
    replica_disagrees: np.ndarray
    #: Attack loss per sample and recorded step (NaN where not recorded); None if not traced.
    loss_trace: np.ndarray | None
    #: Seconds for the whole run that produced these rows (a `select` keeps the run's time).
    wall_time: float
    #: The attack's kind: a `MinimalNormAttack` (True; no ε) or a `BoundedAttack` (False; `epsilon` set).
    minimal_norm: bool
    epsilon: float | None = None
    #: Per-sample extras of the attack (e.g. the final c of C&W), one row per sample.
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    #: The attack's `objective_trace` trait: `loss_trace` ≤ 0 where the replica saw success.
    objective_trace: bool = False

    def __len__(self) -> int:
        return len(self.success)

    @property
    def replica_disagreements(self) -> int:
        """How many returned candidates the replica labels differently from the oracle."""
        return int(self.replica_disagrees.sum())

    @property
    def success_rate(self) -> float:
        return float(self.success.mean()) if len(self.success) else 0.0

    def within(self, epsilon: float, norm: str | None = None) -> np.ndarray:
        """Per sample: a verified adversarial example within `epsilon` in `norm` (default: the attack's)."""
        d = self.distances[norm or self.norm]
        return self.success & (d <= epsilon * (1 + EPSILON_SLACK))

    def robust_accuracy(self, epsilon: float, norm: str | None = None) -> float:
        """`metrics.robust_accuracy` over these rows: correctly classified and not broken within ε."""
        return metrics.robust_accuracy(self.clean_labels == self.y, self.within(epsilon, norm))

    def select(self, rows: int | slice | np.ndarray | list[int]) -> AttackResult:
        """The same result restricted to `rows` (indices, a slice or a boolean mask; an int keeps
        the batch axis). Every per-sample array is selected alike."""
        index: Any = [rows] if isinstance(rows, (int, np.integer)) else rows
        if isinstance(index, list):
            index = np.asarray(index, dtype=np.int64)

        def pick(a: np.ndarray) -> np.ndarray:
            return a[index]

        return AttackResult(
            attack=self.attack, norm=self.norm, params=self.params, x=pick(self.x), y=pick(self.y),
            targets=None if self.targets is None else pick(self.targets), x_adv=pick(self.x_adv),
            success=pick(self.success), adv_labels=pick(self.adv_labels), clean_labels=pick(self.clean_labels),
            distances={k: pick(v) for k, v in self.distances.items()},
            replica_disagrees=pick(self.replica_disagrees),
            loss_trace=None if self.loss_trace is None else pick(self.loss_trace),
            wall_time=self.wall_time, minimal_norm=self.minimal_norm, epsilon=self.epsilon,
            extras={k: pick(v) for k, v in self.extras.items()}, objective_trace=self.objective_trace,
        )


def stack_traces(traces: list[np.ndarray | None]) -> np.ndarray | None:
    """Per-batch loss traces as one array, NaN-padded to the longest (None when no batch traced)."""
    present = [t for t in traces if t is not None]
    if not present:
        return None
    width = max(t.shape[1] for t in present)
    return np.concatenate([np.concatenate([t, np.full((t.shape[0], width - t.shape[1]), np.nan)], axis=1)
                           for t in present])
