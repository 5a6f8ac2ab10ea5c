"""Attack labels: the names configs use (`attack = "cw-l2"`), each an attack class plus defaults.

Built-in labels are registered below. Third-party attacks join through the entry-point group
`robustcheck.attacks`: the entry point's name is the config label and its value an `Attack`
subclass (registered with no defaults) or an `AttackSpec`. In the plugin's `pyproject.toml`:

    [project.entry-points."robustcheck.attacks"]
    my-attack = "my_package.attacks:MyAttack"

Entry points load lazily, once, on the first look-up; one that fails to import, is not an
attack, or takes a label already registered raises `AttackPluginError` with a one-line message.
From Python, `register_attack(label, cls, **defaults)` does the same for the running process.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import Any

from robustcheck.attacks.apgd import APGD, APGDTargeted
from robustcheck.attacks.apgd_search import APGDMinimal
from robustcheck.attacks.base import Attack, BoundedAttack
from robustcheck.attacks.blackbox import RandomNoise, SquareAttack
from robustcheck.attacks.carlini_wagner import CarliniWagnerL2, CarliniWagnerLinf
from robustcheck.attacks.carlini_wagner_l0 import CarliniWagnerL0
from robustcheck.attacks.cascade import AutoAttackCascade
from robustcheck.attacks.ddn import DDN
from robustcheck.attacks.ead import EAD
from robustcheck.attacks.ensemble import MinimalNorm
from robustcheck.attacks.fmn import FMN
from robustcheck.attacks.gradient import FGSM, PGD
from robustcheck.attacks.jsma import JSMA
from robustcheck.attacks.params import check_value, declared
from robustcheck.errors import AttackParamError, AttackPluginError

ENTRY_POINT_GROUP = "robustcheck.attacks"


@dataclass(frozen=True)
class AttackSpec:
    """A config label: the attack class and the hyper-parameters the label sets (overridable,
    except a `norm` that differs from the label's)."""

    label: str
    attack_cls: type[Attack]
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (isinstance(self.attack_cls, type) and issubclass(self.attack_cls, Attack)):
            raise TypeError(f"attack '{self.label}': {self.attack_cls!r} is not an Attack subclass")
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))
        validate_params(self.label, self.defaults, spec=self)

    @property
    def norm(self) -> str:
        """The norm the label's attack measures distances and ε in."""
        if "norm" in self.defaults:
            return str(self.defaults["norm"])
        fields = {f.name: f for f in dataclasses.fields(self.attack_cls)}
        if "norm" in fields:
            return str(fields["norm"].default)
        return self.attack_cls.norm

    @property
    def bounded(self) -> bool:
        """The attack searches inside an ε-ball: a check's ε becomes its `epsilon`."""
        return issubclass(self.attack_cls, BoundedAttack)

    def make(self, params: Mapping[str, Any] = MappingProxyType({})) -> Attack:
        """The attack with the label's defaults overridden by `params` (validated first)."""
        validate_params(self.label, params, spec=self)
        return self.attack_cls(**{**self.defaults, **params})


_REGISTRY: dict[str, AttackSpec] = {}
_PLUGINS_LOADED = False


def register_attack(label: str, attack_cls: type[Attack], /, **defaults: Any) -> AttackSpec:
    """Register `attack_cls` under config label `label` with `defaults`; returns the spec.

    Raises AttackPluginError when the label is taken, AttackParamError for a bad default.
    """
    return _add(AttackSpec(label, attack_cls, defaults), origin="register_attack")


def attack_labels() -> dict[str, AttackSpec]:
    """Every registered label (built-ins first, then third-party entry points)."""
    _load_plugins()
    return dict(_REGISTRY)


def attack_spec(label: str) -> AttackSpec:
    """The spec of `label`; AttackParamError (empty key) naming the known labels when it is unknown."""
    specs = attack_labels()
    if label not in specs:
        raise AttackParamError(label, "", f"unknown attack label (known: {', '.join(specs)})")
    return specs[label]


def make_attack(label: str, params: Mapping[str, Any]) -> Attack:
    """The attack of `label` with its defaults overridden by `params` (validated first)."""
    return attack_spec(label).make(params)


