"""Proofs, not just failed searches: CROWN lower bounds and exact MILP verification.

Both read the same replica graph the attacks differentiate (robustcheck/replica):

- `certify(model, x, y, norm=, epsilon=)`: CROWN (Zhang et al. 2018; α-CROWN slopes with
  `alpha=True`) proves per sample that no input in the ε-ball ∩ input box changes the label;
- `certified_radius(model, x, y, norm=)`: the largest ε CROWN proves, by bisection;
- `verify_exact(model, x, y, norm=, epsilon=, time_limit=)`: the MIPVerify MILP (Tjeng et al.
  2019) decides robust / violated (with an onnxruntime-checked witness) / unknown;
- `minimal_distance(model, x, y, norm=)`: the exact minimal L∞ or L1 distance by bisection.

Graphs with operators outside the certifier's set raise `NotVerifiable` naming them. This
module is itself callable: `robustcheck.certify(model, x, y, ...)` is `certify(...)`.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from robustcheck.certify.api import Certificate, CertifiedRadius, certified_radius, certify
from robustcheck.certify.exact import ExactResult, ExactVerdict, verify_exact
from robustcheck.certify.minimal import MinimalDistance, minimal_distance
from robustcheck.certify.network import SUPPORTED_OPS, NotVerifiable

__all__ = [
    "SUPPORTED_OPS",
    "Certificate",
    "CertifiedRadius",
    "ExactResult",
    "ExactVerdict",
    "MinimalDistance",
    "NotVerifiable",
    "certified_radius",
    "certify",
    "minimal_distance",
    "verify_exact",
]


class _CallableModule(types.ModuleType):
    """`robustcheck.certify` is both this package and its main function: importing a submodule
    binds the package to the parent's attribute, so the package itself must be callable."""

    def __call__(self, *args: Any, **kwargs: Any) -> Certificate:
        return certify(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
