"""Which claims the part of a sample-split model evaluates, and on what (see shard.py).

Clean and robust accuracy are sums over rows: every part evaluates them on its rows. A robust
property over a deterministic untargeted attack is decided row by row: every part searches its
rows with its share of the Hypothesis budget. The rest runs whole, in the lead part.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from robustcheck.config import Check
from robustcheck.shard import Share

if TYPE_CHECKING:
    from robustcheck.model_run import ModelRun


def evaluated_by_part(item: pytest.Item, share: Share) -> bool:
    """Whether a part of a sample-split model runs `item`: the claims that are sums over rows in
    every part; the others (masking diagnostics, baseline, searches over targets or seeds) in
    the lead part only, on the whole pool."""
    from robustcheck.items import CleanAccuracyItem, PropertyItem, RobustAccuracyItem

    if share.leads or isinstance(item, (CleanAccuracyItem, RobustAccuracyItem)):
        return True
    if isinstance(item, PropertyItem):
        run = item.rc.model_run(item.path)
        return splits_by_sample(item.check, run.make_attack(item.check.attack, item.check).stochastic)
    return False


def splits_by_sample(check: Check, randomized: bool) -> bool:
    """A robust property a sample-split model divides between its parts: an untargeted one over a
    deterministic attack, which the pool run's rows decide; a search over targets or seeds stays whole."""
    return not check.targeted and not randomized


def split_budget(examples: int, run: ModelRun, check: Check) -> int:
    """This part's share of the Hypothesis examples, proportional to its pool rows; the shares
    add up to `examples` exactly (the first parts take the remainder, one each)."""
    parts, total = run.share.parts, len(run.pool)
    block = run.make_attack(check.attack, check).batch_size
    sizes = [sum(min(total, (b + 1) * block) - b * block for b in range(-(-total // block)) if b % parts == p)
             for p in range(parts)]
    floors = [examples * n // total if total else 0 for n in sizes]
    remainder = examples - sum(floors)
    return floors[run.share.part] + (1 if run.share.part < remainder else 0)
