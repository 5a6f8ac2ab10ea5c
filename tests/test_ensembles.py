"""Bookkeeping of the minimal-norm ensembles and the AutoAttack cascade, on the shipped baseline.

Small budgets on a few correctly classified images: what is checked is who ran, who won, what
counts as broken and that every success is onnxruntime's, not how strong the attacks are
(tests/test_minimal_norm_quality.py measures that).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustcheck.attacks import (
    AutoAttackCascade,
    MinimalNorm,
    attack_spec,
    make_attack,
    minimal_norm,
)
from robustcheck.attacks.apgd_search import APGDMinimal
from robustcheck.attacks.refine import refine_segment
from robustcheck.metrics import distances
from robustcheck.profiles import PROFILES

N = 12


@pytest.fixture(scope="module")
def baseline(shipped, correct100):
    data = correct100("baseline")
    return shipped("baseline"), data.x[:N], data.y[:N]


def test_ensemble_keeps_the_per_sample_minimum_and_names_the_winner(baseline) -> None:
    model, x, y = baseline
    ensemble = MinimalNorm(norm="l2", steps=30)
    result = ensemble.run(model, x, y)
    assert result.success.all()
    # Each member on its own (both are deterministic), polished as the ensemble polishes them.
    per_member = {}
    for label, attack in ensemble.members():
        cand = attack.run_batch(model, x, y, None, torch.Generator()).x_adv
        cand, ok = refine_segment(model, x, cand, y, None, ensemble.refine_steps)
        per_member[label] = np.where(ok, distances(x, cand)["l2"], np.inf)
    table = np.stack(list(per_member.values()))
    best = table.min(axis=0)
    winners = np.array(list(per_member))[table.argmin(axis=0)]
    np.testing.assert_array_equal(result.extras["winner"], winners)
    # The base class polishes the winner once more: never worse, at most a bisection's width better.
    d = result.distances["l2"]
    assert (d <= best * (1 + 1e-6)).all() and (d >= best * (1 - 1e-3)).all()
    assert len(set(result.extras["winner"])) >= 1 and set(result.extras["winner"]) <= set(per_member)


@pytest.mark.parametrize("norm", ["l2", "linf", "l1", "l0"])
def test_min_labels_and_profiles_build_the_ensemble_of_their_norm(norm: str) -> None:
    spec = attack_spec(f"min-{norm}")
    assert spec.norm == norm and not spec.bounded
    attack = make_attack(f"min-{norm}", {"steps": 7})
    assert isinstance(attack, MinimalNorm) and attack.norm == norm and attack.steps == 7
    ci, thorough = minimal_norm(norm, "ci"), minimal_norm(norm, "thorough")
    assert ci.steps == PROFILES["ci"].attacks["min-norm"]["steps"]
    assert thorough.steps == 4 * ci.steps
    # Members minimise the ensemble's norm; L0 also takes FMN-L1, whose sparse results it judges by their L0.
    assert [a.norm for _, a in ci.members()] == ([norm, "l1"] if norm == "l0" else [norm] * len(ci.members()))
    with pytest.raises(ValueError, match="unknown profile"):
        minimal_norm(norm, "nightly")
    # thorough adds the classic optimisers at 9 × 1,000 (C&W-L2 to L2, EAD to L1) after the fast members.
    fast = [label for label, _ in ci.members()]
    classic = {"l2": ["cw-l2"], "l1": ["ead-en"]}.get(norm, [])
    assert [label for label, _ in thorough.members()] == fast + classic
    assert all(a.norm == norm and (a.binary_search_steps, a.max_iterations) == (9, 1000)
               for label, a in thorough.members() if label in classic)


def test_ensemble_winner_survives_select_and_failures_have_no_winner(baseline) -> None:
    model, x, y = baseline
    # Two steps per member cannot break every image: failures keep the input and name no winner.
    result = MinimalNorm(norm="l2", steps=2).run(model, x, y)
    assert not result.success.all()
    assert (result.extras["winner"][~result.success] == "").all()
    assert (result.extras["winner"][result.success] != "").all()
    part = result.select([0, 3])
    np.testing.assert_array_equal(part.extras["winner"], result.extras["winner"][[0, 3]])


def test_cascade_counts_the_ensemble_within_epsilon_first_then_apgd(baseline) -> None:
    model, x, y = baseline
    steps = 20
    ensemble = MinimalNorm(norm="linf", steps=steps).run(model, x, y, seed=5)
    eps = float(np.median(ensemble.distances["linf"][ensemble.success]))
    cascade = AutoAttackCascade(norm="linf", epsilon=eps, min_norm_steps=steps, steps=10, target_classes=3)
    result = cascade.run(model, x, y, seed=5)
    by = result.extras["broken_by"]
    assert set(by) <= {"", *cascade.stage_labels()} and "square" not in cascade.stage_labels()
    # Stage 1 is the same ensemble run (same seed, first to draw): what it breaks within ε is
    # attributed to it and nothing else is.
    within = ensemble.within(eps)
    np.testing.assert_array_equal(by == "min-linf", within)
    assert (result.extras["winner"][within] != "").all() and (result.extras["winner"][~within] == "").all()
    np.testing.assert_array_equal(result.success, by != "")
    assert (result.distances["linf"][result.success] <= eps * (1 + 1e-6)).all()
    assert result.robust_accuracy(eps) <= ensemble.robust_accuracy(eps)
    labels = model.predict(result.x_adv)
    assert (labels[result.success] != y[result.success]).all()


def test_cascade_takes_a_prior_ensemble_run_and_square_only_when_asked(baseline) -> None:
    model, x, y = baseline
    ensemble = MinimalNorm(norm="linf", steps=20).run(model, x, y, seed=1)
    eps = float(np.median(ensemble.distances["linf"][ensemble.success]))
    cascade = AutoAttackCascade(norm="linf", epsilon=eps, steps=10, target_classes=2, square=True,
                                square_queries=50)
    assert cascade.stage_labels()[-1] == "square"
    out = cascade.cascade(model, x, y, None, torch.Generator().manual_seed(0),
                          prior=(ensemble.x_adv, ensemble.extras["winner"]))
    np.testing.assert_array_equal(out.broken_by == "min-linf", ensemble.within(eps))
    assert AutoAttackCascade(norm="l2", epsilon=1.0, square=True).stage_labels() == ["min-l2", "apgd-ce", "apgd-t"]
    assert AutoAttackCascade(norm="linf", epsilon=0.1, min_norm=False).stage_labels() == ["apgd-ce", "apgd-t"]


def test_the_targeted_search_finds_a_nearer_boundary_than_untargeted_attacks(shipped, heldout) -> None:
    # Held-out row 8018 (a 6): untargeted attacks follow the runner-up class 0 and stop ~1.5× farther
    # than the nearest L∞ boundary, towards class 4, far down the logit order (the reference's 0.112).
    model = shipped("baseline")
    i = int(np.flatnonzero(heldout.index == 8018)[0])
    x, y = heldout.x[i:i + 1], heldout.y[i:i + 1]
    untargeted = APGDMinimal(norm="linf", steps=40, search_steps=8).run(model, x, y, seed=0)
    targeted = APGDMinimal(norm="linf", steps=20, search_steps=6, target_classes=9).run(model, x, y, seed=0)
    assert untargeted.success[0] and targeted.success[0]
    assert targeted.adv_labels[0] != untargeted.adv_labels[0]
    assert targeted.distances["linf"][0] < 0.8 * untargeted.distances["linf"][0]
    assert targeted.distances["linf"][0] < 1.1 * 0.112
    members = [label for label, _ in minimal_norm("linf").members()]
    assert members[-1] == "apgd-t-min-linf" and "apgd-t-min-l1" in [m for m, _ in minimal_norm("l1").members()]
