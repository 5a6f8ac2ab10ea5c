"""Attacking a sample pool in fixed blocks: the same result whether one job or several run it.

An attack's outcome on a sample can depend on the batch it ran in (C&W's early abort looks at
the batch's total loss; random starts are drawn for the whole batch). So the pool is cut into
fixed blocks of the attack's `batch_size` rows, and block b always runs alone with its own
seed `seed_of(b)`: a shard that owns some blocks computes exactly the rows an unsharded run
computes for them. Each block runs through `device.fit_batch`, halving on out-of-memory, and
advances an optional progress display by its rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from robustcheck.attacks import Attack, AttackResult
from robustcheck.attacks.result import stack_traces
from robustcheck.device import fit_batch
from robustcheck.model import Model


class Advance(Protocol):
    def advance(self, n: float = 1) -> None: ...


def block_count(rows: int, block: int) -> int:
    return -(-rows // max(1, block))


def block_rows(blocks: Sequence[int], rows: int, block: int) -> np.ndarray:
    """The pool rows of `blocks` (in block order)."""
    parts = [np.arange(b * block, min(rows, (b + 1) * block)) for b in blocks]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def concat_results(parts: Sequence[AttackResult]) -> AttackResult:
    """One AttackResult from results over consecutive row ranges (per-sample arrays joined,
    loss traces NaN-padded, wall times added)."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    n = [len(p) for p in parts]
    merged: dict[str, Any] = {}
    for f in dataclasses.fields(first):
        values = [getattr(p, f.name) for p in parts]
        head = values[0]
        if f.name == "loss_trace":
            merged[f.name] = stack_traces(values)
        elif f.name == "wall_time":
            merged[f.name] = float(sum(values))
        elif isinstance(head, np.ndarray) and head.ndim and all(len(v) == k for v, k in zip(values, n)):
            merged[f.name] = np.concatenate(values)
        elif isinstance(head, dict) and head and all(isinstance(v, np.ndarray) for v in head.values()):
            merged[f.name] = {k: np.concatenate([v[k] for v in values]) for k in head}
        else:
            merged[f.name] = head
    return dataclasses.replace(first, **merged)


def run_blocks(attack: Attack, model: Model, x: np.ndarray, y: np.ndarray, *, seed_of: Callable[[int], int],
               blocks: Sequence[int] | None = None, progress: Advance | None = None,
               label: str = "attack") -> AttackResult:
    """`attack` over the rows of `blocks` (default: all) of the pool (x, y), block by block."""
    size = attack.batch_size
    chosen = list(range(block_count(len(x), size))) if blocks is None else list(blocks)
    results = []
    for b in chosen:
        lo, hi = b * size, min(len(x), (b + 1) * size)

        def run(batch: int, lo: int = lo, hi: int = hi, b: int = b) -> AttackResult:
            fitted = attack if batch == size else dataclasses.replace(attack, batch_size=batch)
            return fitted.run(model, x[lo:hi], y[lo:hi], seed=seed_of(b))

        results.append(fit_batch(run, size, label=f"{label} on rows {lo}-{hi - 1}"))
        if progress is not None:
            progress.advance(hi - lo)
    if not results:
        return attack.run(model, x[:0], y[:0], seed=seed_of(0))
    return concat_results(results)
