"""EAD: "Elastic-Net Attacks to Deep Neural Networks via Adversarial Examples" (Chen et al., AAAI 2018).

Minimises c·f(x′) + β‖x′−x‖₁ + ‖x′−x‖²₂ with ISTA plus FISTA momentum: a gradient step on the
smooth part c·f + ‖δ‖²₂ at the slack point, then projected shrinkage-thresholding at β onto
the input box, then the momentum step k/(k+3). The learning rate decays as lr·(1 − k/K)^½.
c is found by the same binary search as C&W; the best example over all steps is picked by
the decision rule: "EN" (β‖δ‖₁ + ‖δ‖²₂, the paper's default) or "L1" (‖δ‖₁). Gradients come
from the replica at the slack point; each iterate x_k is judged by onnxruntime (the oracle).

β defaults to 1e-3, the value of the paper's reference code and of foolbox; some other public
codes use 1e-2. Distances are reported in L1 (`norm = "l1"`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from robustcheck.attacks.base import Attack, BatchOutput
from robustcheck.attacks.carlini_wagner import UPPER_UNSET
from robustcheck.attacks.objectives import objective as get_objective
from robustcheck.attacks.objectives import succeeded
from robustcheck.model import Model


class EAD(Attack):
    """Elastic-net attack (EN or L1 decision rule); see the module docstring."""

    name = "ead"
    norm = "l1"

    def __init__(
        self,
        *,
        beta: float = 1e-3,
        decision_rule: str = "EN",
        binary_search_steps: int = 9,
        max_iterations: int = 1000,
        learning_rate: float = 1e-2,
        confidence: float = 0.0,
        initial_const: float = 1e-3,
        abort_early: bool = True,
        objective: str = "f6",
        batch_size: int = 100,
    ) -> None:
        super().__init__(batch_size=batch_size)
        if decision_rule not in ("EN", "L1"):
            raise ValueError(f"decision_rule must be 'EN' or 'L1', got {decision_rule!r}")
        self.beta = beta
        self.decision_rule = decision_rule
        self.binary_search_steps = binary_search_steps
        self.max_iterations = max_iterations
        self.learning_rate = learning_rate
        self.confidence = confidence
        self.initial_const = initial_const
        self.abort_early = abort_early
        self.objective = objective
        self._f = get_objective(objective)

    def _run_batch(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                   generator: torch.Generator) -> BatchOutput:
        classes = torch.from_numpy(y if targets is None else targets)
        targeted = targets is not None
        lo, hi = model.input_range
        # A private copy: the slack variable must never share storage with the reference image.
        x0 = torch.from_numpy(x).float().clone()
        dtype = x.dtype
        n = len(x0)
        const = torch.full((n,), float(self.initial_const))
        lower = torch.zeros(n)
        upper = torch.full((n,), UPPER_UNSET)
        best_score = torch.full((n,), math.inf)
        best = x0.clone()
        trace: np.ndarray | None = None
        check_every = max(1, self.max_iterations // 10)
        for _ in range(self.binary_search_steps):
            current = x0.clone()  # iterates reset on every search step
            slack = x0.clone()
            found = torch.zeros(n, dtype=torch.bool)
            previous = math.inf
            rows: list[torch.Tensor] = []
            for k in range(self.max_iterations):
                lr = self.learning_rate * (1 - k / self.max_iterations) ** 0.5
                slack.requires_grad_(True)
                logits = model.torch_logits(slack)
                f = self._f(logits, classes, targeted, self.confidence)
                smooth = (const * f + (slack - x0).flatten(1).pow(2).sum(dim=1)).sum()
                (grad,) = torch.autograd.grad(smooth, slack)
                with torch.no_grad():
                    # Projected shrinkage-thresholding: soft-threshold δ at β, then project onto the box
                    # (x0 lies inside it, so this equals the paper's three-case rule).
                    diff = slack - lr * grad - x0
                    shrunk = torch.clamp(x0 + torch.nn.functional.softshrink(diff, self.beta), lo, hi)
                    slack = shrunk + (k / (k + 3.0)) * (shrunk - current)
                    current = shrunk
                    delta = (current - x0).flatten(1)
                    l1, l2sq = delta.abs().sum(dim=1), delta.pow(2).sum(dim=1)
                    # Judge the iterate with onnxruntime, as the reference judges x_k: the oracle has the
                    # last word anyway, and its forward costs a third of the replica's here.
                    out = torch.from_numpy(model.oracle_logits(current.numpy().astype(dtype, copy=False)))
                    f_cur = self._f(out, classes, targeted, self.confidence)
                    rows.append(f_cur)
                    ok = succeeded(out, classes, targeted, self.confidence)
                    score = l1 if self.decision_rule == "L1" else self.beta * l1 + l2sq
                    better = ok & (score < best_score)
                    if bool(better.any()):
                        best_score[better] = score[better]
                        best[better] = current[better]
                    found |= ok
                    if self.abort_early and k % check_every == 0:  # from iteration 0, as the reference
                        loss = float((const * f_cur + l2sq + self.beta * l1).sum())
                        if loss > previous * 0.9999:
                            break
                        previous = loss
            trace = torch.stack(rows, dim=1).numpy().astype(np.float64) if rows else None
            upper = torch.where(found, torch.minimum(upper, const), upper)
            lower = torch.where(found, lower, torch.maximum(lower, const))
            const = torch.where(upper < UPPER_UNSET, (lower + upper) / 2, const * 10)
        return BatchOutput(best.numpy(), loss_trace=trace,
                           extras={"const": torch.where(upper < UPPER_UNSET, upper, const).numpy().astype(np.float64)})
