"""What several checks share, computed once per `diagnose` call: oracle outputs, gradients, probe attacks.

`Context` holds the model, the samples, the budget and the attack results handed to
`diagnose`; its cached properties run each probe at most once, whichever check asks first.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import numpy as np
import torch

from robustcheck import metrics
from robustcheck.attacks import FGSM, PGD, AttackResult, RandomNoise, SquareAttack
from robustcheck.model import Model
from robustcheck.profiles import DiagnosticsBudget

#: L∞ budget of the weak/strong comparison, as a fraction of the input range (MNIST's 0.3).
PROBE_EPSILON = 0.3
#: Step of the first-order prediction check, as a fraction of the input range (Athalye §4.1).
LINEARITY_STEP = 1e-3


class Context:
    """One model, its correctly classified samples, the budget; probes computed on demand."""

    def __init__(self, model: Model, x: np.ndarray, y: np.ndarray, results: Sequence[AttackResult],
                 budget: DiagnosticsBudget, seed: int) -> None:
        self.model, self.x, self.y, self.results, self.budget, self.seed = model, x, y, results, budget, seed
        lo, hi = model.input_range
        self.eps = PROBE_EPSILON * (hi - lo)

    @cached_property
    def oracle_logits(self) -> np.ndarray:
        return self.model.oracle_logits(self.x)

    @cached_property
    def probes(self) -> dict[str, AttackResult]:
        """The bounded L∞ attacks the weak/strong, one-step and convergence checks compare."""
        eps, steps = self.eps, self.budget.steps
        attacks = {
            "fgsm-ce": FGSM(epsilon=eps, loss="ce"),
            "pgd-ce": PGD(epsilon=eps, steps=steps, loss="ce"),
            "pgd-dlr": PGD(epsilon=eps, steps=steps, loss="dlr"),
            "pgd-margin": PGD(epsilon=eps, steps=steps, loss="margin"),
            "pgd-dlr-2x": PGD(epsilon=eps, steps=2 * steps, loss="dlr"),
            "pgd-dlr-eps/4": PGD(epsilon=eps / 4, steps=steps, loss="dlr"),
            "pgd-dlr-eps/2": PGD(epsilon=eps / 2, steps=steps, loss="dlr"),
        }
        return {name: attack.run(self.model, self.x, self.y, seed=self.seed) for name, attack in attacks.items()}

    @cached_property
    def full_range_probe(self) -> AttackResult:
        """PGD on the logit margin with ε = the whole input range: every input of the box is allowed."""
        lo, hi = self.model.input_range
        return PGD(epsilon=hi - lo, steps=self.budget.steps, loss="margin").run(self.model, self.x, self.y,
                                                                               seed=self.seed)

    @cached_property
    def gradient_failures(self) -> np.ndarray:
        """Samples the strong gradient probes did not break (all of them without a replica)."""
        if self.model.replica is None:
            return np.ones(len(self.x), dtype=bool)
        return ~(self.probes["pgd-dlr"].success | self.probes["pgd-margin"].success)

    def noise(self) -> AttackResult:
        return RandomNoise(epsilon=self.eps, draws=self.budget.noise_draws).run(self.model, self.x, self.y,
                                                                              seed=self.seed)

    def square(self, rows: np.ndarray) -> AttackResult:
        return SquareAttack(epsilon=self.eps, queries=self.budget.queries).run(self.model, self.x[rows],
                                                                             self.y[rows], seed=self.seed)

    @cached_property
    def gradient_and_linearity(self) -> tuple[np.ndarray, float]:
        """The input gradient of the loss −`metrics.margin` (positive when misclassified), and the
        median relative error of its first-order prediction of the loss LINEARITY_STEP × range
        along itself."""
        model = self.model
        lo, hi = model.input_range
        yt = torch.from_numpy(self.y)
        xt = torch.from_numpy(self.x).float().requires_grad_(True)
        loss = -metrics.margin(model.torch_logits(xt), yt)
        (grad,) = torch.autograd.grad(loss.sum(), xt)
        flat = grad.flatten(1)
        ok = torch.isfinite(flat).all(dim=1) & (flat.abs().amax(dim=1) > 0)
        step = LINEARITY_STEP * (hi - lo)
        direction = flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-30)
        with torch.no_grad():
            moved = (xt.detach().flatten(1) + step * direction).clamp(lo, hi)
            actual = (-metrics.margin(model.torch_logits(moved.view_as(xt)), yt) - loss.detach()) / step
            predicted = (flat * (moved - xt.detach().flatten(1))).sum(dim=1) / step
            rel = ((actual - predicted).abs() / predicted.abs().clamp_min(1e-12))[ok]
        grad_np = torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0).numpy()
        return grad_np, float(rel.median()) if len(rel) else 0.0
