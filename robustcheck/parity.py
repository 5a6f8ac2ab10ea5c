"""Replica parity: the torch replica is kept only if it reproduces onnxruntime on a fixed batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import onnx

from robustcheck.errors import ModelError, first_line
from robustcheck.replica import NodeFailure, UnsupportedGraph, build_replica

if TYPE_CHECKING:
    from robustcheck.model import InputSpec, Model

PARITY_SAMPLES = 16
# The replica may differ from onnxruntime by float reordering only: |Δ| ≤ ATOL + RTOL·max|logit|.
PARITY_ATOL = 1e-3
PARITY_RTOL = 1e-4

ParitySource = Literal["dataset", "random"]


@dataclass(frozen=True)
class ParityReport:
    """How closely the replica reproduces onnxruntime on a fixed set of inputs."""

    samples: int
    source: ParitySource
    max_abs_diff: float
    max_rel_diff: float
    argmax_agreement: float
    passed: bool


def parity_batch(spec: InputSpec, data: np.ndarray | None, label: str) -> np.ndarray:
    """The inputs parity (and the load-time probe) run on: dataset samples, or seeded uniform
    draws inside the input box."""
    if data is not None:
        data = np.asarray(data)[:PARITY_SAMPLES]
        if data.shape[1:] != tuple(d if d is not None else s for d, s in zip(spec.sample_shape, data.shape[1:])) \
                or data.ndim != len(spec.shape):
            raise ModelError(
                f"{label}: dataset samples of shape {data.shape[1:]} do not fit input {spec.name!r} "
                f"of shape {tuple('?' if d is None else d for d in spec.sample_shape)}"
            )
        return data.astype(spec.dtype)
    if any(d is None for d in spec.sample_shape):
        raise ModelError(f"{label}: input {spec.name!r} has symbolic non-batch dimensions; give dataset samples")
    lo, hi = spec.input_range
    rng = np.random.default_rng(0)
    shape = (PARITY_SAMPLES,) + tuple(int(d) for d in spec.sample_shape if d is not None)  # none is, see above
    return rng.uniform(lo, hi, size=shape).astype(spec.dtype)


def pad_fixed(x: np.ndarray, spec: InputSpec) -> np.ndarray:
    """`x` repeated or cut to the model's fixed batch size, if it has one."""
    if spec.fixed_batch and len(x) != spec.fixed_batch:
        reps = -(-spec.fixed_batch // len(x))
        return np.concatenate([x] * reps)[: spec.fixed_batch]
    return x


def attach_replica(model: Model, proto: onnx.ModelProto, sample: np.ndarray, source: ParitySource) -> None:
    """Build the replica and keep it only if it reproduces onnxruntime on `sample`.

    Whatever goes wrong, the oracle stays: the reason lands in `model.replica_reason`.
    """
    try:
        replica = build_replica(proto, model.input_spec.name, [model.output_spec.name])
    except UnsupportedGraph as exc:
        model.replica_reason = str(exc)
        return
    except NodeFailure as exc:
        model.replica_reason = f"replica build failed ({exc})"
        return
    except Exception as exc:  # a graph the replica mis-parses must not take the oracle down with it
        model.replica_reason = f"replica build failed ({type(exc).__name__}: {first_line(exc)})"
        return
    model.replica = replica
    model.nondifferentiable_ops = tuple(replica.nondifferentiable)
    oracle = model.oracle_logits(sample)
    try:
        mirror = model.replica_logits(sample)
    except (UnsupportedGraph, NodeFailure) as exc:
        model.replica, model.replica_reason = None, f"replica failed to run ({exc})"
        return
    except Exception as exc:
        model.replica, model.replica_reason = None, f"replica failed to run ({type(exc).__name__}: {first_line(exc)})"
        return
    diff = np.abs(oracle.astype(np.float64) - mirror)
    finite = np.isfinite(oracle)
    scale = float(np.abs(oracle[finite]).max()) if finite.any() else 0.0
    max_abs = float(np.nanmax(np.where(finite, diff, 0.0))) if diff.size else 0.0
    nan_mismatch = bool((np.isfinite(mirror) != finite).any())
    agreement = float((oracle.argmax(1) == mirror.argmax(1)).mean()) if len(oracle) else 1.0
    passed = (not nan_mismatch) and max_abs <= PARITY_ATOL + PARITY_RTOL * scale
    model.parity = ParityReport(
        samples=len(sample), source=source,
        max_abs_diff=max_abs, max_rel_diff=max_abs / max(scale, 1e-12), argmax_agreement=agreement, passed=passed,
    )
    if passed:
        model.replica_reason = None
    else:
        model.replica = None
        model.replica_reason = (
            f"replica disagrees with onnxruntime (max |Δlogit| {max_abs:.3g} at logit scale {scale:.3g}, "
            f"argmax agreement {agreement:.0%})"
        )
