"""Hypothesis strategies over transformation parameters that shrink towards the identity.

How Hypothesis shrinks decides the design. It minimises the sequence of choices a test drew,
shortlex: an earlier choice matters more than every later one, an integer shrinks to the
smallest value that still fails (`find_integer`: a linear then exponential then binary search,
plus halving and bit-masking jumps), while a float shrinks towards *simple* floats — integers
first, then dyadic fractions — so a failure at 0.93 readily becomes 1.0, never 0.31. Hence:

* the magnitude is an **integer grid level**, drawn **first** (`k` in 1..steps, magnitude
  `max × k / steps`): shrinking the whole example is then, before anything else, shrinking
  the magnitude, and the integer shrinker walks down to the boundary of the failing levels;
* everything else (which sample, the translation ring's turn, the noise seed) comes after it
  and only shrinks at a fixed magnitude;
* `transform_levels` leaves the direction undrawn: a property checks every direction at the
  drawn level (±angle, 16 shifts of that size, ...), so "fails at k" is close to monotone in
  k and the binary search lands on the smallest failing magnitude in any direction. With the
  sign as a separate choice the shrinker would stay on the side it first failed on.

`transform_params` draws one concrete parameter set (level, offset, then a direction) for
hand-written tests.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from robustcheck.transforms.families import OFFSETS, Params
from robustcheck.transforms.spec import TransformSpec


def _spec(transform: str | Sequence[str] | TransformSpec, max: float | Sequence[float] | None) -> TransformSpec:
    if isinstance(transform, TransformSpec):
        return transform
    if max is None:
        raise TypeError("max is required with a transform name")
    return TransformSpec.parse(transform, max)


def grid_levels(spec: TransformSpec) -> st.SearchStrategy[int]:
    """Grid levels 1..steps of `spec`, shrinking towards 1 (the smallest non-zero magnitude)."""
    return st.integers(1, spec.steps)


def offsets(spec: TransformSpec) -> st.SearchStrategy[int]:
    """The translation ring's turn / the noise seed (shrinks towards 0); 0 when unused."""
    return st.integers(0, OFFSETS - 1) if spec.uses_offset else st.just(0)


def transform_levels(transform: str | Sequence[str] | TransformSpec,
                     max: float | Sequence[float] | None = None) -> st.SearchStrategy[tuple[int, int]]:
    """(grid level, offset) pairs, level first; check every direction of `spec.directions(k, offset)`."""
    spec = _spec(transform, max)
    return st.tuples(grid_levels(spec), offsets(spec))


def transform_params(transform: str | Sequence[str] | TransformSpec,
                     max: float | Sequence[float] | None = None) -> st.SearchStrategy[Params]:
    """Concrete parameter sets within `max` (level, then offset, then direction), e.g.
    `{"angle": -6.5}`; apply them with `robustcheck.transforms.apply_transform`."""
    spec = _spec(transform, max)

    @st.composite
    def draw(data: st.DrawFn) -> Params:
        k = data(st.integers(0, spec.steps))
        choices = spec.directions(k, data(offsets(spec)))
        return choices[data(st.integers(0, len(choices) - 1))]

    return draw()
