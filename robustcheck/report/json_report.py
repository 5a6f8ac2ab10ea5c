"""The JSON report: the run record as strict JSON, validated against its schema, written atomically.

`robustcheck/record.schema.json` (JSON Schema draft 2020-12) describes the file. Numbers
that JSON cannot hold (NaN, ±infinity) are written as null, so the file is strict JSON that
every parser reads. Validation needs `jsonschema` (a dev dependency); without it the record
is written unvalidated.
"""

from __future__ import annotations

import json
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from robustcheck.paths import write_atomic
from robustcheck.record import RunRecord

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "record.schema.json"


class RecordValidationError(ValueError):
    """The record does not match `record.schema.json` (a bug in whatever built it)."""


def json_ready(record: RunRecord | dict[str, Any]) -> dict[str, Any]:
    """The record as JSON-ready data: NaN and infinities become None, numpy scalars/arrays plain."""
    data = record.to_dict() if isinstance(record, RunRecord) else record
    return _plain(data)


def dumps(record: RunRecord | dict[str, Any]) -> str:
    """Strict JSON text of the record (never NaN/Infinity tokens)."""
    return json.dumps(json_ready(record), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    with open(SCHEMA_FILE, encoding="utf-8") as fh:
        return json.load(fh)


def validation_errors(data: dict[str, Any]) -> list[str]:
    """Every schema violation in `data`, as "at <json path>: <message>" lines (empty when valid).

    Raises ImportError when jsonschema is not installed.
    """
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"at {e.json_path}: {e.message}" for e in errors]


def validate(data: dict[str, Any]) -> None:
    """Raise RecordValidationError listing the violations when `data` does not match the schema."""
    errors = validation_errors(data)
    if errors:
        shown = "\n  ".join(errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise RecordValidationError(f"robustcheck record does not match record.schema.json:\n  {shown}{more}")


def write_json(record: RunRecord, path: str | os.PathLike[str], *, check: bool = True) -> Path:
    """Write the record to `path` atomically as strict JSON; validate it first when jsonschema is present.

    Raises RecordValidationError (before anything is written) when the record is invalid.
    """
    data = json_ready(record)
    if check:
        try:
            validate(data)
        except ImportError:
            pass  # jsonschema is a dev dependency; the writer itself needs nothing beyond the stdlib
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    write_atomic(path, text)
    return Path(path)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return _plain(value.tolist())
    if hasattr(value, "item"):
        return _plain(value.item())
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)
