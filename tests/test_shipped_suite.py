"""End to end: `pytest --robustcheck models/` on the shipped models, smoke profile.

The demo must tell the truth: the baseline passes every item; both distilled models fail their
gradient-masking item, with C&W counterexamples recorded for them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

MODELS = Path(__file__).resolve().parents[1] / "models"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def suite_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, dict]:
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("suite")
    target = root / "models"
    (target / "data").mkdir(parents=True)
    for name in ("baseline.onnx", "distilled.onnx", "distilled-softmax.onnx", "robustcheck.toml"):
        shutil.copy(MODELS / name, target / name)
    shutil.copy(MODELS / "data" / "mnist-heldout.npz", target / "data" / "mnist-heldout.npz")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--robustcheck", "models", "--robustcheck-profile", "smoke",
         "-p", "no:cacheprovider", "-rA"],
        cwd=root, capture_output=True, text=True, timeout=1200,
    )
    record = json.loads((root / "reports" / "robustcheck.json").read_text())
    return proc.returncode, proc.stdout, record


def test_suite_exit_code_is_one(suite_run: tuple[int, str, dict]) -> None:
    code, out, _ = suite_run
    assert code == 1, out[-3000:]
    assert "Traceback" not in out


def test_baseline_passes_every_item(suite_run: tuple[int, str, dict]) -> None:
    _, out, record = suite_run
    baseline = next(m for m in record["models"] if m["name"] == "baseline")
    assert baseline["items"] and all(i["verdict"] == "passed" for i in baseline["items"]), out[-3000:]
    assert not [f for f in baseline["findings"] if f["severity"] == "error"]


@pytest.mark.parametrize("name", ["distilled", "distilled-softmax"])
def test_distilled_models_fail_with_masking_flagged_and_counterexamples(suite_run: tuple[int, str, dict],
                                                                        name: str) -> None:
    _, out, record = suite_run
    model = next(m for m in record["models"] if m["name"] == name)
    verdicts = {i["kind"]: i["verdict"] for i in model["items"]}
    assert verdicts["gradient-masking"] == "failed", out[-3000:]
    assert verdicts["clean-accuracy"] == "passed"
    assert any(f["severity"] == "error" for f in model["findings"])
    cw = [a for a in model["attacks"] if a["attack"] == "cw-l2"]
    assert cw and cw[0]["success_rate"] >= 0.9  # smoke budget; tests/test_attacks.py holds the 100% bar
    assert model["counterexamples"], "C&W counterexamples are shown for the distilled models"
    if name == "distilled-softmax":
        assert model["spec"]["output"]["kind"] == "cut-softmax"
