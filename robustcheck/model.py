"""The model under test: onnxruntime as the oracle, a torch replica for gradients.

`load_model` reads an ONNX file defensively (CI loads files nobody reviewed; see
onnx_file.py), finds the logits (graph_surgery.py), starts an onnxruntime session on the CPU
provider (oracle_session.py), builds the differentiable replica and checks it against
onnxruntime (parity.py). Only onnxruntime decides what the model predicts, and scores that
are not finite are never turned into a prediction.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import torch

from robustcheck.device import DeviceSpec, resolve_device
from robustcheck.errors import ModelError, ReplicaUnavailable, first_line
from robustcheck.graph_surgery import OutputKind, choose_output, prune_to
from robustcheck.graph_traits import batch_coupling_operators, random_operators
from robustcheck.metrics import channel_axis
from robustcheck.onnx_file import read_model, sha256
from robustcheck.oracle_session import InferenceSession, make_session
from robustcheck.parity import ParityReport, attach_replica, pad_fixed, parity_batch
from robustcheck.preprocess import ChannelBounds, Normalisation
from robustcheck.randomized_oracle import ORACLE_DRAWS, majority_votes, vote_labels
from robustcheck.record import InputInfo, ModelSpec, OutputInfo, ParityInfo
from robustcheck.replica.expectation import EOT_DRAWS, expected_output
from robustcheck.replica.gradient_rules import MODES, ReplicaMode

__all__ = ["DEFAULT_INPUT_RANGE", "DEFAULT_MAX_BYTES", "InputSpec", "Layout", "Model", "OutputKind", "OutputSpec",
           "ParityReport", "load_model"]

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_INPUT_RANGE = (0.0, 1.0)

Layout = Literal["NCHW", "NHWC"]


@dataclass(frozen=True)
class InputSpec:
    """The model's data input: name, shape (None for symbolic dims), dtype, layout and box.

    `input_range` is the box attacks clip to; with per-channel bounds it is their envelope and
    `channel_bounds` holds the exact per-channel box.
    """

    name: str
    shape: tuple[int | None, ...]
    dtype: str
    layout: Layout | None
    input_range: tuple[float, float]
    fixed_batch: int | None
    channel_bounds: ChannelBounds | None = None

    @property
    def sample_shape(self) -> tuple[int | None, ...]:
        return self.shape[1:]


@dataclass(frozen=True)
class OutputSpec:
    """Where the logits come from and what was done to get them."""

    name: str
    kind: OutputKind
    num_classes: int
    cut_node: str | None = None
    ignored_outputs: tuple[str, ...] = ()

    @property
    def note(self) -> str:
        if self.kind == "logits":
            return f"output {self.name!r} used as logits"
        if self.kind == "log-probabilities":
            return f"output {self.name!r} looks like probabilities; attacked as log-probabilities"
        head = self.kind.removeprefix("cut-").replace("logsoftmax", "LogSoftmax").replace("softmax", "Softmax")
        return f"trailing {head} node {self.cut_node!r} cut; attacking its input {self.name!r}"


def _non_finite_message(label: str, output: str, rows: np.ndarray, total: int, what: str) -> str:
    return (f"{label}: output {output!r} gives non-finite scores (NaN or infinity) for {len(rows)} of {total} "
            f"{what} (first: row {int(rows[0])}); a classifier's scores must be finite")


@dataclass
class Model:
    """An ONNX classifier under test. Build it with `load_model`."""

    path: Path
    sha256: str
    input_spec: InputSpec
    output_spec: OutputSpec
    session: InferenceSession = field(repr=False)
    replica: torch.nn.Module | None = field(repr=False)
    replica_reason: str | None
    nondifferentiable_ops: tuple[str, ...]
    parity: ParityReport | None
    warnings: list[str]
    batch_size: int = 256
    #: Samples per onnxruntime call when the graph couples the samples of a batch (graph_traits.py).
    oracle_batch: int | None = None
    #: onnxruntime gives different outputs for the same input (random operators): judged by votes.
    randomized: bool = False
    #: Replica forward passes averaged per gradient (EOT) in adaptive mode, for a randomized model.
    eot_draws: int = EOT_DRAWS
    #: onnxruntime calls per majority vote (more for borderline votes), for a randomized model.
    oracle_draws: int = ORACLE_DRAWS
    #: The replica's backward rules: "adaptive" (surrogates, EOT) where the graph needs them.
    gradient_mode: ReplicaMode = "exact"
    #: Normalisation between the pixel-space inputs everything else sees and the graph's input.
    preprocess: Normalisation | None = None
    #: Where the replica runs; inputs come and logits go back on the caller's device.
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def num_classes(self) -> int:
        return self.output_spec.num_classes

    @property
    def input_range(self) -> tuple[float, float]:
        return self.input_spec.input_range

    # -- oracle ---------------------------------------------------------------------------
    def oracle_logits(self, x: np.ndarray) -> np.ndarray:
        """Logits (N, classes) from onnxruntime, float32; chunks to the model's batch size.

        Raises ModelError naming the file and output when a finite input gets a NaN or infinite
        score: such a row has no class, and a release gate must report the model broken rather
        than read the row as class 0 (argmax of NaN) and pass or fail on it. Rows whose input is
        itself not finite (a diverged attack candidate, never inside the input box) keep their
        scores; `predict` gives them no class.
        """
        x = self._check_batch(x)
        spec = self.input_spec
        step = spec.fixed_batch or self.oracle_batch or self.batch_size
        outs = []
        for start in range(0, len(x), step):
            chunk = x[start:start + step]
            n = len(chunk)
            if spec.fixed_batch and n < spec.fixed_batch:
                pad = np.repeat(chunk[:1], spec.fixed_batch - n, axis=0)
                chunk = np.concatenate([chunk, pad])
            (out,) = self.session.run([self.output_spec.name], {spec.name: self.to_model_input(chunk)})
            outs.append(np.asarray(out, dtype=np.float32).reshape(len(chunk), -1)[:n])
        logits = np.concatenate(outs) if outs else np.zeros((0, self.num_classes), np.float32)
        if self.output_spec.kind == "log-probabilities":
            logits = np.log(np.maximum(logits, np.finfo(np.float32).tiny))
        if not np.isfinite(logits).all():
            finite_input = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
            rows = np.flatnonzero(~np.isfinite(logits).all(axis=1) & finite_input)
            if len(rows):
                raise ModelError(_non_finite_message(str(self.path), self.output_spec.name, rows, len(x), "inputs"))
        return logits

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Oracle labels (N,) as int64: the only judge of what the model predicts.

        -1 (no class) for an input that is not finite itself; see `oracle_logits`. A randomized
        model's label is its majority vote over repeated calls (robustcheck/randomized_oracle.py).
        """
        if self.randomized:
            return vote_labels(self.oracle_votes(x))
        logits = self.oracle_logits(x)
        labels = logits.argmax(axis=1).astype(np.int64)
        labels[~np.isfinite(logits).all(axis=1)] = -1
        return labels

    def oracle_votes(self, x: np.ndarray) -> np.ndarray:
        """(N, classes) label counts over repeated onnxruntime calls (more calls for borderline rows)."""
        return majority_votes(self.oracle_logits, x, self.num_classes, self.oracle_draws)
    def to_model_input(self, x: np.ndarray) -> np.ndarray:
        """A batch as the graph receives it: normalised when the model has a `preprocess`."""
        return x if self.preprocess is None else self.preprocess.to_model(x)

    def spec(self) -> ModelSpec:
        """The record's typed view of this model: input, output, replica, parity, warnings."""
        spec, out, parity = self.input_spec, self.output_spec, self.parity
        return ModelSpec(
            input=InputInfo(name=spec.name, shape=["N" if d is None else d for d in spec.shape], dtype=spec.dtype,
                            layout=spec.layout, range=[float(v) for v in spec.input_range],
                            fixed_batch=spec.fixed_batch,
                            channel_bounds=None if spec.channel_bounds is None else spec.channel_bounds.describe()),
            output=OutputInfo(name=out.name, kind=out.kind, classes=self.num_classes, cut_node=out.cut_node),
            replica=None if self.replica is None else "torch", replica_reason=self.replica_reason,
            nondifferentiable_ops=list(self.nondifferentiable_ops),
            parity=None if parity is None else ParityInfo(
                samples=int(parity.samples), source=str(parity.source), max_abs_diff=float(parity.max_abs_diff),
                max_rel_diff=float(parity.max_rel_diff), argmax_agreement=float(parity.argmax_agreement),
                passed=bool(parity.passed), kind=parity.kind, output_step=_opt_float(parity.output_step),
                within_one_step=_opt_float(parity.within_one_step), draws=parity.draws,
                spread_ratio=_opt_float(parity.spread_ratio)),
            warnings=list(self.warnings),
            gradient_mode=self.gradient_mode,
            adaptive_ops=list(getattr(self.replica, "adaptive_ops", None) or []),
            randomized=self.randomized,
            preprocess=None if self.preprocess is None else self.preprocess.describe(),
            device=str(self.device),
        )

    def in_box(self, x: np.ndarray, tol: float = 0.0) -> np.ndarray:
        """Per-sample: every value finite and inside the input range (per channel when given so)."""
        if self.input_spec.channel_bounds is not None:
            return self.input_spec.channel_bounds.contains(x, tol)
        lo, hi = self.input_range
        flat = x.reshape(len(x), -1)
        return np.isfinite(flat).all(axis=1) & (flat >= lo - tol).all(axis=1) & (flat <= hi + tol).all(axis=1)

    # -- replica --------------------------------------------------------------------------
    def require_replica(self) -> torch.nn.Module:
        if self.replica is None:
            raise ReplicaUnavailable(f"{self.path.name}: no differentiable replica ({self.replica_reason})")
        return self.replica

    @property
    def has_adaptive_gradients(self) -> bool:
        """Whether the adaptive mode differs from the exact one (surrogate rules or random operators)."""
        replica = self.replica
        return replica is not None and bool(getattr(replica, "adaptive_ops", None) or self.randomized)

    @contextmanager
    def gradients(self, mode: ReplicaMode) -> Iterator[Model]:
        """Run the replica in `mode` ("exact" or "adaptive") inside the block, then restore the mode."""
        if mode not in MODES:
            raise ValueError(f"gradient mode must be one of {', '.join(MODES)}, got {mode!r}")
        before = self.gradient_mode
        self.set_gradient_mode(mode)
        try:
            yield self
        finally:
            self.set_gradient_mode(before)

    def set_gradient_mode(self, mode: ReplicaMode) -> None:
        self.gradient_mode = mode
        if self.replica is not None and hasattr(self.replica, "mode"):
            setattr(self.replica, "mode", mode)  # noqa: B010 (the replica is typed as a Module)

    def project_to_box(self, x: np.ndarray) -> np.ndarray:
        """`x` clipped into per-channel bounds (unchanged without them: attacks keep to the scalar box)."""
        bounds = self.input_spec.channel_bounds
        return x if bounds is None else bounds.project(x)

    def torch_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable logits from the replica for a torch batch in the model's layout.

        The batch runs on the replica's device and the logits come back to `x`'s. With
        per-channel bounds the replica sees the input clamped into them, so an attack gains
        nothing by leaving the box (its candidates are projected before the oracle judges them).
        In adaptive mode a randomized model's logits are the mean over `eot_draws` replica
        passes (EOT, replica/expectation.py); in exact mode one pass, one draw.
        """
        replica = self.require_replica()
        z = x.to(device=self.device, dtype=self._torch_dtype)
        if self.input_spec.channel_bounds is not None:
            z = self.input_spec.channel_bounds.clamp_torch(z)
        if self.preprocess is not None:
            z = self.preprocess.to_model_torch(z)
        if self.randomized and self.gradient_mode == "adaptive" and self.eot_draws > 1:
            out = expected_output(replica, z, self.eot_draws)
        else:
            out = replica(z)
        out = out.reshape(out.shape[0], -1).float().to(x.device)
        if x.requires_grad and not out.requires_grad:
            # No differentiable path from the input (exact gradients through steps only): the
            # gradient is exactly zero, not an autograd error.
            out = out + (x.clamp(-1.0, 1.0) * 0.0).reshape(len(x), -1).sum(dim=1, keepdim=True)
        if self.output_spec.kind == "log-probabilities":
            out = torch.log(torch.clamp(out, min=torch.finfo(torch.float32).tiny))
        return out

    def replica_logits(self, x: np.ndarray) -> np.ndarray:
        """Replica logits (N, classes) as a float32 numpy array, without gradients."""
        x = self._check_batch(x)
        with torch.no_grad():
            parts = [self.torch_logits(torch.from_numpy(np.ascontiguousarray(x[i:i + self.batch_size])))
                     for i in range(0, len(x), self.batch_size)]
        return torch.cat(parts).numpy() if parts else np.zeros((0, self.num_classes), np.float32)

    def logits_and_grad(
        self, x: np.ndarray, loss: Callable[[torch.Tensor], torch.Tensor]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Replica logits and the input-gradient of `loss(logits).sum()` (per-sample losses)."""
        x = self._check_batch(x)
        xt = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_(True)
        logits = self.torch_logits(xt)
        (grad,) = torch.autograd.grad(loss(logits).sum(), xt)
        return logits.detach().numpy(), grad.numpy()

    @property
    def _torch_dtype(self) -> torch.dtype:
        return {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16}[self.input_spec.dtype]

    def _check_batch(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        expected = self.input_spec.sample_shape
        if x.ndim != len(expected) + 1 or any(e is not None and e != s for e, s in zip(expected, x.shape[1:])):
            raise ModelError(
                f"{self.path.name}: input batch of shape {tuple(x.shape)} does not fit the model's input "
                f"{self.input_spec.name!r} of shape {('N',) + tuple('?' if d is None else d for d in expected)}"
            )
        return x.astype(self.input_spec.dtype, copy=False)


# ---------------------------------------------------------------------------------------
# Loading

def load_model(
    path: str | os.PathLike[str],
    *,
    input_range: tuple[float, float] | tuple[tuple[float, ...], ...] | None = None,
    layout: Layout | None = None,
    output: str | None = None,
    parity_inputs: np.ndarray | Callable[[InputSpec], np.ndarray] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    threads: int | None = None,
    build_gradients: bool = True,
    preprocess: Mapping[str, Any] | Normalisation | None = None,
    device: DeviceSpec | str | None = None,
) -> Model:
    """Load an ONNX classifier safely and build its oracle and replica.

    `input_range` is the (low, high) box of valid inputs (default (0, 1)), or per channel
    ([low_c...], [high_c...]) for inputs given in normalised space. `preprocess`
    (`{"mean": [...], "std": [...]}`, per channel in the model's layout) makes every input,
    box, ε and distance pixel-space while the graph receives `(x - mean) / std`. `device`
    ("cpu" default, "cuda", "auto") is where the replica runs. `layout` is
    "NCHW", "NHWC" or None (inputs taken as they are: rank-3 images, vectors, rows); it is
    inferred for rank-4 inputs when not given. `output` names the logits output when the
    graph has several. `parity_inputs` (dataset samples, or a function of the input spec
    giving them, for datasets laid out once the model's layout is known) drive the replica parity check;
    without them seeded random inputs inside the box are used. Raises `ModelError` with a
    one-line message naming the file on anything that makes the model unusable, including
    scores that are NaN or infinite on valid inputs.
    """
    path = Path(path)
    label = str(path)
    proto, raw_warnings = read_model(path, max_bytes)
    spec_input = _input_value(proto, label)
    box, per_channel = _check_range(input_range, label)
    torch_device = resolve_device(device, label)
    out_name, kind, cut_node, ignored = choose_output(proto, output, label)
    proto = prune_to(proto, out_name)
    session = make_session(proto, label, threads, torch_device)
    input_spec = _input_spec(spec_input, box, layout, label)
    if per_channel is not None:
        bounds = ChannelBounds.build(*per_channel, input_spec.sample_shape, input_spec.layout, label)
        input_spec = dataclasses.replace(input_spec, input_range=bounds.envelope, channel_bounds=bounds)
    normalisation = None if preprocess is None else Normalisation.build(
        preprocess, input_spec.sample_shape, input_spec.layout, label)
    if callable(parity_inputs):
        parity_inputs = parity_inputs(input_spec)
    sample = parity_batch(input_spec, parity_inputs, label)
    probe_input = pad_fixed(sample, input_spec)
    if normalisation is not None:
        probe_input = normalisation.to_model(probe_input)
    try:
        (probe,) = session.run([out_name], {input_spec.name: probe_input})
    except Exception as exc:
        raise ModelError(f"{label}: onnxruntime fails on a batch of valid inputs ({first_line(exc)})") from None
    probe = np.asarray(probe)
    if probe.ndim < 1 or probe.shape[0] != len(probe_input):
        raise ModelError(f"{label}: output {out_name!r} has shape {probe.shape}; expected one row per input")
    num_classes = int(np.prod(probe.shape[1:])) if probe.ndim > 1 else 1
    if num_classes < 2:
        raise ModelError(f"{label}: output {out_name!r} has {num_classes} value per input; a classifier needs ≥ 2")
    if probe.dtype.kind != "f":
        raise ModelError(f"{label}: output {out_name!r} holds {probe.dtype} values; scores must be floats")
    rows = np.flatnonzero(~np.isfinite(probe.reshape(len(probe), -1)).all(axis=1))
    if len(rows):
        what = "dataset inputs" if parity_inputs is not None else "random inputs inside the input range"
        raise ModelError(_non_finite_message(label, out_name, rows, len(probe), what))
    if kind == "logits" and _looks_like_probabilities(probe):
        kind = "log-probabilities"
    output_spec = OutputSpec(out_name, kind, num_classes, cut_node, ignored)
    model = Model(
        path=path, sha256=sha256(path), input_spec=input_spec, output_spec=output_spec, session=session,
        replica=None, replica_reason="not built", nondifferentiable_ops=(), parity=None,
        warnings=list(raw_warnings), oracle_batch=1 if batch_coupling_operators(proto) else None,
        preprocess=normalisation, device=torch_device,
    )
    model.randomized = bool(random_operators(proto)) or _varies(session, out_name, input_spec.name, probe_input, probe)
    if output_spec.kind != "logits":
        model.warnings.append(output_spec.note)
    if build_gradients:
        attach_replica(model, proto, sample, "random" if parity_inputs is None else "dataset")
    return model


def _input_value(proto: onnx.ModelProto, label: str) -> onnx.ValueInfoProto:
    initializers = {t.name for t in proto.graph.initializer}
    inputs = [v for v in proto.graph.input if v.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(v.name for v in inputs) or "none"
        raise ModelError(f"{label}: expected exactly one data input, found {len(inputs)} ({names})")
    value = inputs[0]
    if not value.type.HasField("tensor_type"):
        raise ModelError(f"{label}: input {value.name!r} is not a tensor")
    return value


_INPUT_DTYPES: dict[int, str] = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.DOUBLE: "float64",
                                 onnx.TensorProto.FLOAT16: "float16"}


def _type_name(elem_type: int) -> str:
    try:
        return onnx.TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"unknown type {elem_type}"


def _input_spec(value: onnx.ValueInfoProto, box: tuple[float, float], layout: Layout | None, label: str) -> InputSpec:
    ttype = value.type.tensor_type
    dtype = _INPUT_DTYPES.get(ttype.elem_type)
    if dtype is None:
        raise ModelError(f"{label}: input {value.name!r} has type {_type_name(ttype.elem_type)}; "
                         "robustcheck tests float inputs")
    dims: list[int | None] = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                              for d in ttype.shape.dim]
    if not dims:
        raise ModelError(f"{label}: input {value.name!r} has no shape; a batch dimension is required")
    if layout is not None and channel_axis(layout) is None:
        raise ModelError(f"{label}: layout {layout!r} is not one of 'NCHW', 'NHWC' or None")
    if layout is not None and len(dims) != 4:
        raise ModelError(f"{label}: layout {layout} needs a rank-4 input; {value.name!r} has rank {len(dims)}")
    if layout is None and len(dims) == 4:
        layout = "NHWC" if dims[3] in (1, 3, 4) and dims[1] not in (1, 3, 4) else "NCHW"
    return InputSpec(value.name, tuple(dims), dtype, layout, box, dims[0])


