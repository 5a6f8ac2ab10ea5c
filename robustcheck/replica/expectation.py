"""Expectation over Transformation (EOT, Athalye, Carlini & Wagner 2018) for randomized replicas.

The replica's output averaged over `draws` independent forward passes: the gradient of any loss
of the averaged logits is then taken through every draw (for a loss linear in the logits, the
mean of the per-draw gradients), so a gradient attack follows the expected model instead of one
noisy sample of it. The draws run one after another on the whole batch: a random operator with a
fixed shape (RandomNormal of shape [1, ...]) shares its draw across the rows of one call, so the
rows of a tiled batch would not be independent draws.
"""

from __future__ import annotations

import torch

#: Draws averaged per gradient: the `ci` default, and the `thorough` profile's.
EOT_DRAWS = 20
EOT_DRAWS_THOROUGH = 40


def expected_output(replica: torch.nn.Module, x: torch.Tensor, draws: int) -> torch.Tensor:
    """The mean of `draws` forward passes of `replica` on `x`."""
    total = replica(x)
    for _ in range(draws - 1):
        total = total + replica(x)
    return total / draws
