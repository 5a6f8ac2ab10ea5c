"""Attack labels: the registry, and third-party attacks registered through a real entry point
(a module plus a `*.dist-info` on PYTHONPATH) and run by `pytest --robustcheck` in a subprocess."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from toy_suite import TOML, write_suite

from robustcheck.attacks import (
    PGD,
    AttackParamError,
    AttackPluginError,
    AttackSpec,
    BoundedAttack,
    CarliniWagnerL2,
    attack_labels,
    attack_spec,
    make_attack,
    register_attack,
)
from robustcheck.attacks import registry as registry_module

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

BUILT_IN = ["cw-l2", "cw-linf", "cw-l0", "ead-en", "ead-l1", "pgd-linf", "pgd-l2", "fgsm-linf", "jsma",
            "random-noise", "square"]

#: A third-party attack, written only against the public API.
PLUGIN_MODULE = '''
from dataclasses import dataclass

import numpy as np
import torch

from robustcheck.attacks import BatchOutput, BoundedAttack, param
from robustcheck.metrics import margin


@dataclass(kw_only=True)
class GreedyCorners(BoundedAttack):
    """Feature by feature, move to whichever edge of the L-inf ball lowers the oracle's margin."""

    name = "greedy-corners"
    norm = "linf"
    needs_replica = False

    sweeps: int = param(1, low=1, high=10, doc="passes over the features")

    def run_batch(self, model, x, y, targets, generator):
        lo, hi = model.input_range
        x0 = x.reshape(len(x), -1)
        flat = x0.copy()
        labels = torch.from_numpy(y)
        aim = None if targets is None else torch.from_numpy(targets)

        def score(candidate):
            z = torch.from_numpy(model.oracle_logits(candidate.reshape(x.shape)).astype(np.float64))
            return margin(z, labels, aim).numpy()

        best = score(flat)
        for _ in range(self.sweeps):
            for i in range(flat.shape[1]):
                for sign in (-1.0, 1.0):
                    candidate = flat.copy()
                    candidate[:, i] = np.clip(x0[:, i] + sign * self.epsilon, lo, hi)
                    value = score(candidate)
                    better = value < best
                    flat[better] = candidate[better]
                    best = np.minimum(best, value)
        return BatchOutput(flat.reshape(x.shape).astype(x.dtype))
