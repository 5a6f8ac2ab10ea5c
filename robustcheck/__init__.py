"""robustcheck: property-based adversarial robustness tests for ONNX classifiers.

The public API is re-exported here lazily, so that importing the pytest plugin (which
imports this package) does not import torch or onnxruntime.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from robustcheck.errors import ConfigError, DataError, ModelError, ReplicaUnavailable, RobustcheckError

__version__ = "0.1.0"

_LAZY = {
    "load_model": "robustcheck.model",
    "Model": "robustcheck.model",
    "InputSpec": "robustcheck.model",
    "OutputSpec": "robustcheck.model",
    "ParityReport": "robustcheck.model",
    "load_dataset": "robustcheck.data",
    "Dataset": "robustcheck.data",
    "assert_robust": "robustcheck.properties",
    "robust_accuracy": "robustcheck.properties",
    "RobustnessViolation": "robustcheck.properties",
    "diagnose": "robustcheck.diagnostics",
    "Finding": "robustcheck.record",
    "Counterexample": "robustcheck.record",
    "RunRecord": "robustcheck.record",
    "load_record": "robustcheck.record",
    "attacks": "robustcheck.attacks",
    "strategies": "robustcheck.strategies",
    "certify": "robustcheck.certify",
    "certified_radius": "robustcheck.certify",
    "verify_exact": "robustcheck.certify",
    "minimal_distance": "robustcheck.certify",
    "NotVerifiable": "robustcheck.certify",
    "transforms": "robustcheck.transforms",
    "smallest_transform_failure": "robustcheck.transforms.search",
}

__all__ = [
    "ConfigError",
    "DataError",
    "ModelError",
    "ReplicaUnavailable",
    "RobustcheckError",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'robustcheck' has no attribute {name!r}")
    module = import_module(module_name)
    value = module if module_name.endswith("." + name) else getattr(module, name)
    globals()[name] = value
    return value
