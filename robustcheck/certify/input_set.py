"""The input region: an L∞, L2 or L1 ball around a sample, intersected with the model's input box.

`min_linear(A)` is the exact (L∞, L1) or dual-certified (L2) minimum of each row of A·x over
the region, which is where CROWN's linear bounds become numbers. Every value it returns is a
true lower bound: the L2 case maximises the Lagrange dual over its multiplier, and any
multiplier gives a valid bound (weak duality), so stopping the search early costs tightness only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

Tensor = torch.Tensor

CERTIFY_NORMS = ("linf", "l2", "l1")
_DUAL_STEPS = 48


@dataclass(frozen=True)
class InputSet:
    """{x : ‖x − center‖ ≤ epsilon, low ≤ x ≤ high} (tensors of the input's shape, float64)."""

    center: Tensor
    epsilon: float
    norm: str
    low: Tensor
    high: Tensor

    def __post_init__(self) -> None:
        if self.norm not in CERTIFY_NORMS:
            raise ValueError(f"norm must be one of {', '.join(CERTIFY_NORMS)}; got {self.norm!r}")
        if not self.epsilon >= 0:
            raise ValueError(f"epsilon must be ≥ 0; got {self.epsilon!r}")

    @classmethod
    def around(cls, center: Tensor, epsilon: float, norm: str, box: tuple[float, float]) -> InputSet:
        c = center.to(torch.float64)
        low = torch.full_like(c, float(box[0]))
        high = torch.full_like(c, float(box[1]))
        return cls(c.clamp(low, high), float(epsilon), norm, low, high)

    def bounding_box(self) -> tuple[Tensor, Tensor]:
        """The smallest box holding the region (exact for L∞)."""
        return (torch.maximum(self.center - self.epsilon, self.low),
                torch.minimum(self.center + self.epsilon, self.high))

    def min_linear(self, rows: Tensor) -> Tensor:
        """min over the region of rows·x, per row; `rows` is (S, *input_shape)."""
        flat = rows.reshape(len(rows), -1)
        return min_linear(self.norm, self.epsilon, flat, self.center.reshape(-1), self.low.reshape(-1),
                          self.high.reshape(-1))


def min_linear(norm: str, eps: float, a: Tensor, center: Tensor, low: Tensor, high: Tensor) -> Tensor:
    """min of a·x over {‖x − center‖ ≤ eps, low ≤ x ≤ high} per row of `a` (S, n); `center`, `low`
    and `high` are (n,) or per row (S, n). Coordinates where a is 0 never matter, so a window of
    the input (patches) gives the same value as the whole input."""
    base = (a * center).sum(dim=-1)
    if norm == "linf":
        lo, hi = torch.maximum(center - eps, low), torch.minimum(center + eps, high)
        return (a.clamp(min=0) * lo + a.clamp(max=0) * hi).sum(dim=-1)
    down, up = low - center, high - center
    if norm == "l1":
        return base + _min_l1(a, down, up, eps)
    return base + _min_l2(a, down, up, eps)


def _min_l1(a: Tensor, down: Tensor, up: Tensor, eps: float) -> Tensor:
    """Exact min a·δ over ‖δ‖₁ ≤ eps, down ≤ δ ≤ up: a fractional knapsack, filled greedily."""
    cap = torch.where(a < 0, up, -down).expand_as(a)  # how far each coordinate can move usefully
    gain, order = a.abs().sort(dim=1, descending=True)
    cap = torch.gather(cap, 1, order)
    before = torch.cumsum(cap, dim=1) - cap
    amount = torch.clamp(eps - before, min=0.0)
    amount = torch.minimum(amount, cap)
    return -(gain * amount).sum(dim=1)


def _min_l2(a: Tensor, down: Tensor, up: Tensor, eps: float) -> Tensor:
    """A lower bound on min a·δ over ‖δ‖₂ ≤ eps, down ≤ δ ≤ up, tight up to the dual search.

    g(λ) = min_{down ≤ δ ≤ up} a·δ + λ(‖δ‖² − eps²) is attained at δ = clip(−a/(2λ)); it is a
    lower bound for every λ ≥ 0. λ is bisected (geometrically) on the sign of ‖δ(λ)‖² − eps².
    """
    def dual(lam: Tensor) -> tuple[Tensor, Tensor]:
        delta = torch.clamp(-a / (2 * lam[:, None]), down, up)
        sq = (delta * delta).sum(dim=1)
        return (a * delta).sum(dim=1) + lam * (sq - eps * eps), sq

    corner = torch.where(a < 0, up, down)
    box_value = (a * corner).sum(dim=1)  # g(0): the box alone
    if eps == 0:
        return torch.zeros(len(a), dtype=a.dtype)
    norm = a.norm(dim=1)
    hi = (norm / (2 * eps)).clamp_min(1e-300)  # ‖δ(hi)‖ ≤ eps
    lo = hi * 1e-9
    best = torch.maximum(box_value, dual(hi)[0])
    for _ in range(_DUAL_STEPS):
        mid = torch.sqrt(lo * hi)
        value, sq = dual(mid)
        best = torch.maximum(best, value)
        inside = sq <= eps * eps
        hi = torch.where(inside, mid, hi)
        lo = torch.where(inside, lo, mid)
    fits = (corner * corner).sum(dim=1) <= eps * eps
    best = torch.where(fits, box_value, best)  # the whole box corner lies in the ball: exact
    return torch.where(norm > 0, best, torch.zeros_like(best))
