"""Splitting a run across CI jobs: `--robustcheck-shard K/N`, deterministic by model and by sample.

Every shard collects the same model files in the same (sorted) order, so each can compute the
whole plan and keep its own part, with no coordination:

- with at least as many models as shards, model i goes whole to shard i mod N;
- with fewer models than shards, model i gets the shards s with s mod M = i and splits its
  samples between them: part p of P takes the rows r with r mod P = p (of the evaluation
  rows and of the dataset for clean accuracy), interleaved so that every part sees the same
  mix of easy and hard rows.

What a sample split means for each claim (and why the merged verdict equals an unsharded
run's): clean and robust accuracy are counts over rows, so the parts' counts add up exactly;
a robust property over a deterministic untargeted attack is decided by every pool row's own
attack outcome, so it fails exactly when some part finds a row within ε; claims that are not
sums over rows (Hypothesis searches over targets or seeds, the gradient-masking diagnostics,
the baseline comparison) are evaluated whole, by part 0 of the model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from robustcheck.errors import ConfigError

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """Shard `index` (1-based, as CI matrices count) of `count`."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = _SPEC.match(text or "")
        if not match:
            raise ConfigError(f"--robustcheck-shard: expected K/N (e.g. 1/2), got {text!r}")
        index, count = int(match.group(1)), int(match.group(2))
        if count < 1 or not 1 <= index <= count:
            raise ConfigError(f"--robustcheck-shard: K must be between 1 and N, got {text!r}")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class Share:
    """One shard's part of one model: part `part` (0-based) of `parts` of its rows."""

    part: int = 0
    parts: int = 1

    @property
    def whole(self) -> bool:
        return self.parts == 1

    @property
    def leads(self) -> bool:
        """Part 0 evaluates the claims that are not sums over rows."""
        return self.part == 0

    def rows(self, count: int) -> np.ndarray:
        """The row positions (0..count-1) this part owns."""
        return np.arange(self.part, count, self.parts, dtype=np.int64)

    def describe(self) -> str:
        return "whole" if self.whole else f"rows r with r mod {self.parts} = {self.part}"


def plan(models: Sequence[str], shard: Shard) -> dict[str, Share]:
    """The models this shard runs, with its share of each (models absent from the result are skipped).

    `models` are the collected model keys (e.g. paths relative to the rootdir); the plan
    depends only on their sorted set and on N, so every shard agrees on it.
    """
    ordered = sorted(set(models))
    n = shard.count
    me = shard.index - 1
    out: dict[str, Share] = {}
    if len(ordered) >= n:
        for i, key in enumerate(ordered):
            if i % n == me:
                out[key] = Share()
        return out
    for i, key in enumerate(ordered):
        owners = [s for s in range(n) if s % len(ordered) == i]
        if me in owners:
            out[key] = Share(owners.index(me), len(owners))
    return out
