"""onnxruntime's telemetry stays off when robustcheck imports onnxruntime, without leaking the setting.

onnxruntime 1.29+ creates ~/.cache/Microsoft/DeveloperTools/.onnxruntime/ (a device id and an
event database) when it initialises, then sends events from background threads. Each check
runs in a fresh interpreter with its own HOME, outside any CI detection onnxruntime does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Variables with which onnxruntime 1.32 turns telemetry off by itself (CI systems, its unit tests).
ONNXRUNTIME_QUIET_VARIABLES = ("ORT_DISABLE_TELEMETRY", "ORT_RUNNING_UNIT_TESTS", "TF_BUILD", "GITHUB_ACTIONS",
                               "GITLAB_CI", "CIRCLECI", "TRAVIS", "JENKINS_URL", "CODEBUILD_BUILD_ID", "BUILDKITE",
                               "TEAMCITY_VERSION", "APPVEYOR", "BITBUCKET_BUILD_NUMBER")

LOAD_AND_PREDICT = """
import json, os, sys
import numpy as np
from onnx import TensorProto, helper, numpy_helper, save_model
node = helper.make_node("MatMul", ["x", "W"], ["z"])
graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
                          [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 2])],
                          initializer=[numpy_helper.from_array(np.eye(2, dtype=np.float32), "W")])
save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), sys.argv[1])
from robustcheck import load_model
from robustcheck.oracle_session import TELEMETRY_DISABLED
load_model(sys.argv[1]).predict(np.zeros((3, 2), np.float32))
print(json.dumps({"variable": os.environ.get("ORT_DISABLE_TELEMETRY"), "disabled": TELEMETRY_DISABLED}))
"""


def _run(code: str, home: Path, *args: str, **extra_env: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ONNXRUNTIME_QUIET_VARIABLES}
    env.update(HOME=str(home), **extra_env)
    env.pop("XDG_CACHE_HOME", None)
    home.mkdir()
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def _cache(home: Path) -> list[str]:
    return sorted(p.name for p in (home / ".cache" / "Microsoft").rglob("*") if p.is_file())


def test_robustcheck_imports_onnxruntime_with_its_telemetry_off(tmp_path: Path) -> None:
    _run("import onnxruntime", tmp_path / "plain")
    if not _cache(tmp_path / "plain"):
        pytest.skip("this onnxruntime build writes no telemetry files (nothing to turn off)")
    result = _run(LOAD_AND_PREDICT, tmp_path / "robustcheck", str(tmp_path / "m.onnx"))
    assert _cache(tmp_path / "robustcheck") == []
    assert result == {"variable": None, "disabled": True}  # off, and the variable is not left behind


def test_a_user_choice_is_respected(tmp_path: Path) -> None:
    result = _run(LOAD_AND_PREDICT, tmp_path / "opted-in", str(tmp_path / "m.onnx"), ORT_DISABLE_TELEMETRY="0")
    assert result == {"variable": "0", "disabled": False}
