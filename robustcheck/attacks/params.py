"""Declared hyper-parameters: each attack field says its default, range, choices and meaning.

    @dataclass(kw_only=True)
    class MyAttack(MinimalNormAttack):
        steps: int = param(100, low=1, high=MAX_ITERATIONS, doc="iterations per descent")

`param` is a `dataclasses.field` whose metadata holds a `ParamSpec`; `Attack.__post_init__` calls
`check_value` for every field and `registry.validate_params` calls it before anything runs, so a
config table and a constructor call are refused with the same words. Types come from the field's
annotation: int, float (accepts ints; NaN and ±inf refused), bool (only true/false: bools are
not ints here), str, or any of them `| None`. Import-light: no torch.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import typing
from dataclasses import dataclass
from typing import Any

from robustcheck.errors import AttackParamError

#: Upper bound on any per-descent iteration count: a typo such as 10**12 is refused, not run for ever.
MAX_ITERATIONS = 100_000

_KINDS = (bool, int, float, str)


@dataclass(frozen=True)
class ParamSpec:
    """What a hyper-parameter accepts: bounds (inclusive unless `*_open`), choices, a one-line doc."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] | None = None
    min_abs: float | None = None
    doc: str = ""

    def expectation(self, kind: type, optional: bool) -> str:
        """'an integer in [1, 100000]', 'one of "EN", "L1"', … as an error message states it."""
        if self.choices is not None:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            text = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}[kind]
            if self.low is not None or self.high is not None:
                lo = "-inf" if self.low is None else f"{self.low:g}"
                hi = "inf" if self.high is None else f"{self.high:g}"
                text += f" in {'(' if self.low_open or self.low is None else '['}{lo}, {hi}"
                text += ")" if self.high_open or self.high is None else "]"
            if self.min_abs is not None:
                text += f" with magnitude at least {self.min_abs:g}"
        return text + (" (or none)" if optional else "")


def param(default: Any, *, low: float | None = None, high: float | None = None, low_open: bool = False,
          high_open: bool = False, choices: tuple[Any, ...] | None = None, min_abs: float | None = None,
          doc: str = "") -> Any:
    """A declared hyper-parameter field (see the module docstring)."""
    spec = ParamSpec(low, high, low_open, high_open, None if choices is None else tuple(choices), min_abs, doc)
    return dataclasses.field(default=default, metadata={"param": spec})


def override(base: type, name: str, default: Any) -> Any:
    """Re-declare hyper-parameter `name` inherited from `base` with another default (same range,
    choices and doc): `learning_rate: float = override(Base, "learning_rate", 5e-3)`."""
    inherited = {f.name: f for f in dataclasses.fields(base)}[name]
    return dataclasses.field(default=default, metadata=inherited.metadata)


def declared(cls: type) -> dict[str, tuple[type, bool, ParamSpec]]:
    """Every hyper-parameter of attack class `cls`: name -> (type, accepts None, spec)."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        kind, optional = _kind(hints[f.name], cls, f.name)
        out[f.name] = (kind, optional, f.metadata.get("param", ParamSpec()))
    return out


def check_value(label: str, key: str, value: Any, kind: type, optional: bool, spec: ParamSpec) -> Any:
    """`value` converted to `kind` (int → float for float fields), or AttackParamError naming
    the attack `label`, the `key` and what was expected."""
    def bad() -> AttackParamError:
        return AttackParamError(label, key, f"must be {spec.expectation(kind, optional)}, got {value!r}")

    if value is None:
        if optional:
            return None
        raise bad()
    if kind is bool:
        if not isinstance(value, bool):
            raise bad()
        converted: Any = value
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise bad()
        converted = int(value)
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
            raise bad()
        converted = float(value)
    else:
        if not isinstance(value, str):
            raise bad()
        converted = value
    if spec.choices is not None and converted not in spec.choices:
        raise bad()
    if kind in (int, float):
        if spec.low is not None and (converted < spec.low or spec.low_open and converted == spec.low):
            raise bad()
        if spec.high is not None and (converted > spec.high or spec.high_open and converted == spec.high):
            raise bad()
        if spec.min_abs is not None and abs(converted) < spec.min_abs:
            raise bad()
    return converted


def _kind(hint: Any, cls: type, name: str) -> tuple[type, bool]:
    args = typing.get_args(hint)
    optional = type(None) in args
    if optional:
        rest = [a for a in args if a is not type(None)]
        hint = rest[0] if len(rest) == 1 else hint
    if hint not in _KINDS:
        raise TypeError(f"{cls.__name__}.{name}: hyper-parameters are bool, int, float or str (optionally "
                        f"| None), not {hint!r}")
    return hint, optional
