"""Fixed-ε robust accuracy as the per-sample worst case (robustcheck/fixed_epsilon.py), end to end
through the plugin on the toy suite: the check's attack, then APGD-CE and APGD-T at exactly ε on
the samples it left standing; the record says which attack broke each sample and which
ensemble member won, and the reports show it."""

from __future__ import annotations

import json

import pytest
from toy_suite import write_suite

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TOML = """
[defaults]
dataset = "data.npz"
samples = 16
min_clean_accuracy = 0.9
masking = "warn"

# Random corners of the L∞ ball break some samples at 0.12 (the toy's minimal L∞ distances
# are 0.08-0.19, FMN breaks 6 of 16 there), not all the gradient attacks of the cascade break.
[[defaults.check]]
type = "robust-accuracy"
attack = "random-noise"
epsilon = 0.12
min = 0.0

[[defaults.check]]
type = "robust-accuracy"
attack = "min-l2"
epsilon = 0.2
min = 0.0
"""


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, str]:
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("fixed_eps")
    write_suite(root / "models", toml=TOML)
    out = subprocess.run([sys.executable, "-m", "pytest", "--robustcheck", "models", "--robustcheck-profile", "smoke",
                          "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning"],
                         cwd=root, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    record = json.loads((root / "reports" / "robustcheck.json").read_text())
    return record, out.stdout, (root / "reports" / "robustcheck.html").read_text()


def _figures(record: dict, name: str) -> dict:
    return next(i["figures"] for m in record["models"] for i in m["items"] if i["name"] == name)


def test_the_cascade_breaks_what_the_checks_attack_left_standing(toy_run) -> None:
    record, _, _ = toy_run
    fig = _figures(record, "robust-accuracy[random-noise@0.12]")
    assert list(fig["broken_by"]) == ["random-noise", "apgd-ce", "apgd-t"]
    assert sum(fig["broken_by"].values()) == fig["broken"]
    assert fig["broken_by"]["apgd-ce"] + fig["broken_by"]["apgd-t"] > 0
    misclassified = round(fig["samples"] * (1 - record["models"][0]["clean_accuracy"]))
    assert fig["robust_accuracy"] <= 1 - fig["broken"] / fig["samples"] + 1e-9
    assert fig["robust_accuracy"] >= 1 - (fig["broken"] + misclassified + 1) / fig["samples"] - 1e-9
    # The attack record stays the check's own attack run, which broke fewer samples alone.
    curve = next(a for a in record["models"][0]["attacks"] if a["attack"] == "random-noise")["curve"]
    assert curve[-1]["robust_accuracy"] > fig["robust_accuracy"]


def test_the_ensemble_names_its_winners(toy_run) -> None:
    record, _, _ = toy_run
    fig = _figures(record, "robust-accuracy[min-l2@0.2]")
    assert set(fig["winners"]) <= {"ddn", "fmn-l2"} and fig["winners"]
    attack = next(a for a in record["models"][0]["attacks"] if a["attack"] == "min-l2")
    successes = round(attack["success_rate"] * attack["samples"])
    assert sum(fig["winners"].values()) == successes
    assert fig["broken_by"]["min-l2"] <= fig["broken"]


def test_the_reports_show_who_broke_the_samples(toy_run) -> None:
    record, stdout, html = toy_run
    fig = _figures(record, "robust-accuracy[random-noise@0.12]")
    text = " · ".join(f"{k} {v}" for k, v in fig["broken_by"].items() if v)
    assert text in html
    assert "apgd" in stdout, stdout
