"""What every attack shares: declared traits and hyper-parameters, batching, oracle verification.

An attack is a dataclass (`@dataclass(kw_only=True)`) whose fields are its hyper-parameters,
declared with `params.param` (default, range, choices, doc) and validated on construction. Its
traits are class-level data:

- `name`: the attack's family name ("cw-l2", "pgd", …), what profiles key budgets by;
- `norm`: "l0" | "l1" | "l2" | "linf", the norm its distances and ε are measured in (a field
  where the attack supports several, e.g. PGD);
- `needs_replica`: it differentiates the torch replica (False: it queries the oracle only);
- `stochastic`: its result depends on the seed (a property where a field decides it);
- `objective_trace`: its `loss_trace` is an objective that is ≤ 0 exactly where the replica
  finds the sample adversarial (the C&W family's f), which the silent-success indicator reads;
- the kind, `minimal_norm`, set by the base class every attack derives from: `MinimalNormAttack`
  searches for the smallest perturbation; `BoundedAttack` searches inside an ε-ball (`epsilon`
  is a validated field) and its successes must lie within ε.

The result of a run (`AttackResult`) carries `minimal_norm` and `objective_trace`, so code that
reads results (diagnostics, records) never guesses an attack's kind from its name.

A subclass implements `run_batch` on one batch and returns candidates in a `BatchOutput`;
`Attack.run` does the rest once for all attacks: batching, seeding, timing, and the oracle
verification that alone decides success (onnxruntime label wrong or equal to the target, input
finite and inside the box, and within ε for bounded attacks).
"""

from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from robustcheck import metrics
from robustcheck.attacks.params import check_value, declared, param
from robustcheck.attacks.refine import polish as polish_candidates
from robustcheck.attacks.result import EPSILON_SLACK, AttackResult, stack_traces
from robustcheck.model import Model
from robustcheck.randomized_oracle import overshoot

#: The one box tolerance: oracle verification (and the dataset's range check) allow this much
#: float error on the box edge (tanh round trips).
BOX_TOLERANCE = 1e-6


@dataclass
class BatchOutput:
    """What `run_batch` hands back for one batch (all arrays have the batch's length)."""

    x_adv: np.ndarray
    # Per-sample trace of the attack loss as the attack-failure indicators need it
    # (rows: samples; columns: recorded steps of the final run; NaN where not recorded).
    loss_trace: np.ndarray | None = None
    # Anything else the attack wants in the result's `extras` (e.g. the final c per sample).
    extras: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(kw_only=True)
