"""Read records of schema version 1 (robustcheck 0.1.0), so an older release can be a baseline.

Version 1 kept item figures and the model spec as free-form dicts. `upgrade_v1` rewrites such
a record into version 2's shape; `RunRecord.from_dict` then types it as usual. Version 1 did
not record whether a claim was targeted: the item id (`…-targeted@ε]`) is the only source, so
it is read from there, here and nowhere else. Import-light.
"""

from __future__ import annotations

import copy
from typing import Any


def upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 record (as parsed JSON) in version 2's shape."""
    out = copy.deepcopy(data)
    out["schema_version"] = 2
    for model in out.get("models") or []:
        if not isinstance(model, dict):
            continue
        spec = model.get("spec")
        if not isinstance(spec, dict) or "input" not in spec or "output" not in spec:
            model["spec"] = None
        for item in model.get("items") or []:
            if isinstance(item, dict):
                item["figures"] = _figures(item.get("kind"), str(item.get("name", "")), item.get("figures"))
    return out


def _figures(kind: Any, name: str, figures: Any) -> dict[str, Any] | None:
    if not isinstance(figures, dict) or not figures:
        return None
    f = dict(figures)
    targeted = "-targeted@" in name
    if kind == "robust-accuracy":
        return {**f, "targeted": targeted}
    if kind == "robust":
        distances = {k.removeprefix("distance_"): v for k, v in f.items() if k.startswith("distance_")}
        return {**f, "targeted": targeted, "max_examples": f.get("examples", 0), "distances": distances}
    if kind == "gradient-masking":
        listed = f.get("findings")
        return {**f, "findings": [s for s in listed.split(",") if s] if isinstance(listed, str) else listed}
    if kind == "baseline":
        return {"in_baseline": "baseline" not in f, "regressions": f.get("regressions", 0)}
    return f
