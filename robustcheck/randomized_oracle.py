"""Judging a randomized model (random operators in its graph) with repeated onnxruntime calls.

Definition: a randomized model's label for an input is its majority vote, the class onnxruntime
returns most often over repeated calls on that input (the smoothed classifier of randomized
smoothing, Cohen et al. 2019). A sample is classified correctly when the vote is its true class,
and an input is adversarial when the vote is another class (untargeted) or the target class
(targeted). The vote takes ORACLE_DRAWS calls; where the two leading classes are within two
standard deviations of a fair coin (|n1 - n2| <= 2·sqrt(n1 + n2)) another ORACLE_DRAWS calls
are added, up to BORDERLINE_ROUNDS times, so a borderline decision rests on up to 4 × 32 calls.
Exact ties go to the lower class index (numpy's argmax).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: onnxruntime calls per vote, and extra rounds of as many calls for borderline votes.
ORACLE_DRAWS = 32
BORDERLINE_ROUNDS = 3

LogitFn = Callable[[np.ndarray], np.ndarray]


def vote_counts(call: LogitFn, x: np.ndarray, draws: int, classes: int) -> np.ndarray:
    """(N, classes) counts of the label each of `draws` calls gives; non-finite rows count for no class."""
    counts = np.zeros((len(x), classes), dtype=np.int64)
    rows = np.arange(len(x))
    for _ in range(draws):
        logits = call(x)
        finite = np.isfinite(logits).all(axis=1)
        labels = logits.argmax(axis=1)
        np.add.at(counts, (rows[finite], labels[finite]), 1)
    return counts


def borderline(counts: np.ndarray) -> np.ndarray:
    """Votes whose two leading classes are within two standard deviations of a coin flip."""
    if counts.shape[1] < 2:
        return np.zeros(len(counts), dtype=bool)
    top = np.sort(counts, axis=1)[:, -2:]
    first, second = top[:, 1].astype(np.float64), top[:, 0].astype(np.float64)
    return (first - second) <= 2.0 * np.sqrt(first + second)


def majority_votes(call: LogitFn, x: np.ndarray, classes: int, draws: int = ORACLE_DRAWS,
                   rounds: int = BORDERLINE_ROUNDS) -> np.ndarray:
    """The vote counts (N, classes), with more draws for borderline rows."""
    counts = vote_counts(call, x, draws, classes)
    for _ in range(rounds):
        rows = np.flatnonzero(borderline(counts) & (counts.sum(axis=1) > 0))
        if not len(rows):
            break
        counts[rows] += vote_counts(call, x[rows], draws, classes)
    return counts


def vote_labels(counts: np.ndarray) -> np.ndarray:
    """The majority-vote label per row; -1 (no class) where no call gave a finite answer."""
    labels = counts.argmax(axis=1).astype(np.int64)
    labels[counts.sum(axis=1) == 0] = -1
    return labels
