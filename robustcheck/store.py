"""The counterexample store: failing examples kept across runs, CI included.

Hypothesis's `ci` profile turns its example database off when `CI` is set, so robustcheck
keeps its own store (a directory meant to be cached or committed). For every model and
property it records which sample, target and attack seed broke the property; the next run
replays those first, as explicit examples, so a regression fails at its first example. The
same directory also holds a Hypothesis example database for shrinking state.

The store is input robustcheck did not write in this run (a cache, a commit, a hand edit):
every entry is checked field by field, damaged ones are skipped and reported, never fatal,
and at most `MAX_KEPT` (the newest) are replayed. Import-light.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from robustcheck.paths import safe_name, write_atomic

MAX_KEPT = 20
#: A store file larger than this is not read (20 entries take about 3 kB).
MAX_FILE_BYTES = 1_000_000
SEED_LIMIT = 2**32
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class StoredExample:
    dataset_index: int
    target_offset: int
    seed: int
    model_sha256: str


@dataclass
class StoreLoad:
    """The usable entries of one store file (newest first) and one line per entry skipped."""

    entries: list[StoredExample] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class CounterexampleStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, model: str, prop: str) -> Path:
        return self.root / "counterexamples" / safe_name(model) / f"{safe_name(prop)}.json"

    def load(self, model: str, prop: str, *, dataset_size: int, classes: int) -> StoreLoad:
        """Entries for `model`/`prop` that fit a dataset of `dataset_size` rows and `classes` classes."""
        path = self.path(model, prop)
        out = StoreLoad()
        if not path.is_file():
            return out
        if path.stat().st_size > MAX_FILE_BYTES:
            out.skipped.append(f"{path}: larger than {MAX_FILE_BYTES} bytes; not read")
            return out
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            out.skipped.append(f"{path}: not valid JSON ({exc}); not read")
            return out
        if not isinstance(rows, list):
            out.skipped.append(f"{path}: not a JSON list of entries; not read")
            return out
        for i, row in enumerate(rows):
            problem = entry_problem(row, dataset_size=dataset_size, classes=classes)
            if problem is not None:
                out.skipped.append(f"{path}: entry {i} skipped: {problem}")
            elif len(out.entries) < MAX_KEPT:
                out.entries.append(StoredExample(**{k: row[k] for k in _FIELDS}))
            else:
                out.skipped.append(f"{path}: {len(rows) - i} entries beyond the newest {MAX_KEPT} not replayed")
                break
        return out

    def save(self, model: str, prop: str, example: StoredExample, *, dataset_size: int, classes: int) -> Path:
        """Put `example` first; keep the newest `MAX_KEPT` valid entries (damaged ones are dropped)."""
        kept = self.load(model, prop, dataset_size=dataset_size, classes=classes).entries
        rows = [example] + [e for e in kept if (e.dataset_index, e.target_offset, e.seed) !=
                            (example.dataset_index, example.target_offset, example.seed)]
        path = self.path(model, prop)
        write_atomic(path, json.dumps([asdict(e) for e in rows[:MAX_KEPT]], indent=1))
        return path

    def hypothesis_dir(self) -> Path:
        return self.root / "hypothesis"


_FIELDS = ("dataset_index", "target_offset", "seed", "model_sha256")


def entry_problem(row: Any, *, dataset_size: int, classes: int) -> str | None:
    """Why a stored entry cannot be replayed (None when it can)."""
    if not isinstance(row, dict):
        return f"expected an object, got {_short(row)}"
    missing = [k for k in _FIELDS if k not in row]
    if missing:
        return f"missing {', '.join(missing)}"
    limits = {"dataset_index": (0, dataset_size), "target_offset": (0, max(1, classes)), "seed": (0, SEED_LIMIT)}
    for key, (lo, hi) in limits.items():
        value = row[key]
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{key} must be an integer, got {_short(value)}"
        if not lo <= value < hi:
            return f"{key} must be in [{lo}, {hi}), got {value}"
    sha = row["model_sha256"]
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        return f"model_sha256 must be 64 lowercase hex digits, got {_short(sha)}"
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
