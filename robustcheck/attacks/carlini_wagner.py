"""Carlini & Wagner attacks: "Towards Evaluating the Robustness of Neural Networks" (S&P 2017).

L2 and L∞ here, L0 in carlini_wagner_l0.py. All optimise on the replica's logits (objective f6
by default, see objectives.py), keep the input box through a tanh change of variables, and are
batched over samples. The base class verifies every returned candidate with onnxruntime.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from robustcheck.attacks.base import BatchOutput
from robustcheck.attacks.const_search import AbortEarly, BestExample, ConstSearch, ConstSearchAttack
from robustcheck.attacks.descents import DescentAttack, TanhBox, adam
from robustcheck.attacks.objectives import objective, succeeded
from robustcheck.attacks.params import override, param
from robustcheck.metrics import atleast_kd
from robustcheck.model import Model


def labels_and_mode(y: np.ndarray, targets: np.ndarray | None) -> tuple[torch.Tensor, bool]:
    """(the classes the objective is about, targeted?): the targets when given, else the true labels."""
    return (torch.from_numpy(y), False) if targets is None else (torch.from_numpy(targets), True)


@dataclass(kw_only=True)
class CarliniWagnerL2(ConstSearchAttack):
    """C&W L2: minimise ‖x′−x‖²₂ + c·f(x′) with Adam, binary search over c per sample.

    Defaults are the reference values (9 search steps × 10,000 iterations, lr 1e-2, κ 0,
    c₀ 1e-3, early abort); the profiles in robustcheck/profiles.py set smaller budgets whose
    strength the benchmarks measure. `objective` selects f1–f7 (default f6, the logit margin).
    """

    name = "cw-l2"
    norm = "l2"

    max_iterations: int = override(ConstSearchAttack, "max_iterations", 10_000)

    def run_batch(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                  generator: torch.Generator) -> BatchOutput:
        classes, targeted = labels_and_mode(y, targets)
        x0 = torch.from_numpy(x).float()
        f_of = objective(self.objective)
        box = TanhBox(*model.input_range)
        w0 = box.to_w(x0)
        search = ConstSearch(len(x0), self.initial_const)
        best = BestExample(x0)
        trace: np.ndarray | None = None
        for _ in range(self.binary_search_steps):
            w = w0.clone().requires_grad_(True)
            optimizer = adam(w, self.learning_rate)
            found = torch.zeros(len(x0), dtype=torch.bool)
            stop = AbortEarly(self.max_iterations, self.abort_early)
            rows: list[torch.Tensor] = []
            for iteration in range(self.max_iterations):
                adv = box.to_x(w)
                logits = model.torch_logits(adv)
                l2 = (adv - x0).flatten(1).pow(2).sum(dim=1)
                f = f_of(logits, classes, targeted, self.confidence)
                loss = (l2 + search.const * f).sum()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                with torch.no_grad():
                    rows.append(f.detach())
                    ok = succeeded(logits.detach(), classes, targeted, self.confidence)
                    best.update(ok, l2.detach(), adv.detach())
                    found |= ok
                if stop.due(iteration) and stop.stalled(float(loss.detach())):
                    break
            trace = torch.stack(rows, dim=1).numpy().astype(np.float64) if rows else None
            search.update(found)
        final_const = search.final().numpy().astype(np.float64)
        return BatchOutput(best.x.numpy(), loss_trace=trace, extras={"const": final_const})


@dataclass(kw_only=True)
class CarliniWagnerLinf(DescentAttack):
    """C&W L∞: minimise c·f(x′) + Σ max(0, |δ_i| − τ), shrinking τ while the attack succeeds.

    The reference schedule: τ starts at the full range; a descent ends at its first iterate
    that succeeds with no coordinate above τ, then τ shrinks to the perturbation actually used
    and by `decrease_factor` (0.9), down to 1/256 of the range, and the next descent warm
    starts from that success. A descent that fails for `max_iterations` doubles c (from
    `initial_const`) and restarts; past `largest_const` (20) the sample stops with its last
    success. Batched without lockstep: every sample has its own τ, c and Adam state. Speed-up
    over the reference: with `abort_early`, a descent whose loss stops improving (checked every
    10% of the iterations) fails at once instead of running out its iterations.
    """

    name = "cw-linf"
    norm = "linf"

    learning_rate: float = override(DescentAttack, "learning_rate", 5e-3)
    initial_const: float = override(DescentAttack, "initial_const", 1e-5)
    decrease_factor: float = param(0.9, low=0.0, high=1.0, low_open=True, high_open=True,
                                   doc="τ shrinks by this factor after a success")
    confidence: float = param(0.0, low=0.0, doc="κ: the margin by which the adversarial class must win")

    def run_batch(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                  generator: torch.Generator) -> BatchOutput:
        classes, targeted = labels_and_mode(y, targets)
        f_of = objective(self.objective)
        x0 = torch.from_numpy(x).float()
        lo, hi = model.input_range
        box = TanhBox(lo, hi)
        n = len(x0)
        tau = torch.full((n,), float(hi - lo))
        active = torch.ones(n, dtype=torch.bool)
        best = BestExample(x0)
        start = x0.clone()
        min_tau = (hi - lo) / 256
        descents = self.descents(box.to_w(x0))
        const = descents.const
        while bool(active.any()):
            a = torch.nonzero(active).flatten()
            w = descents.params(a)
            adv = box.to_x(w)
            logits = model.torch_logits(adv)
            f = f_of(logits, classes[a], targeted, self.confidence)
            penalty = torch.relu((adv - x0[a]).abs() - atleast_kd(tau[a], adv.dim())).flatten(1).sum(dim=1)
            loss = const[a] * f + penalty
            loss.sum().backward()
            grad = w.grad
            assert grad is not None
            with torch.no_grad():
                descents.record(a, f)
                # The reference's test: loss below 1e-4·c, and the label really changed.
                ok = (loss.detach() < 1e-4 * const[a]) & succeeded(logits.detach(), classes[a], targeted,
                                                                    self.confidence)
                won = a[ok]
                if len(won):
                    got = adv.detach()[ok]
                    linf = (got - x0[won]).flatten(1).abs().amax(dim=1)
                    best.update_rows(won, linf, got)
                    start[won] = got
                    tau[won] = torch.minimum(tau[won], linf) * self.decrease_factor
                    active[won] &= tau[won] >= min_tau
                    descents.restart(won, box.to_w(got))
                lost = descents.advance(a[~ok], grad[~ok], loss.detach()[~ok])
                if len(lost):
                    active[lost] &= const[lost] < self.largest_const
                    descents.restart(lost, box.to_w(start[lost]))
        return BatchOutput(best.x.numpy(), loss_trace=descents.trace(),
                           extras={"const": const.numpy().astype(np.float64)})

