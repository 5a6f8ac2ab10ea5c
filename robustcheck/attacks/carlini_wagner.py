"""Carlini & Wagner attacks: "Towards Evaluating the Robustness of Neural Networks" (S&P 2017).

All three optimise on the replica's logits (objective f6 by default, see objectives.py), keep
the input box through a tanh change of variables, and are batched over samples. The base
class verifies every returned candidate with onnxruntime.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from robustcheck.attacks.base import Attack, BatchOutput
from robustcheck.attacks.objectives import objective as get_objective
from robustcheck.attacks.objectives import succeeded
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

    The reference schedule: τ starts at the full range and shrinks ×`decrease_factor` (0.9),
    also to the largest perturbation actually used, down to 1/256 of the range; each τ warm
    starts from the previous solution; c starts at `initial_const` and doubles on failure up
    to `largest_const` (20). Batched: every sample keeps its own τ and c.
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
        const = torch.full((n,), float(self.initial_const))
        active = torch.ones(n, dtype=torch.bool)
        best = x0.clone()
        best_linf = torch.full((n,), math.inf)
        start = x0.clone()
        min_tau = (hi - lo) / 256
        rows: list[torch.Tensor] = []
        while bool(active.any()):
            w = box.to_w(start).requires_grad_(True)
            optimizer = _adam(w, self.learning_rate)
            done = torch.zeros(n, dtype=torch.bool)
            for _ in range(self.max_iterations):
                adv = box.to_x(w)
                logits = model.torch_logits(adv)
                f = self._f(logits, classes, targeted, self.confidence)
                penalty = torch.relu((adv - x0).abs() - tau.view(shape)).flatten(1).sum(dim=1)
                loss = (const * f + penalty)[active & ~done].sum()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                with torch.no_grad():
                    rows.append(f.detach())
                    done |= (f.detach() <= 0) & (penalty.detach() == 0)
                    if bool((done | ~active).all()):
                        break
            with torch.no_grad():
                adv = box.to_x(w.detach())
                ok = succeeded(model.torch_logits(adv), classes, targeted, self.confidence) & active
                linf = (adv - x0).flatten(1).abs().amax(dim=1)
                better = ok & (linf < best_linf)
                best = torch.where(better.view(shape), adv, best)
                best_linf = torch.where(better, linf, best_linf)
                start = torch.where(ok.view(shape), adv, start)
                # Success: shrink τ (to the perturbation actually used, then by the factor).
                tau = torch.where(ok, torch.minimum(tau, linf) * self.decrease_factor, tau)
                # Failure: more weight on f; give up past the largest c.
                const = torch.where(ok | ~active, const, const * self.const_factor)
                active &= ~((~ok) & (const > self.largest_const))
                active &= tau >= min_tau
        trace = torch.stack(rows[-50:], dim=1).numpy().astype(np.float64) if rows else None
        return BatchOutput(best.numpy(), loss_trace=trace)


class CarliniWagnerL0(Attack):
    """C&W L0: repeated L2 attacks on a shrinking set of pixels that may change.

    After each successful L2 solve, pixels that did not change are fixed, and then the least
    important changed ones (smallest |δ_i·∇f_i|, summed over channels) are fixed too — up to
    0.3·√(#changed) of them, stopping at the first that mattered (score > 0.01), as in the
    reference. The loop ends for a sample when the L2 solve fails; its last success is kept.
    Multi-channel images are treated per pixel (all channels together), using the layout.
    """

    name = "cw-l0"
    norm = "l0"

    def __init__(
        self,
        *,
        binary_search_steps: int = 5,
        max_iterations: int = 1000,
        learning_rate: float = 1e-2,
        initial_const: float = 1e-3,
        max_rounds: int = 100,
        objective: str = "f6",
        batch_size: int = 100,
    ) -> None:
        super().__init__(batch_size=batch_size)
        self.binary_search_steps = binary_search_steps
        self.max_iterations = max_iterations
        self.learning_rate = learning_rate
        self.initial_const = initial_const
        self.max_rounds = max_rounds
        self.objective = objective

    def _run_batch(self, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray | None,
                   generator: torch.Generator) -> BatchOutput:
        classes, targeted = _labels(y, targets)
        x0 = torch.from_numpy(x).float()
        n = len(x0)
        channel_axis = {"NCHW": 1, "NHWC": 3}.get(model.input_spec.layout or "", None)
        solver = CarliniWagnerL2(binary_search_steps=self.binary_search_steps, max_iterations=self.max_iterations,
                                 learning_rate=self.learning_rate, initial_const=self.initial_const,
                                 objective=self.objective)
        mask = torch.ones_like(x0)
        best = x0.clone()
        alive = torch.ones(n, dtype=torch.bool)
        shape = (-1,) + (1,) * (x0.dim() - 1)
        for _ in range(self.max_rounds):
            idx = torch.nonzero(alive).flatten()
            if not len(idx):
                break
            solution = l2_search(model, x0[idx], classes[idx], targeted, solver, mask=mask[idx], start=best[idx])
            ok = solution.found
            best[idx[ok]] = solution.best[ok]
            alive[idx[~ok]] = False
            if not bool(ok.any()):
                break
            keep = idx[ok]
            adv = solution.best[ok].clone().requires_grad_(True)
            f = solver._f(model.torch_logits(adv), classes[keep], targeted, 0.0)
            (grad,) = torch.autograd.grad(f.sum(), adv)
            with torch.no_grad():
                delta = adv.detach() - x0[keep]
                score = (delta * grad).abs()
                changed = delta.abs() > 1e-4
                if channel_axis is not None:
                    score = score.sum(dim=channel_axis, keepdim=True).expand_as(delta)
                    changed = changed.any(dim=channel_axis, keepdim=True).expand_as(delta)
                new_mask = mask[keep] * changed.float()
                for row in range(len(keep)):
                    flat_mask = new_mask[row].reshape(-1)
                    flat_score = score[row].reshape(-1)
                    count = int(changed[row].reshape(-1).sum())
                    limit = max(1, int(0.3 * math.sqrt(count)))
                    order = torch.argsort(torch.where(flat_mask > 0, flat_score, torch.full_like(flat_score, math.inf)))
                    frozen = 0
                    for e in order.tolist():
                        if flat_mask[e] == 0:
                            break
                        group = _pixel_group(e, delta[row].shape, channel_axis)
                        flat_mask[group] = 0
                        frozen += 1
                        if float(flat_score[e]) > 0.01 or frozen >= limit:
                            break
                    new_mask[row] = flat_mask.reshape(new_mask[row].shape)
                mask[keep] = new_mask
                alive[keep] &= mask[keep].flatten(1).sum(dim=1) > 0
        return BatchOutput(best.numpy())


def _pixel_group(flat_index: int, shape: torch.Size, channel_axis: int | None) -> list[int]:
    """Flat indices of every channel of the pixel holding `flat_index` (itself when no layout)."""
    if channel_axis is None:
        return [flat_index]
    coords = list(np.unravel_index(flat_index, tuple(shape)))
    out = []
    for c in range(shape[channel_axis - 1]):
        coords[channel_axis - 1] = c
        out.append(int(np.ravel_multi_index(coords, tuple(shape))))
    return out
