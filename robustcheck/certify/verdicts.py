"""Per-sample verdicts from a proof and an attack, the brackets between them, and the invariant
that they never contradict each other.

A sample is *proven* when CROWN certifies it within ε, *violated* when onnxruntime confirmed an
adversarial example within ε, and *unrefuted* otherwise. A sample both proven and violated means
the certifier (or the oracle check) is wrong: that is robustcheck's bug, never the model's, and it
raises `CertificationContradiction` so the item errors loudly instead of passing or failing.
"""

from __future__ import annotations

import math

import numpy as np

from robustcheck.attack_records import CURVE_POINTS
from robustcheck.figures import BracketPoint, SampleBracket


class CertificationContradiction(AssertionError):
    """A certificate and a verified adversarial example disagree: an internal error of robustcheck."""


def sample_statuses(proven: np.ndarray | None, violated: np.ndarray, where: str) -> list[str]:
    """Per sample "proven" / "violated" / "unrefuted" (`proven` None: no certifier ran).

    Raises CertificationContradiction naming the samples when a proof meets a verified example."""
    violated = np.asarray(violated, dtype=bool)
    proof = np.zeros_like(violated) if proven is None else np.asarray(proven, dtype=bool)
    both = np.flatnonzero(proof & violated)
    if len(both):
        raise CertificationContradiction(
            f"{where}: sample(s) {', '.join(map(str, both[:10]))} are certified robust and yet have a verified "
            "adversarial example within epsilon; this is a bug in robustcheck's certifier, please report it")
    return ["proven" if p else "violated" if v else "unrefuted" for p, v in zip(proof, violated)]


def make_brackets(samples: np.ndarray, dataset_index: np.ndarray, certified: np.ndarray, attack: np.ndarray,
                  where: str) -> list[SampleBracket]:
    """One `SampleBracket` per sample; `attack` holds inf where the attack failed.

    A certified radius at or beyond a verified adversarial distance is a CertificationContradiction."""
    out = []
    for s, d, c, a in zip(samples, dataset_index, certified, attack):
        c, a = float(c), float(a)
        if math.isfinite(a) and c >= a:
            raise CertificationContradiction(
                f"{where}: sample {int(s)} is certified to radius {c:g} but has a verified adversarial example "
                f"at distance {a:g}; this is a bug in robustcheck's certifier, please report it")
        upper = a if math.isfinite(a) else None
        ratio = upper / c if upper is not None and c > 0 else None
        out.append(SampleBracket(sample=int(s), dataset_index=int(d), certified=c, attack=upper, ratio=ratio))
    return out


def bracket_curve(brackets: list[SampleBracket], epsilon: float) -> list[BracketPoint]:
    """Certified and empirical robust accuracy of the bracketed samples over an ε grid that
    reaches past both the claimed `epsilon` and the largest finite bracket end."""
    if not brackets:
        return []
    ends = [b.attack for b in brackets if b.attack is not None] + [b.certified for b in brackets] + [epsilon]
    grid = np.linspace(0.0, max(ends) * 1.05, CURVE_POINTS)
    certified = np.array([b.certified for b in brackets])
    attack = np.array([math.inf if b.attack is None else b.attack for b in brackets])
    return [BracketPoint(float(e), float((certified >= e).mean()), float((attack > e).mean())) for e in grid]
