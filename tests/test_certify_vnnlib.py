"""VNN-COMP export and the ingestion of an external verifier's answers."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import HELDOUT, ROOT

from robustcheck.certify import verify_exact
from robustcheck.data import load_dataset
from robustcheck.model import load_model

MLP = ROOT / "tests" / "data" / "mlp-784-50-50-10.onnx"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robustcheck", "export-vnnlib", *args], capture_output=True,
                          text=True, cwd=ROOT)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("vnncomp")
    done = _run(str(MLP), "--dataset", str(HELDOUT), "--epsilon", "0.05", "--samples", "3", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


def test_export_writes_logits_model_properties_and_instances(exported) -> None:
    manifest = json.loads((exported / "manifest.json").read_text())
    assert [i["row"] for i in manifest["instances"]] == [8000, 8001, 8002]
    proto = onnx.load(str(exported / manifest["onnx"]))
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    data = load_dataset(HELDOUT, limit=3)
    session = ort.InferenceSession(str(exported / manifest["onnx"]), providers=["CPUExecutionProvider"])
    reference = load_model(MLP).oracle_logits(data.x)
    for k, inst in enumerate(manifest["instances"]):
        np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: data.x[k:k + 1]})[0][0],
                                   reference[k], rtol=1e-6, atol=1e-6)
        text = (exported / inst["vnnlib"]).read_text()
        upper = {int(i): float(v) for i, v in re.findall(r"\(assert \(<= X_(\d+) ([^)]+)\)\)", text)}
        lower = {int(i): float(v) for i, v in re.findall(r"\(assert \(>= X_(\d+) ([^)]+)\)\)", text)}
        flat = data.x[k].reshape(-1).astype(np.float64)
        np.testing.assert_allclose([upper[i] for i in range(784)], np.minimum(flat + 0.05, 1.0))
        np.testing.assert_allclose([lower[i] for i in range(784)], np.maximum(flat - 0.05, 0.0))
        y = inst["label"]
        assert text.count(">= Y_") == 9 and f"(>= Y_{y} Y_{y})" not in text
    assert (exported / "instances.csv").read_text().count("\n") == 3


def _result(assignment: np.ndarray, logits: np.ndarray) -> str:
    xs = "\n".join(f"(X_{i} {float(v)!r})" for i, v in enumerate(assignment.reshape(-1)))
    ys = "\n".join(f"(Y_{j} {float(v)!r})" for j, v in enumerate(logits))
    return f"sat\n({xs}\n{ys})\n"


def test_ingest_checks_witnesses_and_keeps_external_proofs_apart(exported, tmp_path) -> None:
    manifest = json.loads((exported / "manifest.json").read_text())
    data = load_dataset(HELDOUT, limit=3)
    model = load_model(MLP)
    results = tmp_path / "results"
    results.mkdir()
    names = [i["instance"] for i in manifest["instances"]]
    (results / f"{names[0]}.txt").write_text("unsat\n")
    # a real counterexample at a larger radius (outside this ε), and the clean input (not adversarial)
    far = verify_exact(model, data.x[1:2], data.y[1:2], epsilon=0.2, time_limit=30).verdicts[0]
    assert far.status == "violated"
    (results / f"{names[1]}.counterexample").write_text(_result(far.witness, model.oracle_logits(far.witness[None])[0]))
    (results / f"{names[2]}.txt").write_text(_result(data.x[2], model.oracle_logits(data.x[2:3])[0]))
    done = _run("--ingest", str(results), "--manifest", str(exported / "manifest.json"), "--tool", "abcrown")
    assert done.returncode == 0, done.stderr
    verdicts = json.loads((exported / "verdicts-abcrown.json").read_text())
    assert verdicts[0]["status"] == "proven by abcrown"
    linf = float(np.abs(far.witness.astype(np.float64) - data.x[1]).max())
    expected = "violated" if linf <= 0.05 else "witness rejected: L-inf"
    assert verdicts[1]["status"].startswith(expected), (linf, verdicts[1]["status"])
    assert verdicts[2]["status"] == f"witness rejected: onnxruntime still predicts {int(data.y[2])}"


def test_ingest_accepts_a_witness_onnxruntime_confirms(exported, tmp_path) -> None:
    manifest = json.loads((exported / "manifest.json").read_text())
    data = load_dataset(HELDOUT, limit=3)
    model = load_model(MLP)
    hit = None
    for k in range(3):
        verdict = verify_exact(model, data.x[k:k + 1], data.y[k:k + 1], epsilon=0.05, time_limit=30).verdicts[0]
        if verdict.status == "violated":
            hit = (k, verdict.witness)
            break
    assert hit is not None, "the committed MLP's rows 8001/8002 break below L-inf 0.05 (golden brackets)"
    k, witness = hit
    results = tmp_path / "r"
    results.mkdir()
    (results / f"{manifest['instances'][k]['instance']}.txt").write_text(
        _result(witness, model.oracle_logits(witness[None])[0]))
    from robustcheck.certify.vnnlib import ingest
    verdicts = ingest(model, data.x, exported / "manifest.json", results, "abcrown")
    assert verdicts[k].status == "violated" and verdicts[k].witness_label != int(data.y[k])
    assert all(v.status == "unknown (no result file)" for i, v in enumerate(verdicts) if i != k)
