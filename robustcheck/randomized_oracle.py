"""Judging a randomized model (random operators in its graph) with repeated onnxruntime calls.

Definition: a randomized model's label for an input is its majority vote, the class onnxruntime
returns most often over repeated calls on that input (the smoothed classifier of randomized
smoothing, Cohen et al. 2019). A sample is classified correctly when the vote is its true class,
and an input is adversarial when the vote is another class (untargeted) or the target class
(targeted). The vote takes ORACLE_DRAWS calls; where the two leading classes are within two
standard deviations of a fair coin (|n1 - n2| <= 2·sqrt(n1 + n2)) another ORACLE_DRAWS calls
are added, up to BORDERLINE_ROUNDS times, so a borderline decision rests on up to 4 × 32 calls.
Exact ties go to the lower class index (numpy's argmax).

Attack candidates on a randomized model sit on the replica's expected decision boundary (EOT),
where the vote is a coin flip. A candidate the vote rejects is pushed further along its own
perturbation, x + f·(x' - x) for f in OVERSHOOT (clipped to the input box, and still held to ε
by the attack's own check), and the first stretch the vote accepts is kept; its distances are
measured where it ends up.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Stretches of a rejected candidate's perturbation tried on a randomized model.
OVERSHOOT = (1.05, 1.1, 1.2, 1.4)

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


Judge = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def overshoot(x: np.ndarray, x_cand: np.ndarray, labels: np.ndarray, ok: np.ndarray, box: tuple[float, float],
              judge: Judge) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stretch rejected, moved candidates along their perturbation until `judge` accepts them.

    `judge(rows, candidates)` returns (labels, accepted) for those rows. Returns the candidates,
    their labels and the accepted rows, updated where a stretch was accepted.
    """
    x_cand, labels, ok = x_cand.copy(), labels.copy(), ok.copy()
    moved = np.abs(x_cand - x).reshape(len(x), -1).max(axis=1) > 0 if len(x) else np.zeros(0, bool)
    for factor in OVERSHOOT:
        rows = np.flatnonzero(~ok & moved)
        if not len(rows):
            break
        stretched = np.clip(x[rows] + factor * (x_cand[rows] - x[rows]), *box).astype(x_cand.dtype)
        found, accepted = judge(rows, stretched)
        won = rows[accepted]
        x_cand[won], labels[won], ok[won] = stretched[accepted], found[accepted], True
    return x_cand, labels, ok
