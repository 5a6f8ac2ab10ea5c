"""Is the model's loss continuous along the attack path? A bisection test on the oracle.

Shattered gradients (Athalye, Carlini & Wagner, ICML 2018, §4.1) come from functions that
are discontinuous (k-winners-take-all, input quantisation, thresholds): the gradient
describes the function only up to the next jump, so gradient attacks walk into cliffs.
A tiny first-order check cannot see this, because between jumps such a model is smooth.

The test walks the segment x → clip(x + v) in `pieces` equal steps, takes the step where
the margin loss changes most, and halves it `halvings` times, always keeping the half that
changes more. Along a continuous (even piecewise-linear, ReLU) function the change shrinks
with the interval, to about 2^-halvings of where it started; across a jump it stays the
size of the jump. The verdict is the ratio of the two, measured on onnxruntime (the
artefact itself, no replica needed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from robustcheck import metrics
from robustcheck.model import Model


@dataclass(frozen=True)
class JumpScan:
    """Per sample: the change of the margin loss over the steepest step of the path (`initial`),
    over the final, 2^-halvings times narrower interval (`final`), and the loss scale."""

    initial: np.ndarray
    final: np.ndarray
    loss_scale: np.ndarray
    halvings: int

    @property
    def ratio(self) -> np.ndarray:
        return self.final / np.maximum(self.initial, 1e-30)


def margin_loss(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """−`metrics.margin` in float64: best other logit minus the true one (positive means misclassified)."""
    z = torch.from_numpy(np.asarray(logits, dtype=np.float64))
    return (-metrics.margin(z, torch.from_numpy(np.asarray(y, dtype=np.int64)))).numpy()


def scan_for_jumps(model: Model, x: np.ndarray, y: np.ndarray, v: np.ndarray, *,
                   pieces: int = 128, halvings: int = 14) -> JumpScan:
    """Bisect towards the sharpest change of the oracle's margin loss on x → clip(x + t·v), t ∈ [0, 1]."""
    lo, hi = model.input_range
    n = len(x)
    rows = np.arange(n)
    shape = (n, 1) + (1,) * (x.ndim - 1)

    def loss(t: np.ndarray) -> np.ndarray:  # t: (n, k) → (n, k)
        k = t.shape[1]
        points = np.clip(x[:, None] + t.reshape(shape[:1] + (k,) + shape[2:]) * v[:, None], lo, hi)
        logits = model.oracle_logits(points.reshape((n * k,) + x.shape[1:]).astype(x.dtype, copy=False))
        return margin_loss(logits, np.repeat(y, k)).reshape(n, k)

    grid = np.linspace(0.0, 1.0, pieces + 1)[None].repeat(n, axis=0)
    values = loss(grid)
    steepest = np.abs(np.diff(values, axis=1)).argmax(axis=1)
    a, b = grid[rows, steepest], grid[rows, steepest + 1]
    la, lb = values[rows, steepest], values[rows, steepest + 1]
    initial = np.abs(lb - la)
    for _ in range(halvings):
        mid = (a + b) / 2
        lm = loss(mid[:, None])[:, 0]
        left = np.abs(lm - la) >= np.abs(lb - lm)
        b, lb = np.where(left, mid, b), np.where(left, lm, lb)
        a, la = np.where(left, a, mid), np.where(left, la, lm)
    return JumpScan(initial=initial, final=np.abs(lb - la), loss_scale=np.median(np.abs(values), axis=1),
                    halvings=halvings)
