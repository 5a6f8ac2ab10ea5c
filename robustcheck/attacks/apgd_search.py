"""Minimal-norm APGD: a per-sample search over ε with APGD-DLR as the oracle of "breakable at ε".

The bounded APGD (Croce & Hein, ICML 2020) answers "is there an adversarial example within ε?";
searching ε per sample turns it into a minimal-norm attack, the construction that leads L∞ on
AttackBench (Cinà et al., "AttackBench: Evaluating Gradient-based Attacks for Adversarial
Examples", 2024). Per sample the search keeps a bracket [low, up]: `up` is the distance of the
best verified adversarial example so far (or the largest norm the box allows), `low` the
largest ε at which APGD failed. Each trial runs APGD-DLR (one random start, `steps` iterations)
at ε = max((low + up)/2, (1 − shrink)·up); a success is polished on the segment to x by
onnxruntime (`refine.refine_segment`) and becomes the new `up`, a failure the new `low`.

`shrink` bounds how far below the best distance a trial goes for rows that start from a
verified example: an ensemble that already holds a near-minimal example passes its distances and
a small `shrink`, so every trial tests a few percent below it. Rows without one start from the
box's largest norm and bisect (shrink 0.5), as a standalone run does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from robustcheck.attacks.apgd import dlr_towards, misclassified, oracle_confirms, other_classes_by_score
from robustcheck.attacks.apgd_core import random_start, run_apgd
from robustcheck.attacks.base import BatchOutput, MinimalNormAttack
from robustcheck.attacks.fmn import largest_norm, torch_inputs
from robustcheck.attacks.params import MAX_ITERATIONS, param
from robustcheck.attacks.refine import refine_segment
from robustcheck.metrics import distances, dlr, margin
from robustcheck.model import Model


@dataclass(kw_only=True)
class APGDMinimal(MinimalNormAttack):
    """APGD-DLR inside a per-sample search over ε (see the module docstring)."""

    name = "apgd-min"
    stochastic = True

    norm: str = param("linf", choices=("linf", "l2", "l1"), doc="the norm minimised")  # type: ignore[misc]
    steps: int = param(100, low=1, high=MAX_ITERATIONS, doc="APGD iterations per trial ε")
    search_steps: int = param(10, low=1, high=100, doc="trials of ε per sample")
    shrink: float = param(0.1, low=0.0, high=1.0, low_open=True, high_open=True,
                          doc="a trial from a verified start tests at least (1 − shrink) × its distance")
    target_classes: int = param(0, low=0, high=100, doc="untargeted runs: search towards each of the k "
                                "highest-scoring other classes in turn (APGD-T's DLR) instead (0: untargeted DLR)")

    def run_batch(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                  generator: torch.Generator) -> BatchOutput:
        lo, hi = model.input_range
        x0 = torch.from_numpy(np.ascontiguousarray(x))
        upper = largest_norm(x0.double(), lo, hi, self.norm).numpy()
        best, _ = self.search(model, x, y, targets, generator, x.copy(), upper, np.zeros(len(x), dtype=bool))
        return BatchOutput(best)

    def search(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
               generator: torch.Generator, best: np.ndarray, up: np.ndarray, found: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """(best examples, found) after the search from the bracket [0, up]; rows with `found` hold a
        verified adversarial example at distance `up` in `best`."""
        if targets is not None or self.target_classes == 0 or not len(x):
            return self._search(model, x, y, targets, generator, best, up, found)
        # Untargeted DLR follows the runner-up class; the nearest boundary is often another one. Each
        # target gets its own bracket below the best distance so far, and any target's success counts.
        up = up.astype(np.float64).copy()
        others = other_classes_by_score(torch.from_numpy(model.oracle_logits(x)), torch.from_numpy(y)).numpy()
        for rank in range(min(self.target_classes, others.shape[1])):
            cand, ok = self._search(model, x, y, others[:, rank], generator, best, up, found)
            d = np.where(ok, distances(x, cand)[self.norm], np.inf)
            take = d < up
            best = np.where(take.reshape((-1,) + (1,) * (x.ndim - 1)), cand, best)
            up, found = np.where(take, d, up), found | ok
        return best, found

    def _search(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                generator: torch.Generator, best: np.ndarray, up: np.ndarray, found: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = model.input_range
        x0, labels, tgt = torch_inputs(x, y, targets)
        best, up, found = best.copy(), up.astype(np.float64).copy(), found.copy()
        # Rows without a verified start search from the box's largest norm: plain bisection there.
        shrink = np.where(found, self.shrink, 0.5)
        low = np.zeros(len(x))
        classes = model.num_classes
        for _ in range(self.search_steps):
            eps_np = np.maximum((low + up) / 2, (1 - shrink) * up)
            rows = np.flatnonzero(eps_np > 0)
            if not len(rows):
                break
            r = torch.from_numpy(rows)
            eps = torch.from_numpy(eps_np[rows]).to(x0.dtype)
            sub_t = None if tgt is None else tgt[r]

            def loss_fn(logits: torch.Tensor, sel: torch.Tensor, r: torch.Tensor = r,
                        sub_t: torch.Tensor | None = sub_t) -> torch.Tensor:
                lab = labels[r][sel]
                if sub_t is not None:
                    return dlr_towards(logits, lab, sub_t[sel])
                return dlr(logits, lab) if classes >= 3 else -margin(logits, lab)

            start = random_start(x0[r], eps, self.norm, lo, hi, generator)
            out = run_apgd(model, x0[r], eps, self.norm, self.steps, loss_fn, misclassified(labels[r], sub_t), start,
                           oracle_confirms(model, labels[r], sub_t))
            hit = out.success.numpy()
            low[rows[~hit]] = eps_np[rows[~hit]]
            if hit.any():
                won = rows[hit]
                cand = out.x_adv[hit].numpy().astype(x.dtype, copy=False)
                cand, ok = refine_segment(model, x[won], cand, y[won], None if targets is None else targets[won],
                                          self.refine_steps)
                d = distances(x[won], cand)[self.norm]
                take = ok & (d < up[won])
                best[won[take]] = cand[take]
                up[won[take]] = d[take]
                found[won[take]] = True
        return best, found
