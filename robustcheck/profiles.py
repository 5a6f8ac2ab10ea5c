"""Budgets: how many samples, Hypothesis examples, attack iterations and diagnostics a run spends.

The one home of budgets. `--robustcheck-profile` picks one. The README gives each profile's
measured time and strength. A profile's `attacks` table is keyed by an attack's family name,
its `name` trait ("cw-l2", "cw-linf", "cw-l0", "ead", "pgd", …), not by a config label: the
budget of "ead" applies to both labels "ead-en" and "ead-l1", that of "pgd" to "pgd-linf" and
"pgd-l2". Every key is a registered attack's name and every value one of its declared
hyper-parameters (tests/test_attack_registry.py checks both). Import-light.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DiagnosticsBudget:
    """What `robustcheck.diagnose` spends on one model."""

    #: Correctly classified samples the checks use.
    samples: int
    #: PGD steps of the bounded probes (weak/strong, one-step, ε sweep; the convergence probe doubles it).
    steps: int
    #: Random-noise draws per sample and Square Attack queries of the gradient-free probes.
    noise_draws: int
    queries: int


@dataclass(frozen=True)
class Profile:
    name: str
    #: Correctly classified samples per model that checks attack (config `samples` overrides, up to the cap).
    samples: int
    max_samples: int
    #: Hypothesis examples per strict property (cached attack results make most of them cheap).
    examples: int
    #: The gradient-masking diagnostics' budget.
    diagnostics: DiagnosticsBudget
    #: Attack hyper-parameters per attack family name, the `name` trait (config `attacks` tables override these).
    attacks: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Replica draws averaged per gradient (EOT) on a randomized model.
    eot_draws: int = 20


#: Gradient steps per member of the minimal-norm ensembles in `ci`, measured to meet the goals
#: of the README's profiles table (benchmarks/minimal_norm.py); `thorough` spends four times this.
CI_MIN_NORM_STEPS = 200


def _new_attacks(min_norm_steps: int, apgd_steps: int, classic: bool = False) -> dict[str, dict[str, Any]]:
    """Budgets of the minimal-norm ensembles (`classic`: with C&W-L2 / EAD at 9 × 1,000 as members),
    their members and the AutoAttack cascade."""
    return {
        "min-norm": {"steps": min_norm_steps, "classic": classic},
        "fmn": {"steps": min_norm_steps},
        "ddn": {"steps": min_norm_steps},
        "apgd-min": {"steps": max(1, min_norm_steps // 5), "search_steps": 5},
        "apgd": {"steps": apgd_steps},
        "apgd-t": {"steps": apgd_steps},
        "autoattack": {"min_norm_steps": min_norm_steps, "steps": apgd_steps},
    }


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        "smoke", samples=16, max_samples=16, examples=20,
        diagnostics=DiagnosticsBudget(samples=16, steps=20, noise_draws=10, queries=300),
        attacks={
            "cw-l2": {"binary_search_steps": 4, "max_iterations": 200},
            "cw-linf": {"max_iterations": 300, "learning_rate": 1e-2},
            "cw-l0": {"max_iterations": 300},
            "ead": {"binary_search_steps": 4, "max_iterations": 200},
            "pgd": {"steps": 20},
            **_new_attacks(50, apgd_steps=20),
        },
    ),
    "ci": Profile(
        "ci", samples=64, max_samples=200, examples=100,
        diagnostics=DiagnosticsBudget(samples=50, steps=40, noise_draws=20, queries=1000),
        attacks={
            "cw-l2": {"binary_search_steps": 6, "max_iterations": 500},
            "cw-linf": {"max_iterations": 500, "learning_rate": 1e-2},
            "cw-l0": {"max_iterations": 500},
            "ead": {"binary_search_steps": 6, "max_iterations": 500},
            "pgd": {"steps": 40},
            **_new_attacks(CI_MIN_NORM_STEPS, apgd_steps=100),
        },
    ),
    "thorough": Profile(
        "thorough", samples=100, max_samples=2000, examples=200,
        diagnostics=DiagnosticsBudget(samples=200, steps=100, noise_draws=100, queries=5000),
        attacks={
            "cw-l2": {"binary_search_steps": 9, "max_iterations": 1000},
            "cw-linf": {"learning_rate": 1e-2},
            "cw-l0": {},
            "ead": {"binary_search_steps": 9, "max_iterations": 1000},
            "pgd": {"steps": 100, "restarts": 5},
            **_new_attacks(4 * CI_MIN_NORM_STEPS, apgd_steps=100, classic=True),
        },
        eot_draws=40,
    ),
}
DEFAULT_PROFILE = "ci"
