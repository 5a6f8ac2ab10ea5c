"""Adversarial attacks, one module per family (foolbox style).

Minimal-norm attacks: Carlini & Wagner L2 / L∞ / L0 and EAD (elastic net). Bounded probes:
FGSM and PGD (softmax cross-entropy, logit margin or DLR loss) and JSMA. Every attack is
verified by the oracle (onnxruntime) in `Attack.run`.
"""

from robustcheck.attacks.base import Attack, AttackResult, distances
from robustcheck.attacks.carlini_wagner import CarliniWagnerL0, CarliniWagnerL2, CarliniWagnerLinf
from robustcheck.attacks.ead import EAD
from robustcheck.attacks.gradient import FGSM, PGD
from robustcheck.attacks.jsma import JSMA

#: Attack classes by the name used in configs and reports.
ATTACKS: dict[str, type[Attack]] = {
    cls.name: cls for cls in (CarliniWagnerL2, CarliniWagnerLinf, CarliniWagnerL0, EAD, FGSM, PGD, JSMA)
}

__all__ = [
    "ATTACKS",
    "Attack",
    "AttackResult",
    "CarliniWagnerL0",
    "CarliniWagnerL2",
    "CarliniWagnerLinf",
    "EAD",
    "FGSM",
    "JSMA",
    "PGD",
    "distances",
]
