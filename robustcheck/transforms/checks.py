"""Transformation claims in a config: `type = "transform"` and `type = "accuracy-under"`.

    [[defaults.check]]
    type = "transform"              # item robust[rotate@10]: no sample flips under rotations ≤ 10°
    transform = "rotate"            # or a list of two or three for a composition
    max = 10                        # or a list, one per transformation

    [[defaults.check]]
    type = "accuracy-under"         # item accuracy-under[rotate@15]: accuracy at exactly 15° ≥ min
    transform = "rotate"
    level = 15
    min = 0.9

Parsing is eager and one line per problem, like every other check; the transformation's
families are imported only when a transform check is present.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustcheck.errors import ConfigError

if TYPE_CHECKING:
    from robustcheck.transforms.spec import TransformSpec

TRANSFORM_CHECK_TYPES = ("transform", "accuracy-under")
_KEYS = {"transform": {"type", "transform", "max"}, "accuracy-under": {"type", "transform", "level", "min"}}


@dataclass(frozen=True)
class TransformCheck:
    """One transformation claim: its type, transformation(s), max (or fixed level), gate."""

    type: str
    transform: tuple[str, ...]
    max: tuple[float, ...]
    min: float | None = None

    @property
    def spec(self) -> TransformSpec:
        from robustcheck.transforms.spec import TransformSpec

        return TransformSpec.parse(list(self.transform), list(self.max))

    @property
    def id(self) -> str:
        prefix = "robust" if self.type == "transform" else "accuracy-under"
        return f"{prefix}[{self.spec.id}]"

    def to_dict(self) -> dict[str, Any]:
        key = "max" if self.type == "transform" else "level"
        value: Any = self.max[0] if len(self.max) == 1 else list(self.max)
        names: Any = self.transform[0] if len(self.transform) == 1 else list(self.transform)
        return {"id": self.id, "type": self.type, "transform": names, key: value, "min": self.min}


def parse_transform_check(path: Path, where: str, value: dict[str, Any]) -> TransformCheck:
    """A `[[check]]` table of type "transform" or "accuracy-under"; ConfigError naming the key."""
    kind = value.get("type")
    if kind not in _KEYS:
        raise ConfigError(f"{path}: '{where}.type' must be one of {', '.join(TRANSFORM_CHECK_TYPES)}, got {kind!r}")
    keys = _KEYS[kind]
    unknown = sorted(set(value) - keys)
    if unknown:
        raise ConfigError(f"{path}: unknown key '{where}.{unknown[0]}' for a {kind} check "
                          f"(known: {', '.join(sorted(keys))})")
    size_key = "max" if kind == "transform" else "level"
    for key in sorted(keys):
        if key not in value:
            raise ConfigError(f"{path}: '{where}.{key}' is required for a {kind} check")
    from robustcheck.transforms.spec import TransformSpec

    spec = TransformSpec.parse(value["transform"], value[size_key], where=f"{path}: '{where}'",
                               key=size_key)
    minimum = None
    if kind == "accuracy-under":
        minimum = value["min"]
        if isinstance(minimum, bool) or not isinstance(minimum, (int, float)) or not 0.0 <= minimum <= 1.0:
            raise ConfigError(f"{path}: '{where}.min' must be a number in [0, 1], got {minimum!r}")
        minimum = float(minimum)
    return TransformCheck(kind, tuple(f.name for f in spec.families), spec.levels, minimum)
