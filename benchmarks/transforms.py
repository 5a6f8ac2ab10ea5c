"""Hypothesis's smallest failing transformation against dense grids, on the shipped baseline.

    python benchmarks/transforms.py [--samples 100] [--examples 60]

On the first `samples` held-out images the baseline classifies correctly:
1. rotation (±30°) and shift (±3 px): the smallest failing magnitude per sample from
   `smallest_transform_failure` against a dense grid over the same range (rotation every 0.1°,
   shifts on a 0.1 px square lattice), with the images each judged (the model calls);
2. shrinking: for every transformation, the magnitude Hypothesis first failed at and the one it
   reported, against the smallest failing magnitude of the 1-D grid of that sample's directions;
3. rotation + shift together (Engstrom et al. 2019): samples broken by the Hypothesis property,
   by random worst-of-k at the same number of model calls, and by their 775-point grid;
4. accuracy under each transformation at fixed fractions of its max (the `accuracy-under` figure).
Verdicts come from onnxruntime. Writes benchmarks/results/transforms.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
#: (transform, max) of the shrinking table; the 1-D grid is each family's own magnitude grid.
SHRINK = [("rotate", 30), ("translate", 3), ("scale", 0.5), ("brightness", 0.5), ("contrast", 0.9),
          ("noise", 0.5), ("blur", 3), ("jpeg", 2)]
ENGSTROM_ANGLES = np.linspace(-30, 30, 31)
ENGSTROM_SHIFTS = np.linspace(-3, 3, 5)


def ratio_cells(found: np.ndarray, grid: np.ndarray) -> tuple[str, str, str]:
    both = ~np.isnan(found) & ~np.isnan(grid)
    r = found[both] / grid[both]
    if not len(r):
        return "–", "–", "–"
    return f"{np.median(r):.3f}", f"{r.max():.3f}", f"{int((r <= 1.1).sum())}/{int((~np.isnan(grid)).sum())}"


def goal_grid(model, x, y, examples: int, lines: list[str]) -> None:
    from robustcheck.transforms import TransformSpec, smallest_transform_failure
    from robustcheck.transforms.probe import TransformProbe
    from robustcheck.transforms.sweep import dense_grid_smallest, grid_rings

    lines += ["## 1. Smallest failing rotation and shift: Hypothesis against a dense grid", "",
              "| transform | samples | fail on the grid | found by Hypothesis | within 10% of the grid | "
              "median / worst ratio to the grid | model calls per sample: grid, Hypothesis | wall: grid, Hypothesis |",
              "|---|---|---|---|---|---|---|---|"]
    for name, top, step in (("rotate", 30, None), ("translate", 3, 0.1)):
        spec = TransformSpec.parse(name, top)
        probe = TransformProbe(model, spec)
        start = time.perf_counter()
        grid = dense_grid_smallest(probe, x, y, grid_rings(spec, step))
        grid_s = time.perf_counter() - start
        start = time.perf_counter()
        out = smallest_transform_failure(model, x, y, transform=name, max=top, seed=0, examples=examples)
        hyp_s = time.perf_counter() - start
        found = np.array([o.magnitude if o.failed else np.nan for o in out])
        calls = np.array([o.model_calls for o in out])
        median, worst, within = ratio_cells(found, grid.smallest)
        extra = int((~np.isnan(found) & np.isnan(grid.smallest)).sum())
        lines.append(f"| {spec.id} (grid {'0.1°' if step is None else f'{step} px lattice'}) | {len(x)} | "
                     f"{int((~np.isnan(grid.smallest)).sum())} | "
                     f"{int((~np.isnan(found) & ~np.isnan(grid.smallest)).sum())}"
                     f"{f' (+{extra} off the grid)' if extra else ''} | {within} | {median} / {worst} | "
                     f"{grid.calls.mean():.0f}, {calls.mean():.0f} | {grid_s:.1f} s, {hyp_s:.1f} s |")
        print(lines[-1], flush=True)
    lines.append("")


def shrink_from_max(probe, x: np.ndarray, y: np.ndarray, level: int, offset: int, examples: int):
    """Hypothesis's search for one sample, started from a failure at grid level `level`: the
    failure is planted under the secondary key of an in-memory example database, which
    Hypothesis replays first and then shrinks (it would not shrink an entry of the primary
    key, taken as already shrunk). Uses Hypothesis's choice encoding: a benchmark-only device."""
    from hypothesis.database import InMemoryExampleDatabase, choices_to_bytes

    from robustcheck.transforms.search import find_smallest_failure

    db = InMemoryExampleDatabase()
    find_smallest_failure(probe, x, y, examples=examples, seed_value="key", database=db, key=b"bench")
    keys = [k for k in db.data if not k.endswith(b".secondary") and not k.endswith(b".pareto")]
    db.data.clear()
    choices = (level, offset) if probe.spec.uses_offset else (level,)
    for k in keys:
        db.save(k + b".secondary", choices_to_bytes(choices))
    return find_smallest_failure(probe, x, y, examples=examples, seed_value="key", database=db, key=b"bench")


