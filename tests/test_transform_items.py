"""Transformation claims through the plugin: `robust[brightness@0.3]` and `accuracy-under[...]`
on a real ONNX model whose brightness threshold is known per sample (class 0 while the mean
pixel stays below 0.5), run twice so the stored failure replays first.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from robustcheck.report.json_report import validate

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SIZE = 12
TOML = """
[defaults]
dataset = "data.npz"
input_range = [0.0, 1.0]
layout = "NCHW"
samples = 16
masking = "warn"

[[defaults.check]]
type = "transform"
transform = "brightness"
max = 0.3

[[defaults.check]]
type = "accuracy-under"
transform = "brightness"
level = 0.2
min = 0.9
"""


def write_mean_suite(folder: Path) -> np.ndarray:
    """A linear ONNX model scoring class 0 as 0.5 − mean(x), and 16 images with means in
    [0.15, 0.45] (no clipping below 0.3 of brightening); returns each image's threshold."""
    folder.mkdir(parents=True)
    w = np.full((SIZE * SIZE,), -1.0 / SIZE**2, np.float32)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "W", "B"], ["z"])], "mean",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, SIZE, SIZE])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 2])],
        initializer=[numpy_helper.from_array(np.stack([w, np.zeros_like(w)], axis=1), "W"),
                     numpy_helper.from_array(np.array([0.5, 0.0], np.float32), "B")])
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(folder / "mean.onnx"))
    rng = np.random.default_rng(0)
    means = np.linspace(0.15, 0.45, 16)
    x = (means[:, None, None, None] + 0.04 * (rng.random((16, 1, SIZE, SIZE)) - 0.5)).astype(np.float32)
    np.savez(folder / "data.npz", x=x, y=np.zeros(16, np.int64))
    (folder / "robustcheck.toml").write_text(TOML)
    return 0.5 - x.reshape(16, -1).mean(axis=1, dtype=np.float64)


def test_transform_items_report_the_smallest_failure_and_replay_it(pytester: pytest.Pytester) -> None:
    thresholds = write_mean_suite(pytester.path / "models")
    args = ("--robustcheck", "models", "--robustcheck-profile", "smoke", "-p", "no:cacheprovider",
            "-k", "brightness")
    first = pytester.runpytest_subprocess(*args)
    assert first.ret == pytest.ExitCode.TESTS_FAILED
    first.stdout.fnmatch_lines(["*robust?brightness@0.3? violated: sample *, label 0 (*) -> 1 (*) under brightness*",
                                "*smallest failing magnitude found: *"])
    data = json.loads((pytester.path / "reports" / "robustcheck.json").read_text())
    validate(data)
    model = data["models"][0]
    items = {i["kind"]: i for i in model["items"]}
    prop, under = items["transform"]["figures"], items["accuracy-under"]["figures"]
    assert items["transform"]["verdict"] == "failed" and prop["transform"] == "brightness"
    # The most fragile sample (largest mean), shrunk to the first grid level past its threshold.
    fragile = float(thresholds.min())
    assert prop["dataset_index"] == int(np.argmin(thresholds)) and prop["params"]["brightness"] > 0
    assert fragile <= prop["magnitude"][0] <= fragile + 0.005 + 1e-9
    assert prop["true_label"] == 0 and prop["adv_label"] == 1 and prop["confidence_adv"] >= 0.5
    # accuracy-under at ±0.2: every image whose threshold is below 0.2 flips.
    assert under["accuracy"] == pytest.approx(float((thresholds > 0.2).mean()))
    assert items["accuracy-under"]["verdict"] == "failed" and under["curve_accuracy"][0] == 1.0
    saved = model["counterexamples"]
    assert [c["property"] for c in saved] == ["robust[brightness@0.3]"]
    assert Path(saved[0]["npz"]).name.endswith(f"-sample{prop['sample']}.npz")
    assert Path(saved[0]["npz"]).is_file() and Path(saved[0]["png"]).is_file()
    with np.load(saved[0]["npz"]) as npz:
        assert np.allclose(npz["x_adv"], np.clip(npz["x"] + prop["params"]["brightness"], 0, 1), atol=1e-6)
    html = (pytester.path / "reports" / "robustcheck.html").read_text()
    assert "robust[brightness@0.3]" in html and "data:image/png;base64" in html
    assert "Accuracy under transformations" in html and "charts could not be drawn" not in html

    shutil.rmtree(pytester.path / ".robustcheck" / "hypothesis")  # only robustcheck's own store remains
    second = pytester.runpytest_subprocess(*args)
    assert second.ret == pytest.ExitCode.TESTS_FAILED
    again = next(i for i in json.loads((pytester.path / "reports" / "robustcheck.json").read_text())["models"][0]
                 ["items"] if i["kind"] == "transform")["figures"]
    assert again["replayed"] == 1 and again["examples"] == 1, "the stored failure ran first and failed"
    assert again["magnitude"] == prop["magnitude"] and again["dataset_index"] == prop["dataset_index"]
