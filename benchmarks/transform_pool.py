"""The `robust[<t>@<max>]` search over a pool: fragility-ranked sample draws against uniform ones.

    python benchmarks/transform_pool.py [--models baseline distilled] [--seeds 5] [--examples 100]

On the `ci` profile's pool (the first 64 held-out rows each model classifies correctly), for
rotate@10 and translate@2: the smallest failing magnitude over the pool on a dense grid
(rotation 0.1°, shifts on a 0.05 px lattice), and what `find_smallest_failure` reports per
Hypothesis seed with `sample_positions` (half the draws among the 8 samples with the lowest
margin at the max) and with uniform draws over the pool, with the model calls (images judged)
each needed. Prints one line per (model, transform, strategy).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["baseline", "distilled"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--examples", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    import robustcheck.transforms.search as search
    from robustcheck import load_dataset, load_model
    from robustcheck.transforms.probe import TransformProbe
    from robustcheck.transforms.spec import TransformSpec
    from robustcheck.transforms.sweep import dense_grid_smallest, grid_rings

    ranked = search.sample_positions
    strategies = {"ranked": ranked, "uniform": lambda probe, x, y: st.integers(0, len(x) - 1)}
    data = load_dataset(ROOT / "models" / "data" / "mnist-heldout.npz")
    x, y = data.x[:64], data.y[:64]
    for name in args.models:
        model = load_model(ROOT / "models" / f"{name}.onnx", input_range=(0, 1), layout="NCHW")
        ok = model.predict(x) == y
        px, py = x[ok], y[ok]
        for transform, top, step in (("rotate", 10, None), ("translate", 2, 0.05)):
            spec = TransformSpec.parse(transform, top)
            grid = dense_grid_smallest(TransformProbe(model, spec), px, py, grid_rings(spec, step))
            failing = ~np.isnan(grid.smallest)
            best = float(np.nanmin(grid.smallest)) if failing.any() else None
            for label, strategy in strategies.items():
                search.sample_positions = strategy  # type: ignore[assignment]
                found = []
                for seed in range(args.seeds):
                    probe = TransformProbe(model, spec)
                    f = search.find_smallest_failure(probe, px, py, examples=args.examples, seed_value=seed)
                    found.append((None if f is None else round(spec.magnitudes(f.draw.level)[0], 3), probe.calls))
                print(f"{name} {spec.id}: grid smallest over the pool {best} ({int(failing.sum())} samples fail); "
                      f"{label}: (magnitude found, model calls) per seed {found}", flush=True)
            search.sample_positions = ranked


if __name__ == "__main__":
    main()
