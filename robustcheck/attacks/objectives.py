"""The seven objective functions f1–f7 of Carlini & Wagner (2017, §V.A).

Each maps logits Z to a per-sample value that is ≤ 0 when the attack has succeeded (for f6
and f7 exactly when the target class wins; the probability-based ones approximately). The
probability-based ones (f1–f5) go through a float32 softmax: on a defensively distilled model
that softmax saturates and their gradients vanish, which is why the paper (and robustcheck)
defaults to f6, the logit margin. For untargeted attacks the target class t is replaced by
"not the true class y": the same expressions with the roles of t and the best other class
swapped.

Two published formulas are not usable as printed; we implement their evident intent:
f1 = −log F_t − 1 (cross-entropy minus one, ≤ 0 once F_t ≥ 1/e) and f5 = −log(2·F_t) (≤ 0
once F_t ≥ 1/2); the printed −log(2F_t − 2) is undefined for every F_t < 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from robustcheck.attacks.base import MinimalNormAttack
from robustcheck.attacks.params import MAX_ITERATIONS, param
from robustcheck.metrics import margin

Objective = Callable[[torch.Tensor, torch.Tensor, bool, float], torch.Tensor]

LOG2 = math.log(2.0)


def _gap(values: torch.Tensor, classes: torch.Tensor, targeted: bool) -> torch.Tensor:
    """`metrics.margin` of `values` towards (targeted) or away from `classes`: ≤ 0 on success."""
    return margin(values, classes, classes if targeted else None)


def f1(z: torch.Tensor, classes: torch.Tensor, targeted: bool, kappa: float = 0.0) -> torch.Tensor:
    # log of a float32 softmax, as softmax-based attacks compute it (saturation is the point).
    logp = torch.log(torch.softmax(z.float(), dim=1))
    chosen = logp.gather(1, classes[:, None]).squeeze(1)
    return (-chosen - 1.0) if targeted else (chosen + 1.0)


def f2(z: torch.Tensor, classes: torch.Tensor, targeted: bool, kappa: float = 0.0) -> torch.Tensor:
    return torch.clamp(_gap(torch.softmax(z.float(), dim=1), classes, targeted), min=-kappa)


def f3(z: torch.Tensor, classes: torch.Tensor, targeted: bool, kappa: float = 0.0) -> torch.Tensor:
    return F.softplus(_gap(torch.softmax(z.float(), dim=1), classes, targeted)) - LOG2


def f4(z: torch.Tensor, classes: torch.Tensor, targeted: bool, kappa: float = 0.0) -> torch.Tensor:
    p = torch.softmax(z.float(), dim=1).gather(1, classes[:, None]).squeeze(1)
    return torch.clamp(0.5 - p, min=0.0) if targeted else torch.clamp(p - 0.5, min=0.0)


def f5(z: torch.Tensor, classes: torch.Tensor, targeted: bool, kappa: float = 0.0) -> torch.Tensor:
    p = torch.softmax(z.float(), dim=1).gather(1, classes[:, None]).squeeze(1)
    return -torch.log(2 * p) if targeted else -torch.log(2 * (1 - p))


def f6(z: torch.Tensor, classes: torch.Tensor, targeted: bool, kappa: float = 0.0) -> torch.Tensor:
    return torch.clamp(_gap(z, classes, targeted), min=-kappa)


def f7(z: torch.Tensor, classes: torch.Tensor, targeted: bool, kappa: float = 0.0) -> torch.Tensor:
    return F.softplus(_gap(z, classes, targeted)) - LOG2


OBJECTIVES: dict[str, Objective] = {"f1": f1, "f2": f2, "f3": f3, "f4": f4, "f5": f5, "f6": f6, "f7": f7}


def objective(name: str) -> Objective:
    """The objective `name` ("f1" … "f7"); raises ValueError naming the valid choices."""
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise ValueError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}") from None


def succeeded(z: torch.Tensor, classes: torch.Tensor, targeted: bool, kappa: float = 0.0) -> torch.Tensor:
    """The κ-shifted success test of the reference code, per sample, on logits: margin ≤ −κ
    (κ > 0) or margin < 0 (κ = 0, where a tie is not a success)."""
    m = _gap(z, classes, targeted)
    return m <= -kappa if kappa > 0 else m < 0


@dataclass(kw_only=True)
class ObjectiveAttack(MinimalNormAttack):
    """A C&W-family attack: it minimises a distance plus c·f(x′) with f one of the objectives
    above. The hyper-parameters every such attack shares (subclasses re-declare defaults with
    `params.override`). Their loss trace is f, ≤ 0 where the replica finds success."""

    objective_trace: ClassVar[bool] = True

    max_iterations: int = param(1000, low=1, high=MAX_ITERATIONS, doc="optimiser iterations per descent")
    learning_rate: float = param(1e-2, low=0.0, low_open=True, doc="the optimiser's (initial) step size")
    initial_const: float = param(1e-3, low=0.0, low_open=True, doc="c of the first descent")
    abort_early: bool = param(True, doc="end a descent when its loss stops falling")
    objective: str = param("f6", choices=tuple(OBJECTIVES), doc="the C&W objective f1–f7 (f6: logit margin)")
