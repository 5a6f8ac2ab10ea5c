"""Smoke test for models/train_mnist.py: a tiny run must produce the three loadable ONNX files.

Runs the real script (in a subprocess, so its thread/determinism settings cannot leak into the
rest of the session) on 256 training images for one epoch; takes a few seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "models" / "train_mnist.py"
EVAL_N = 200


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("train-smoke")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out-dir", str(out), "--train-limit", "256", "--eval-limit", str(EVAL_N),
         "--epochs", "1", "--threads", "1", "--quiet"],
        capture_output=True, text=True, timeout=300, cwd=str(tmp_path_factory.getbasetemp()),
    )
    assert proc.returncode == 0, f"train_mnist.py failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return out


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["input"]
    return sess.run(None, {"input": x})[0]


@pytest.mark.parametrize("name, output", [("baseline", "logits"), ("distilled", "logits"),
                                          ("distilled-softmax", "probabilities")])
def test_onnx_files_load_and_run(tiny_run: Path, name: str, output: str) -> None:
    import onnx

    path = tiny_run / f"{name}.onnx"
    assert path.is_file(), f"{path} not written"
    assert path.stat().st_size < 2 * 1024 * 1024
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert [o.name for o in proto.graph.output] == [output]
    assert "Dropout" not in {n.op_type for n in proto.graph.node}
    x = np.random.default_rng(0).uniform(size=(7, 1, 28, 28)).astype(np.float32)
    for n in (1, 7):  # dynamic batch dimension
        out = _run(path, x[:n])
        assert out.shape == (n, 10)
        assert out.dtype == np.float32
        assert np.isfinite(out).all()


def test_softmax_model_outputs_probabilities(tiny_run: Path) -> None:
    x = np.random.default_rng(1).uniform(size=(9, 1, 28, 28)).astype(np.float32)
    probs = _run(tiny_run / "distilled-softmax.onnx", x)
    logits = _run(tiny_run / "distilled.onnx", x)
    assert (probs >= 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # Same student underneath: the softmax head must not change the prediction.
    np.testing.assert_array_equal(probs.argmax(1), logits.argmax(1))


def test_weights_and_summary(tiny_run: Path) -> None:
    assert (tiny_run / "weights" / "baseline.pt").is_file()
    assert (tiny_run / "weights" / "distilled.pt").is_file()
    summary = json.loads((tiny_run / "training-summary.json").read_text())
    for key in ("baseline", "distilled", "teacher", "settings", "data", "environment", "wall_time_s", "files"):
        assert key in summary, key
    for model in ("baseline", "distilled"):
        entry = summary[model]
        for key in ("heldout_accuracy_onnxruntime", "mean_abs_logit", "median_top1_top2_margin",
                    "zero_gradient_on_correct", "training"):
            assert key in entry, (model, key)
        assert entry["heldout_n"] == EVAL_N
        assert 0.0 <= entry["heldout_accuracy_onnxruntime"] <= 1.0
        zg = entry["zero_gradient_on_correct"]
        for key in ("zero_grad_fraction_softmax_then_log", "zero_grad_fraction_cross_entropy"):
            assert key in zg
    assert summary["settings"]["temperature"] == 100.0
    assert summary["settings"]["seed"] == 0
    assert summary["environment"]["torch"]
    assert set(summary["files"]) >= {"baseline.onnx", "distilled.onnx", "distilled-softmax.onnx"}


def test_rebuilds_native_module_from_weights(tiny_run: Path) -> None:
    """benchmarks rebuild the torch module with build_cnn(width) + the shipped state_dict."""
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("mnist_cnn_smoke", ROOT / "models" / "mnist_cnn.py")
    mnist_cnn = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mnist_cnn)
    net = mnist_cnn.build_cnn(0.5)
    net.load_state_dict(torch.load(tiny_run / "weights" / "distilled.pt", weights_only=True))
    net.eval()
    x = np.random.default_rng(2).uniform(size=(5, 1, 28, 28)).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(_run(tiny_run / "distilled.onnx", x), ref, rtol=1e-4, atol=1e-4)


def test_load_idx_rejects_swapped_files() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("mnist_cnn_smoke2", ROOT / "models" / "mnist_cnn.py")
    mnist_cnn = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mnist_cnn)
    data = ROOT / "models" / "data"
    with pytest.raises(ValueError, match="magic"):
        mnist_cnn.load_idx(data / "t10k-labels-idx1-ubyte.gz", data / "t10k-images-idx3-ubyte.gz")
