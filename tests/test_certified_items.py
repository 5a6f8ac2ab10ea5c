"""Certification in the plugin: `certified-accuracy[<norm>@<ε>]` items, per-sample proven /
violated / unrefuted verdicts on `robust[...]` items, brackets in the record and the reports,
and the invariant that a certificate and a verified adversarial example never contradict.

The plugin run uses the toy suite (a linear classifier: CROWN is exact on it, so samples are
proven up to their true minimal distance and broken beyond it).
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from toy_suite import write_suite

from robustcheck.certify.verdicts import CertificationContradiction, make_brackets, sample_statuses
from robustcheck.config import load_suite_config
from robustcheck.errors import ConfigError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SCHEMA = Path(__file__).resolve().parents[1] / "robustcheck" / "record.schema.json"

CERTIFIED_TOML = """
[defaults]
dataset = "data.npz"
samples = 16
min_clean_accuracy = 0.9
masking = "warn"
certify = true

[[defaults.check]]
type = "certified-accuracy"
norm = "linf"
epsilon = 0.05
min = 0.5

[[defaults.check]]
type = "robust"
attack = "pgd-linf"
epsilon = 0.05
"""


def test_a_proof_meeting_a_verified_example_is_a_loud_internal_error() -> None:
    assert sample_statuses(np.array([1, 0, 0], bool), np.array([0, 1, 0], bool), "m") == \
        ["proven", "violated", "unrefuted"]
    assert sample_statuses(None, np.array([0, 1]), "m") == ["unrefuted", "violated"]
    with pytest.raises(CertificationContradiction, match="sample.s. 1 are certified robust"):
        sample_statuses(np.array([0, 1], bool), np.array([0, 1], bool), "m")
    ok = make_brackets(np.arange(2), np.array([7, 9]), np.array([0.1, 0.2]), np.array([0.3, np.inf]), "m")
    assert [(b.certified, b.attack, b.ratio) for b in ok] == [(0.1, 0.3, pytest.approx(3.0)), (0.2, None, None)]
    with pytest.raises(CertificationContradiction, match="certified to radius 0.3"):
        make_brackets(np.arange(1), np.array([7]), np.array([0.3]), np.array([0.3]), "m")


def test_certified_accuracy_config(tmp_path: Path) -> None:
    write_suite(tmp_path, toml=CERTIFIED_TOML)
    config = load_suite_config([tmp_path / "robustcheck.toml"]).for_model("toy")
    check = config.checks[0]
    assert config.certify and check.id == "certified-accuracy[linf@0.05]" and check.attack == "cw-linf"
    for bad, words in [('norm = "l0"', r"'defaults\.check\[0\]\.norm' must be one of linf, l2"),
                       ('norm = "linf"\nattack = "cw-l2"', "not an linf attack")]:
        (tmp_path / "robustcheck.toml").write_text(CERTIFIED_TOML.replace('norm = "linf"', bad))
        with pytest.raises(ConfigError, match=words):
            load_suite_config([tmp_path / "robustcheck.toml"])
    (tmp_path / "robustcheck.toml").write_text(CERTIFIED_TOML.replace('attack = "pgd-linf"', 'attack = "pgd-linf"\n'
                                                                      'norm = "linf"'))
    with pytest.raises(ConfigError, match="applies to certified-accuracy checks only"):
        load_suite_config([tmp_path / "robustcheck.toml"])


def test_certified_items_report_proofs_brackets_and_verdicts(pytester: pytest.Pytester) -> None:
    write_suite(pytester.path / "models", toml=CERTIFIED_TOML)
    result = pytester.runpytest_subprocess("--robustcheck", "models", "--robustcheck-profile", "smoke",
                                           "-p", "no:cacheprovider")
    out = result.stdout.str()
    assert "Traceback" not in out and "internal error" not in out, out[-3000:]
    record = json.loads((pytester.path / "reports" / "robustcheck.json").read_text())
    jsonschema.validate(record, json.loads(SCHEMA.read_text()))
    items = {i["kind"]: i for i in record["models"][0]["items"]}
    cert = items["certified-accuracy"]["figures"]
    assert cert["method"] == "crown" and cert["samples"] == 16
    assert cert["proven"] == round(cert["certified_accuracy"] * cert["samples"]) > 0
    assert cert["certified_accuracy"] <= cert["empirical_accuracy"]
    assert cert["brackets"] and all(b["attack"] is None or b["certified"] < b["attack"] for b in cert["brackets"])
    assert any(b["ratio"] is not None for b in cert["brackets"])
    # CROWN is exact on a linear model: C&W's distances sit just above the certified radii.
    assert all(b["ratio"] is None or b["ratio"] < 1.2 for b in cert["brackets"]), cert["brackets"]
    curve = cert["bracket_curve"]
    assert all(p["certified_accuracy"] <= p["empirical_accuracy"] for p in curve)
    robust = items["robust"]["figures"]
    assert robust["certification"] == "crown" and len(robust["sample_status"]) == robust["pool"]
    assert robust["proven"] == robust["sample_status"].count("proven") and robust["proven"] > 0
    assert robust["violated"] == robust["sample_status"].count("violated")
    assert "certification (proven / violated by a verified example / unrefuted):" in out
    assert "toy certified-accuracy[linf@0.05]: certified" in out and "median ratio" in out, out[-3000:]
    html = (pytester.path / "reports" / "robustcheck.html").read_text()
    assert "Proofs and brackets" in html and "Certified vs empirical robust accuracy" in html
