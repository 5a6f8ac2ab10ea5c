"""APGD and APGD-T: the bounded attacks of AutoAttack (Croce & Hein, ICML 2020), for L∞, L2 and
L1 (L1 as in Croce & Hein, "Mind the box", ICML 2021). The iteration is in apgd_core.py.

- `APGD` ascends the cross-entropy ("ce", AutoAttack's APGD-CE; stable log-softmax) or the
  Difference of Logits Ratio ("dlr"), with `restarts` random starts.
- `APGDTargeted` (APGD-T) ascends the targeted DLR loss −(z_y − z_t)/(z_π1 − (z_π3 + z_π4)/2)
  towards each of the `target_classes` classes the clean input's logits rank highest after the
  true one, one run (of `restarts` starts) per target; any label other than y is a success.

DLR is a ratio of logit differences and every step is a sign, an L2-normalised or an L1-sparse
direction, so neither depends on the scale of the logits; cross-entropy's gradient does, and on a
defensively distilled model it underflows to zero (APGD-CE then finds nothing, APGD-T does).
With fewer than three classes DLR's scale is undefined; the logit margin is ascended instead.
A targeted `run` (explicit `targets`) aims at those targets with the targeted CE or DLR loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from robustcheck.attacks.apgd_core import ConfirmFn, DoneFn, LossFn, run_apgd
from robustcheck.attacks.apgd_core import random_start as draw_start
from robustcheck.attacks.base import BatchOutput, BoundedAttack
from robustcheck.attacks.fmn import torch_inputs
from robustcheck.attacks.losses import cross_entropy
from robustcheck.attacks.params import MAX_ITERATIONS, param
from robustcheck.attacks.refine import is_adversarial
from robustcheck.metrics import dlr, margin
from robustcheck.model import Model


def dlr_towards(logits: torch.Tensor, labels: torch.Tensor, aim: torch.Tensor) -> torch.Tensor:
    """APGD-T's targeted DLR (maximise): −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2)."""
    own = logits.gather(1, labels[:, None]).squeeze(1)
    other = logits.gather(1, aim[:, None]).squeeze(1)
    if logits.shape[1] < 4:
        return other - own
    ordered = logits.sort(dim=1, descending=True).values
    scale = ordered[:, 0] - (ordered[:, 2] + ordered[:, 3]) / 2
    return (other - own) / scale.clamp_min(1e-12)


