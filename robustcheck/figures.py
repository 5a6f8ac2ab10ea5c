"""The figures each kind of item measures, as typed dataclasses; `FIGURES` maps kind → class.

An `ItemRecord` carries one of these, chosen by its `kind`; JSON readers (the reports, a
baseline comparison, xdist's controller) rebuild the right class from that kind. A new kind
of item (certified accuracy, a transform property, accuracy under a corruption…) adds its
figures class here and one entry in `FIGURES`; `record.schema.json` gets a matching `$defs`
entry (tests/test_report_json.py checks that they agree). Import-light.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class CleanAccuracyFigures:
    """Oracle accuracy over the whole dataset, against the configured gate."""

    clean_accuracy: float
    dataset_size: int
    min: float | None = None


@dataclass
class ClaimFigures:
    """What every claim about an attack at a budget states: attack label, norm, ε, targeted."""

    attack: str
    norm: str
    epsilon: float
    targeted: bool


@dataclass
class RobustAccuracyFigures(ClaimFigures):
    """Robust accuracy on the first `samples` rows (misclassified rows count as not robust)."""

    robust_accuracy: float
    min: float
    samples: int
    broken: int
    attack_success_rate: float
    median_distortion: float | None = None
    #: "adaptive" when the attack ran on surrogate gradients / EOT (non-differentiable or random
    #: operators); then the same attack with the true ("exact") gradients is kept beside it.
    gradient_mode: str = "exact"
    exact_robust_accuracy: float | None = None
    exact_attack_success_rate: float | None = None
    #: Attack label → samples it broke within ε: the check's attack, then the AutoAttack cascade's
    #: stages on the rest (robustcheck/fixed_epsilon.py); their sum is `broken`.
    broken_by: dict[str, int] = field(default_factory=dict)
    #: Minimal-norm ensemble (`min-<norm>`) member → samples whose smallest perturbation it found.
    winners: dict[str, int] = field(default_factory=dict)


@dataclass
class RobustPropertyFigures(ClaimFigures):
    """The Hypothesis property "no verified adversarial example within ε" and what it found."""

    pool: int
    max_examples: int
    examples: int
    replayed: int
    first_failure_at: int | None = None
    # Damaged or surplus store entries that were skipped, one line each.
    store_warnings: list[str] = field(default_factory=list)
    # The counterexample that failed the property (None when it held).
    sample: int | None = None
    dataset_index: int | None = None
    true_label: int | None = None
    adv_label: int | None = None
    distances: dict[str, float] = field(default_factory=dict)
    counterexamples_found: int = 0
    # Per pool sample (untargeted claims): "proven" (CROWN certificate, when the model's `certify`
    # is on), "violated" (a verified example within ε) or "unrefuted"; see certify/verdicts.py.
    certification: str | None = None
    proven: int | None = None
    violated: int | None = None
    unrefuted: int | None = None
    sample_status: list[str] = field(default_factory=list)
    # Adaptive models (untargeted claims): the robust accuracy the same attack leaves on the
    # replica's exact gradients, beside the adaptive pool run's (the gap is masking evidence).
    gradient_mode: str = "exact"
    exact_robust_accuracy: float | None = None


@dataclass
class SampleBracket:
    """One sample: certified radius ≤ the true minimal adversarial distance ≤ the attack's distance."""

    sample: int
    dataset_index: int
    certified: float
    attack: float | None  # None: the attack found no adversarial example
    ratio: float | None  # attack ÷ certified (None when either is missing or the radius is 0)


@dataclass
class BracketPoint:
    """Over the bracketed samples at one ε: proven share ≤ true robust share ≤ share the attack leaves."""

    epsilon: float
    certified_accuracy: float
    empirical_accuracy: float


@dataclass
class CertifiedAccuracyFigures(ClaimFigures):
    """Share of the eval rows CROWN proves robust within ε, and the per-sample brackets;
    `attack` is the (minimal-norm) attack that gives each bracket its upper end."""

    method: str
    certified_accuracy: float
    min: float
    samples: int
    proven: int
    violated: int
    unrefuted: int
    empirical_accuracy: float
    brackets: list[SampleBracket] = field(default_factory=list)
    bracket_curve: list[BracketPoint] = field(default_factory=list)
    median_certified: float | None = None
    median_attack: float | None = None
    median_ratio: float | None = None  # median over samples of attack ÷ certified


@dataclass
class TransformPropertyFigures:
    """The Hypothesis property "no sample changes its label under `transform` up to `max`"
    (item `robust[rotate@10]`) and the smallest failing magnitude it shrank to."""

    transform: str
    max: list[float]
    unit: str
    pool: int
    max_examples: int
    examples: int
    replayed: int
    model_calls: int
    first_failure_level: str | None = None
    store_warnings: list[str] = field(default_factory=list)
    # The smallest failure (None when the property held): magnitude per component (JPEG:
    # 100 − quality), as text, the worst direction's parameters, the sample, labels, confidences.
    magnitude: list[float] | None = None
    magnitude_text: str | None = None
    params: dict[str, float] = field(default_factory=dict)
    sample: int | None = None
    dataset_index: int | None = None
    true_label: int | None = None
    adv_label: int | None = None
    confidence_true: float | None = None
    confidence_adv: float | None = None


@dataclass
class AccuracyUnderFigures:
    """Accuracy over the evaluation samples when every direction at a fixed level of
    `transform` must keep the label (item `accuracy-under[rotate@15]`), with the curve at
    fractions of that level (`curve_levels` in the transformation's units)."""

    transform: str
    level: list[float]
    accuracy: float
    min: float
    samples: int
    broken: int
    curve_levels: list[float] = field(default_factory=list)
    curve_accuracy: list[float] = field(default_factory=list)


@dataclass
class GradientMaskingFigures:
    errors: int
    warnings: int
    findings: list[str]
    policy: Literal["fail", "warn"]


@dataclass
class BaselineFigures:
    in_baseline: bool
    regressions: int = 0


Figures = (
    CleanAccuracyFigures | RobustAccuracyFigures | RobustPropertyFigures | GradientMaskingFigures | BaselineFigures
    | CertifiedAccuracyFigures
    | TransformPropertyFigures | AccuracyUnderFigures
)

#: Item kind → its figures class (the one table; items and JSON readers use it).
FIGURES: dict[str, type] = {
    "clean-accuracy": CleanAccuracyFigures,
    "robust-accuracy": RobustAccuracyFigures,
    "robust": RobustPropertyFigures,
    "gradient-masking": GradientMaskingFigures,
    "baseline": BaselineFigures,
    "certified-accuracy": CertifiedAccuracyFigures,
    "transform": TransformPropertyFigures,
    "accuracy-under": AccuracyUnderFigures,
}
