"""The model under test: onnxruntime as the oracle, a torch replica for gradients.

`load_model` reads an ONNX file defensively (CI loads files nobody reviewed; see
onnx_file.py), finds the logits (graph_surgery.py), starts an onnxruntime session on the CPU
provider (oracle_session.py), builds the differentiable replica and checks it against
onnxruntime (parity.py). Only onnxruntime decides what the model predicts, and scores that
are not finite are never turned into a prediction.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
import torch

from robustcheck.errors import ModelError, ReplicaUnavailable, first_line
from robustcheck.graph_surgery import OutputKind, choose_output, prune_to
from robustcheck.metrics import channel_axis
from robustcheck.onnx_file import read_model, sha256
from robustcheck.oracle_session import InferenceSession, make_session
from robustcheck.parity import ParityReport, attach_replica, pad_fixed, parity_batch
from robustcheck.record import InputInfo, ModelSpec, OutputInfo, ParityInfo

__all__ = ["DEFAULT_INPUT_RANGE", "DEFAULT_MAX_BYTES", "InputSpec", "Layout", "Model", "OutputKind", "OutputSpec",
           "ParityReport", "load_model"]

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_INPUT_RANGE = (0.0, 1.0)

Layout = Literal["NCHW", "NHWC"]


@dataclass(frozen=True)
class InputSpec:
    """The model's data input: name, shape (None for symbolic dims), dtype, layout and box."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str
    layout: Layout | None
    input_range: tuple[float, float]
    fixed_batch: int | None

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
        step = spec.fixed_batch or self.batch_size
        outs = []
        for start in range(0, len(x), step):
            chunk = x[start:start + step]
            n = len(chunk)
            if spec.fixed_batch and n < spec.fixed_batch:
                pad = np.repeat(chunk[:1], spec.fixed_batch - n, axis=0)
                chunk = np.concatenate([chunk, pad])
            (out,) = self.session.run([self.output_spec.name], {spec.name: chunk})
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

        -1 (no class) for an input that is not finite itself; see `oracle_logits`.
        """
        logits = self.oracle_logits(x)
        labels = logits.argmax(axis=1).astype(np.int64)
        labels[~np.isfinite(logits).all(axis=1)] = -1
        return labels

    def spec(self) -> ModelSpec:
        """The record's typed view of this model: input, output, replica, parity, warnings."""
        spec, out, parity = self.input_spec, self.output_spec, self.parity
        return ModelSpec(
            input=InputInfo(name=spec.name, shape=["N" if d is None else d for d in spec.shape], dtype=spec.dtype,
                            layout=spec.layout, range=[float(v) for v in spec.input_range],
                            fixed_batch=spec.fixed_batch),
            output=OutputInfo(name=out.name, kind=out.kind, classes=self.num_classes, cut_node=out.cut_node),
            replica=None if self.replica is None else "torch", replica_reason=self.replica_reason,
            nondifferentiable_ops=list(self.nondifferentiable_ops),
            parity=None if parity is None else ParityInfo(
                samples=int(parity.samples), source=str(parity.source), max_abs_diff=float(parity.max_abs_diff),
                max_rel_diff=float(parity.max_rel_diff), argmax_agreement=float(parity.argmax_agreement),
                passed=bool(parity.passed)),
            warnings=list(self.warnings),
        )

    def in_box(self, x: np.ndarray, tol: float = 0.0) -> np.ndarray:
        """Per-sample: every value finite and inside the input range."""
        lo, hi = self.input_range
        flat = x.reshape(len(x), -1)
        return np.isfinite(flat).all(axis=1) & (flat >= lo - tol).all(axis=1) & (flat <= hi + tol).all(axis=1)

    # -- replica --------------------------------------------------------------------------
    def require_replica(self) -> torch.nn.Module:
        if self.replica is None:
            raise ReplicaUnavailable(f"{self.path.name}: no differentiable replica ({self.replica_reason})")
        return self.replica

    def torch_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable logits from the replica for a torch batch in the model's layout."""
        replica = self.require_replica()
        out = replica(x.to(self._torch_dtype))
        out = out.reshape(out.shape[0], -1).float()
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
    input_range: tuple[float, float] | None = None,
    layout: Layout | None = None,
    output: str | None = None,
    parity_inputs: np.ndarray | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    threads: int | None = None,
    build_gradients: bool = True,
) -> Model:
    """Load an ONNX classifier safely and build its oracle and replica.

    `input_range` is the (low, high) box of valid inputs (default (0, 1)); `layout` is
    "NCHW", "NHWC" or None (inputs taken as they are: rank-3 images, vectors, rows); it is
    inferred for rank-4 inputs when not given. `output` names the logits output when the
    graph has several. `parity_inputs` (dataset samples) drive the replica parity check;
    without them seeded random inputs inside the box are used. Raises `ModelError` with a
    one-line message naming the file on anything that makes the model unusable, including
    scores that are NaN or infinite on valid inputs.
    """
    path = Path(path)
    label = str(path)
    proto, raw_warnings = read_model(path, max_bytes)
    spec_input = _input_value(proto, label)
    box = _check_range(input_range, label)
    out_name, kind, cut_node, ignored = choose_output(proto, output, label)
    proto = prune_to(proto, out_name)
    session = make_session(proto, label, threads)
    input_spec = _input_spec(spec_input, box, layout, label)
    sample = parity_batch(input_spec, parity_inputs, label)
    probe_input = pad_fixed(sample, input_spec)
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
        warnings=list(raw_warnings),
    )
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


def _check_range(input_range: tuple[float, float] | None, label: str) -> tuple[float, float]:
    if input_range is None:
        return DEFAULT_INPUT_RANGE
    try:
        lo, hi = (float(v) for v in input_range)
    except (TypeError, ValueError):
        raise ModelError(f"{label}: input_range must be a (low, high) pair, got {input_range!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ModelError(f"{label}: input_range must satisfy low < high, got {input_range!r}")
    return (lo, hi)


def _looks_like_probabilities(out: np.ndarray) -> bool:
    rows = out.reshape(len(out), -1).astype(np.float64)
    return bool(len(rows)) and rows.min() >= 0.0 and rows.max() <= 1.0 and np.allclose(rows.sum(axis=1), 1.0, atol=1e-3)
