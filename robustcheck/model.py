"""The model under test: onnxruntime as the oracle, a torch replica for gradients.

`load_model` reads an ONNX file defensively (CI loads files nobody reviewed), finds the
logits, starts an onnxruntime session on the CPU provider, builds the differentiable
replica and checks it against onnxruntime. Only onnxruntime decides what the model predicts.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import onnxruntime as ort
import torch

from robustcheck.errors import ModelError, ReplicaUnavailable
from robustcheck.replica import UnsupportedGraph, build_replica

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_INPUT_RANGE = (0.0, 1.0)
PARITY_SAMPLES = 16
# The replica may differ from onnxruntime by float reordering only: |Δ| ≤ ATOL + RTOL·max|logit|.
PARITY_ATOL = 1e-3
PARITY_RTOL = 1e-4

Layout = Literal["NCHW", "NHWC"]
OutputKind = Literal["logits", "cut-softmax", "cut-logsoftmax", "log-probabilities"]

_NUMPY_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
}


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
        return f"trailing {self.kind.removeprefix('cut-').replace('logsoftmax', 'LogSoftmax').replace('softmax', 'Softmax')} node {self.cut_node!r} cut; attacking its input {self.name!r}"


@dataclass(frozen=True)
class ParityReport:
    """How closely the replica reproduces onnxruntime on a fixed set of inputs."""

    samples: int
    source: Literal["dataset", "random"]
    max_abs_diff: float
    max_rel_diff: float
    argmax_agreement: float
    passed: bool


@dataclass
class Model:
    """An ONNX classifier under test. Build it with `load_model`."""

    path: Path
    sha256: str
    input_spec: InputSpec
    output_spec: OutputSpec
    session: ort.InferenceSession = field(repr=False)
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
        """Logits (N, classes) from onnxruntime, float32; chunks to the model's batch size."""
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
        return logits

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Oracle labels (N,) as int64: the only judge of what the model predicts."""
        return self.oracle_logits(x).argmax(axis=1).astype(np.int64)

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
    one-line message naming the file on anything that makes the model unusable.
    """
    path = Path(path)
    label = str(path)
    proto, raw_warnings = _read_model(path, max_bytes)
    spec_input = _input_value(proto, label)
    box = _check_range(input_range, label)
    out_name, kind, cut_node, ignored = _choose_output(proto, output, label)
    proto = _prune_to(proto, out_name, cut_node)
    session = _session(proto, label, threads)
    input_spec = _input_spec(spec_input, box, layout, label)
    sample = _parity_batch(input_spec, parity_inputs, label)
    probe_input = _pad_fixed(sample, input_spec)
    try:
        (probe,) = session.run([out_name], {input_spec.name: probe_input})
    except Exception as exc:
        raise ModelError(f"{label}: onnxruntime fails on a batch of valid inputs ({_first_line(exc)})") from None
    probe = np.asarray(probe)
    if probe.ndim < 1 or probe.shape[0] != len(probe_input):
        raise ModelError(f"{label}: output {out_name!r} has shape {probe.shape}; expected one row per input")
    num_classes = int(np.prod(probe.shape[1:])) if probe.ndim > 1 else 1
    if num_classes < 2:
        raise ModelError(f"{label}: output {out_name!r} has {num_classes} value per input; a classifier needs ≥ 2")
    if kind == "logits" and _looks_like_probabilities(probe):
        kind = "log-probabilities"
    output_spec = OutputSpec(out_name, kind, num_classes, cut_node, ignored)
    model = Model(
        path=path, sha256=_sha256(path), input_spec=input_spec, output_spec=output_spec, session=session,
        replica=None, replica_reason="not built", nondifferentiable_ops=(), parity=None,
        warnings=list(raw_warnings),
    )
    if output_spec.kind != "logits":
        model.warnings.append(output_spec.note)
    if build_gradients:
        _attach_replica(model, proto, sample, "random" if parity_inputs is None else "dataset")
    return model


