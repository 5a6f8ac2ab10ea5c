"""Losses the AutoAttack-family and minimal-norm attacks ascend, beside `metrics.margin`/`metrics.dlr`.

All are per sample and to be MAXIMISED (they grow as the input moves towards adversarial):

- `cross_entropy`: the softmax cross-entropy of the true class (untargeted) or minus that of the
  target (targeted), computed stably from the logits (log-softmax), as AutoAttack's APGD-CE.
  On a defensively distilled model (logit margins ~1,000) its gradient underflows to exactly
  zero in float32: that is the masking APGD-T's DLR loss exists to see through.
- `cross_entropy_direction`: a surrogate whose gradient is the cross-entropy gradient divided
  by the positive per-sample factor 1 − p_y (targeted: 1 − p_t). Its direction is therefore the
  cross-entropy's exactly, but it never underflows, whatever the logits' scale: with
  q = softmax over the classes other than y (held constant), ∇_z CE = p − e_y = (1 − p_y)(q − e_y)
  and the surrogate is Σ_{j≠y} q_j z_j − z_y. Attacks that normalise the gradient (DDN) follow
  the paper's cross-entropy direction with it on any model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
    """CE(y) untargeted, −CE(t) targeted (maximise either)."""
    if targets is None:
        return F.cross_entropy(logits, labels, reduction="none")
    return -F.cross_entropy(logits, targets, reduction="none")


def cross_entropy_direction(logits: torch.Tensor, labels: torch.Tensor,
                            targets: torch.Tensor | None = None) -> torch.Tensor:
    """The scale-free cross-entropy surrogate of the module docstring (maximise)."""
    chosen = labels if targets is None else targets
    mask = F.one_hot(chosen, logits.shape[1]).bool()
    weights = torch.softmax(logits.detach().masked_fill(mask, float("-inf")), dim=1)
    others = (weights * logits.masked_fill(mask, 0.0)).sum(dim=1)
    own = logits.gather(1, chosen[:, None]).squeeze(1)
    return others - own if targets is None else own - others
