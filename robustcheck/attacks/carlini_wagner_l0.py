"""Carlini & Wagner's L0 attack ("Towards Evaluating the Robustness of Neural Networks", S&P 2017):
L2-penalised descents on a shrinking set of pixels (see CarliniWagnerL0)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from robustcheck.attacks.base import BatchOutput
from robustcheck.attacks.carlini_wagner import labels_and_mode
from robustcheck.attacks.descents import DescentAttack, TanhBox
from robustcheck.attacks.objectives import objective, succeeded
from robustcheck.attacks.params import MAX_ITERATIONS, override, param
from robustcheck.metrics import channel_axis, margin
from robustcheck.model import Model


@dataclass(kw_only=True)
class CarliniWagnerL0(DescentAttack):
    """C&W L0: repeated L2-penalised descents on a shrinking set of pixels that may change.

    Each round warm starts from the sample's previous adversarial example, with the frozen
    pixels reset to the original, and runs Adam on c·f + ‖δ‖²₂ until the first iterate that
    succeeds (the reference's abort), doubling c on failure up to `largest_const`; c carries
    over between rounds. After a success the pixels are scored by |δ_i·∇g_i| summed over
    channels, g being the logit margin (unclamped, so its gradient exists at the success
    point), and the lowest-scoring changeable pixels are frozen, up to ⌈0.3·√(#changed)⌉ of
    them, stopping after the first whose score exceeds `important_change`. A sample stops when
    a round fails for every c; its last success is kept.

    Batched without lockstep: every sample runs its own rounds, c and Adam state, so a sample
    in its last, failing round does not hold up the others. Speed-up over the reference: a
    descent whose loss stops improving (checked every 10% of `max_iterations`) gives up on its
    c early, so a c far too small does not cost the full `max_iterations`.
    """

    name = "cw-l0"
    norm = "l0"

    largest_const: float = override(DescentAttack, "largest_const", 2e6)
    important_change: float = param(0.01, low=0.0, doc="freezing stops after the first pixel scoring above this")
    max_rounds: int = param(1000, low=1, high=MAX_ITERATIONS, doc="successful rounds (freezing steps) per sample")

    def run_batch(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                  generator: torch.Generator) -> BatchOutput:
        classes, targeted = labels_and_mode(y, targets)
        f_of = objective(self.objective)
        x0 = torch.from_numpy(x).float()
        n = len(x0)
        box = TanhBox(*model.input_range)
        pixels = _PixelView(x0.shape, channel_axis(model.input_spec.layout))
        valid = torch.ones(n, pixels.count, dtype=torch.bool)
        best = x0.clone()
        alive = torch.ones(n, dtype=torch.bool)
        rounds = torch.zeros(n, dtype=torch.long)
        descents = self.descents(box.to_w(x0))
        const = descents.const
        while bool(alive.any()):
            a = torch.nonzero(alive).flatten()
            w = descents.params(a)
            adv = x0[a] + (box.to_x(w) - x0[a]) * pixels.expand(valid[a])
            logits = model.torch_logits(adv)
            f = f_of(logits, classes[a], targeted, 0.0)
            loss = const[a] * f + (adv - x0[a]).flatten(1).pow(2).sum(dim=1)
            loss.sum().backward()
            grad = w.grad
            assert grad is not None
            with torch.no_grad():
                descents.record(a, f)
                ok = succeeded(logits.detach(), classes[a], targeted, 0.0)
                # A success ends the round: keep it, freeze pixels, warm start the next round.
                won = a[ok]
                if len(won):
                    best[won] = adv.detach()[ok]
                    rounds[won] += 1
                    score, changed = self._scores(model, x0[won], best[won], classes[won], targeted, pixels)
                    valid[won] = self._freeze(valid[won], score, changed)
                    alive[won] &= valid[won].any(dim=1) & (rounds[won] < self.max_rounds)
                    descents.restart(won, box.to_w(best[won]))
                # A descent that ran out or stopped improving fails: c has doubled; restart the round.
                lost = descents.advance(a[~ok], grad[~ok], loss.detach()[~ok])
                if len(lost):
                    alive[lost] &= const[lost] <= self.largest_const
                    descents.restart(lost, box.to_w(best[lost]))
        return BatchOutput(best.numpy(), loss_trace=descents.trace(),
                           extras={"const": const.numpy().astype(np.float64),
                                   "rounds": rounds.numpy().astype(np.float64)})

    def _scores(self, model: Model, x0: torch.Tensor, adv: torch.Tensor, classes: torch.Tensor, targeted: bool,
                pixels: _PixelView) -> tuple[torch.Tensor, torch.Tensor]:
        """Per pixel: |δ·∇(logit margin)| summed over channels, and whether the pixel changed."""
        with torch.enable_grad():
            adv = adv.clone().requires_grad_(True)
            gap = margin(model.torch_logits(adv), classes, classes if targeted else None)
            (grad,) = torch.autograd.grad(gap.sum(), adv)
        delta = adv.detach() - x0
        return pixels.reduce((delta * grad).abs()), pixels.reduce(delta.abs()) > 1e-4

    def _freeze(self, valid: torch.Tensor, score: torch.Tensor, changed: torch.Tensor) -> torch.Tensor:
        """The reference's freezing rule, vectorised over the batch."""
        order = torch.argsort(torch.where(valid, score, torch.full_like(score, math.inf)), dim=1, stable=True)
        ranked = score.gather(1, order)
        limit = torch.clamp((0.3 * changed.sum(dim=1).float().sqrt()).ceil().long(), min=1)
        # Freeze up to and including the first pixel that mattered, at most `limit`, only valid ones.
        mattered = ranked > self.important_change
        first = torch.where(mattered.any(dim=1), mattered.float().argmax(dim=1) + 1,
                            torch.full_like(limit, score.shape[1]))
        count = torch.minimum(torch.minimum(limit, first), valid.sum(dim=1))
        positions = torch.arange(score.shape[1]).expand_as(order)
        out = valid.clone()
        out.scatter_(1, order, valid.gather(1, order) & (positions >= count[:, None]))
        return out


class _PixelView:
    """Maps between an input batch and one value per pixel (all channels of a pixel together)."""

    def __init__(self, shape: torch.Size, channel_axis: int | None) -> None:
        self.shape, self.channel_axis = tuple(shape), channel_axis
        per_sample = int(np.prod(shape[1:]))
        self.count = per_sample // shape[channel_axis] if channel_axis is not None else per_sample

    def reduce(self, t: torch.Tensor) -> torch.Tensor:
        if self.channel_axis is not None:
            t = t.sum(dim=self.channel_axis)
        return t.flatten(1)

    def expand(self, valid: torch.Tensor) -> torch.Tensor:
        shape = (len(valid),) + self.shape[1:]
        if self.channel_axis is None:
            return valid.float().view(shape)
        squeezed = list(shape)
        squeezed[self.channel_axis] = 1
        return valid.float().view(squeezed).expand(shape)
