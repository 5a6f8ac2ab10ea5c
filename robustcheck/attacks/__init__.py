"""Adversarial attacks, one module per family (foolbox style), and the labels configs name them by.

Minimal-norm attacks: FMN (L0/L1/L2/L∞), DDN (L2), ε-searching APGD, Carlini & Wagner L2 / L∞ /
L0, EAD (elastic net) and JSMA, and the per-norm ensembles `minimal_norm(norm, profile)` that
keep the per-sample minimum over complementary members. Bounded attacks: APGD and APGD-T
(AutoAttack; L∞/L2/L1), the fixed-ε `AutoAttackCascade`, FGSM and PGD (softmax cross-entropy,
logit margin or DLR loss), and the gradient-free RandomNoise and SquareAttack (oracle queries
only). Every minimal-norm result is polished by a bisection on the segment x → x_adv judged
by onnxruntime (robustcheck.attacks.refine). Every attack is a dataclass of declared
hyper-parameters, and every candidate it returns is verified by the oracle (onnxruntime) in
`Attack.run`. To add your own: subclass `MinimalNormAttack` or `BoundedAttack`, implement
`run_batch`, and register it (`register_attack`, or the `robustcheck.attacks` entry-point group;
see robustcheck.attacks.registry and the README).
"""

from robustcheck.attacks.apgd import APGD, APGDTargeted
from robustcheck.attacks.apgd_search import APGDMinimal
from robustcheck.attacks.base import Attack, BatchOutput, BoundedAttack, MinimalNormAttack
from robustcheck.attacks.blackbox import RandomNoise, SquareAttack
from robustcheck.attacks.carlini_wagner import CarliniWagnerL2, CarliniWagnerLinf
from robustcheck.attacks.carlini_wagner_l0 import CarliniWagnerL0
from robustcheck.attacks.cascade import AutoAttackCascade
from robustcheck.attacks.ddn import DDN
from robustcheck.attacks.ead import EAD
from robustcheck.attacks.ensemble import MinimalNorm, minimal_norm
from robustcheck.attacks.fmn import FMN
from robustcheck.attacks.gradient import FGSM, PGD
from robustcheck.attacks.jsma import JSMA
from robustcheck.attacks.params import MAX_ITERATIONS, param
from robustcheck.attacks.registry import (
    ENTRY_POINT_GROUP,
    AttackSpec,
    attack_labels,
    attack_spec,
    make_attack,
    register_attack,
    validate_params,
)
from robustcheck.attacks.result import AttackResult
from robustcheck.errors import AttackParamError, AttackPluginError

__all__ = [
    "APGD",
    "DDN",
    "EAD",
    "FMN",
    "APGDMinimal",
    "APGDTargeted",
    "AutoAttackCascade",
    "MinimalNorm",
    "minimal_norm",
    "ENTRY_POINT_GROUP",
    "FGSM",
    "JSMA",
    "MAX_ITERATIONS",
    "PGD",
    "Attack",
    "AttackParamError",
    "AttackPluginError",
    "AttackResult",
    "AttackSpec",
    "BatchOutput",
    "BoundedAttack",
    "CarliniWagnerL0",
    "CarliniWagnerL2",
    "CarliniWagnerLinf",
    "MinimalNormAttack",
    "RandomNoise",
    "SquareAttack",
    "attack_labels",
    "attack_spec",
    "make_attack",
    "param",
    "register_attack",
    "validate_params",
]
