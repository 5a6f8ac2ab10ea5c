"""Issue 14 through the plugin: a rounded-input twin is attacked on adaptive gradients with the
exact-gradient figure kept beside it, and an int8 model gets a replica so its items run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from twins import build_twins

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ROOT = Path(__file__).resolve().parents[1]
TOML = """
[defaults]
dataset = "mnist-heldout.npz"
samples = 6
masking = "warn"

[[defaults.check]]
type = "robust-accuracy"
attack = "pgd-l2"
epsilon = 2.0
min = 0.0
params = { steps = 10 }
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    # Built once, outside pytester: pytester restores sys.modules after each test, and a second
    # import of onnx's native extension in one process aborts it.
    return build_twins(tmp_path_factory.mktemp("twins"), ["rounded", "int8-qlinear"])


def _models(pytester: pytest.Pytester, built: dict[str, Path], names: list[str]) -> Path:
    models = pytester.path / "models"
    models.mkdir()
    for name in names:
        shutil.copy(built[name], models / built[name].name)
    return models


def test_adaptive_and_quantized_models_run_with_both_figures(pytester: pytest.Pytester, built) -> None:
    models = _models(pytester, built, ["rounded", "int8-qlinear"])
    shutil.copy(ROOT / "models" / "data" / "mnist-heldout.npz", models)
    (models / "robustcheck.toml").write_text(TOML)
    # Only the robust-accuracy items: the masking diagnostics are tested elsewhere (and cost most).
    result = pytester.runpytest_subprocess("--robustcheck", "models", "--robustcheck-profile", "smoke",
                                           "-p", "no:cacheprovider", "-k", "robust-accuracy")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert "exact grad." in result.stdout.str()
    record = json.loads((pytester.path / "reports" / "robustcheck.json").read_text())
    by_name = {m["name"]: m for m in record["models"]}

    rounded = by_name["rounded"]
    assert rounded["spec"]["gradient_mode"] == "adaptive" and "Round" in rounded["spec"]["adaptive_ops"]
    fig = next(i["figures"] for i in rounded["items"] if i["kind"] == "robust-accuracy")
    assert fig["gradient_mode"] == "adaptive", fig
    # PGD on the true (zero) gradients of Round finds nothing; straight-through breaks most images.
    assert fig["exact_attack_success_rate"] == 0.0 and fig["attack_success_rate"] >= 0.75, fig
    assert fig["exact_robust_accuracy"] > fig["robust_accuracy"]

    quantized = by_name["int8-qlinear"]
    assert quantized["spec"]["replica"] == "torch" and quantized["spec"]["parity"]["kind"] == "quantized"
    assert {i["verdict"] for i in quantized["items"]} == {"passed"}, quantized["items"]
    fig = next(i["figures"] for i in quantized["items"] if i["kind"] == "robust-accuracy")
    assert fig["attack_success_rate"] >= 0.75, fig
    assert "exact grad." in (pytester.path / "reports" / "robustcheck.html").read_text()


def test_a_robust_property_on_an_adaptive_model_keeps_the_exact_gradient_figure(pytester: pytest.Pytester,
                                                                               built) -> None:
    models = _models(pytester, built, ["rounded"])
    shutil.copy(ROOT / "models" / "data" / "mnist-heldout.npz", models)
    (models / "robustcheck.toml").write_text(TOML.replace('type = "robust-accuracy"', 'type = "robust"')
                                             .replace("min = 0.0\n", ""))
    result = pytester.runpytest_subprocess("--robustcheck", "models", "--robustcheck-profile", "smoke",
                                           "-p", "no:cacheprovider", "-k", "robust[")
    # Straight-through gradients break the rounded twin within L2 2: the property fails with a counterexample.
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    assert "exact grad." in result.stdout.str()
    record = json.loads((pytester.path / "reports" / "robustcheck.json").read_text())
    item = next(i for i in record["models"][0]["items"] if i["kind"] == "robust")
    fig = item["figures"]
    assert item["verdict"] == "failed" and fig["gradient_mode"] == "adaptive", fig
    # The true (zero) gradients of Round find nothing: every correctly classified sample stands.
    assert fig["exact_robust_accuracy"] == 1.0 and fig["violated"] >= 1, fig
    assert "exact grad." in (pytester.path / "reports" / "robustcheck.html").read_text()
