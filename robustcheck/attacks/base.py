"""What every attack shares: the result record, oracle verification, distances, batching.

An attack subclass implements `_run_batch` on the torch replica and returns candidate
adversarial inputs. `Attack.run` does the rest once, for all attacks: batching, seeding,
timing, and the oracle verification that alone decides success (onnxruntime label wrong or
equal to the target, input finite and inside the box, and within ε for bounded attacks).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from robustcheck.model import Model

NORMS = ("l0", "l1", "l2", "linf")
# Oracle verification tolerates this much float error on the box edge (tanh round trips).
BOX_TOLERANCE = 1e-6


@dataclass
class BatchOutput:
    """What `_run_batch` hands back for one batch (all arrays have the batch's length)."""

    x_adv: np.ndarray
    # Per-sample trace of the attack loss as the attack-failure indicators need it
    # (rows: samples; columns: recorded steps of the final run; NaN where not recorded).
    loss_trace: np.ndarray | None = None
    # Anything else the attack wants in the result's `extras` (e.g. the final c per sample).
    extras: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class AttackResult:
    """Per-sample outcome of one attack on one batch of inputs. Plain data."""

    attack: str
    norm: str
    params: dict[str, Any]
    x: np.ndarray
    y: np.ndarray
    targets: np.ndarray | None
    x_adv: np.ndarray
    success: np.ndarray
    adv_labels: np.ndarray
    distances: dict[str, np.ndarray]
    loss_trace: np.ndarray | None
    replica_disagreements: int
    wall_time: float
    epsilon: float | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def success_rate(self) -> float:
        return float(self.success.mean()) if len(self.success) else 0.0

    def within(self, epsilon: float, norm: str | None = None) -> np.ndarray:
        """Per sample: a verified adversarial example within `epsilon` in `norm` (default: the attack's)."""
        d = self.distances[norm or self.norm]
        return self.success & (d <= epsilon * (1 + 1e-6))

    def robust_accuracy(self, epsilon: float, norm: str | None = None) -> float:
        """Fraction of samples with no verified adversarial example within `epsilon`."""
        return float(1.0 - self.within(epsilon, norm).mean()) if len(self.success) else 1.0


def distances(x: np.ndarray, x_adv: np.ndarray) -> dict[str, np.ndarray]:
    """L0 (changed values), L1, L2, L∞ per sample, in the model's own units and layout."""
    delta = (x_adv.astype(np.float64) - x.astype(np.float64)).reshape(len(x), -1)
    return {
        "l0": (np.abs(delta) > 0).sum(axis=1).astype(np.float64),
        "l1": np.abs(delta).sum(axis=1),
        "l2": np.sqrt((delta ** 2).sum(axis=1)),
        "linf": np.abs(delta).max(axis=1) if delta.shape[1] else np.zeros(len(x)),
    }


def is_adversarial(labels: np.ndarray, y: np.ndarray, targets: np.ndarray | None) -> np.ndarray:
    return labels == targets if targets is not None else labels != y


class Attack(ABC):
    """Base of all attacks. Hyper-parameters are constructor arguments; call `run`."""

    name: ClassVar[str]
    norm: ClassVar[str]
    needs_replica: ClassVar[bool] = True

    def __init__(self, *, batch_size: int = 100) -> None:
        self.batch_size = batch_size

    @property
    def epsilon(self) -> float | None:
        """The attack's distortion bound, for bounded attacks; None for minimal-norm attacks."""
        return getattr(self, "_epsilon", None)

    def params(self) -> dict[str, Any]:
        """Hyper-parameters as plain data (every public constructor argument)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_") or k == "_epsilon"}

    def run(
        self,
        model: Model,
        x: np.ndarray,
        y: np.ndarray,
        *,
        targets: np.ndarray | None = None,
        seed: int = 0,
    ) -> AttackResult:
        """Attack `x` (model layout and range) with true labels `y`; targeted when `targets` is given."""
        if self.needs_replica:
            model.require_replica()
        x = np.asarray(x, dtype=model.input_spec.dtype)
        y = np.asarray(y, dtype=np.int64)
        if targets is not None:
            targets = np.asarray(targets, dtype=np.int64)
            if targets.shape != y.shape:
                raise ValueError(f"targets has shape {targets.shape}; expected {y.shape}")
        start = time.perf_counter()
        generator = torch.Generator().manual_seed(seed)
        candidates, traces, extras_parts = [], [], []
        for lo in range(0, len(x), self.batch_size):
            hi = lo + self.batch_size
            out = self._run_batch(model, x[lo:hi], y[lo:hi], None if targets is None else targets[lo:hi], generator)
            candidates.append(out.x_adv.astype(x.dtype, copy=False))
            traces.append(out.loss_trace)
            extras_parts.append(out.extras)
        x_cand = np.concatenate(candidates) if candidates else x.copy()
        result = self._verify(model, x, y, targets, x_cand)
        result.loss_trace = _stack_traces(traces)
        result.extras = {k: np.concatenate([e[k] for e in extras_parts]) for k in (extras_parts[0] if extras_parts else {})}
        result.wall_time = time.perf_counter() - start
        return result

    def _verify(
        self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None, x_cand: np.ndarray
    ) -> AttackResult:
        """Let onnxruntime judge every candidate; failures fall back to the original input."""
        labels = model.predict(x_cand) if len(x_cand) else np.zeros(0, np.int64)
        ok = is_adversarial(labels, y, targets) & model.in_box(x_cand, BOX_TOLERANCE)
        dist = distances(x, x_cand)
        if self.epsilon is not None:
            ok &= dist[self.norm] <= self.epsilon * (1 + 1e-6)
        disagreements = 0
        if model.replica is not None and len(x_cand):
            replica_labels = model.replica_logits(x_cand).argmax(axis=1)
            disagreements = int((replica_labels != labels).sum())
        x_adv = np.where(ok.reshape((-1,) + (1,) * (x.ndim - 1)), x_cand, x)
        final = distances(x, x_adv)
        for key in final:
            final[key] = np.where(ok, final[key], np.inf)
        adv_labels = np.where(ok, labels, model.predict(x) if len(x) else labels)
        return AttackResult(
            attack=self.name, norm=self.norm, params=self.params(), x=x, y=y, targets=targets,
            x_adv=x_adv, success=ok, adv_labels=adv_labels, distances=final, loss_trace=None,
            replica_disagreements=disagreements, wall_time=0.0, epsilon=self.epsilon,
        )

    @abstractmethod
    def _run_batch(
        self,
        model: Model,
        x: np.ndarray,
        y: np.ndarray,
        targets: np.ndarray | None,
        generator: torch.Generator,
    ) -> BatchOutput:
        """Return candidate adversarial inputs for one batch (the base verifies them)."""


def _stack_traces(traces: list[np.ndarray | None]) -> np.ndarray | None:
    present = [t for t in traces if t is not None]
    if not present:
        return None
    width = max(t.shape[1] for t in present)
    rows = []
    for t in traces:
        if t is None:
            continue
        pad = np.full((t.shape[0], width - t.shape[1]), np.nan)
        rows.append(np.concatenate([t, pad], axis=1))
    return np.concatenate(rows)
