"""Plain data (parsed JSON) → typed dataclasses, derived from the dataclasses' type hints.

`from_plain(cls, data)` rebuilds a dataclass tree: nested dataclasses, lists, tuples, dicts,
`X | None`, `Literal[...]`, `Any`, and unions chosen by a sibling key (a field whose metadata
holds `{"by": "<sibling field>", "table": {value: class}}`). Unknown keys are ignored so that
a newer writer can add fields; a missing required key or a wrong type raises `PlainDataError`
naming the path of the bad value. JSON writes NaN and infinities as null, so null read into a
plain `float` field becomes NaN. Import-light: standard library only.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from functools import cache
from typing import Any, Literal, TypeVar, Union

T = TypeVar("T")


class PlainDataError(ValueError):
    """Plain data does not fit the dataclass it should rebuild; the message names where."""


def from_plain(cls: type[T], data: Any, where: str = "") -> T:
    """Rebuild an instance of dataclass `cls` from plain data (dicts, lists, numbers, strings)."""
    return typing.cast(T, _decode(cls, data, where or cls.__name__))


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(hint: Any, value: Any, where: str) -> Any:
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _decode_dataclass(hint, value, where)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return _decode_union(args, value, where)
    if origin is Literal:
        if value not in args or isinstance(value, bool) != any(isinstance(a, bool) for a in args):
            raise _error(where, "one of " + ", ".join(repr(a) for a in args), value)
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _error(where, "a list", value)
        item = args[0] if args else Any
        decoded = [_decode(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return decoded if origin is list else tuple(decoded)
    if origin is dict:
        if not isinstance(value, dict):
            raise _error(where, "an object", value)
        key_hint, value_hint = args or (Any, Any)
        return {_decode(key_hint, k, where): _decode(value_hint, v, f"{where}.{k}") for k, v in value.items()}
    return _decode_scalar(hint, value, where)


def _decode_dataclass(cls: type, value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise _error(where, f"an object ({cls.__name__})", value)
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.name not in value:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise PlainDataError(f"at {where}: missing key '{f.name}'")
            continue
        hint = hints[f.name]
        by = f.metadata.get("by")
        if by is not None:
            chosen = f.metadata["table"].get(value.get(by))
            if chosen is None:
                continue  # a kind this version does not know: keep the default, like an unknown key
            hint = chosen | None
        kwargs[f.name] = _decode(hint, value[f.name], f"{where}.{f.name}")
    return cls(**kwargs)


def _decode_union(args: tuple[Any, ...], value: Any, where: str) -> Any:
    if value is None and type(None) in args:
        return None
    options = [a for a in args if a is not type(None)]
    if len(options) == 1:
        return _decode(options[0], value, where)
    errors = []
    for option in options:
        try:
            return _decode(option, value, where)
        except PlainDataError as exc:
            errors.append(str(exc))
    raise PlainDataError(errors[0] if errors else f"at {where}: no type fits {value!r}")


def _decode_scalar(hint: Any, value: Any, where: str) -> Any:
    if hint is float:
        if value is None:
            return math.nan
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _error(where, "a number", value)
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _error(where, "an integer", value)
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise _error(where, "true or false", value)
        return value
    if hint is str:
        if not isinstance(value, str):
            raise _error(where, "a string", value)
        return value
    if hint is type(None):
        if value is not None:
            raise _error(where, "null", value)
        return None
    raise TypeError(f"{where}: typed_data cannot decode type {hint!r}")


def _error(where: str, expected: str, value: Any) -> PlainDataError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return PlainDataError(f"at {where}: expected {expected}, got {shown}")


def to_plain(obj: Any) -> Any:
    """A dataclass tree as plain dicts, lists and Python scalars (the inverse of `from_plain`).

    Read-only properties a class lists in `__derived__` (e.g. a verdict computed from the
    content) are written too, so that JSON readers need not recompute them; `from_plain`
    ignores them like any unknown key.
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        for name in getattr(type(obj), "__derived__", ()):
            out[name] = to_plain(getattr(obj, name))
        return out
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if type(obj).__module__ == "numpy" and hasattr(obj, "tolist"):
        return to_plain(obj.tolist())  # numpy scalars and arrays: execnet and json carry only Python types
    return obj