def _read_model(path: Path, max_bytes: int) -> tuple[onnx.ModelProto, list[str]]:
    label = str(path)
    if not path.exists():
        raise ModelError(f"{label}: no such file")
    if not path.is_file():
        raise ModelError(f"{label}: not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise ModelError(f"{label}: empty file")
    if size > max_bytes:
        raise ModelError(f"{label}: {size} bytes exceeds the size cap of {max_bytes} bytes")
    try:
        proto = onnx.load_model(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises several types; none of them is a user message
        raise ModelError(f"{label}: not a valid ONNX model ({type(exc).__name__}: {_first_line(exc)})") from None
    if proto.ir_version <= 0 or not proto.graph.node or not proto.graph.output:
        raise ModelError(f"{label}: not a valid ONNX model (no graph, nodes or outputs: truncated or not ONNX)")
    _load_external_data(proto, path, max_bytes)
    found: list[str] = []
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        message = f"{path.name}: onnx.checker rejects the graph ({_first_line(exc)}); testing it as onnxruntime runs it"
        found.append(message)
        warnings.warn(message, stacklevel=3)
    return proto, found


def _load_external_data(proto: onnx.ModelProto, path: Path, max_bytes: int) -> None:
    """Load external tensors, refusing any location outside the model's own folder."""
    base = path.parent.resolve()
    label = str(path)
    external = [t for t in _all_tensors(proto) if t.data_location == onnx.TensorProto.EXTERNAL]
    if not external:
        return
    total = 0
    for tensor in external:
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        if not location or os.path.isabs(location) or ".." in Path(location).parts:
            raise ModelError(f"{label}: external data {location!r} of tensor {tensor.name!r} lies outside the model's folder")
        target = (base / location).resolve()
        if base not in target.parents:
            raise ModelError(f"{label}: external data {location!r} of tensor {tensor.name!r} lies outside the model's folder")
        if not target.is_file():
            raise ModelError(f"{label}: external data file {location!r} of tensor {tensor.name!r} is missing")
        total += int(info.get("length", target.stat().st_size))
    if total > max_bytes:
        raise ModelError(f"{label}: external data of {total} bytes exceeds the size cap of {max_bytes} bytes")
    try:
        onnx.load_external_data_for_model(proto, str(base))
    except Exception as exc:
        raise ModelError(f"{label}: cannot read external data ({_first_line(exc)})") from None


def _all_tensors(proto: onnx.ModelProto) -> list[onnx.TensorProto]:
    tensors = list(proto.graph.initializer)
    for node in proto.graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                tensors.append(attr.t)
    return tensors


def _session(proto: onnx.ModelProto, label: str, threads: int | None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or max(1, torch.get_num_threads())
    options.inter_op_num_threads = 1
    # onnxruntime's workers spin after each run by default; interleaved with torch (attacks judge
    # iterates on the oracle) the spinning threads steal the cores torch needs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelError(f"{label}: onnxruntime cannot run the graph ({_first_line(exc)})") from None


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


def _input_spec(value: onnx.ValueInfoProto, box: tuple[float, float], layout: Layout | None, label: str) -> InputSpec:
    ttype = value.type.tensor_type
    dtype = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.DOUBLE: "float64",
             onnx.TensorProto.FLOAT16: "float16"}.get(ttype.elem_type)
    if dtype is None:
        type_name = onnx.TensorProto.DataType.Name(ttype.elem_type)
        raise ModelError(f"{label}: input {value.name!r} has type {type_name}; robustcheck tests float inputs")
    dims: list[int | None] = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                              for d in ttype.shape.dim]
    if not dims:
        raise ModelError(f"{label}: input {value.name!r} has no shape; a batch dimension is required")
    if layout is not None and layout not in ("NCHW", "NHWC"):
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


_FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16)


def _choose_output(
    proto: onnx.ModelProto, wanted: str | None, label: str
) -> tuple[str, OutputKind, str | None, tuple[str, ...]]:
    """Pick the float tensor output holding the scores and cut a trailing Softmax/LogSoftmax.

    Non-tensor outputs (ZipMap's sequences of maps) and label tensors are ignored.
    """
    def is_float_tensor(value: onnx.ValueInfoProto) -> bool:
        return value.type.HasField("tensor_type") and value.type.tensor_type.elem_type in _FLOAT_TYPES

    candidates = [o.name for o in proto.graph.output if is_float_tensor(o)]
    ignored = tuple(o.name for o in proto.graph.output if not is_float_tensor(o))
    if wanted is not None:
        if wanted not in candidates:
            names = ", ".join(candidates) or "none"
            raise ModelError(f"{label}: output {wanted!r} is not a float tensor output (float outputs: {names})")
        chosen = wanted
    elif not candidates:
        raise ModelError(f"{label}: no float tensor output to read scores from")
    else:
        chosen = candidates[0]
        ignored += tuple(candidates[1:])
    producers = {out: node for node in proto.graph.node for out in node.output}
    name, node = chosen, producers.get(chosen)
    while node is not None and node.op_type == "Identity":
        name, node = node.input[0], producers.get(node.input[0])
    if node is not None and node.op_type in ("Softmax", "LogSoftmax") and not node.domain:
        kind: OutputKind = "cut-softmax" if node.op_type == "Softmax" else "cut-logsoftmax"
        return node.input[0], kind, node.name or node.op_type, ignored
    return chosen, "logits", None, ignored