def misclassified(labels: torch.Tensor, targets: torch.Tensor | None) -> DoneFn:
    """The success test of a run: label ≠ y, or = target when targeted (for the given rows)."""
    def done(logits: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        pred = logits.argmax(dim=1)
        return pred == targets[rows] if targets is not None else pred != labels[rows]
    return done


def oracle_confirms(model: Model, labels: torch.Tensor, targets: torch.Tensor | None) -> ConfirmFn:
    """onnxruntime's verdict on candidates for rows of `labels` (label ≠ y, or = target)."""
    y = labels.numpy()
    t = None if targets is None else targets.numpy()

    def confirm(cand: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return is_adversarial(model, cand, y[rows], None if t is None else t[rows])
    return confirm


@dataclass(kw_only=True)
class _APGDBase(BoundedAttack):
    """What APGD and APGD-T share: the ball's norm, the budget and the restarts."""

    stochastic = True

    norm: str = param("linf", choices=("linf", "l2", "l1"), doc="the ball's norm")  # type: ignore[misc]
    steps: int = param(100, low=1, high=MAX_ITERATIONS, doc="N: iterations per run")
    restarts: int = param(1, low=1, high=1000, doc="random starts per run; a success ends a sample")

    def _attack(self, model: Model, x0: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None,
                loss_fn: LossFn, generator: torch.Generator, rows: torch.Tensor,
                best: torch.Tensor, found: torch.Tensor, traces: list[np.ndarray]) -> None:
        """Restarted runs on `rows` (not yet broken), writing successes into `best`/`found`."""
        lo, hi = model.input_range
        for _ in range(self.restarts):
            todo = rows[~found[rows]]
            if not len(todo):
                return
            eps = torch.full((len(todo),), self.epsilon, dtype=x0.dtype)
            start = draw_start(x0[todo], eps, self.norm, lo, hi, generator)
            sub_targets = None if targets is None else targets[todo]
            def sub_loss(z: torch.Tensor, r: torch.Tensor, t: torch.Tensor = todo) -> torch.Tensor:
                return loss_fn(z, t[r])

            out = run_apgd(model, x0[todo], eps, self.norm, self.steps, sub_loss,
                           misclassified(labels[todo], sub_targets), start,
                           oracle_confirms(model, labels[todo], sub_targets))
            best[todo[out.success]] = out.x_adv[out.success]
            found[todo[out.success]] = True
            full = np.full((len(x0), out.trace.shape[1]), np.nan)
            full[todo.numpy()] = out.trace
            traces.append(full)


@dataclass(kw_only=True)
class APGD(_APGDBase):
    """APGD with the cross-entropy or DLR loss (AutoAttack's APGD-CE / APGD-DLR)."""

    name = "apgd"

    loss: str = param("ce", choices=("ce", "dlr"), doc="ce: cross-entropy (APGD-CE); dlr: Difference of Logits Ratio")

    def run_batch(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                  generator: torch.Generator) -> BatchOutput:
        x0, labels, tgt = torch_inputs(x, y, targets)
        classes = model.num_classes

        def loss_fn(logits: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            t = None if tgt is None else tgt[rows]
            if self.loss == "ce":
                return cross_entropy(logits, labels[rows], t)
            return dlr(logits, labels[rows], t) if classes >= 3 else -margin(logits, labels[rows], t)

        best, found = x0.clone(), torch.zeros(len(x0), dtype=torch.bool)
        traces: list[np.ndarray] = []
        self._attack(model, x0, labels, tgt, loss_fn, generator, torch.arange(len(x0)), best, found, traces)
        return BatchOutput(best.numpy().astype(x.dtype, copy=False), loss_trace=_last(traces))


@dataclass(kw_only=True)
class APGDTargeted(_APGDBase):
    """APGD-T: APGD on the targeted DLR loss towards each of the top `target_classes` classes."""

    name = "apgd-t"

    target_classes: int = param(9, low=1, high=1000, doc="runner-up classes aimed at, one run each")

    def run_batch(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                  generator: torch.Generator) -> BatchOutput:
        x0, labels, tgt = torch_inputs(x, y, targets)
        best, found = x0.clone(), torch.zeros(len(x0), dtype=torch.bool)
        traces: list[np.ndarray] = []
        rows = torch.arange(len(x0))
        if tgt is not None:  # explicit targets: the targeted DLR towards them, success = the target
            aimed = tgt

            def towards_target(z: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
                return dlr_towards(z, labels[r], aimed[r])

            self._attack(model, x0, labels, tgt, towards_target, generator, rows, best, found, traces)
            return BatchOutput(best.numpy().astype(x.dtype, copy=False), loss_trace=_last(traces))
        with torch.no_grad():
            others = other_classes_by_score(model.torch_logits(x0), labels)
        for rank in range(min(self.target_classes, others.shape[1])):
            def towards_rank(z: torch.Tensor, r: torch.Tensor, aim: torch.Tensor = others[:, rank]) -> torch.Tensor:
                return dlr_towards(z, labels[r], aim[r])

            self._attack(model, x0, labels, None, towards_rank, generator, rows, best, found, traces)
        return BatchOutput(best.numpy().astype(x.dtype, copy=False), loss_trace=_last(traces))


def other_classes_by_score(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(N, classes − 1): each row's classes other than its label, highest score first (APGD-T's targets)."""
    ranked = scores.argsort(dim=1, descending=True)
    return ranked[ranked != labels[:, None]].view(len(scores), -1)


def _last(traces: list[np.ndarray]) -> np.ndarray | None:
    """The loss trace of the last run each sample took part in."""
    if not traces:
        return None
    width = max(t.shape[1] for t in traces)
    out = np.full((traces[0].shape[0], width), np.nan)
    for t in traces:
        seen = ~np.isnan(t).all(axis=1)
        out[seen] = np.nan
        out[seen, : t.shape[1]] = t[seen]
    return out
