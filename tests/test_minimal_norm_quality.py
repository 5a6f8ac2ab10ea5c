"""Quality bars of the minimal-norm ensembles on the shipped models, at reduced budgets, against
the stored per-sample reference of the full-budget peer runs.

tests/data/minimal_norm_reference.json is written by `python benchmarks/minimal_norm.py` from
benchmarks/reference_runs.py: per model, the dataset rows of its first correctly classified
held-out images and, per norm, the smallest distance any reference attack found there (foolbox
C&W-L2 / EAD 9 × 1,000, adv_lib FMN/DDN/FAB/PDPGD 1,000 steps; L0: also robustcheck's C&W-L0
and JSMA), verified by onnxruntime. A ratio is our distance over that reference, per sample.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from robustcheck.attacks import MinimalNorm

REFERENCE = json.loads((Path(__file__).parent / "data" / "minimal_norm_reference.json").read_text())
#: Gradient steps per ensemble member here (the `ci` profile spends more; see profiles.py).
STEPS = 50
# (norm, least success, largest mean ratio, largest p90 ratio over the successes), measured at
# STEPS on the baseline's 20 reference images (success 100/100/100/95%, mean 1.05/1.15/1.28/–,
# p90 1.16/1.28/1.65/1.36 with the failure counted; measured by this test's own loop) with some headroom; the `ci`
# budget's figures are in benchmarks/results/minimal_norm_ci_n100.md.
BARS = [("l2", 1.0, 1.10, 1.25), ("linf", 1.0, 1.20, 1.35), ("l1", 1.0, 1.35, 1.75), ("l0", 0.9, 1.5, 1.6)]


@pytest.fixture(scope="module")
def reference_images(shipped, heldout):
    def get(name: str):
        where = {int(i): k for k, i in enumerate(heldout.index)}
        rows = np.array([where[r] for r in REFERENCE["models"][name]["dataset_rows"]])
        return shipped(name), heldout.x[rows], heldout.y[rows]
    return get


@pytest.mark.parametrize("name", sorted(REFERENCE["models"]))
@pytest.mark.parametrize(("norm", "success", "mean_bar", "p90_bar"), BARS, ids=[b[0] for b in BARS])
def test_ensemble_is_near_the_reference_at_a_reduced_budget(reference_images, name: str, norm: str, success: float,
                                                            mean_bar: float, p90_bar: float) -> None:
    model, x, y = reference_images(name)
    ref = np.asarray(REFERENCE["models"][name]["reference"][norm], dtype=float)
    result = MinimalNorm(norm=norm, steps=STEPS).run(model, x, y)
    assert result.success.mean() >= success, np.flatnonzero(~result.success)
    ok = result.success
    labels = model.predict(result.x_adv[ok])
    assert (labels != y[ok]).all() and model.in_box(result.x_adv).all()
    ratio = result.distances[norm][ok] / ref[ok]
    assert np.isfinite(ratio).all()
    assert ratio.mean() <= mean_bar and np.percentile(ratio, 90) <= p90_bar, (ratio.mean(), np.percentile(ratio, 90))
    # Every broken sample names its winner, a member of this norm's ensemble.
    members = {label for label, _ in MinimalNorm(norm=norm).members()}
    assert set(result.extras["winner"][ok]) <= members
