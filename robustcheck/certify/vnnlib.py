"""Hand-off to external verifiers in the VNN-COMP format, and reading their answers back.

Export: the model as logits (a trailing Softmax cut, nothing else changed: the preprocessing
stays in the graph, so X_i are the model's own input values, pixels) with batch size 1, one
`.vnnlib` L∞ robustness property per sample (X_i within ε of the sample ∩ the input box; the
counterexample region is "some Y_j ≥ Y_y, j ≠ y"), an `instances.csv` (onnx, vnnlib, timeout)
and a `manifest.json` tying instances to dataset rows.

Ingest: a result file per instance in the VNN-COMP form (first line sat / unsat / timeout /
unknown / error; after sat, the assignment `((X_0 v) ... (Y_0 v) ...)`). unsat becomes
"proven by <tool>" and stays apart from robustcheck's own proofs; a sat witness counts only
once onnxruntime misclassifies it inside the box and the ε-ball.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx

from robustcheck.graph_surgery import choose_output, prune_to
from robustcheck.model import DEFAULT_MAX_BYTES, Model
from robustcheck.onnx_file import read_model, sha256

_ASSIGNMENT = re.compile(r"\(\s*([XY])_(\d+)\s+([-+0-9.eEinfa]+)\s*\)")


@dataclass(frozen=True)
class ExternalVerdict:
    """An external verifier's answer for one instance, as robustcheck judged it."""

    instance: str
    row: int  # dataset row
    label: int
    epsilon: float
    tool: str
    raw: str  # the tool's first line
    status: str  # "proven by <tool>" | "violated" | "witness rejected: <why>" | "unknown (<raw>)"
    witness_label: int | None = None
    witness_linf: float | None = None


def logits_model(path: Path) -> onnx.ModelProto:
    """The model's graph pruned to its logits (trailing Softmax cut), with batch size 1."""
    proto, _ = read_model(path, DEFAULT_MAX_BYTES)
    out_name, kind, _, _ = choose_output(proto, None, str(path))
    if kind == "log-probabilities":
        raise ValueError(f"{path}: the output holds probabilities and there is no Softmax node to cut; "
                         "VNN-COMP properties need logits")
    proto = prune_to(proto, out_name)
    initializers = {t.name for t in proto.graph.initializer}
    for value in list(proto.graph.input) + list(proto.graph.output):
        if value.name in initializers:
            continue
        dims = value.type.tensor_type.shape.dim
        if len(dims):
            dims[0].Clear()
            dims[0].dim_value = 1
    return proto


def property_text(low: np.ndarray, high: np.ndarray, label: int, classes: int, comment: str) -> str:
    """A VNN-COMP robustness property: X within [low, high]; unsafe when some Y_j ≥ Y_label."""
    lines = [f"; {comment}"]
    lines += [f"(declare-const X_{i} Real)" for i in range(len(low))]
    lines += [f"(declare-const Y_{j} Real)" for j in range(classes)]
    for i, (lo, hi) in enumerate(zip(low, high)):
        lines.append(f"(assert (<= X_{i} {float(hi)!r}))")
        lines.append(f"(assert (>= X_{i} {float(lo)!r}))")
    lines.append("(assert (or")
    lines += [f"    (and (>= Y_{j} Y_{label}))" for j in range(classes) if j != label]
    lines.append("))")
    return "\n".join(lines) + "\n"


