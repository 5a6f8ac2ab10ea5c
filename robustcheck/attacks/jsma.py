"""JSMA: the Jacobian-based Saliency Map Attack of Papernot et al., "The Limitations of Deep
Learning in Adversarial Settings" (EuroS&P 2016) — the L0 attack defensive distillation defeats.

Targeted by design: each step picks the pair of features (p, q) whose joint change raises the
target's output most while lowering the others' (α = ∂F_t/∂x_p + ∂F_t/∂x_q > 0, β = Σ_{j≠t}
∂F_j/∂x_p + ∂F_j/∂x_q < 0, maximising α·|β|), sets both to the top of the box (θ = +1) and
drops them from the search domain, until the target wins or a fraction γ of the features
has changed. As in the paper the saliency map uses the softmax probabilities F, whose
gradients vanish on a distilled model; `use_logits=True` uses the logits instead. Untargeted
runs aim at the second most likely class of the clean input.
"""

from __future__ import annotations

import numpy as np
import torch

from robustcheck.attacks.base import Attack, BatchOutput
from robustcheck.model import Model


class JSMA(Attack):
    name = "jsma"
    norm = "l0"

    def __init__(self, *, gamma: float = 0.1, theta: float = 1.0, use_logits: bool = False,
                 batch_size: int = 16) -> None:
        super().__init__(batch_size=batch_size)
        if not 0 < gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {gamma}")
        self.gamma = gamma
        self.theta = theta
        self.use_logits = use_logits

    def _run_batch(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                   generator: torch.Generator) -> BatchOutput:
        lo, hi = model.input_range
        adv = torch.from_numpy(x).float().clone()
        n = len(adv)
        flat = adv.reshape(n, -1)
        features = flat.shape[1]
        with torch.no_grad():
            clean = model.torch_logits(adv)
        if targets is None:
            target = clean.masked_fill(torch.nn.functional.one_hot(torch.from_numpy(y), clean.shape[1]).bool(),
                                       float("-inf")).argmax(dim=1)
        else:
            target = torch.from_numpy(targets)
        toward = hi if self.theta > 0 else lo
        domain = (flat < hi) if self.theta > 0 else (flat > lo)
        max_steps = int(np.ceil(self.gamma * features / 2))
        active = torch.ones(n, dtype=torch.bool)
        for _ in range(max_steps):
            xt = adv.clone().requires_grad_(True)
            logits = model.torch_logits(xt)
            out = logits if self.use_logits else torch.softmax(logits.float(), dim=1)
            active &= out.argmax(dim=1) != target
            if not bool(active.any()):
                break
            t_out = out.gather(1, target[:, None]).squeeze(1)
            (grad_t,) = torch.autograd.grad(t_out.sum(), xt, retain_graph=True)
            (grad_all,) = torch.autograd.grad(out.sum(), xt)
            alpha = grad_t.reshape(n, -1)
            beta = grad_all.reshape(n, -1) - alpha
            with torch.no_grad():
                for i in torch.nonzero(active).flatten().tolist():
                    pair = _best_pair(alpha[i], beta[i], domain[i])
                    if pair is None:
                        active[i] = False
                        continue
                    p, q = pair
                    row = adv[i].reshape(-1)
                    row[p] = toward
                    row[q] = toward
                    domain[i, p] = False
                    domain[i, q] = False
        return BatchOutput(adv.numpy())


def _best_pair(alpha: torch.Tensor, beta: torch.Tensor, domain: torch.Tensor) -> tuple[int, int] | None:
    """The pair (p, q) in the domain with α_pq > 0, β_pq < 0 maximising α_pq·|β_pq|."""
    idx = torch.nonzero(domain).flatten()
    if len(idx) < 2:
        return None
    a, b = alpha[idx], beta[idx]
    a_pq = a[:, None] + a[None, :]
    b_pq = b[:, None] + b[None, :]
    score = torch.where((a_pq > 0) & (b_pq < 0), a_pq * (-b_pq), torch.zeros_like(a_pq))
    score.fill_diagonal_(0)
    best = int(torch.argmax(score))
    if float(score.reshape(-1)[best]) <= 0:
        return None
    p, q = divmod(best, len(idx))
    return int(idx[p]), int(idx[q])
