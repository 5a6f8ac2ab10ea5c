"""Declared hyper-parameters: every bad value is refused before anything runs, with the key and
what was expected; good values are converted to the declared type."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from robustcheck.attacks import (
    EAD,
    JSMA,
    MAX_ITERATIONS,
    PGD,
    AttackParamError,
    CarliniWagnerL2,
    attack_labels,
    make_attack,
    validate_params,
)
from robustcheck.config import load_suite_config
from robustcheck.errors import ConfigError

# (label, params, key, words the message must contain)
BAD = [
    ("pgd-linf", {"steps": "abc"}, "steps", "must be an integer in [1, 100000], got 'abc'"),
    ("pgd-linf", {"steps": -5}, "steps", "must be an integer in [1, 100000], got -5"),
    ("pgd-linf", {"steps": 2.5}, "steps", "must be an integer"),
    ("cw-l2", {"max_iterations": 10**12}, "max_iterations", "in [1, 100000], got 1000000000000"),
    ("cw-l2", {"binary_search_steps": True}, "binary_search_steps", "must be an integer"),
    ("cw-l2", {"learning_rate": math.nan}, "learning_rate", "must be a finite number in (0, inf), got nan"),
    ("cw-l2", {"learning_rate": 0}, "learning_rate", "(0, inf)"),
    ("cw-l2", {"abort_early": 1}, "abort_early", "must be true or false, got 1"),
    ("cw-l2", {"objective": "f8"}, "objective", "must be one of 'f1', 'f2'"),
    ("cw-l2", {"stepz": 3}, "stepz", "unknown hyper-parameter (known: abort_early, batch_size, binary_search_steps"),
    ("cw-linf", {"const_factor": 1.0}, "const_factor", "in (1, 1000]"),
    ("cw-linf", {"decrease_factor": 1.0}, "decrease_factor", "in (0, 1)"),
    ("cw-l0", {"largest_const": math.inf}, "largest_const", "finite"),
    ("ead-en", {"decision_rule": "L2"}, "decision_rule", "must be one of 'EN', 'L1', got 'L2'"),
    ("ead-l1", {"beta": -0.1}, "beta", "in [0, inf)"),
    ("pgd-linf", {"epsilon": 0.0}, "epsilon", "in (0, inf), got 0.0"),
    ("pgd-linf", {"epsilon": math.inf}, "epsilon", "finite"),
    ("pgd-linf", {"loss": "xent"}, "loss", "one of 'ce', 'margin', 'dlr'"),
    ("pgd-linf", {"norm": "l2"}, "norm", "the label measures linf"),
    ("pgd-l2", {"restarts": 0}, "restarts", "in [1, 1000]"),
    ("pgd-l2", {"step_size": -1.0}, "step_size", "(or none)"),
    ("fgsm-linf", {"steps": 3}, "steps", "unknown hyper-parameter"),
    ("jsma", {"theta": 0}, "theta", "magnitude at least 0.01"),
    ("jsma", {"gamma": 1.5}, "gamma", "in (0, 1]"),
    ("square", {"p_init": 0}, "p_init", "in (0, 1]"),
    ("random-noise", {"draws": 10**6}, "draws", "in [1, 100000]"),
    ("cw-l2", {"batch_size": 0}, "batch_size", "in [1, 100000]"),
]


@pytest.mark.parametrize(("label", "params", "key", "words"), BAD, ids=[f"{b[0]}-{b[2]}" for b in BAD])
def test_bad_values_are_refused_with_key_and_expectation(label: str, params: dict, key: str, words: str) -> None:
    with pytest.raises(AttackParamError) as caught:
        validate_params(label, params)
    error = caught.value
    assert (error.label, error.key) == (label, key)
    assert words in error.message, error.message
    assert str(error).startswith(f"attack '{label}', parameter '{key}': ") and "\n" not in str(error)
    with pytest.raises(AttackParamError):
        make_attack(label, params)


def test_constructors_validate_too() -> None:
    with pytest.raises(AttackParamError, match=r"attack 'cw-l2', parameter 'max_iterations': must be an integer in"):
        CarliniWagnerL2(max_iterations=10**12)
    with pytest.raises(AttackParamError, match="'epsilon'"):
        PGD(epsilon=math.nan)
    with pytest.raises(TypeError, match="unexpected keyword"):
        EAD(stepz=3)  # type: ignore[call-arg]


def test_good_values_are_converted_to_the_declared_type() -> None:
    attack = PGD(epsilon=1, steps=MAX_ITERATIONS, step_size=None)
    assert isinstance(attack.epsilon, float) and attack.epsilon == 1.0
    assert attack.params() == {"norm": "linf", "batch_size": 100, "epsilon": 1.0, "loss": "ce",
                               "steps": MAX_ITERATIONS, "step_size": None, "random_start": True, "restarts": 1}
    assert repr(JSMA(theta=-1)) == ("JSMA(batch_size=100, refine_steps=16, gamma=0.1, theta=-1.0, use_logits=False, "
                                   "max_candidates=1024)")
    validate_params("cw-l2", {"max_iterations": MAX_ITERATIONS, "confidence": 0, "abort_early": False})
    made = make_attack("ead-l1", {"beta": 0.01})
    assert isinstance(made, EAD) and (made.decision_rule, made.beta) == ("L1", 0.01)


def test_every_label_declares_its_defaults_validly() -> None:
    for label, spec in attack_labels().items():
        attack = spec.make()
        assert attack.norm == spec.norm, label
        assert attack.params() == {**attack.params(), **spec.defaults}, label


def test_an_unknown_label_lists_the_known_ones() -> None:
    with pytest.raises(AttackParamError, match=r"attack 'cw-l9': unknown attack label \(known: cw-l2, cw-linf"):
        make_attack("cw-l9", {})


# Issue 18, item 5: attack tables are validated when the config is read (exit 4, one line).
@pytest.mark.parametrize(("table", "words"), [
    ("[defaults.attacks.cw-l2]\nstepz = 3\n", "'defaults.attacks.cw-l2.stepz' unknown hyper-parameter (known: "),
    ("[defaults.attacks.pgd-linf]\nsteps = \"abc\"\n", "'defaults.attacks.pgd-linf.steps' must be an integer in"),
    ("[defaults.attacks.pgd-linf]\nsteps = -5\n", "got -5"),
    ("[defaults.attacks.cw-l2]\nmax_iterations = 1000000000000\n", "'defaults.attacks.cw-l2.max_iterations' must"),
    ("[defaults.attacks.cw-l2]\nlearning_rate = nan\n", "must be a finite number in (0, inf), got nan"),
    ("[[defaults.check]]\ntype = 'robust'\nattack = 'pgd-linf'\nepsilon = 0.1\n[defaults.check.params]\nsteps = 0\n",
     "'defaults.check[0].params.steps' must be an integer in [1, 100000], got 0"),
])
def test_config_attack_tables_are_validated_on_load(tmp_path: Path, table: str, words: str) -> None:
    path = tmp_path / "robustcheck.toml"
    path.write_text(table)
    with pytest.raises(ConfigError) as caught:
        load_suite_config([path])
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and words in message and "\n" not in message, message


def test_an_attack_must_declare_its_traits() -> None:
    from dataclasses import dataclass

    from robustcheck.attacks import BoundedAttack, param

    @dataclass(kw_only=True)
    class NoNorm(BoundedAttack):
        name = "no-norm"
        tries: int = param(3, low=1)

        def run_batch(self, model, x, y, targets, generator):  # type: ignore[no-untyped-def]
            raise NotImplementedError

    with pytest.raises(TypeError, match="NoNorm must set the trait `norm` to one of l0, l1, l2, linf"):
        NoNorm()
    with pytest.raises(AttackParamError, match="attack 'no-norm', parameter 'tries': must be an integer in"):
        NoNorm(tries=0)


def test_an_attack_is_bounded_or_minimal_norm() -> None:
    from dataclasses import dataclass

    from robustcheck.attacks import Attack

    @dataclass(kw_only=True)
    class Kindless(Attack):
        name = "kindless"
        norm = "l2"

        def run_batch(self, model, x, y, targets, generator):  # type: ignore[no-untyped-def]
            raise NotImplementedError

    with pytest.raises(TypeError, match="Kindless must derive from MinimalNormAttack or BoundedAttack"):
        Kindless()
