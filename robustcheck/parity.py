"""Replica parity: the torch replica is kept only if it reproduces onnxruntime on a fixed batch.

Three kinds, by the graph:
- "exact": float graphs agree up to float reordering (PARITY_ATOL + PARITY_RTOL × logit scale);
- "quantized": a graph whose output is dequantized from integers agrees within one output
  quantisation step on every output (the scale of that last DequantizeLinear);
- "distribution": a randomized graph (random operators) is compared in distribution, never per
  call: over PARITY_DRAWS calls each, the mean logits agree within DISTRIBUTION_SIGMAS standard
  errors and the average spread (standard deviation) of the logits within SPREAD_RATIO.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from robustcheck.errors import ModelError, first_line
from robustcheck.replica import NodeFailure, UnsupportedGraph, build_replica

if TYPE_CHECKING:
    from robustcheck.model import InputSpec, Model

PARITY_SAMPLES = 16
# The replica may differ from onnxruntime by float reordering only: |Δ| ≤ ATOL + RTOL·max|logit|.
PARITY_ATOL = 1e-3
PARITY_RTOL = 1e-4
#: Distribution parity of randomized graphs: calls per side, standard errors allowed on the mean
#: logits (6: a false alarm about once in 10^7 comparisons), and the allowed ratio of spreads.
PARITY_DRAWS = 64
DISTRIBUTION_SIGMAS = 6.0
SPREAD_RATIO = 1.25

ParitySource = Literal["dataset", "random"]
ParityKind = Literal["exact", "quantized", "distribution"]


@dataclass(frozen=True)
class ParityReport:
    """How closely the replica reproduces onnxruntime on a fixed set of inputs."""

    samples: int
    source: ParitySource
    max_abs_diff: float
    max_rel_diff: float
    argmax_agreement: float
    passed: bool
    kind: ParityKind = "exact"
    #: Quantized graphs: the output's quantisation step and the share of outputs within one step.
    output_step: float | None = None
    within_one_step: float | None = None
    #: Randomized graphs: calls per side, and the replica's logit spread over onnxruntime's.
    draws: int | None = None
    spread_ratio: float | None = None


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
    lo, hi = spec.channel_bounds.arrays(np.float64) if spec.channel_bounds is not None else spec.input_range
    rng = np.random.default_rng(0)
    shape = (PARITY_SAMPLES,) + tuple(int(d) for d in spec.sample_shape if d is not None)  # none is, see above
    return (lo + (hi - lo) * rng.uniform(size=shape)).astype(spec.dtype)


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
    if model.input_spec.fixed_batch or replica.per_sample_ops:
        replica.sample_batch = model.input_spec.fixed_batch or 1
    model.replica = replica.to(model.device)
    model.nondifferentiable_ops = tuple(replica.nondifferentiable)
    model.randomized = model.randomized or replica.randomized
    try:
        if model.randomized:
            report, reason = _distribution_parity(model, sample, source)
        else:
            report, reason = _exact_parity(model, sample, source, output_step(proto, model.output_spec.name))
    except (UnsupportedGraph, NodeFailure) as exc:
        model.replica, model.replica_reason = None, f"replica failed to run ({exc})"
        return
    except Exception as exc:
        model.replica, model.replica_reason = None, f"replica failed to run ({type(exc).__name__}: {first_line(exc)})"
        return
    model.parity = report
    if report.passed:
        model.replica_reason = None
        model.set_gradient_mode("adaptive" if model.has_adaptive_gradients else "exact")
    else:
        model.replica, model.replica_reason = None, reason


def output_step(proto: onnx.ModelProto, output: str) -> float | None:
    """The quantisation step of `output` when a DequantizeLinear with one constant scale produces it."""
    initializers = {t.name: t for t in proto.graph.initializer}
    for node in proto.graph.node:
        if output in node.output and node.op_type == "DequantizeLinear" and node.input[1] in initializers:
            scale = numpy_helper.to_array(initializers[node.input[1]])
            return float(scale.reshape(-1)[0]) if scale.size == 1 else None
    return None


def _exact_parity(model: Model, sample: np.ndarray, source: ParitySource,
                  step: float | None) -> tuple[ParityReport, str]:
    oracle = model.oracle_logits(sample)
    mirror = model.replica_logits(sample)
    diff = np.abs(oracle.astype(np.float64) - mirror)
    finite = np.isfinite(oracle)
    scale = float(np.abs(oracle[finite]).max()) if finite.any() else 0.0
    max_abs = float(np.nanmax(np.where(finite, diff, 0.0))) if diff.size else 0.0
    nan_mismatch = bool((np.isfinite(mirror) != finite).any())
    agreement = float((oracle.argmax(1) == mirror.argmax(1)).mean()) if len(oracle) else 1.0
    tolerance = PARITY_ATOL + PARITY_RTOL * scale
    within = None
    if step is not None:  # one output step, with float slack for the dequantization itself
        tolerance = max(tolerance, step * (1 + 1e-5))
        within = float((np.where(finite, diff, 0.0) <= tolerance).mean()) if diff.size else 1.0
    passed = (not nan_mismatch) and max_abs <= tolerance
    report = ParityReport(
        samples=len(sample), source=source, max_abs_diff=max_abs, max_rel_diff=max_abs / max(scale, 1e-12),
        argmax_agreement=agreement, passed=passed, kind="exact" if step is None else "quantized",
        output_step=step, within_one_step=within)
    how = "" if step is None else f" = {max_abs / step:.3g} output quantisation steps"
    return report, (f"replica disagrees with onnxruntime (max |Δlogit| {max_abs:.3g}{how} at logit scale "
                    f"{scale:.3g}, argmax agreement {agreement:.0%})")


def _distribution_parity(model: Model, sample: np.ndarray, source: ParitySource) -> tuple[ParityReport, str]:
    oracle = np.stack([model.oracle_logits(sample) for _ in range(PARITY_DRAWS)]).astype(np.float64)
    with model.gradients("exact"), torch.no_grad():
        mirror = np.stack([model.replica_logits(sample) for _ in range(PARITY_DRAWS)]).astype(np.float64)
    mean_o, mean_r = oracle.mean(axis=0), mirror.mean(axis=0)
    std_o, std_r = oracle.std(axis=0, ddof=1), mirror.std(axis=0, ddof=1)
    scale = float(np.abs(mean_o).max()) if mean_o.size else 0.0
    error = np.sqrt((std_o**2 + std_r**2) / PARITY_DRAWS)
    diff = np.abs(mean_o - mean_r)
    means_ok = bool((diff <= DISTRIBUTION_SIGMAS * error + PARITY_ATOL + PARITY_RTOL * scale).all())
    spread = float(std_r.mean() / std_o.mean()) if std_o.mean() > 0 else (1.0 if std_r.mean() == 0 else np.inf)
    spread_ok = 1 / SPREAD_RATIO <= spread <= SPREAD_RATIO
    max_abs = float(diff.max()) if diff.size else 0.0
    agreement = float((mean_o.argmax(1) == mean_r.argmax(1)).mean()) if len(mean_o) else 1.0
    report = ParityReport(
        samples=len(sample), source=source, max_abs_diff=max_abs, max_rel_diff=max_abs / max(scale, 1e-12),
        argmax_agreement=agreement, passed=means_ok and spread_ok, kind="distribution", draws=PARITY_DRAWS,
        spread_ratio=spread)
    return report, (f"randomized replica disagrees with onnxruntime in distribution over {PARITY_DRAWS} draws "
                    f"(max |Δ mean logit| {max_abs:.3g}, logit spread ratio {spread:.3g}, argmax agreement of the "
                    f"means {agreement:.0%})")
