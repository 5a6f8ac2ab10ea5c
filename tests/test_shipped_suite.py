"""End to end: `pytest --robustcheck models/` on the shipped models, smoke profile.

The demo must tell the truth: the baseline passes every item; both distilled models fail their
gradient-masking item, with counterexamples of the L2 minimal-norm ensemble (`min-l2`) recorded
for them. One test (one suite run),
so that pytest-xdist does not run the suite once per worker.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.mark.slow
def test_shipped_suite_tells_the_truth(tmp_path: Path) -> None:
    target = tmp_path / "models"
    (target / "data").mkdir(parents=True)
    for name in ("baseline.onnx", "distilled.onnx", "distilled-softmax.onnx", "robustcheck.toml"):
        shutil.copy(MODELS / name, target / name)
    shutil.copy(MODELS / "data" / "mnist-heldout.npz", target / "data" / "mnist-heldout.npz")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--robustcheck", "models", "--robustcheck-profile", "smoke",
         "-p", "no:cacheprovider"],
        cwd=tmp_path, capture_output=True, text=True, timeout=1200,
    )
    out = proc.stdout
    assert proc.returncode == 1, out[-3000:]
    assert "Traceback" not in out
    record = json.loads((tmp_path / "reports" / "robustcheck.json").read_text())
    assert (tmp_path / "reports" / "robustcheck.html").is_file()
    models = {m["name"]: m for m in record["models"]}

    baseline = models["baseline"]
    assert baseline["items"] and all(i["verdict"] == "passed" for i in baseline["items"]), out[-3000:]
    assert not [f for f in baseline["findings"] if f["severity"] == "error"]

    for name in ("distilled", "distilled-softmax"):
        model = models[name]
        verdicts = {i["kind"]: i["verdict"] for i in model["items"]}
        assert verdicts["gradient-masking"] == "failed", out[-3000:]
        assert verdicts["clean-accuracy"] == "passed"
        errors = {f["id"] for f in model["findings"] if f["severity"] == "error"}
        assert {"vanishing-softmax-gradients", "weak-vs-strong"} <= errors, errors
        ens = [a for a in model["attacks"] if a["attack"] == "min-l2"]
        assert ens and ens[0]["success_rate"] >= 0.9  # smoke budget; tests/test_ensembles.py holds the 100% bar
        shown = [c for c in model["counterexamples"] if c["attack"] == "min-l2"]
        assert shown and all(Path(c["png"]).is_file() for c in shown), "the ensemble's counterexamples are shown"
        worst = next(i["figures"] for i in model["items"] if i["kind"] == "robust-accuracy")
        assert sum(worst["broken_by"].values()) == worst["broken"] and set(worst["winners"]) <= {"ddn", "fmn-l2"}
    assert models["distilled-softmax"]["spec"]["output"]["kind"] == "cut-softmax"
    assert "gradient-masking" in out and "HTML report" in out
    # The masking failure names its smallest counterexample, saved under the run's directory.
    assert "verified counterexample(s) from the strong attacks; the smallest: min-l2" in out, out[-3000:]
    assert "saved: reports/counterexamples/distilled/gradient-masking-sample" in out, out[-3000:]
