"""One home for the numbers every layer shares: margins, the DLR loss, probabilities, distances,
robust accuracy.

Sign convention (used everywhere in robustcheck): the **margin** is how far a sample is from
being adversarial, in logits,

    untargeted:  margin = z_y − max_{j≠y} z_j      (true class against the best other one)
    targeted:    margin = max_{j≠t} z_j − z_t      (best other class against the target)

so margin < 0 ⇒ adversarial and margin > 0 ⇒ not adversarial. margin = 0 is a tie that the
argmax breaks (numpy and torch pick the first maximal index); the oracle's label decides such
samples, never the margin. Attacks that maximise a loss use −margin (or DLR, its scale-free form).

Torch-first: margin and DLR take and return tensors (numpy callers wrap with torch.from_numpy).
`distances` and `robust_accuracy` work on numpy arrays (they feed the plain-data results and
records) and accept tensors. Import-light: numpy at import, torch only inside the functions on
tensors, so the report renderers can use `channel_axis` without loading torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

NORMS = ("l0", "l1", "l2", "linf")

_CHANNEL_AXIS = {"NCHW": 1, "NHWC": 3}


def atleast_kd(t: torch.Tensor, k: int) -> torch.Tensor:
    """`t` with trailing singleton dimensions up to `k` dimensions: per-sample values broadcast
    against a batch of inputs (`atleast_kd(c, x.dim()) * x`)."""
    return t.view(t.shape + (1,) * (k - t.dim()))


def channel_axis(layout: str | None) -> int | None:
    """The channel axis of an image batch in `layout` ("NCHW" → 1, "NHWC" → 3); None when the
    input is not a layout-tagged image batch."""
    return _CHANNEL_AXIS.get(layout or "")


def split_logits(logits: torch.Tensor, classes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(value of `classes`, best value among the other classes) per sample."""
    import torch.nn.functional as F

    mask = F.one_hot(classes, logits.shape[1]).bool()
    return logits[mask], logits.masked_fill(mask, float("-inf")).amax(dim=1)


def runner_up(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Per sample, the index of the best class other than `classes` (first one on ties)."""
    import torch.nn.functional as F

    mask = F.one_hot(classes, logits.shape[1]).bool()
    return logits.masked_fill(mask, float("-inf")).argmax(dim=1)


def margin(logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample margin in the module's convention: < 0 ⇒ adversarial (targeted when `targets`
    is given; `labels` is then unused)."""
    if targets is None:
        chosen, others = split_logits(logits, labels)
        return chosen - others
    chosen, others = split_logits(logits, targets)
    return others - chosen


def dlr(logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
    """Difference of Logits Ratio (Croce & Hein, ICML 2020), the loss an attack MAXIMISES:
    −margin / scale, invariant to the logits' scale and shift.

    Untargeted: scale = z_π1 − z_π3 (sorted logits, as the paper). Targeted: scale =
    z_π1 − (z_π3 + z_π4)/2 (with fewer than four classes z_π1 − z_πlast). The targeted numerator
    is our −margin, z_t − max_{j≠t} z_j, where the paper writes z_t − z_y: it reaches 0 exactly
    when the target wins, and the two agree when y is the runner-up.
    """
    gap = -margin(logits, labels, targets)
    ordered = logits.sort(dim=1, descending=True).values
    if targets is None:
        scale = ordered[:, 0] - ordered[:, 2]
    elif logits.shape[1] > 3:
        scale = ordered[:, 0] - (ordered[:, 2] + ordered[:, 3]) / 2
    else:
        scale = ordered[:, 0] - ordered[:, -1]
    return gap / scale.clamp_min(1e-12)


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax probabilities per row in float64, computed stably (the confidences reports show)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def distances(x: np.ndarray | torch.Tensor, x_adv: np.ndarray | torch.Tensor) -> dict[str, np.ndarray]:
    """L0 (changed values), L1, L2 and L∞ per sample, in float64, in the model's own units and layout."""
    a, b = np.asarray(x), np.asarray(x_adv)
    delta = (b.astype(np.float64) - a.astype(np.float64)).reshape(len(a), -1)
    return {
        "l0": (np.abs(delta) > 0).sum(axis=1).astype(np.float64),
        "l1": np.abs(delta).sum(axis=1),
        "l2": np.sqrt((delta ** 2).sum(axis=1)),
        "linf": np.abs(delta).max(axis=1) if delta.shape[1] else np.zeros(len(a)),
    }


def robust_accuracy(correct: Any, broken: Any) -> float:
    """Robust accuracy over the evaluated rows: the fraction of ALL of them that the model
    classifies correctly AND no verified adversarial example breaks (within the claim's ε).

    `correct` and `broken` are per-row booleans over the same rows. The denominator is every
    evaluated row: a misclassified row counts as not robust. No rows: 0.0 (nothing shown robust).
    """
    ok = np.asarray(correct, dtype=bool)
    hit = np.asarray(broken, dtype=bool)
    if ok.shape != hit.shape:
        raise ValueError(f"correct has shape {ok.shape} but broken has {hit.shape}")
    return float((ok & ~hit).mean()) if ok.size else 0.0
