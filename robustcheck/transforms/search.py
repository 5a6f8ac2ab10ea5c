"""Hypothesis search for the smallest transformation magnitude that flips a model's answer.

`find_smallest_failure` is the property both the Python API and the plugin's items run: over
(grid level, sample, offset), level first, "no direction at this level flips the sample". The
first failure Hypothesis meets is shrunk (level first), and the minimal one is returned.
`smallest_transform_failure` runs it once per sample.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from hypothesis import HealthCheck, Phase, example, given, seed, settings, target
from hypothesis import strategies as st
from hypothesis.database import ExampleDatabase

from robustcheck.properties import confidences
from robustcheck.transforms.families import OFFSETS, Params
from robustcheck.transforms.probe import TransformProbe, Verdict
from robustcheck.transforms.spec import TransformSpec, identity_params
from robustcheck.transforms.strategies import grid_levels, offsets

#: Hypothesis examples per sample in `smallest_transform_failure` (plus its shrinking).
DEFAULT_EXAMPLES = 60
#: Over a pool, half the draws pick among this many most fragile samples (see `fragility_order`).
FRAGILE_HEAD = 8
#: Images per oracle batch when ranking a pool.
RANK_BATCH = 256


#: A stored draw packs (level, offset) into one integer seed: level · OFFSETS + offset.
_OFFSET_BITS = OFFSETS.bit_length() - 1


@dataclass(frozen=True)
class Draw:
    """One Hypothesis example: grid level, position of the sample in the pool, offset."""

    level: int
    index: int
    offset: int

    @property
    def packed(self) -> int:
        """(level, offset) as the one integer the counterexample store keeps as a seed."""
        return (self.level << _OFFSET_BITS) | self.offset

    @classmethod
    def unpack(cls, packed: int, index: int) -> Draw:
        return cls(packed >> _OFFSET_BITS, index, packed & ((1 << _OFFSET_BITS) - 1))


@dataclass(frozen=True)
class Found:
    """The minimal failing draw, its worst direction, and the level Hypothesis first failed at."""

    draw: Draw
    verdict: Verdict
    first_level: int
    examples: int


class _Flipped(Exception):
    def __init__(self, draw: Draw, verdict: Verdict) -> None:
        super().__init__(f"flipped at {draw}")  # no arrays in args: Hypothesis formats them
        self.draw, self.verdict = draw, verdict


def fragility_order(probe: TransformProbe, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pool positions, most fragile first: sorted by the lowest margin over every direction at
    the largest level (one batched pass over the pool; offset 0)."""
    params = probe.spec.directions(probe.spec.steps, 0)
    per = max(1, RANK_BATCH // len(params))
    worst = np.empty(len(x))
    for start in range(0, len(x), per):
        rows = slice(start, start + per)
        n = len(x[rows])
        _, _, margins = probe.judge(np.repeat(x[rows], len(params), axis=0), np.repeat(y[rows], len(params)),
                                    params * n)
        worst[rows] = margins.reshape(n, len(params)).min(axis=1)
    return np.argsort(worst, kind="stable")


def sample_positions(probe: TransformProbe, x: np.ndarray, y: np.ndarray) -> st.SearchStrategy[int]:
    """Pool positions for the property. Uniform draws would rarely meet the one sample in a pool
    that flips (1/64 of the draws, and only at the levels past its threshold), so half the draws
    go to the FRAGILE_HEAD samples with the lowest margin at the largest level; index 0, the
    most fragile, is where shrinking leads."""
    if len(x) == 1:
        return st.just(0)
    order = fragility_order(probe, x, y)
    head = min(len(x), FRAGILE_HEAD)
    return st.one_of(st.integers(0, head - 1), st.integers(0, len(x) - 1)).map(lambda j: int(order[j]))


def find_smallest_failure(probe: TransformProbe, x: np.ndarray, y: np.ndarray, *, examples: int,
                          seed_value: int | str, database: ExampleDatabase | None = None,
                          key: bytes | None = None, replay: Iterable[Draw] = ()) -> Found | None:
    """Search samples `x` (labels `y`, all classified correctly) for a failing level; shrink it.

    `replay` draws run first as explicit examples (a stored failure fails at once, unshrunk);
    `database`/`key` give Hypothesis's own replay-and-shrink of earlier failures.
    """
    spec = probe.spec
    examples_run = 0
    first_level: int | None = None

    def prop(level: int, index: int, offset: int) -> None:
        nonlocal examples_run, first_level
        examples_run += 1
        verdict = probe.check(x[index], int(y[index]), level, offset)
        target(-verdict.margin, label="negative margin")
        if verdict.failing:
            first_level = level if first_level is None else first_level
            raise _Flipped(Draw(level, index, offset), verdict)

    test = given(level=grid_levels(spec), index=sample_positions(probe, x, y), offset=offsets(spec))(prop)
    for d in reversed(list(replay)):
        if 1 <= d.level <= spec.steps and 0 <= d.index < len(x):
            test = example(level=d.level, index=d.index, offset=d.offset)(test)
    if key is not None:
        # One database key per property, as items.py does for attack properties.
        test.hypothesis.inner_test._hypothesis_internal_add_digest = key  # type: ignore[attr-defined]
    test = seed(seed_value)(test)
    test = settings(max_examples=max(1, examples), database=database, deadline=None, derandomize=False,
                    suppress_health_check=list(HealthCheck), report_multiple_bugs=False, print_blob=False,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink])(test)
    try:
        test()
    except _Flipped as flipped:
        first = flipped.draw.level if first_level is None else first_level
        return Found(flipped.draw, flipped.verdict, first, examples_run)
    return None


