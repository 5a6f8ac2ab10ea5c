"""FGSM and PGD: the bounded first-order probes.

FGSM: Goodfellow et al., "Explaining and Harnessing Adversarial Examples" (ICLR 2015).
PGD: Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks" (ICLR 2018).
Losses: "ce" is cross-entropy on a float32 softmax, how the softmax-gradient attacks of the
distillation era computed it (and what distillation defeats); "margin" is the C&W logit
margin; "dlr" is the Difference of Logits Ratio of Croce & Hein, "Reliable evaluation of
adversarial robustness with an ensemble of diverse parameter-free attacks" (ICML 2020),
invariant to the logits' scale.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from robustcheck.attacks.base import Attack, BatchOutput
from robustcheck.model import Model

LOSSES = ("ce", "margin", "dlr")


def attack_loss(logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None, loss: str) -> torch.Tensor:
    """Per-sample loss the attack MAXIMISES (untargeted: move off `labels`; targeted: onto `targets`)."""
    if loss == "ce":
        probs = torch.softmax(logits.float(), dim=1)
        if targets is None:
            return -torch.log(probs.gather(1, labels[:, None]).squeeze(1))
        return torch.log(probs.gather(1, targets[:, None]).squeeze(1))
    classes = labels if targets is None else targets
    mask = F.one_hot(classes, logits.shape[1]).bool()
    chosen = logits[mask]
    others = logits.masked_fill(mask, float("-inf")).amax(dim=1)
    gap = others - chosen if targets is None else chosen - others
    if loss == "margin":
        return gap
    ordered = logits.sort(dim=1, descending=True).values
    if targets is None:
        scale = ordered[:, 0] - ordered[:, 2]
    else:  # targeted DLR: normalise by z_π1 − (z_π3 + z_π4)/2
        scale = ordered[:, 0] - (ordered[:, 2] + ordered[:, 3]) / 2 if logits.shape[1] > 3 else ordered[:, 0] - ordered[:, -1]
    return gap / scale.clamp_min(1e-12)


class PGD(Attack):
    """Projected gradient ascent on `loss` inside the ε-ball (L∞ or L2) and the input box.

    step_size defaults to 2.5·ε/steps (Madry et al.); `random_start` draws uniformly in the
    ε-ball (L2: uniform direction, radius ε·U^(1/d)); `restarts` repeats from new starts. The
    first iterate that the replica classifies adversarially is kept per sample.
    """

    name = "pgd"
    norm = "linf"

    def __init__(
        self,
        *,
        epsilon: float = 0.3,
        norm: str = "linf",
        steps: int = 40,
        step_size: float | None = None,
        loss: str = "ce",
        random_start: bool = True,
        restarts: int = 1,
        batch_size: int = 100,
    ) -> None:
        super().__init__(batch_size=batch_size)
        if norm not in ("linf", "l2"):
            raise ValueError(f"norm must be 'linf' or 'l2', got {norm!r}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        self._epsilon = float(epsilon)
        self.norm = norm  # type: ignore[misc]
        self.steps = steps
        self.step_size = step_size
        self.loss = loss
        self.random_start = random_start
        self.restarts = restarts

    def _run_batch(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                   generator: torch.Generator) -> BatchOutput:
        lo, hi = model.input_range
        x0 = torch.from_numpy(x).float()
        labels = torch.from_numpy(y)
        tgt = None if targets is None else torch.from_numpy(targets)
        eps = self._epsilon
        alpha = self.step_size if self.step_size is not None else 2.5 * eps / max(1, self.steps)
        shape = (-1,) + (1,) * (x0.dim() - 1)
        best = x0.clone()
        done = torch.zeros(len(x0), dtype=torch.bool)
        rows: list[torch.Tensor] = []
        for _ in range(max(1, self.restarts)):
            adv = (x0 + self._start(x0, generator)).clamp(lo, hi) if self.random_start else x0.clone()
            for _ in range(self.steps):
                adv.requires_grad_(True)
                logits = model.torch_logits(adv)
                value = attack_loss(logits, labels, tgt, self.loss)
                (grad,) = torch.autograd.grad(value.sum(), adv)
                with torch.no_grad():
                    done, best = _keep_first(logits, labels, tgt, adv.detach(), done, best)
                    rows.append(value.detach())
                    adv = self._project(x0, self._step(adv.detach(), grad, alpha), eps).clamp(lo, hi)
            with torch.no_grad():
                done, best = _keep_first(model.torch_logits(adv), labels, tgt, adv, done, best)
        trace = torch.stack(rows, dim=1).numpy().astype(np.float64) if rows else None
        return BatchOutput(best.numpy(), loss_trace=trace)

    def _start(self, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        eps = self._epsilon
        if self.norm == "linf":
            return (torch.rand(x0.shape, generator=generator) * 2 - 1) * eps
        direction = torch.randn(x0.shape, generator=generator)
        direction /= direction.flatten(1).norm(dim=1).clamp_min(1e-12).view((-1,) + (1,) * (x0.dim() - 1))
        d = direction[0].numel()
        radius = eps * torch.rand(len(x0), generator=generator) ** (1.0 / d)
        return direction * radius.view((-1,) + (1,) * (x0.dim() - 1))

    def _step(self, adv: torch.Tensor, grad: torch.Tensor, alpha: float) -> torch.Tensor:
        if self.norm == "linf":
            return adv + alpha * grad.sign()
        norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view((-1,) + (1,) * (adv.dim() - 1))
        return adv + alpha * grad / norm

    def _project(self, x0: torch.Tensor, adv: torch.Tensor, eps: float) -> torch.Tensor:
        delta = adv - x0
        if self.norm == "linf":
            return x0 + delta.clamp(-eps, eps)
        norm = delta.flatten(1).norm(dim=1).view((-1,) + (1,) * (adv.dim() - 1))
        return x0 + delta * torch.clamp(eps / norm.clamp_min(1e-12), max=1.0)


class FGSM(PGD):
    """One signed-gradient (L∞) or normalised-gradient (L2) step of size ε, no random start."""

    name = "fgsm"

    def __init__(self, *, epsilon: float = 0.3, norm: str = "linf", loss: str = "ce", batch_size: int = 100) -> None:
        super().__init__(epsilon=epsilon, norm=norm, steps=1, step_size=epsilon, loss=loss, random_start=False,
                         restarts=1, batch_size=batch_size)


def _keep_first(logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None, adv: torch.Tensor,
                done: torch.Tensor, best: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pred = logits.argmax(dim=1)
    ok = pred == targets if targets is not None else pred != labels
    new = ok & ~done
    best = torch.where(new.view((-1,) + (1,) * (adv.dim() - 1)), adv, best)
    return done | ok, best