def goal_shrink(model, x, y, examples: int, lines: list[str]) -> None:
    from robustcheck.transforms import TransformSpec, smallest_transform_failure
    from robustcheck.transforms.probe import TransformProbe
    from robustcheck.transforms.sweep import dense_grid_smallest

    lines += ["## 2. Shrinking: first failure, reported failure, and the 1-D grid of the same directions", "",
              "Ratios are to the smallest failing magnitude of a 1-D grid over every level of the family's grid "
              "(in the directions Hypothesis checks, with the offset it reported: the noise seed, the shift ring's "
              "turn). JPEG: magnitude = 100 − quality. *From the max*: the same search started from a failure at "
              "the largest magnitude (planted in Hypothesis's example database, replayed and shrunk).", "",
              "| transform | fail on the 1-D grid | found | first failure / grid: median, max | reported / grid: "
              "median, worst | reported ≤ 1.2× grid | from the max: reported / grid median, worst; ≤ 1.2× | "
              "model calls per sample: 1-D grid, Hypothesis, from the max |",
              "|---|---|---|---|---|---|---|---|"]
    for name, top in SHRINK:
        spec = TransformSpec.parse(name, top)
        probe = TransformProbe(model, spec)
        out = smallest_transform_failure(model, x, y, transform=name, max=top, seed=0, examples=examples)
        grid, first, found, from_max = (np.full(len(x), np.nan) for _ in range(4))
        grid_calls, max_calls = np.zeros(len(x)), []
        for i, o in enumerate(out):
            offset = 0
            if o.failed:
                found[i] = o.magnitudes[0]
                first[i] = spec.magnitudes(o.first_level)[0]
                offset = int(o.params.get("noise_seed", 0))
                if name == "translate":
                    offset = next(off for off in range(2**16) if o.params in spec.directions(o.level, off))
            rings = [(spec.magnitudes(k)[0], spec.directions(k, offset)) for k in range(1, spec.steps + 1)]
            g = dense_grid_smallest(probe, x[i:i + 1], y[i:i + 1], rings)
            grid[i], grid_calls[i] = g.smallest[0], g.calls[0]
            if o.failed and probe.check(x[i], int(y[i]), spec.steps, offset).failing:
                before = probe.calls
                shrunk = shrink_from_max(probe, x[i:i + 1], y[i:i + 1], spec.steps, offset, examples)
                max_calls.append(probe.calls - before)
                if shrunk is not None:
                    from_max[i] = spec.magnitudes(shrunk.draw.level)[0]
        both = ~np.isnan(found) & ~np.isnan(grid)
        ratio, firsts, big = found[both] / grid[both], first[both] / grid[both], from_max[both] / grid[both]
        big = big[~np.isnan(big)]
        cells = (f"{np.median(firsts):.2f}, {firsts.max():.2f}", f"{np.median(ratio):.3f}, {ratio.max():.3f}",
                 f"{int((ratio <= 1.2).sum())}/{int(both.sum())}") if both.any() else ("–", "–", "–")
        planted = (f"{np.median(big):.3f}, {big.max():.3f}; {int((big <= 1.2).sum())}/{len(big)}"
                   if len(big) else "–")
        lines.append(f"| {spec.id} | {int((~np.isnan(grid)).sum())} | {int(both.sum())} | {cells[0]} | {cells[1]} | "
                     f"{cells[2]} | {planted} | {grid_calls.mean():.0f}, {np.mean([o.model_calls for o in out]):.0f}, "
                     f"{np.mean(max_calls) if max_calls else 0:.0f} |")
        print(lines[-1], flush=True)
    lines.append("")