@dataclass(frozen=True)
class TransformOutcome:
    """One sample's result: the smallest failing magnitude found, or `failed == False`."""

    sample: int
    transform: str
    label: int
    failed: bool
    #: Grid level (0..steps) of the failure; magnitudes per component; what a user reads.
    level: int | None = None
    magnitudes: tuple[float, ...] = ()
    text: str = ""
    params: Params = field(default_factory=dict)
    description: str = ""
    predicted: int | None = None
    confidence_label: float | None = None
    confidence_predicted: float | None = None
    #: Level at which Hypothesis first saw a failure, before shrinking.
    first_level: int | None = None
    model_calls: int = 0

    @property
    def magnitude(self) -> float | None:
        """The failing magnitude of a single transformation (compositions: see `magnitudes`)."""
        return self.magnitudes[0] if self.failed and len(self.magnitudes) == 1 else None


def smallest_transform_failure(model: object, x: np.ndarray, y: Sequence[int] | np.ndarray, *,
                               transform: str | Sequence[str], max: float | Sequence[float], seed: int = 0,
                               examples: int = DEFAULT_EXAMPLES) -> list[TransformOutcome]:
    """Per sample, the smallest magnitude of `transform` (up to `max`) found to change the model's
    answer, with its parameters, or an outcome with `failed == False`.

    A sample the model already gets wrong fails at magnitude 0. Deterministic for a given seed.
    """
    spec = TransformSpec.parse(transform, max, where="smallest_transform_failure")
    probe = TransformProbe(model, spec)
    x, y = np.asarray(x), np.asarray(y, dtype=np.int64)
    spec.check_format(probe.format, probe.format.to_nchw(x[:1]).shape[1], "smallest_transform_failure")
    clean = model.predict(x)  # type: ignore[attr-defined]
    outcomes = []
    for i in range(len(x)):
        before = probe.calls
        if clean[i] != y[i]:
            params = identity_params(spec)
            found: Found | None = Found(Draw(0, 0, 0), Verdict(True, params, 0.0, int(clean[i]), x[i]), 0, 0)
        else:
            found = find_smallest_failure(probe, x[i:i + 1], y[i:i + 1], examples=examples, seed_value=f"{seed}:{i}")
        outcomes.append(describe_outcome(model, spec, i, x[i], int(y[i]), found, probe.calls - before))
    return outcomes


def describe_outcome(model: object, spec: TransformSpec, sample: int, x: np.ndarray, label: int,
                     found: Found | None, calls: int) -> TransformOutcome:
    if found is None:
        return TransformOutcome(sample, spec.id, label, False, model_calls=calls)
    v, k = found.verdict, found.draw.level
    probs = confidences(model, np.stack([x, v.image]))  # type: ignore[arg-type]
    return TransformOutcome(
        sample, spec.id, label, True, level=k, magnitudes=spec.magnitudes(k), text=spec.level_text(k),
        params=dict(v.params), description=spec.describe(v.params), predicted=v.predicted,
        confidence_label=float(probs[0, label]), confidence_predicted=float(probs[1, v.predicted]),
        first_level=found.first_level, model_calls=calls)
