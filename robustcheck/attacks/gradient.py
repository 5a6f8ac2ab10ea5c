"""FGSM and PGD: the bounded first-order probes.

FGSM: Goodfellow et al., "Explaining and Harnessing Adversarial Examples" (ICLR 2015).
PGD: Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks" (ICLR 2018).
Losses: "ce" is cross-entropy on a float32 softmax, how the softmax-gradient attacks of the
distillation era computed it (and what distillation defeats); "margin" is the C&W logit
margin; "dlr" is the Difference of Logits Ratio of Croce & Hein, "Reliable evaluation of
adversarial robustness with an ensemble of diverse parameter-free attacks" (ICML 2020),
invariant to the logits' scale (see robustcheck.metrics).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from robustcheck.attacks.base import BatchOutput, BoundedAttack
from robustcheck.attacks.params import MAX_ITERATIONS, param
from robustcheck.metrics import atleast_kd, dlr, margin
from robustcheck.model import Model

LOSSES = ("ce", "margin", "dlr")


def attack_loss(logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None, loss: str) -> torch.Tensor:
    """Per-sample loss the attack MAXIMISES (untargeted: move off `labels`; targeted: onto `targets`)."""
    if loss == "ce":
        probs = torch.softmax(logits.float(), dim=1)
        if targets is None:
            return -torch.log(probs.gather(1, labels[:, None]).squeeze(1))
        return torch.log(probs.gather(1, targets[:, None]).squeeze(1))
    if loss == "margin":
        return -margin(logits, labels, targets)
    return dlr(logits, labels, targets)


@dataclass(kw_only=True)
class _GradientSteps(BoundedAttack):
    """Signed (L∞) or normalised (L2) gradient ascent on `loss`, projected onto the ε-ball and the box."""

    norm: str = param("linf", choices=("linf", "l2"), doc="the ball's norm")  # type: ignore[misc]
    loss: str = param("ce", choices=LOSSES, doc="the loss ascended: ce (softmax), margin or dlr (logits)")

    def _ascend(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                generator: torch.Generator, *, steps: int, alpha: float, random_start: bool,
                restarts: int) -> BatchOutput:
        lo, hi = model.input_range
        x0 = torch.from_numpy(x).float()
        labels = torch.from_numpy(y)
        tgt = None if targets is None else torch.from_numpy(targets)
        keep = _KeepDeepest(x0) if model.randomized else _KeepFirst(x0)
        rows: list[torch.Tensor] = []
        for _ in range(restarts):
            adv = (x0 + self._start(x0, generator)).clamp(lo, hi) if random_start else x0.clone()
            for _ in range(steps):
                adv.requires_grad_(True)
                logits = model.torch_logits(adv)
                value = attack_loss(logits, labels, tgt, self.loss)
                (grad,) = torch.autograd.grad(value.sum(), adv)
                with torch.no_grad():
                    keep.offer(logits, value, labels, tgt, adv.detach())
                    rows.append(value.detach())
                    adv = self._project(x0, self._step(adv.detach(), grad, alpha)).clamp(lo, hi)
            with torch.no_grad():
                logits = model.torch_logits(adv)
                keep.offer(logits, attack_loss(logits, labels, tgt, self.loss), labels, tgt, adv)
        trace = torch.stack(rows, dim=1).numpy().astype(np.float64) if rows else None
        return BatchOutput(keep.best.numpy(), loss_trace=trace)

    def _start(self, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        eps = self.epsilon
        if self.norm == "linf":
            return (torch.rand(x0.shape, generator=generator) * 2 - 1) * eps
        direction = torch.randn(x0.shape, generator=generator)
        direction /= atleast_kd(direction.flatten(1).norm(dim=1).clamp_min(1e-12), x0.dim())
        d = direction[0].numel()
        radius = eps * torch.rand(len(x0), generator=generator) ** (1.0 / d)
        return direction * atleast_kd(radius, x0.dim())

    def _step(self, adv: torch.Tensor, grad: torch.Tensor, alpha: float) -> torch.Tensor:
        if self.norm == "linf":
            return adv + alpha * grad.sign()
        return adv + alpha * grad / atleast_kd(grad.flatten(1).norm(dim=1).clamp_min(1e-12), adv.dim())

    def _project(self, x0: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
        eps = self.epsilon
        delta = adv - x0
        if self.norm == "linf":
            return x0 + delta.clamp(-eps, eps)
        norm = atleast_kd(delta.flatten(1).norm(dim=1), adv.dim())
        return x0 + delta * torch.clamp(eps / norm.clamp_min(1e-12), max=1.0)


@dataclass(kw_only=True)
class PGD(_GradientSteps):
    """Projected gradient ascent on `loss` inside the ε-ball (L∞ or L2) and the input box.

    step_size defaults to 2.5·ε/steps (Madry et al.); `random_start` draws uniformly in the
    ε-ball (L2: uniform direction, radius ε·U^(1/d)); `restarts` repeats from new starts. The
    first iterate that the replica classifies adversarially is kept per sample; on a randomized
    model, the iterate with the highest (EOT) loss.
    """

    name = "pgd"

    steps: int = param(40, low=1, high=MAX_ITERATIONS, doc="gradient steps per restart")
    step_size: float | None = param(None, low=0.0, low_open=True, doc="step length (default 2.5·ε/steps)")
    random_start: bool = param(True, doc="start from a uniform draw in the ε-ball")
    restarts: int = param(1, low=1, high=1000, doc="runs from new random starts; the first success is kept")

    @property
    def stochastic(self) -> bool:  # type: ignore[override]
        """A random start makes the result depend on the seed."""
        return self.random_start

    def run_batch(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                  generator: torch.Generator) -> BatchOutput:
        alpha = self.step_size if self.step_size is not None else 2.5 * self.epsilon / max(1, self.steps)
        return self._ascend(model, x, y, targets, generator, steps=self.steps, alpha=alpha,
                            random_start=self.random_start, restarts=self.restarts)


@dataclass(kw_only=True)
class FGSM(_GradientSteps):
    """One signed-gradient (L∞) or normalised-gradient (L2) step of size ε, no random start."""

    name = "fgsm"

    def run_batch(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                  generator: torch.Generator) -> BatchOutput:
        return self._ascend(model, x, y, targets, generator, steps=1, alpha=self.epsilon, random_start=False,
                            restarts=1)


class _KeepFirst:
    """Per sample, the first iterate the replica classifies adversarially (the input until then)."""

    def __init__(self, x0: torch.Tensor) -> None:
        self.best = x0.clone()
        self.done = torch.zeros(len(x0), dtype=torch.bool)

    def offer(self, logits: torch.Tensor, value: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None,
              adv: torch.Tensor) -> None:
        pred = logits.argmax(dim=1)
        ok = pred == targets if targets is not None else pred != labels
        new = ok & ~self.done
        self.best = torch.where(atleast_kd(new, adv.dim()), adv, self.best)
        self.done |= ok


class _KeepDeepest:
    """Per sample, the iterate with the highest loss seen (over all steps and restarts).

    For a randomized model the replica's verdict on one iterate is an estimate over EOT draws: the
    first iterate across the estimated boundary is a coin flip for the oracle's majority vote,
    while the deepest one is the iterate the vote most likely accepts.
    """

    def __init__(self, x0: torch.Tensor) -> None:
        self.best = x0.clone()
        self.value = torch.full((len(x0),), -torch.inf)

    def offer(self, logits: torch.Tensor, value: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None,
              adv: torch.Tensor) -> None:
        better = value > self.value
        self.value = torch.where(better, value, self.value)
        self.best = torch.where(atleast_kd(better, adv.dim()), adv, self.best)
