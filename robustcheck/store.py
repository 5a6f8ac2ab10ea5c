"""The counterexample store: failing examples kept across runs, CI included.

Hypothesis's `ci` profile turns its example database off when `CI` is set, so robustcheck
keeps its own store (a directory meant to be cached or committed). For every model and
property it records which sample, target and attack seed broke the property; the next run
replays those first, as explicit examples, so a regression fails at its first example. The
same directory also holds a Hypothesis example database for shrinking state.
Import-light.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from robustcheck.record import write_atomic

MAX_KEPT = 20


@dataclass(frozen=True)
class StoredExample:
    dataset_index: int
    target_offset: int
    seed: int
    model_sha256: str


class CounterexampleStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _file(self, model: str, prop: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in prop)
        return self.root / "counterexamples" / model / f"{safe}.json"

    def load(self, model: str, prop: str) -> list[StoredExample]:
        path = self._file(model, prop)
        if not path.is_file():
            return []
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
            return [StoredExample(**row) for row in rows]
        except (ValueError, TypeError):
            return []  # a damaged store entry must not fail the run; it is rewritten on the next failure

    def save(self, model: str, prop: str, example: StoredExample) -> Path:
        rows = [e for e in self.load(model, prop) if (e.dataset_index, e.target_offset, e.seed) !=
                (example.dataset_index, example.target_offset, example.seed)]
        rows.insert(0, example)
        path = self._file(model, prop)
        write_atomic(path, json.dumps([asdict(e) for e in rows[:MAX_KEPT]], indent=1))
        return path

    def hypothesis_dir(self) -> Path:
        return self.root / "hypothesis"
