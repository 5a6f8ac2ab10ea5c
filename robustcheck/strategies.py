"""Hypothesis strategies over a dataset, for hand-written robustness tests.

They draw small choices (row indices, target classes, attack seeds), never pixel arrays, so
a counterexample shrinks to the lowest failing row and replays exactly:

    @given(i=strategies.sample_indices(data, model), seed=strategies.attack_seeds())
    def test_no_small_l2_example(i, seed):
        assert_robust(model, data.x[i:i+1], data.y[i:i+1], CarliniWagnerL2(), 0.5, seed=seed)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from robustcheck.data import Dataset


def sample_indices(data: Dataset, model: Any = None, *, limit: int | None = None) -> st.SearchStrategy[int]:
    """Row indices of `data` (only rows `model` classifies correctly, when given; the first `limit`)."""
    if not isinstance(data, Dataset):
        raise InvalidArgument(f"data must be a robustcheck Dataset, got {type(data).__name__}")
    if limit is not None and limit < 1:
        raise InvalidArgument(f"limit must be at least 1, got {limit}")
    rows = np.arange(len(data)) if model is None else np.flatnonzero(model.predict(data.x) == data.y)
    if limit is not None:
        rows = rows[:limit]
    if not len(rows):
        raise InvalidArgument("no rows to draw from (is the model classifying every sample wrongly?)")
    return st.integers(0, len(rows) - 1).map(lambda k: int(rows[k]))


def targets(num_classes: int, label: int) -> st.SearchStrategy[int]:
    """Target classes other than `label` (shrinks towards label + 1)."""
    if num_classes < 2:
        raise InvalidArgument(f"num_classes must be at least 2, got {num_classes}")
    if not 0 <= label < num_classes:
        raise InvalidArgument(f"label {label} is not a class of a {num_classes}-class model")
    return st.integers(1, num_classes - 1).map(lambda k: (label + k) % num_classes)


def attack_seeds() -> st.SearchStrategy[int]:
    """Seeds for attacks with random starts (shrinks towards 0)."""
    return st.integers(0, 2**16)
