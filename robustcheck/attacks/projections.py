"""Projections and norms the minimal-norm and bounded attacks share (per sample, flattened rows).

- `project_ball(delta, eps, norm)`: Euclidean projection onto the Lp ball of radius `eps` per row
  (L0: keep the ⌊eps⌋ largest |δ_i|; L1: Duchi et al., "Efficient Projections onto the
  l1-Ball for Learning in High Dimensions", ICML 2008; L2: rescale into the ball; L∞: clip).
- `project_l1_box(delta, eps, low, high)`: exact Euclidean projection onto the L1 ball
  intersected with the box `low ≤ δ ≤ high` (Croce & Hein, "Mind the box: l1-APGD for sparse
  adversarial attacks on image classifiers", ICML 2021, §3): δ_i = sign(u_i)·min((|u_i| − λ)₊, b_i)
  with b_i the room the box leaves in the direction of u_i and λ ≥ 0 the smallest value that
  meets the budget, found by bisection on the monotone budget curve.
- `norm_of` and `DUAL` give the norm per row and the dual exponent used by the linearised
  distance-to-boundary |f(x)| / ‖∇f(x)‖_q.
"""

from __future__ import annotations

import torch

#: The dual norm q of each norm p (1/p + 1/q = 1), as used in |f| / ‖∇f‖_q; L0 has none.
DUAL = {"l1": "linf", "l2": "l2", "linf": "l1"}

# Bisection steps on λ in `project_l1_box`: the budget curve is piecewise linear in λ, so 50
# halvings of [0, max|u|] bring λ to float32 resolution.
_L1_BOX_BISECTIONS = 50


def norm_of(delta: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-row norm of a batch (any shape, first axis = samples)."""
    flat = delta.flatten(1)
    if norm == "l0":
        return (flat != 0).sum(dim=1).to(flat.dtype)
    if norm == "l1":
        return flat.abs().sum(dim=1)
    if norm == "l2":
        return flat.norm(dim=1)
    if norm == "linf":
        return flat.abs().amax(dim=1) if flat.shape[1] else torch.zeros(len(flat), dtype=flat.dtype)
    raise ValueError(f"unknown norm {norm!r}")


def project_ball(delta: torch.Tensor, eps: torch.Tensor, norm: str) -> torch.Tensor:
    """`delta` projected onto the `norm` ball of per-row radius `eps` (same shape as `delta`)."""
    flat = delta.flatten(1)
    e = eps.to(flat.dtype)[:, None]
    if norm == "linf":
        out = torch.maximum(torch.minimum(flat, e), -e)
    elif norm == "l2":
        out = flat * torch.clamp(e / flat.norm(dim=1, keepdim=True).clamp_min(1e-12), max=1.0)
    elif norm == "l1":
        out = _project_l1_ball(flat, eps.to(flat.dtype))
    elif norm == "l0":
        k = eps.floor().long().clamp(0, flat.shape[1])
        order = flat.abs().argsort(dim=1, descending=True)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(flat.shape[1]).expand_as(order))
        out = torch.where(rank < k[:, None], flat, torch.zeros_like(flat))
    else:
        raise ValueError(f"unknown norm {norm!r}")
    return out.view_as(delta)


def _project_l1_ball(flat: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Duchi et al.'s sort-based projection onto the L1 ball (rows already inside are kept)."""
    inside = flat.abs().sum(dim=1) <= eps
    mu = flat.abs().sort(dim=1, descending=True).values
    cumsum = mu.cumsum(dim=1)
    ranks = torch.arange(1, flat.shape[1] + 1, dtype=flat.dtype)
    positive = mu * ranks > cumsum - eps[:, None]
    rho = (positive * ranks).amax(dim=1).long().clamp_min(1) - 1
    theta = ((cumsum.gather(1, rho[:, None]).squeeze(1) - eps) / (rho + 1).to(flat.dtype)).clamp_min(0)
    shrunk = torch.sign(flat) * (flat.abs() - theta[:, None]).clamp_min(0)
    return torch.where(inside[:, None], flat, shrunk)


def project_l1_box(delta: torch.Tensor, eps: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """The point of {‖δ‖₁ ≤ eps, low ≤ δ ≤ high} nearest to `delta` in L2 (per row; `low` ≤ 0 ≤ `high`
    elementwise, as when the box is [lo − x, hi − x] around a point x inside it)."""
    shape = delta.shape
    u = delta.flatten(1)
    room = torch.where(u >= 0, high.flatten(1), -low.flatten(1)).clamp_min(0)
    mag = u.abs()
    e = eps.to(u.dtype)

    def spent(lam: torch.Tensor) -> torch.Tensor:
        return torch.minimum((mag - lam[:, None]).clamp_min(0), room).sum(dim=1)

    lo_lam = torch.zeros(len(u), dtype=u.dtype)
    hi_lam = mag.amax(dim=1) if u.shape[1] else torch.zeros(len(u), dtype=u.dtype)
    needs = spent(lo_lam) > e
    for _ in range(_L1_BOX_BISECTIONS):
        mid = (lo_lam + hi_lam) / 2
        over = spent(mid) > e
        lo_lam = torch.where(over, mid, lo_lam)
        hi_lam = torch.where(over, hi_lam, mid)
    lam = torch.where(needs, hi_lam, torch.zeros_like(hi_lam))
    out = torch.sign(u) * torch.minimum((mag - lam[:, None]).clamp_min(0), room)
    return out.view(shape)