def validate_params(label: str, params: Mapping[str, Any], *, spec: AttackSpec | None = None) -> None:
    """Check `params` against the declared hyper-parameters of `label`'s attack without running
    anything; raises AttackParamError(label, key, message) for an unknown key (the message lists
    the known ones), a wrong type, a value out of range or not finite, or a norm that the label
    does not measure."""
    spec = spec or attack_spec(label)
    fields = declared(spec.attack_cls)
    for key, value in params.items():
        if key not in fields:
            raise AttackParamError(label, key, f"unknown hyper-parameter (known: {', '.join(sorted(fields))})")
        kind, optional, param_spec = fields[key]
        check_value(label, key, value, kind, optional, param_spec)
    if "norm" in params and params["norm"] != spec.norm:
        raise AttackParamError(label, "norm", f"the label measures {spec.norm}; got {params['norm']!r} "
                                              "(use the label for that norm)")


def _add(spec: AttackSpec, origin: str) -> AttackSpec:
    if spec.label in _REGISTRY:
        raise AttackPluginError(f"{origin}: attack label '{spec.label}' is already registered "
                                f"({_REGISTRY[spec.label].attack_cls.__qualname__})")
    _REGISTRY[spec.label] = spec
    return spec


def _load_plugins() -> None:
    """Register the entry points of group `robustcheck.attacks`, once per process."""
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point '{ep.name} = {ep.value}' ({ENTRY_POINT_GROUP})"
        try:
            obj = ep.load()
        except Exception as exc:  # a third-party import: any failure becomes one line
            raise AttackPluginError(f"{where}: cannot be loaded: {type(exc).__name__}: {exc}") from None
        if isinstance(obj, AttackSpec):
            spec = obj if obj.label == ep.name else dataclasses.replace(obj, label=ep.name)
        elif isinstance(obj, type) and issubclass(obj, Attack):
            spec = AttackSpec(ep.name, obj)
        else:
            raise AttackPluginError(f"{where}: is neither an Attack subclass nor an AttackSpec")
        _add(spec, where)


for _spec in (
    AttackSpec("cw-l2", CarliniWagnerL2),
    AttackSpec("cw-linf", CarliniWagnerLinf),
    AttackSpec("cw-l0", CarliniWagnerL0),
    AttackSpec("ead-en", EAD, {"decision_rule": "EN"}),
    AttackSpec("ead-l1", EAD, {"decision_rule": "L1"}),
    # Bounded probes default to the scale-invariant DLR loss: cross-entropy is what masking defeats.
    AttackSpec("pgd-linf", PGD, {"norm": "linf", "loss": "dlr"}),
    AttackSpec("pgd-l2", PGD, {"norm": "l2", "loss": "dlr"}),
    AttackSpec("fgsm-linf", FGSM, {"norm": "linf"}),
    AttackSpec("jsma", JSMA),
    AttackSpec("random-noise", RandomNoise),
    AttackSpec("square", SquareAttack),
    # Minimal-norm ensembles (per-sample minimum over members; robustcheck.attacks.ensemble).
    *(AttackSpec(f"min-{n}", MinimalNorm, {"norm": n}) for n in ("l2", "linf", "l1", "l0")),
    *(AttackSpec(f"fmn-{n}", FMN, {"norm": n}) for n in ("l0", "l1", "l2", "linf")),
    AttackSpec("ddn", DDN),
    *(AttackSpec(f"apgd-min-{n}", APGDMinimal, {"norm": n}) for n in ("linf", "l2", "l1")),
    # Bounded AutoAttack family: APGD-CE, APGD-T (targeted DLR) and the fixed-ε cascade.
    *(AttackSpec(f"apgd-ce-{n}", APGD, {"norm": n, "loss": "ce"}) for n in ("linf", "l2", "l1")),
    *(AttackSpec(f"apgd-t-{n}", APGDTargeted, {"norm": n}) for n in ("linf", "l2", "l1")),
    *(AttackSpec(f"autoattack-{n}", AutoAttackCascade, {"norm": n}) for n in ("linf", "l2", "l1")),
):
    _add(_spec, "robustcheck")
