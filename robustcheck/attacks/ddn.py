"""DDN: "Decoupling Direction and Norm for Efficient Gradient-Based L2 Adversarial Attacks and
Defenses" (Rony, Hafemann, Oliveira, Ben Ayed, Sabourin & Granger, CVPR 2019), Algorithm 1,
without the quantisation step (robustcheck's inputs are continuous).

Per sample, from δ = 0 and a norm ε₀ = 1: take a step of length α along the L2-normalised
gradient of the cross-entropy (ascent; targeted: descent on the target's), then set the norm of
the accumulated perturbation to ε, where ε shrinks by (1 − γ) after an adversarial iterate and
grows by (1 + γ) after a non-adversarial one (γ = 0.05), and clip to the input box. α follows
the authors' cosine annealing from 1 to 0.01. ε₀ and α are scaled by the width of the model's
input range, and ε never exceeds the largest L2 norm the box allows.

The gradient direction is the cross-entropy's computed without underflow
(`losses.cross_entropy_direction`): on a defensively distilled model, whose logit margins reach
~1,000, the float32 cross-entropy gradient is exactly zero while its direction is not; DDN only
uses the direction, so it attacks such models as it attacks any other. A sample whose gradient
is still zero steps in a random direction drawn from the run's generator.

The smallest iterate onnxruntime confirms adversarial is kept over every step
(`refine.VerifiedBest`); the base class polishes it on the segment to x and verifies it again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from robustcheck.attacks.base import BatchOutput, MinimalNormAttack
from robustcheck.attacks.fmn import cosine_anneal, largest_norm, torch_inputs
from robustcheck.attacks.losses import cross_entropy_direction
from robustcheck.attacks.params import MAX_ITERATIONS, param
from robustcheck.attacks.refine import VerifiedBest
from robustcheck.metrics import atleast_kd, margin
from robustcheck.model import Model


@dataclass(kw_only=True)
class DDN(MinimalNormAttack):
    """Decoupled Direction and Norm L2 attack (Rony et al. 2019); see the module docstring."""

    name = "ddn"
    norm = "l2"

    steps: int = param(1000, low=1, high=MAX_ITERATIONS, doc="gradient steps")
    init_norm: float = param(1.0, low=0.0, low_open=True, doc="ε₀: first norm, for an input range of width 1")
    gamma: float = param(0.05, low=0.0, high=1.0, low_open=True, high_open=True, doc="γ: norm change per step")
    alpha_init: float = param(1.0, low=0.0, low_open=True, doc="first step length (cosine-annealed to 1% of it)")

    def run_batch(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                  generator: torch.Generator) -> BatchOutput:
        lo, hi = model.input_range
        x0, labels, tgt = torch_inputs(x, y, targets)
        n, k = len(x0), x0.dim()
        width = hi - lo
        worst = largest_norm(x0, lo, hi, "l2")
        eps = torch.minimum(torch.full((n,), self.init_norm * width, dtype=x0.dtype), worst)
        delta = torch.zeros_like(x0)
        best = VerifiedBest(model, x, y, targets)
        trace = torch.full((n, self.steps + 1), math.nan, dtype=torch.float64)
        for step in range(self.steps + 1):
            adv = (x0 + delta).requires_grad_(step < self.steps)
            logits = model.torch_logits(adv)
            with torch.no_grad():
                gap = margin(logits.detach(), labels, tgt)
                trace[:, step] = gap.double()
                is_adv = gap < 0
                size = delta.flatten(1).norm(dim=1)
                best.offer(adv.detach().numpy(), size.double().numpy(), is_adv.numpy())
            if step == self.steps:
                break
            (grad,) = torch.autograd.grad(cross_entropy_direction(logits, labels, tgt).sum(), adv)
            with torch.no_grad():
                g_norm = grad.flatten(1).norm(dim=1)
                dead = g_norm < 1e-12
                if bool(dead.any()):
                    grad[dead] = torch.randn(grad[dead].shape, generator=generator, dtype=grad.dtype)
                    g_norm = grad.flatten(1).norm(dim=1)
                alpha = cosine_anneal(self.alpha_init, self.alpha_init / 100, step, self.steps) * width
                delta = delta + alpha * grad / atleast_kd(g_norm, k)
                eps = torch.minimum(torch.where(is_adv, eps * (1 - self.gamma), eps * (1 + self.gamma)), worst)
                delta = delta * atleast_kd(eps / delta.flatten(1).norm(dim=1).clamp_min(1e-12), k)
                delta = (x0 + delta).clamp(lo, hi) - x0
        return BatchOutput(best.x, loss_trace=trace.numpy())
