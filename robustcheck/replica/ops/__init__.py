"""Operator implementations, one module per family; importing this package registers them all."""

from robustcheck.replica.ops import (  # noqa: F401
    activations,
    elementwise,
    linear,
    normalization,
    pooling,
    random,
    reductions,
    selection,
    shape,
)
