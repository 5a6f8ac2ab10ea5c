"""Compare two robustcheck.json records figure by figure, across schema versions, ignoring timings.

    python benchmarks/compare_records.py BEFORE.json AFTER.json

Both files are read as plain JSON (no robustcheck import), and each is mapped to the same flat
view: per model its clean accuracy, spec and config; per item its verdict and figures; per
attack its settings, success, distortions, per-sample distances and curve; per counterexample
its labels, confidences, distances and reproduce command; per finding everything. Timings,
timestamps, machine facts, file locations and the store option of the run are left out; item
messages are compared apart (their wording may change without any figure changing). Exit status
0 when the figures are equal, 1 otherwise.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

#: Figures version 2 added that version 1 did not record (or recorded under the item id): compared
#: only where they hold something.
NEW_IN_V2 = {"targeted", "store_warnings", "in_baseline", "distances", "sample", "dataset_index",
             "true_label", "adv_label", "counterexamples_found"}
#: The property's example budget (the profile's), recorded from version 2 on.
ONLY_IN_V2 = {"max_examples"}


def _figures(kind: str, figures: dict[str, Any] | None) -> dict[str, Any]:
    f = dict(figures or {})
    if isinstance(f.get("findings"), list):  # version 2 lists the ids; version 1 joined them with commas
        f["findings"] = ",".join(f["findings"])
    f.pop("verdict_detail", None)  # version 1's "no counterexample found"; the verdict says it
    if kind == "baseline" and "baseline" in f:  # version 1: {"baseline": "model not in baseline"}
        f = {"regressions": 0}
    for key in list(f):
        if key.startswith("distance_"):
            f.setdefault("distances", {})[key.removeprefix("distance_")] = f.pop(key)
    if f.get("first_failure_at") is None:
        f.pop("first_failure_at", None)
    return {k: v for k, v in f.items()
            if k not in ONLY_IN_V2 and (k not in NEW_IN_V2 or f.get(k) not in (None, [], {}, False, 0))}


def _command(text: str | None) -> str | None:
    """A reproduce command without the store option (where a run keeps its store is its setup)."""
    return None if text is None else re.sub(r" --robustcheck-store=\S+", "", text)


def view(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(figures, messages) of a record, keyed by model and item/attack/counterexample identity."""
    out: dict[str, Any] = {"interrupted": data["run"]["interrupted"], "profile": data["run"]["profile"],
                           "seed": data["run"]["seed"], "baseline": data.get("baseline", [])}
    messages = {}
    for m in data["models"]:
        spec = {k: v for k, v in (m.get("spec") or {}).items() if k not in ("file", "name", "sha256")}
        config = {k: v for k, v in m["config"].items() if k != "source"}
        if config.get("dataset"):
            config["dataset"] = {k: Path(v).name if isinstance(v, str) else v for k, v in config["dataset"].items()}
        out[m["name"]] = {
            "sha256": m["sha256"], "error": m["error"], "clean_accuracy": m["clean_accuracy"],
            "samples": m["samples"], "spec": spec, "config": config,
            "items": {i["nodeid"]: {"kind": i["kind"], "verdict": i["verdict"],
                                    "figures": _figures(i["kind"], i["figures"])} for i in m["items"]},
            "attacks": {json.dumps([a["attack"], a["params"], a["targeted"]], sort_keys=True):
                        {k: v for k, v in a.items() if k != "wall_time_s"} for a in m["attacks"]},
            "counterexamples": {f"{c['property']}|{c['attack']}|{c['sample_index']}":
                                {**{k: v for k, v in c.items() if k not in ("npz", "png")},
                                 "reproduce": _command(c.get("reproduce"))} for c in m["counterexamples"]},
            "findings": {f["id"]: f for f in m["findings"]},
        }
        messages.update({i["nodeid"]: i["message"] for i in m["items"]})
    return out, messages


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                out.append(f"{where}.{key}: only in {'after' if key in b else 'before'}")
            else:
                out += differences(a[key], b[key], f"{where}.{key}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {a!r} -> {b!r}"]


def main() -> int:
    before, after = (json.loads(Path(p).read_text(encoding="utf-8")) for p in sys.argv[1:3])
    (fa, ma), (fb, mb) = view(before), view(after)
    figures = differences(fa, fb)
    print(f"schema {before.get('schema_version')} -> {after.get('schema_version')}; "
          f"{sum(len(m['items']) for k, m in fa.items() if isinstance(m, dict) and 'items' in m)} items compared")
    print("figures: equal" if not figures else "figures differ:\n  " + "\n  ".join(figures))
    worded = sorted(k for k in set(ma) | set(mb) if ma.get(k) != mb.get(k))
    print(f"messages worded differently: {len(worded)}" + "".join(f"\n  {k}" for k in worded))
    return 1 if figures else 0


if __name__ == "__main__":
    raise SystemExit(main())