def _prune_to(proto: onnx.ModelProto, output: str, cut_node: str | None) -> onnx.ModelProto:
    """A copy of the graph computing only `output` (dropping ZipMap/label branches and cut heads)."""
    pruned = onnx.ModelProto()
    pruned.CopyFrom(proto)
    graph = pruned.graph
    needed = {output}
    keep: list[onnx.NodeProto] = []
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    for node in reversed(_topological(list(graph.node), available)):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
            needed.update(_subgraph_inputs(node))
    keep.reverse()
    del graph.node[:]
    graph.node.extend(keep)
    existing = {o.name: o for o in graph.output}
    del graph.output[:]
    if output in existing:
        graph.output.append(existing[output])
    else:
        graph.output.append(onnx.helper.make_empty_tensor_value_info(output))
    used = {i for n in keep for i in n.input} | {output}
    kept_inits = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept_inits)
    return pruned


def _topological(nodes: list[onnx.NodeProto], available: set[str]) -> list[onnx.NodeProto]:
    """Order nodes so each runs after its producers (onnxruntime accepts unsorted graphs; so must we)."""
    produced = {o for n in nodes for o in n.output}
    ready = set(available) | {""}
    ordered: list[onnx.NodeProto] = []
    pending = list(nodes)
    while pending:
        runnable = [all(i in ready or i not in produced for i in n.input) for n in pending]
        done = [n for n, ok in zip(pending, runnable) if ok]
        rest = [n for n, ok in zip(pending, runnable) if not ok]
        if not done:  # a cycle: leave the remainder as it was and let onnxruntime's verdict stand
            return ordered + rest
        for n in done:
            ready.update(n.output)
        ordered += done
        pending = rest
    return ordered


def _subgraph_inputs(node: onnx.NodeProto) -> set[str]:
    names: set[str] = set()
    for attr in node.attribute:
        graphs = [attr.g] if attr.HasField("g") else list(attr.graphs)
        for g in graphs:
            for n in g.node:
                names.update(i for i in n.input if i)
                names |= _subgraph_inputs(n)
    return names


def _looks_like_probabilities(out: np.ndarray) -> bool:
    rows = out.reshape(len(out), -1).astype(np.float64)
    return bool(len(rows)) and rows.min() >= 0.0 and rows.max() <= 1.0 and np.allclose(rows.sum(axis=1), 1.0, atol=1e-3)


def _parity_batch(spec: InputSpec, data: np.ndarray | None, label: str) -> np.ndarray:
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
    shape = (PARITY_SAMPLES,) + tuple(int(d) for d in spec.sample_shape)  # type: ignore[arg-type]
    return rng.uniform(lo, hi, size=shape).astype(spec.dtype)


def _pad_fixed(x: np.ndarray, spec: InputSpec) -> np.ndarray:
    if spec.fixed_batch and len(x) != spec.fixed_batch:
        reps = -(-spec.fixed_batch // len(x))
        return np.concatenate([x] * reps)[: spec.fixed_batch]
    return x


def _attach_replica(model: Model, proto: onnx.ModelProto, sample: np.ndarray,
                    source: Literal["dataset", "random"]) -> None:
    """Build the replica and keep it only if it reproduces onnxruntime on `sample`."""
    try:
        replica = build_replica(proto, model.input_spec.name, [model.output_spec.name])
    except UnsupportedGraph as exc:
        model.replica_reason = str(exc)
        return
    except Exception as exc:  # a graph the replica mis-parses must not take the oracle down with it
        model.replica_reason = f"replica build failed ({type(exc).__name__}: {_first_line(exc)})"
        return
    model.replica = replica
    model.nondifferentiable_ops = tuple(getattr(replica, "nondifferentiable", ()))
    try:
        oracle = model.oracle_logits(sample)
        mirror = model.replica_logits(sample)
    except Exception as exc:
        model.replica, model.replica_reason = None, f"replica failed to run ({type(exc).__name__}: {_first_line(exc)})"
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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    line = text.splitlines()[0].strip()
    return line if len(line) <= 300 else line[:297] + "..."


def describe(model: Model) -> dict[str, Any]:
    """Plain data about the model for records and reports."""
    spec = model.input_spec
    return {
        "file": str(model.path),
        "name": model.name,
        "sha256": model.sha256,
        "input": {"name": spec.name, "shape": ["N" if d is None else d for d in spec.shape], "dtype": spec.dtype,
                  "layout": spec.layout, "range": list(spec.input_range), "fixed_batch": spec.fixed_batch},
        "output": {"name": model.output_spec.name, "kind": model.output_spec.kind,
                   "classes": model.num_classes, "cut_node": model.output_spec.cut_node},
        "replica": None if model.replica is None else "torch",
        "replica_reason": model.replica_reason,
        "nondifferentiable_ops": list(model.nondifferentiable_ops),
        "parity": None if model.parity is None else model.parity.__dict__,
        "warnings": list(model.warnings),
    }
