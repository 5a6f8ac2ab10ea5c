"""The APGD iteration (Croce & Hein, "Reliable evaluation of adversarial robustness with an
ensemble of diverse parameter-free attacks", ICML 2020, Algorithm 1), for L∞, L2 and L1.

L∞ and L2 (the paper): from x⁽⁰⁾ (a random start in the ball), η⁽⁰⁾ = 2ε,

    z⁽ᵏ⁺¹⁾ = P_S(x⁽ᵏ⁾ + η⁽ᵏ⁾ s(∇f(x⁽ᵏ⁾)))                  s = sign (L∞) or g/‖g‖₂ (L2)
    x⁽ᵏ⁺¹⁾ = P_S(x⁽ᵏ⁾ + α(z⁽ᵏ⁺¹⁾ − x⁽ᵏ⁾) + (1 − α)(x⁽ᵏ⁾ − x⁽ᵏ⁻¹⁾))   α = 0.75 (1 on the first step)

with P_S the projection onto the ε-ball then the box. At the checkpoints w_j = ⌈p_j N⌉,
p₀ = 0, p₁ = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06), the step size halves and
the iterate restarts from the best point x_max when (1) the loss rose on fewer than ρ = 0.75 of
the steps since the last checkpoint, or (2) the step size was not reduced at the last checkpoint
and the best loss has not improved since.

L1 follows "Mind the box: l1-APGD for sparse adversarial attacks on image classifiers" (Croce &
Hein, ICML 2021) as in the authors' reference code: the step moves the k coordinates with the
largest |g| by η/k each in the gradient's sign (k a fraction of the features, first 20%),
no momentum, and the exact projection onto the L1 ball ∩ box (`projections.project_l1_box`);
η⁽⁰⁾ = ε; every ⌈0.04N⌉ steps the sparsity of x_max sets k (its L0 / 1.5) and η resets to ε
with a restart from x_max when that sparsity fell below 95% of the previous one, else η /= 1.5,
kept in [ε/10, ε].

Samples stop as soon as the replica calls an iterate adversarial (their outcome is decided),
so later steps cost only what is still unbroken; the oracle verifies the result afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from robustcheck.attacks.projections import project_ball, project_l1_box
from robustcheck.metrics import atleast_kd
from robustcheck.model import Model

#: f(logits, rows) -> per-sample loss to maximise, for the given rows of the batch.
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: done(logits, rows) -> per-sample success (the attack's criterion) for the given rows.
DoneFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: confirm(candidates, rows) -> the oracle's verdict per candidate (numpy, model dtype).
ConfirmFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

MOMENTUM = 0.75
RHO = 0.75
L1_SPARSITY_START = 0.2
L1_STEP_REDUCTION = 1.5
L1_MIN_STEP = 10.0


def checkpoints(steps: int) -> set[int]:
    """The iterations w_j = ⌈p_j·steps⌉ (j ≥ 1) at which the step size may halve."""
    p = [0.0, 0.22]
    while p[-1] < 1:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    return {math.ceil(q * steps) for q in p[1:] if math.ceil(q * steps) <= steps}


@dataclass
class Outcome:
    """Per sample: the adversarial point found (the input where none), and success."""

    x_adv: torch.Tensor
    success: torch.Tensor
    trace: np.ndarray


def random_start(x0: torch.Tensor, eps: torch.Tensor, norm: str, lo: float, hi: float,
                 generator: torch.Generator) -> torch.Tensor:
    """A start inside the ε-ball and the box, as in the reference code."""
    k = x0.dim()
    e = atleast_kd(eps, k)
    if norm == "linf":
        t = torch.rand(x0.shape, generator=generator, dtype=x0.dtype) * 2 - 1
        delta = e * t / atleast_kd(t.flatten(1).abs().amax(dim=1).clamp_min(1e-12), k)
    elif norm == "l2":
        t = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
        delta = e * t / atleast_kd(t.flatten(1).norm(dim=1).clamp_min(1e-12), k)
    else:
        t = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
        delta = project_l1_box(t, eps, lo - x0, hi - x0)
    return (x0 + delta).clamp(lo, hi)


def project(x0: torch.Tensor, cand: torch.Tensor, eps: torch.Tensor, norm: str, lo: float, hi: float) -> torch.Tensor:
    """P_S: onto the ε-ball of `norm` around x0, then into the box (exact for L1 ∩ box)."""
    if norm == "l1":
        return x0 + project_l1_box(cand - x0, eps, lo - x0, hi - x0)
    return (x0 + project_ball(cand - x0, eps, norm)).clamp(lo, hi)


def run_apgd(model: Model, x0: torch.Tensor, eps: torch.Tensor, norm: str, steps: int, loss_fn: LossFn,
             done_fn: DoneFn, start: torch.Tensor, confirm: ConfirmFn) -> Outcome:
    """One APGD run of `steps` iterations from `start`; a row stops once `done_fn` holds on the
    replica and `confirm` (onnxruntime) agrees."""
    lo, hi = model.input_range
    n, k = len(x0), x0.dim()
    rows = torch.arange(n)
    dtype = np.float64 if x0.dtype == torch.float64 else np.float32
    d = x0[0].numel()
    eta = eps * (1.0 if norm == "l1" else 2.0)
    found = torch.zeros(n, dtype=torch.bool)
    x_adv = x0.clone()
    trace = np.full((n, steps + 1), np.nan)

    def evaluate(xc: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        xc = xc.detach().requires_grad_(True)
        logits = model.torch_logits(xc)
        f = loss_fn(logits, r)
        (g,) = torch.autograd.grad(f.sum(), xc)
        return f.detach(), g, done_fn(logits.detach(), r)

    cur = start.clone()
    f, grad, ok = evaluate(cur, rows)
    trace[:, 0] = f.double().numpy()
    prev = cur.clone()
    x_max, f_max, g_max = cur.clone(), f.clone(), grad.clone()
    rises = torch.zeros(n)
    last_f = f.clone()
    f_max_at_check = f.clone()
    reduced_at_check = torch.ones(n, dtype=torch.bool)
    sparsity = torch.full((n,), L1_SPARSITY_START)
    sparse_old = torch.full((n,), float(d))
    marks = checkpoints(steps)
    l1_every = max(1, math.ceil(0.04 * steps))
    since = 0

    def settle(ok: torch.Tensor) -> torch.Tensor:
        """Record the successes of the active rows that onnxruntime confirms; returns the rows
        still active (a replica success by a float's width the oracle rejects goes on)."""
        if bool(ok.any()):
            sel = torch.nonzero(ok).flatten()
            cand = cur[sel].detach()
            confirmed = torch.from_numpy(confirm(cand.numpy().astype(dtype, copy=False), rows[sel].numpy()))
            ok = ok.clone()
            ok[sel[~confirmed]] = False
            x_adv[rows[sel[confirmed]]] = cand[confirmed]
            found[rows[sel[confirmed]]] = True
        return ~ok

    keep = settle(ok)
    for it in range(1, steps + 1):
        rows, cur, prev, grad, eta = rows[keep], cur[keep], prev[keep], grad[keep], eta[keep]
        x_max, f_max, g_max, rises, last_f = x_max[keep], f_max[keep], g_max[keep], rises[keep], last_f[keep]
        f_max_at_check, reduced_at_check = f_max_at_check[keep], reduced_at_check[keep]
        sparsity, sparse_old = sparsity[keep], sparse_old[keep]
        if not len(rows):
            break
        base, e = x0[rows], eps[rows]
        with torch.no_grad():
            if norm == "l1":
                nxt = project(base, cur + atleast_kd(eta, k) * _sparse_sign(grad, sparsity, d), e, norm, lo, hi)
            else:
                step = grad.sign() if norm == "linf" else grad / atleast_kd(
                    grad.flatten(1).norm(dim=1).clamp_min(1e-12), k)
                z = project(base, cur + atleast_kd(eta, k) * step, e, norm, lo, hi)
                a = MOMENTUM if it > 1 else 1.0
                nxt = project(base, cur + a * (z - cur) + (1 - a) * (cur - prev), e, norm, lo, hi)
            prev, cur = cur, nxt
        f, grad, ok = evaluate(cur, rows)
        trace[rows.numpy(), it] = f.double().numpy()
        with torch.no_grad():
            rises += (f > last_f).float()
            last_f = f
            better = f > f_max
            x_max[better], f_max[better], g_max[better] = cur[better], f[better], grad[better]
            since += 1
            restart = torch.zeros(len(rows), dtype=torch.bool)
            if norm != "l1" and it in marks:
                cond1 = rises < RHO * since
                cond2 = ~reduced_at_check & (f_max_at_check >= f_max)
                restart = cond1 | cond2
                eta = torch.where(restart, eta / 2, eta)
                reduced_at_check, f_max_at_check = restart, f_max.clone()
                rises.zero_()
                since = 0
            elif norm == "l1" and it % l1_every == 0:
                now = (x_max - x0[rows]).flatten(1).ne(0).sum(dim=1).float()
                restart = now / sparse_old < 0.95
                sparsity = now / d / L1_STEP_REDUCTION
                eta = torch.where(restart, eps[rows], eta / L1_STEP_REDUCTION)
                eta = torch.minimum(torch.maximum(eta, eps[rows] / L1_MIN_STEP), eps[rows])
                sparse_old = now
            if bool(restart.any()):
                cur[restart], grad[restart] = x_max[restart], g_max[restart]
        keep = settle(ok)
    return Outcome(x_adv, found, trace)


def _sparse_sign(grad: torch.Tensor, sparsity: torch.Tensor, d: int) -> torch.Tensor:
    """sign(g) on the ⌈sparsity·d⌉ largest |g_i| of each row, normalised to unit L1 norm."""
    flat = grad.flatten(1).abs()
    keep = (sparsity * d).ceil().clamp(1, d).long()
    threshold = flat.sort(dim=1, descending=True).values.gather(1, (keep - 1)[:, None])
    chosen = (flat >= threshold) & (flat > 0)
    step = torch.where(chosen, grad.flatten(1).sign(), torch.zeros_like(flat))
    return (step / step.abs().sum(dim=1, keepdim=True).clamp_min(1.0)).view_as(grad)
