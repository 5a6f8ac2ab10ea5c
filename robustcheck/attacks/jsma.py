"""JSMA: the Jacobian-based Saliency Map Attack of Papernot, McDaniel, Jha, Fredrikson, Celik &
Swami, "The Limitations of Deep Learning in Adversarial Settings" (EuroS&P 2016), Algorithms 2–3
(the pair-of-features variant) — the L0 attack defensive distillation was designed against
(Papernot et al., "Distillation as a Defense to Adversarial Perturbations against Deep Neural
Networks", S&P 2016).

Each iteration computes the forward derivative of the model's outputs F and picks, in the
search domain Γ, the pair of features (p, q) with

    α = ∂F_t/∂x_p + ∂F_t/∂x_q > 0,   β = Σ_{j≠t} (∂F_j/∂x_p + ∂F_j/∂x_q) < 0,   maximising α·|β|

(θ > 0; for θ < 0 the signs of the conditions flip), changes both by θ, and removes a feature
from Γ once it reaches the edge of the box. It stops when the target class wins or when a
fraction γ of the features has changed.

As in the paper F is the softmax PROBABILITY vector (computed in float32): on a distilled
model the softmax saturates, its gradients are exactly zero, no pair qualifies, and the attack
fails — which is what distillation defeats. `use_logits=True` takes F = the logits instead
(the "JSMA-Z" of Carlini & Wagner 2017), which distillation does not stop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from robustcheck.attacks.base import BatchOutput, MinimalNormAttack
from robustcheck.attacks.params import param
from robustcheck.metrics import runner_up
from robustcheck.model import Model

# Elements of the (samples × features × features) pair-score tensor built at once.
PAIR_BLOCK_ELEMENTS = 8_000_000


@dataclass(kw_only=True)
class JSMA(MinimalNormAttack):
    """Papernot et al.'s saliency-map attack on pairs of features (L0).

    - `gamma`: the largest fraction of the features the attack may change (default 0.1; the
      paper used 14.5% on MNIST). Each iteration changes at most two features, so a sample gets
      at most ⌊γ·n/2⌋ pair updates when θ = ±1.
    - `theta`: the change per update as a signed fraction of the input range (default +1: set
      the feature to the top of the box, as the paper's θ = +1 on [0, 1] inputs). Features leave
      the search domain once they reach the box edge.
    - `use_logits`: saliency from the logits instead of the softmax probabilities.
    - `max_candidates`: when the search domain holds more features than this, the pair search
      is restricted to the `max_candidates` features with the largest single-feature saliency
      (α_p − β_p for θ > 0); with the default (1024) every pair of an MNIST image is searched.

    Targeted by design. Untargeted runs aim at the class the clean input's logits rank second
    (the nearest competitor, Papernot et al.'s cheapest choice) and stop as soon as the replica's
    label leaves the true class, whatever class it moves to.

    `loss_trace` holds F_t (the target's probability, or logit) before each iteration; NaN once
    a sample has stopped.
    """

    name = "jsma"
    norm = "l0"

    gamma: float = param(0.1, low=0.0, high=1.0, low_open=True, doc="largest fraction of the features changed")
    theta: float = param(1.0, low=-1.0, high=1.0, min_abs=0.01, doc="change per update, a signed fraction of the range")
    use_logits: bool = param(False, doc="saliency from the logits (JSMA-Z) instead of the probabilities")
    max_candidates: int = param(1024, low=2, high=4096, doc="features searched in pairs (the most salient)")

    def run_batch(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                  generator: torch.Generator) -> BatchOutput:
        lo, hi = model.input_range
        dtype = torch.float64 if x.dtype == np.float64 else torch.float32
        x0 = torch.from_numpy(np.ascontiguousarray(x)).to(dtype)
        n = len(x0)
        adv = x0.clone().reshape(n, -1)
        features = adv.shape[1]
        labels = torch.from_numpy(np.ascontiguousarray(y))
        with torch.no_grad():
            clean = model.torch_logits(x0)
        if targets is None:
            target = runner_up(clean, labels)
        else:
            target = torch.from_numpy(np.ascontiguousarray(targets))
        increase = self.theta > 0
        change = self.theta * (hi - lo)
        domain = adv < hi if increase else adv > lo
        budget = int(math.floor(self.gamma * features))
        updates_per_feature = math.ceil(1 / abs(self.theta) - 1e-9)
        max_iterations = max(1, budget // 2) * updates_per_feature
        active = torch.ones(n, dtype=torch.bool)
        trace = np.full((n, max_iterations), np.nan)
        for it in range(max_iterations):
            rows = torch.nonzero(active).flatten()
            if not len(rows):
                break
            xt = adv[rows].reshape((len(rows),) + x0.shape[1:]).clone().requires_grad_(True)
            logits = model.torch_logits(xt)
            out = logits if self.use_logits else torch.softmax(logits.float(), dim=1)
            t = target[rows]
            pred = logits.detach().argmax(dim=1)
            reached = pred == t if targets is not None else pred != labels[rows]
            changed = (adv[rows] != x0.reshape(n, -1)[rows]).sum(dim=1)
            stop = reached | (changed + 2 > budget)
            t_out = out.gather(1, t[:, None]).squeeze(1)
            trace[rows.numpy(), it] = t_out.detach().double().numpy()
            (grad_t,) = torch.autograd.grad(t_out.sum(), xt, retain_graph=True)
            (grad_all,) = torch.autograd.grad(out.sum(), xt)
            alpha = grad_t.reshape(len(rows), -1).double()
            beta = grad_all.reshape(len(rows), -1).double() - alpha
            if not increase:  # decreasing features: the same search on the negated derivatives
                alpha, beta = -alpha, -beta
            go = ~stop
            p, q, found = self._best_pairs(alpha[go], beta[go], domain[rows[go]])
            active[rows[stop]] = False
            live = rows[go]
            active[live[~found]] = False
            live, p, q = live[found], p[found], q[found]
            with torch.no_grad():
                for idx in (p, q):
                    moved = adv[live, idx] + change
                    adv[live, idx] = moved.clamp(lo, hi)
                    at_edge = adv[live, idx] >= hi if increase else adv[live, idx] <= lo
                    domain[live[at_edge], idx[at_edge]] = False
        return BatchOutput(adv.reshape(x0.shape).numpy().astype(x.dtype, copy=False), loss_trace=trace)

    def _best_pairs(self, alpha: torch.Tensor, beta: torch.Tensor, domain: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per row the pair (p, q), p ≠ q both in the domain, with α_pq > 0, β_pq < 0 and the
        largest α_pq·|β_pq|; `found` is False where no pair qualifies. Vectorised in blocks."""
        m, features = alpha.shape
        ps = torch.zeros(m, dtype=torch.long)
        qs = torch.zeros(m, dtype=torch.long)
        found = torch.zeros(m, dtype=torch.bool)
        if m == 0:
            return ps, qs, found
        k = min(self.max_candidates, features)
        # Candidates: domain features ranked by single-feature saliency (all of them when k = n).
        rank = torch.where(domain, alpha - beta, torch.full_like(alpha, float("-inf")))
        cand = rank.topk(k, dim=1).indices
        a = alpha.gather(1, cand)
        b = beta.gather(1, cand)
        ok = domain.gather(1, cand)
        # Rescale per row (positive factors keep the argmax) so products of tiny probability
        # gradients cannot underflow to a spurious zero.
        a = a / a.abs().amax(dim=1, keepdim=True).clamp_min(1e-300)
        b = b / b.abs().amax(dim=1, keepdim=True).clamp_min(1e-300)
        a, b = a.float(), b.float()
        block = max(1, PAIR_BLOCK_ELEMENTS // (k * k))
        off_diagonal = ~torch.eye(k, dtype=torch.bool)
        for start in range(0, m, block):
            sl = slice(start, start + block)
            a_pq = a[sl, :, None] + a[sl, None, :]
            b_pq = b[sl, :, None] + b[sl, None, :]
            valid = (a_pq > 0) & (b_pq < 0) & ok[sl, :, None] & ok[sl, None, :] & off_diagonal
            score = torch.where(valid, a_pq * (-b_pq), torch.full_like(a_pq, -1.0))
            best = score.flatten(1).argmax(dim=1)
            found[sl] = valid.flatten(1).gather(1, best[:, None]).squeeze(1)
            ps[sl] = cand[sl].gather(1, (best // k)[:, None]).squeeze(1)
            qs[sl] = cand[sl].gather(1, (best % k)[:, None]).squeeze(1)
        return ps, qs, found