def _check_range(input_range: Any, label: str) -> tuple[tuple[float, float], tuple[Any, Any] | None]:
    """The scalar box, and the (low, high) per-channel lists when the range is given per channel."""
    if input_range is None:
        return DEFAULT_INPUT_RANGE, None
    if isinstance(input_range, (list, tuple)) and len(input_range) == 2 \
            and all(isinstance(v, (list, tuple, np.ndarray)) for v in input_range):
        return (0.0, 1.0), (input_range[0], input_range[1])  # the envelope replaces (0, 1) once validated
    try:
        lo, hi = (float(v) for v in input_range)
    except (TypeError, ValueError):
        raise ModelError(f"{label}: input_range must be a (low, high) pair, got {input_range!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ModelError(f"{label}: input_range must satisfy low < high, got {input_range!r}")
    return (lo, hi), None


def _varies(session: InferenceSession, output: str, input_name: str, x: np.ndarray, first: np.ndarray) -> bool:
    """Whether a second onnxruntime call on the same inputs gives different scores."""
    (again,) = session.run([output], {input_name: x})
    return not np.array_equal(np.asarray(again), first, equal_nan=True)


def _looks_like_probabilities(out: np.ndarray) -> bool:
    rows = out.reshape(len(out), -1).astype(np.float64)
    return bool(len(rows)) and rows.min() >= 0.0 and rows.max() <= 1.0 and np.allclose(rows.sum(axis=1), 1.0, atol=1e-3)


def _opt_float(value: float | None) -> float | None:
    return None if value is None else float(value)