class Attack(ABC):
    """Base of all attacks: declared hyper-parameters (fields) and traits (class data); call `run`."""

    name: ClassVar[str]
    norm: ClassVar[str]
    needs_replica: ClassVar[bool] = True
    stochastic: ClassVar[bool] = False
    objective_trace: ClassVar[bool] = False
    #: Set by `MinimalNormAttack` (True) and `BoundedAttack` (False); every attack is one of them.
    minimal_norm: ClassVar[bool]

    batch_size: int = param(100, low=1, high=100_000, doc="samples attacked together")

    def __post_init__(self) -> None:
        cls = type(self).__name__
        if not isinstance(getattr(self, "name", None), str):
            raise TypeError(f"{cls} must set the trait `name` (the attack's family name, a string)")
        for key, (kind, optional, spec) in declared(type(self)).items():
            setattr(self, key, check_value(self.name, key, getattr(self, key), kind, optional, spec))
        if getattr(self, "norm", None) not in metrics.NORMS:
            raise TypeError(f"{cls} must set the trait `norm` to one of {', '.join(metrics.NORMS)}")
        if not isinstance(self, (MinimalNormAttack, BoundedAttack)):
            raise TypeError(f"{cls} must derive from MinimalNormAttack or BoundedAttack (its kind)")

    def params(self) -> dict[str, Any]:
        """Hyper-parameters as plain data, in declaration order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

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
            out = self.run_batch(model, x[lo:hi], y[lo:hi], None if targets is None else targets[lo:hi], generator)
            candidates.append(out.x_adv.astype(x.dtype, copy=False))
            traces.append(out.loss_trace)
            extras_parts.append(out.extras)
        # Per-channel bounds (inputs in normalised space): candidates are clipped into them; a no-op otherwise.
        x_cand = model.project_to_box(np.concatenate(candidates)) if candidates else x.copy()
        x_cand = self.polish(model, x, y, targets, x_cand)
        loss_trace = stack_traces(traces)
        extras = {k: np.concatenate([e[k] for e in extras_parts]) for k in (extras_parts[0] if extras_parts else {})}
        return self._verify(model, x, y, targets, x_cand, loss_trace, extras, start)

    def polish(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
               x_cand: np.ndarray) -> np.ndarray:
        """Candidates after the attack's forward-only polish (none by default; see MinimalNormAttack)."""
        return x_cand

    def _verify(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None, x_cand: np.ndarray,
                loss_trace: np.ndarray | None, extras: dict[str, np.ndarray], start: float) -> AttackResult:
        """Let onnxruntime judge every candidate; failures fall back to the original input.

        A randomized model is judged by majority vote, and a rejected candidate is pushed
        further along its perturbation first (randomized_oracle.py).
        """
        epsilon = self.epsilon if isinstance(self, BoundedAttack) else None

        def judge(rows: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            found = model.predict(cand) if len(cand) else np.zeros(0, np.int64)
            accepted = (found == targets[rows] if targets is not None else found != y[rows]) \
                & model.in_box(cand, BOX_TOLERANCE)
            if epsilon is not None:
                accepted &= metrics.distances(x[rows], cand)[self.norm] <= epsilon * (1 + EPSILON_SLACK)
            return found, accepted

        labels, ok = judge(np.arange(len(x_cand)), x_cand)
        if model.randomized and len(x_cand):
            x_cand, labels, ok = overshoot(x, x_cand, labels, ok, model.input_range, judge)
        disagrees = np.zeros(len(x_cand), dtype=bool)
        if model.replica is not None and len(x_cand):
            disagrees = model.replica_logits(x_cand).argmax(axis=1) != labels
        x_adv = np.where(ok.reshape((-1,) + (1,) * (x.ndim - 1)), x_cand, x)
        final = {k: np.where(ok, v, np.inf) for k, v in metrics.distances(x, x_adv).items()}
        clean_labels = model.predict(x) if len(x) else labels
        return AttackResult(
            attack=self.name, norm=self.norm, params=self.params(), x=x, y=y, targets=targets,
            x_adv=x_adv, success=ok, adv_labels=np.where(ok, labels, clean_labels), clean_labels=clean_labels,
            distances=final, replica_disagrees=disagrees, loss_trace=loss_trace,
            wall_time=time.perf_counter() - start, minimal_norm=self.minimal_norm, epsilon=epsilon, extras=extras,
            objective_trace=self.objective_trace,
        )

    @abstractmethod
    def run_batch(
        self,
        model: Model,
        x: np.ndarray,
        y: np.ndarray,
        targets: np.ndarray | None,
        generator: torch.Generator,
    ) -> BatchOutput:
        """Candidate adversarial inputs for one batch (the base verifies them).

        `x` is in the model's layout, dtype and range; `y` the true labels; `targets` the target
        classes of a targeted run (else None). Draw randomness from `generator` only, so that a
        seed reproduces the run. Gradients: `model.torch_logits(x_tensor)`; oracle logits:
        `model.oracle_logits(x_numpy)`.
        """


@dataclass(kw_only=True)
class MinimalNormAttack(Attack):
    """An attack that searches for the smallest adversarial perturbation in its norm (C&W, EAD, …).

    Its candidates are polished by `refine.polish` (bisections towards x judged by onnxruntime:
    on the segment x → x_adv, after a threshold path for L1 and L0) before verification, unless
    `refine_steps` is 0 or the attack asks for a confidence margin κ > 0 (which the polish would
    give away).
    """

    refine_steps: int = param(16, low=0, high=64, doc="bisection halvings on the segment x → x_adv (0: none)")

    def polish(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
               x_cand: np.ndarray) -> np.ndarray:
        if self.refine_steps == 0 or float(getattr(self, "confidence", 0.0)) > 0 or not len(x):
            return x_cand
        return polish_candidates(model, x, x_cand, y, targets, self.norm, self.refine_steps)[0]

    minimal_norm: ClassVar[bool] = True


@dataclass(kw_only=True)
class BoundedAttack(Attack):
    """An attack that searches inside the ε-ball of its norm; only successes within ε count."""

    minimal_norm: ClassVar[bool] = False

    epsilon: float = param(0.3, low=0.0, low_open=True, doc="radius of the ball, in the model's input units")