def export(model: Model, x: np.ndarray, y: np.ndarray, rows: np.ndarray, epsilon: float, out_dir: Path,
           timeout: float = 60.0) -> Path:
    """Write the model, one property per sample, instances.csv and manifest.json; returns the manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vnnlib").mkdir(exist_ok=True)
    onnx_path = out_dir / f"{model.name}.onnx"
    onnx.save(logits_model(model.path), str(onnx_path))
    lo_box, hi_box = model.input_range
    instances = []
    for xi, yi, row in zip(x, y, rows):
        flat = np.asarray(xi, dtype=np.float64).reshape(-1)
        low, high = np.maximum(flat - epsilon, lo_box), np.minimum(flat + epsilon, hi_box)
        name = f"{model.name}_row{int(row)}_linf{epsilon:g}"
        vnnlib = out_dir / "vnnlib" / f"{name}.vnnlib"
        vnnlib.write_text(property_text(low, high, int(yi), model.num_classes,
                                        f"robustcheck: {model.name} dataset row {int(row)}, label {int(yi)}, "
                                        f"L-inf epsilon {epsilon:g} in the model's input units"))
        instances.append({"instance": name, "row": int(row), "label": int(yi), "vnnlib": f"vnnlib/{name}.vnnlib"})
    with open(out_dir / "instances.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        for inst in instances:
            writer.writerow([onnx_path.name, inst["vnnlib"], f"{timeout:g}"])
    manifest = {"model": str(model.path), "model_sha256": sha256(model.path), "onnx": onnx_path.name,
                "epsilon": epsilon, "norm": "linf", "input_range": [lo_box, hi_box],
                "input_shape": list(np.asarray(x).shape[1:]), "instances": instances}
    path = out_dir / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def read_result(path: Path) -> tuple[str, dict[str, dict[int, float]]]:
    """(first line, {"X": {i: v}, "Y": {j: v}}) of a VNN-COMP result file."""
    text = path.read_text()
    lines = text.strip().splitlines()
    if not lines:
        raise ValueError(f"{path}: empty result file")
    values: dict[str, dict[int, float]] = {"X": {}, "Y": {}}
    for kind, index, value in _ASSIGNMENT.findall(text):
        values[kind][int(index)] = float(value)
    return lines[0].strip().lower(), values


def ingest(model: Model, x: np.ndarray, manifest_path: Path, results: Path, tool: str) -> list[ExternalVerdict]:
    """Judge a verifier's result files (`<instance>.txt` or `.counterexample` under `results`)."""
    manifest = json.loads(manifest_path.read_text())
    eps = float(manifest["epsilon"])
    verdicts = []
    for k, inst in enumerate(manifest["instances"]):
        found = [p for p in (results / f"{inst['instance']}.txt", results / f"{inst['instance']}.counterexample")
                 if p.is_file()]
        common = dict(instance=inst["instance"], row=inst["row"], label=inst["label"], epsilon=eps, tool=tool)
        if not found:
            verdicts.append(ExternalVerdict(**common, raw="missing", status="unknown (no result file)"))
            continue
        raw, values = read_result(found[0])
        if raw in ("unsat", "holds"):
            verdicts.append(ExternalVerdict(**common, raw=raw, status=f"proven by {tool}"))
        elif raw in ("sat", "violated"):
            verdicts.append(_judge_witness(model, np.asarray(x[k], dtype=np.float64), values["X"], common, raw, eps))
        else:
            verdicts.append(ExternalVerdict(**common, raw=raw, status=f"unknown ({raw})"))
    return verdicts


def _judge_witness(model: Model, x: np.ndarray, assignment: dict[int, float], common: dict, raw: str,
                   eps: float) -> ExternalVerdict:
    if len(assignment) != x.size or set(assignment) != set(range(x.size)):
        return ExternalVerdict(**common, raw=raw, status=f"witness rejected: it assigns {len(assignment)} of "
                                                         f"{x.size} inputs")
    point = np.array([assignment[i] for i in range(x.size)]).reshape(x.shape).astype(model.input_spec.dtype)
    linf = float(np.abs(point.astype(np.float64) - x).max())
    label = int(model.predict(point[None])[0])
    if not model.in_box(point[None], 1e-6)[0]:
        why = "outside the input box"
    elif linf > eps * (1 + 1e-6) + 1e-9:
        why = f"L-inf {linf:.6g} exceeds epsilon {eps:g}"
    elif label == common["label"]:
        why = f"onnxruntime still predicts {label}"
    else:
        return ExternalVerdict(**common, raw=raw, status="violated", witness_label=label, witness_linf=linf)
    return ExternalVerdict(**common, raw=raw, status=f"witness rejected: {why}", witness_label=label,
                           witness_linf=linf)


def verdicts_json(verdicts: list[ExternalVerdict]) -> list[dict]:
    return [asdict(v) for v in verdicts]