'''

# The toy suite's defaults, with one claim that names the third-party attack.
SUITE = TOML.split("[[defaults.check]]")[0] + """
[[defaults.check]]
type = "robust-accuracy"
attack = "greedy-corners"
epsilon = 0.3
min = 0.0

[defaults.attacks.greedy-corners]
sweeps = {sweeps}
"""


def test_built_in_labels_and_traits() -> None:
    labels = attack_labels()
    assert list(labels)[: len(BUILT_IN)] == BUILT_IN
    norms = ("linf", "l2", "l1")
    autoattack = {f"{kind}-{n}" for kind in ("apgd-ce", "apgd-t", "autoattack") for n in norms}
    assert {label for label, spec in labels.items() if spec.bounded} == {"pgd-linf", "pgd-l2", "fgsm-linf",
                                                                          "random-noise", "square", *autoattack}
    assert all(not labels[f"min-{n}"].bounded and labels[f"min-{n}"].norm == n for n in (*norms, "l0"))
    assert [labels[k].norm for k in ("cw-l2", "ead-en", "pgd-l2", "fgsm-linf", "jsma")] == ["l2", "l1", "l2", "linf",
                                                                                          "l0"]
    pgd = make_attack("pgd-linf", {"epsilon": 0.1})
    assert isinstance(pgd, PGD) and (pgd.loss, pgd.norm, pgd.epsilon) == ("dlr", "linf", 0.1)
    assert attack_spec("pgd-linf").defaults["loss"] == "dlr"


def test_profile_budgets_name_registered_attacks_and_their_parameters() -> None:
    from robustcheck.profiles import PROFILES

    families: dict[str, list[str]] = {}
    for label, spec in attack_labels().items():
        families.setdefault(spec.attack_cls.name, []).append(label)
    for profile in PROFILES.values():
        assert set(profile.attacks) <= set(families), profile.name
        for family, params in profile.attacks.items():
            for label in families[family]:
                make_attack(label, params)  # every budget is a valid setting of every label of the family
    assert families["ead"] == ["ead-en", "ead-l1"] and families["pgd"] == ["pgd-linf", "pgd-l2"]


def test_register_attack_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_module, "_REGISTRY", dict(registry_module._REGISTRY))
    spec = register_attack("cw-l2-fast", CarliniWagnerL2, binary_search_steps=2, max_iterations=10)
    assert attack_labels()["cw-l2-fast"] is spec and spec.norm == "l2"
    made = make_attack("cw-l2-fast", {"max_iterations": 20})
    assert (made.binary_search_steps, made.max_iterations) == (2, 20)  # type: ignore[attr-defined]
    with pytest.raises(AttackPluginError, match="attack label 'cw-l2' is already registered"):
        register_attack("cw-l2", CarliniWagnerL2)
    with pytest.raises(AttackParamError, match="parameter 'max_iterations'"):
        register_attack("cw-l2-huge", CarliniWagnerL2, max_iterations=10**9)
    with pytest.raises(TypeError, match="is not an Attack subclass"):
        AttackSpec("not-an-attack", dict)  # type: ignore[arg-type]
    assert issubclass(PGD, BoundedAttack)


def _plugin_dir(root: Path, entry: str, module: str = PLUGIN_MODULE) -> Path:
    """A directory that, on PYTHONPATH, is an installed distribution declaring `entry`."""
    folder = root / "plugin"
    info = folder / "my_attacks-0.1.dist-info"
    info.mkdir(parents=True)
    (folder / "my_attacks.py").write_text(textwrap.dedent(module))
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-attacks\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[robustcheck.attacks]\n{entry}\n")
    return folder


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, entry: str, sweeps: int = 2
         ) -> pytest.RunResult:
    plugins = _plugin_dir(pytester.path, entry)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(plugins), os.environ.get("PYTHONPATH")])))
    write_suite(pytester.path / "models", toml=SUITE.format(sweeps=sweeps))
    return pytester.runpytest_subprocess("--robustcheck", "models", "--robustcheck-profile", "smoke",
                                         "-p", "no:cacheprovider")


def test_a_third_party_attack_runs_in_a_suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run(pytester, monkeypatch, "greedy-corners = my_attacks:GreedyCorners")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
    record = json.loads((pytester.path / "reports" / "robustcheck.json").read_text())
    model = record["models"][0]
    runs = [a for a in model["attacks"] if a["attack"] == "greedy-corners"]
    assert runs and runs[0]["params"]["sweeps"] == 2 and runs[0]["epsilon"] == 0.3 and runs[0]["norm"] == "linf"
    assert runs[0]["samples"] > 0
    items = {i["name"]: i for i in model["items"]}
    assert items["robust-accuracy[greedy-corners@0.3]"]["verdict"] == "passed"


@pytest.mark.parametrize(("entry", "sweeps", "words"), [
    ("cw-l2 = my_attacks:GreedyCorners", 2, "entry point 'cw-l2 = my_attacks:GreedyCorners' (robustcheck.attacks): "
                                            "attack label 'cw-l2' is already registered"),
    ("greedy-corners = my_missing:GreedyCorners", 2, "cannot be loaded: ModuleNotFoundError: No module named "
                                                     "'my_missing'"),
    ("greedy-corners = my_attacks:np", 2, "is neither an Attack subclass nor an AttackSpec"),
    ("greedy-corners = my_attacks:GreedyCorners", 0, "'defaults.attacks.greedy-corners.sweeps' must be an integer "
                                                     "in [1, 10], got 0"),
])
def test_a_broken_third_party_attack_is_a_one_line_usage_error(pytester: pytest.Pytester,
                                                               monkeypatch: pytest.MonkeyPatch, entry: str,
                                                               sweeps: int, words: str) -> None:
    result = _run(pytester, monkeypatch, entry, sweeps)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-3000:]
    err = result.stderr.str()
    assert words in err, err
    assert "Traceback" not in err and len([line for line in err.splitlines() if words[:20] in line]) == 1
