"""Operator implementations, one module per family; importing this package registers them all.

To add an operator: write one function per semantics change, decorate each with
`@register(op_type, since_version)` in the module of its family (a new family, e.g. quantized
operators, gets its own module imported below), and add a parity case per
registration in tests/test_replica_ops.py, which fails until every registration has one.
"""

from robustcheck.replica.ops import (  # noqa: F401
    activations,
    elementwise,
    linear,
    normalization,
    pooling,
    quantized,
    quantized_contrib,
    random,
    reductions,
    resize,
    selection,
    shape,
)
