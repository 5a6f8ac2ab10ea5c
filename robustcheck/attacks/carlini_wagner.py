"""Carlini & Wagner attacks: "Towards Evaluating the Robustness of Neural Networks" (S&P 2017).

All three optimise on the replica's logits (objective f6 by default, see objectives.py), keep
the input box through a tanh change of variables, and are batched over samples. The base
class verifies every returned candidate with onnxruntime.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import torch

from robustcheck.attacks.base import Attack, BatchOutput
from robustcheck.attacks.objectives import objective as get_objective
from robustcheck.attacks.objectives import f6, succeeded
from robustcheck.model import Model

# Bounds of the binary search over c, as in the reference implementation.
UPPER_UNSET = 1e10


class _Box:
    """tanh change of variables between w ∈ ℝ and x ∈ [lo, hi]."""

    def __init__(self, lo: float, hi: float) -> None:
        self.mid, self.half = (hi + lo) / 2, (hi - lo) / 2

    def to_x(self, w: torch.Tensor) -> torch.Tensor:
        return torch.tanh(w) * self.half + self.mid

    def to_w(self, x: torch.Tensor) -> torch.Tensor:
        # Clamp away from ±1 so that atanh is finite for inputs on the box edge.
        return torch.atanh(torch.clamp((x - self.mid) / self.half, -1 + 1e-6, 1 - 1e-6))


def _adam(w: torch.Tensor, lr: float) -> torch.optim.Adam:
    """Adam over the whole batch's w; the fused kernel where this torch has it (same maths, one pass)."""
    try:
        return torch.optim.Adam([w], lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam([w], lr=lr)


def _labels(y: np.ndarray, targets: np.ndarray | None) -> tuple[torch.Tensor, bool]:
    return (torch.from_numpy(y), False) if targets is None else (torch.from_numpy(targets), True)


class CarliniWagnerL2(Attack):
    """C&W L2: minimise ‖x′−x‖²₂ + c·f(x′) with Adam, binary search over c per sample.

    Defaults are the reference values (9 search steps × 10,000 iterations, lr 1e-2, κ 0,
    c₀ 1e-3, early abort). `CarliniWagnerL2.fast()` is the everyday preset (5 × 1,000) whose
    strength the benchmarks measure. `objective` selects f1–f7 (default f6, the logit margin).
    """

    name = "cw-l2"
    norm = "l2"

    def __init__(
        self,
        *,
        binary_search_steps: int = 9,
        max_iterations: int = 10_000,
        learning_rate: float = 1e-2,
        confidence: float = 0.0,
        initial_const: float = 1e-3,
        abort_early: bool = True,
        objective: str = "f6",
        batch_size: int = 100,
    ) -> None:
        super().__init__(batch_size=batch_size)
        self.binary_search_steps = binary_search_steps
        self.max_iterations = max_iterations
        self.learning_rate = learning_rate
        self.confidence = confidence
        self.initial_const = initial_const
        self.abort_early = abort_early
        self.objective = objective
        self._f = get_objective(objective)

    @classmethod
    def fast(cls, **overrides: object) -> CarliniWagnerL2:
        """The everyday preset: 5 search steps × 1,000 iterations (strength in benchmarks/README.md)."""
        return cls(**{"binary_search_steps": 5, "max_iterations": 1000, **overrides})  # type: ignore[arg-type]

    def _run_batch(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                   generator: torch.Generator) -> BatchOutput:
        classes, targeted = _labels(y, targets)
        x0 = torch.from_numpy(x).float()
        solution = l2_search(model, x0, classes, targeted, self, mask=None)
        return BatchOutput(solution.best.numpy(), loss_trace=solution.trace,
                           extras={"const": solution.const.numpy().astype(np.float64)})


class _Solution:
    def __init__(self, best: torch.Tensor, best_l2: torch.Tensor, const: torch.Tensor, trace: np.ndarray | None):
        self.best, self.best_l2, self.const, self.trace = best, best_l2, const, trace

    @property
    def found(self) -> torch.Tensor:
        return torch.isfinite(self.best_l2)


def l2_search(model: Model, x0: torch.Tensor, classes: torch.Tensor, targeted: bool, p: CarliniWagnerL2,
              mask: torch.Tensor | None, start: torch.Tensor | None = None) -> _Solution:
    """The C&W L2 binary search over c; `mask` (1 = may change) restricts the perturbation (L0)."""
    n = len(x0)
    box = _Box(*model.input_range)
    w0 = box.to_w(x0 if start is None else start)
    const = torch.full((n,), float(p.initial_const))
    lower = torch.zeros(n)
    upper = torch.full((n,), UPPER_UNSET)
    best_l2 = torch.full((n,), math.inf)
    best = x0.clone()
    trace: np.ndarray | None = None
    check_every = max(1, p.max_iterations // 10)
    for _ in range(p.binary_search_steps):
        w = w0.clone().requires_grad_(True)
        optimizer = _adam(w, p.learning_rate)
        found = torch.zeros(n, dtype=torch.bool)
        previous = math.inf
        rows: list[torch.Tensor] = []
        for iteration in range(p.max_iterations):
            adv = box.to_x(w)
            if mask is not None:
                adv = x0 + (adv - x0) * mask
            logits = model.torch_logits(adv)
            l2 = (adv - x0).flatten(1).pow(2).sum(dim=1)
            f = p._f(logits, classes, targeted, p.confidence)
            loss = (l2 + const * f).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                rows.append(f.detach())
                ok = succeeded(logits.detach(), classes, targeted, p.confidence)
                better = ok & (l2.detach() < best_l2)
                if bool(better.any()):
                    best_l2[better] = l2.detach()[better]
                    best[better] = adv.detach()[better]
                found |= ok
            if p.abort_early and iteration % check_every == 0:  # from iteration 0, as the reference
                current = float(loss.detach())
                if current > previous * 0.9999:
                    break
                previous = current
        trace = torch.stack(rows, dim=1).numpy().astype(np.float64) if rows else None
        upper = torch.where(found, torch.minimum(upper, const), upper)
        lower = torch.where(found, lower, torch.maximum(lower, const))
        const = torch.where(upper < UPPER_UNSET, (lower + upper) / 2, const * 10)
    return _Solution(best, best_l2, torch.where(upper < UPPER_UNSET, upper, const), trace)


class CarliniWagnerLinf(Attack):
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

    def __init__(
        self,
        *,
        max_iterations: int = 1000,
        learning_rate: float = 5e-3,
        initial_const: float = 1e-5,
        largest_const: float = 20.0,
        decrease_factor: float = 0.9,
        const_factor: float = 2.0,
        confidence: float = 0.0,
        abort_early: bool = True,
        objective: str = "f6",
        batch_size: int = 100,
    ) -> None:
        super().__init__(batch_size=batch_size)
        self.max_iterations = max_iterations
        self.learning_rate = learning_rate
        self.initial_const = initial_const
        self.largest_const = largest_const
        self.decrease_factor = decrease_factor
        self.const_factor = const_factor
        self.confidence = confidence
        self.abort_early = abort_early
        self.objective = objective
        self._f = get_objective(objective)

    def _run_batch(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                   generator: torch.Generator) -> BatchOutput:
        classes, targeted = _labels(y, targets)
        x0 = torch.from_numpy(x).float()
        lo, hi = model.input_range
        box = _Box(lo, hi)
        n = len(x0)
        shape = (-1,) + (1,) * (x0.dim() - 1)
        tau = torch.full((n,), float(hi - lo))
        active = torch.ones(n, dtype=torch.bool)
        best = x0.clone()
        best_linf = torch.full((n,), math.inf)
        start = x0.clone()
        min_tau = (hi - lo) / 256
        descents = _Descents(box.to_w(x0), self)
        const = descents.const
        while bool(active.any()):
            a = torch.nonzero(active).flatten()
            w = descents.params(a)
            adv = box.to_x(w)
            logits = model.torch_logits(adv)
            f = self._f(logits, classes[a], targeted, self.confidence)
            penalty = torch.relu((adv - x0[a]).abs() - tau[a].view(shape)).flatten(1).sum(dim=1)
            loss = const[a] * f + penalty
            loss.sum().backward()
            with torch.no_grad():
                descents.record(a, f)
                # The reference's test: loss below 1e-4·c, and the label really changed.
                ok = (loss.detach() < 1e-4 * const[a]) & succeeded(logits.detach(), classes[a], targeted, self.confidence)
                won = a[ok]
                if len(won):
                    got = adv.detach()[ok]
                    linf = (got - x0[won]).flatten(1).abs().amax(dim=1)
                    better = linf < best_linf[won]
                    best[won[better]] = got[better]
                    best_linf[won[better]] = linf[better]
                    start[won] = got
                    tau[won] = torch.minimum(tau[won], linf) * self.decrease_factor
                    active[won] &= tau[won] >= min_tau
                    descents.restart(won, box.to_w(got))
                lost = descents.advance(a[~ok], w.grad[~ok], loss.detach()[~ok])
                if len(lost):
                    active[lost] &= const[lost] < self.largest_const
                    descents.restart(lost, box.to_w(start[lost]))
        return BatchOutput(best.numpy(), loss_trace=descents.trace(), extras={"const": const.numpy().astype(np.float64)})


class CarliniWagnerL0(Attack):
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

    def __init__(
        self,
        *,
        max_iterations: int = 1000,
        learning_rate: float = 1e-2,
        initial_const: float = 1e-3,
        largest_const: float = 2e6,
        const_factor: float = 2.0,
        important_change: float = 0.01,
        max_rounds: int = 1000,
        abort_early: bool = True,
        objective: str = "f6",
        batch_size: int = 100,
    ) -> None:
        super().__init__(batch_size=batch_size)
        self.max_iterations = max_iterations
        self.learning_rate = learning_rate
        self.initial_const = initial_const
        self.largest_const = largest_const
        self.const_factor = const_factor
        self.important_change = important_change
        self.max_rounds = max_rounds
        self.abort_early = abort_early
        self.objective = objective
        self._f = get_objective(objective)

    def _run_batch(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                   generator: torch.Generator) -> BatchOutput:
        classes, targeted = _labels(y, targets)
        x0 = torch.from_numpy(x).float()
        n = len(x0)
        box = _Box(*model.input_range)
        pixels = _PixelView(x0.shape, {"NCHW": 1, "NHWC": 3}.get(model.input_spec.layout or "", None))
        valid = torch.ones(n, pixels.count, dtype=torch.bool)
        best = x0.clone()
        alive = torch.ones(n, dtype=torch.bool)
        rounds = torch.zeros(n, dtype=torch.long)
        descents = _Descents(box.to_w(x0), self)
        const = descents.const
        while bool(alive.any()):
            a = torch.nonzero(alive).flatten()
            w = descents.params(a)
            adv = x0[a] + (box.to_x(w) - x0[a]) * pixels.expand(valid[a])
            logits = model.torch_logits(adv)
            f = self._f(logits, classes[a], targeted, 0.0)
            loss = const[a] * f + (adv - x0[a]).flatten(1).pow(2).sum(dim=1)
            loss.sum().backward()
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
                lost = descents.advance(a[~ok], w.grad[~ok], loss.detach()[~ok])
                if len(lost):
                    alive[lost] &= const[lost] <= self.largest_const
                    descents.restart(lost, box.to_w(best[lost]))
        return BatchOutput(best.numpy(), loss_trace=descents.trace(),
                           extras={"const": const.numpy().astype(np.float64), "rounds": rounds.numpy().astype(np.float64)})

    def _scores(self, model: Model, x0: torch.Tensor, adv: torch.Tensor, classes: torch.Tensor, targeted: bool,
                pixels: _PixelView) -> tuple[torch.Tensor, torch.Tensor]:
        """Per pixel: |δ·∇(logit margin)| summed over channels, and whether the pixel changed."""
        with torch.enable_grad():
            adv = adv.clone().requires_grad_(True)
            margin = f6(model.torch_logits(adv), classes, targeted, math.inf)
            (grad,) = torch.autograd.grad(margin.sum(), adv)
        delta = adv.detach() - x0
        return pixels.reduce((delta * grad).abs()), pixels.reduce(delta.abs()) > 1e-4

    def _freeze(self, valid: torch.Tensor, score: torch.Tensor, changed: torch.Tensor) -> torch.Tensor:
        """The reference's freezing rule, vectorised over the batch."""
        order = torch.argsort(torch.where(valid, score, torch.full_like(score, math.inf)), dim=1, stable=True)
        ranked = score.gather(1, order)
        limit = torch.clamp((0.3 * changed.sum(dim=1).float().sqrt()).ceil().long(), min=1)
        # Freeze up to and including the first pixel that mattered, at most `limit`, only valid ones.
        mattered = ranked > self.important_change
        first = torch.where(mattered.any(dim=1), mattered.float().argmax(dim=1) + 1, torch.full_like(limit, score.shape[1]))
        count = torch.minimum(torch.minimum(limit, first), valid.sum(dim=1))
        positions = torch.arange(score.shape[1]).expand_as(order)
        out = valid.clone()
        out.scatter_(1, order, valid.gather(1, order) & (positions >= count[:, None]))
        return out


class _PerSampleAdam:
    """Adam (torch's defaults) whose state and step count restart per sample."""

    def __init__(self, w: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.w, self.lr, self.betas, self.eps = w.clone(), lr, betas, eps
        self.m = torch.zeros_like(w)
        self.v = torch.zeros_like(w)
        self.t = torch.zeros(len(w), dtype=torch.long)

    def step(self, rows: torch.Tensor, grad: torch.Tensor) -> None:
        b1, b2 = self.betas
        self.t[rows] += 1
        shape = (-1,) + (1,) * (grad.dim() - 1)
        t = self.t[rows].double()
        m = self.m[rows].mul_(b1).add_(grad, alpha=1 - b1)
        v = self.v[rows].mul_(b2).addcmul_(grad, grad, value=1 - b2)
        self.m[rows], self.v[rows] = m, v
        step = (self.lr / (1 - b1 ** t)).float().view(shape)
        denom = (v / (1 - b2 ** t).float().view(shape)).sqrt_().add_(self.eps)
        self.w[rows] -= step * m / denom

    def reset(self, rows: torch.Tensor, w: torch.Tensor) -> None:
        self.w[rows] = w
        self.m[rows] = 0
        self.v[rows] = 0
        self.t[rows] = 0


class _Descents:
    """Per-sample Adam descents on c·f + penalty that end and restart independently: the
    bookkeeping C&W L∞ and L0 share. Each sample has its own Adam state, its own c (from the
    attack's `initial_const`) and its own abort-early check; the last 50 values of f are kept
    as the loss trace (NaN for samples not descending at that step)."""

    TRACE_STEPS = 50

    def __init__(self, w0: torch.Tensor, attack: CarliniWagnerLinf | CarliniWagnerL0) -> None:
        n = len(w0)
        self.adam = _PerSampleAdam(w0, attack.learning_rate)
        self.const = torch.full((n,), float(attack.initial_const))
        self.previous = torch.full((n,), math.inf)
        self.max_iterations = attack.max_iterations
        self.check_every = max(1, attack.max_iterations // 10)
        self.abort_early = attack.abort_early
        self.const_factor = attack.const_factor
        self._rows: deque[torch.Tensor] = deque(maxlen=self.TRACE_STEPS)

    def params(self, rows: torch.Tensor) -> torch.Tensor:
        """The current w of `rows`, as a fresh leaf to differentiate."""
        return self.adam.w[rows].clone().requires_grad_(True)

    def record(self, rows: torch.Tensor, f: torch.Tensor) -> None:
        row = torch.full((len(self.const),), math.nan)
        row[rows] = f.detach()
        self._rows.append(row)

    def advance(self, rows: torch.Tensor, grad: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
        """One Adam step for `rows`; returns those whose descent has now failed (out of
        iterations, or loss no longer improving at a check) with their c already multiplied."""
        self.adam.step(rows, grad)
        t = self.adam.t[rows]
        at_check = (t % self.check_every == 0) if self.abort_early else torch.zeros_like(t, dtype=torch.bool)
        stalled = at_check & (loss > self.previous[rows] * 0.9999)
        self.previous[rows[at_check]] = loss[at_check]
        lost = rows[stalled | (t >= self.max_iterations)]
        self.const[lost] *= self.const_factor
        return lost

    def restart(self, rows: torch.Tensor, w: torch.Tensor) -> None:
        """Start a new descent for `rows` from `w`, with fresh Adam state."""
        self.adam.reset(rows, w)
        self.previous[rows] = math.inf

    def trace(self) -> np.ndarray | None:
        return torch.stack(list(self._rows), dim=1).numpy().astype(np.float64) if self._rows else None


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