def goal_engstrom(model, x, y, examples: int, lines: list[str]) -> None:
    from robustcheck.transforms import smallest_transform_failure
    from robustcheck.transforms.probe import TransformProbe
    from robustcheck.transforms.spec import TransformSpec
    from robustcheck.transforms.sweep import worst_of_k

    spec = TransformSpec.parse(["rotate", "translate"], [30, 3])
    probe = TransformProbe(model, spec)
    start = time.perf_counter()
    out = smallest_transform_failure(model, x, y, transform=["rotate", "translate"], max=[30, 3], seed=0,
                                     examples=examples)
    hyp_s = time.perf_counter() - start
    hyp = np.array([o.failed for o in out])
    calls = int(round(np.mean([o.model_calls for o in out])))
    start = time.perf_counter()
    random_k = worst_of_k(probe, x, y, calls, seed=0)
    random_s = time.perf_counter() - start
    points = [{"angle": float(a), "dx": float(dx), "dy": float(dy)}
              for a in ENGSTROM_ANGLES for dx in ENGSTROM_SHIFTS for dy in ENGSTROM_SHIFTS]
    start = time.perf_counter()
    grid = np.zeros(len(x), dtype=bool)
    for i in range(len(x)):
        _, predicted, _ = probe.judge(np.repeat(x[i:i + 1], len(points), axis=0), np.full(len(points), y[i]), points)
        grid[i] = (predicted != y[i]).any()
    grid_s = time.perf_counter() - start
    n = len(x)
    lines += ["## 3. Rotation ±30° with shifts ±3 px together (Engstrom et al. 2019)", "",
              "| search | model calls per sample | samples broken | wall |", "|---|---|---|---|",
              f"| Hypothesis property `rotate+translate@30,3` ({examples} examples + shrinking) | {calls} | "
              f"{hyp.sum()}/{n} ({hyp.mean():.0%}) | {hyp_s:.1f} s |",
              f"| random worst-of-k, k = {calls} (uniform in the box) | {calls} | {random_k.sum()}/{n} "
              f"({random_k.mean():.0%}) | {random_s:.1f} s |",
              f"| Engstrom's grid: 31 angles × 5 × 5 shifts | {len(points)} | {grid.sum()}/{n} ({grid.mean():.0%}) | "
              f"{grid_s:.1f} s |",
              f"| either of Hypothesis and worst-of-k | {2 * calls} | {(hyp | random_k).sum()}/{n} | |", ""]
    print("\n".join(lines[-7:]), flush=True)


def accuracy_curves(model, x, y, lines: list[str]) -> None:
    from robustcheck.transforms.probe import TransformProbe
    from robustcheck.transforms.spec import TransformSpec
    from robustcheck.transforms.sweep import accuracy_under

    fractions = (0.25, 0.5, 0.75, 1.0)
    lines += ["## 4. Accuracy under each transformation at fixed levels (every direction must keep the label)", "",
              "| transform | " + " | ".join(f"{f:g}·max" for f in fractions) + " |", "|---|" + "---|" * len(fractions)]
    for name, top in SHRINK:
        spec = TransformSpec.parse(name, top)
        probe = TransformProbe(model, spec)
        cells = []
        for f in fractions:
            k = int(round(f * spec.steps))
            cells.append(f"{accuracy_under(probe, x, y, k).mean():.1%} ({spec.level_text(k)})")
        lines.append(f"| {spec.id} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    lines.append("")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--examples", type=int, default=60)
    parser.add_argument("--parts", default="1234", help="which tables to build")
    parser.add_argument("--out", default="transforms.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from robustcheck.data import correctly_classified, load_dataset
    from robustcheck.model import load_model

    data = load_dataset(ROOT / "models" / "data" / "mnist-heldout.npz")
    model = load_model(ROOT / "models" / "baseline.onnx", parity_inputs=data.x[:16])
    pool = correctly_classified(model, data, limit=args.samples)
    x, y = pool.x, pool.y
    load = os.getloadavg()[0]
    lines = [f"# Natural transformations: `python {' '.join(['benchmarks/transforms.py', *sys.argv[1:]])}`", "",
             f"{platform.platform()}, torch {torch.__version__}, 1 torch thread, load average {load:.1f} at the "
             f"start; baseline.onnx, the first {len(x)} held-out images it classifies correctly; "
             f"{args.examples} Hypothesis examples per sample. Model calls = images judged by onnxruntime "
             "(the grids stop a sample at its first failing magnitude).", ""]
    parts = {"1": goal_grid, "2": goal_shrink, "3": goal_engstrom}
    for part in args.parts:
        if part == "4":
            accuracy_curves(model, x, y, lines)
        else:
            parts[part](model, x, y, args.examples, lines)
    out = ROOT / "benchmarks" / "results" / args.out
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
