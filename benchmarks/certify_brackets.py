"""Brackets on the 784-50-50-10 MLP: CROWN radius ≤ exact minimal L∞ distance ≤ attack distance.

    python benchmarks/certify_brackets.py [--n 20] [--golden]

For the first `n` held-out images the MLP classifies correctly: CROWN's and α-CROWN's certified
L∞ radius (bisection, rtol 1 %), the exact minimal L∞ distance (MILP bisection, rtol 0.1 %,
witness checked by onnxruntime), and the distance of robustcheck's minimal-norm attacks (C&W-L∞
at the `thorough` budget, and PGD-L∞ turned minimal-norm by a bisection over ε). Attack
calibration = attack distance ÷ exact minimum. `--golden` rewrites the tests' golden brackets
(tests/data/mlp-golden-brackets.json and the witnesses in tests/data/mlp-golden-witnesses.npz).
`--attacks` takes any registered attack labels (minimal-norm ones run as they are, bounded ones
by bisection), so the ensembles of later issues drop in.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
MLP = ROOT / "tests" / "data" / "mlp-784-50-50-10.onnx"
HELDOUT = ROOT / "models" / "data" / "mnist-heldout.npz"
THOROUGH = {"cw-linf": {"max_iterations": 1000, "learning_rate": 1e-2},
            "pgd-linf": {"steps": 100, "restarts": 5, "loss": "dlr"}}


def attack_distances(model, x: np.ndarray, y: np.ndarray, label: str, upper: np.ndarray) -> tuple[np.ndarray, float]:
    """Per sample, the smallest verified L∞ distance `label` reaches (inf where it fails) and the wall time."""
    from robustcheck.attacks import attack_spec

    spec = attack_spec(label)
    params = dict(THOROUGH.get(label, {}))
    start = time.perf_counter()
    if not spec.bounded:
        result = spec.make(params).run(model, x, y, seed=0)
        return np.where(result.success, result.distances["linf"], np.inf), time.perf_counter() - start
    # A bounded attack becomes minimal-norm by bisection on ε per sample, inside [0, 2·upper].
    lo, hi = np.zeros(len(x)), np.minimum(2 * upper, 1.0)
    best = np.full(len(x), np.inf)
    for _ in range(12):
        eps = np.where(np.isfinite(best), (lo + np.minimum(hi, best)) / 2, hi)
        for i in range(len(x)):
            result = spec.make({**params, "epsilon": float(eps[i])}).run(model, x[i:i + 1], y[i:i + 1], seed=0)
            if result.success[0]:
                best[i] = min(best[i], float(result.distances["linf"][0]))
                hi[i] = min(hi[i], best[i])
            else:
                lo[i] = eps[i]
    return best, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--time-limit", type=float, default=120.0, help="per sample, exact minimal distance")
    parser.add_argument("--attacks", nargs="+", default=["cw-linf", "pgd-linf"])
    parser.add_argument("--golden", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from robustcheck.certify import certified_radius, minimal_distance
    from robustcheck.data import correctly_classified, load_dataset
    from robustcheck.model import load_model

    model = load_model(MLP)
    data = correctly_classified(model, load_dataset(HELDOUT), limit=args.n)
    x, y = data.x.astype(np.float64), data.y
    load = os.getloadavg()[0]
    crown = certified_radius(model, x, y, norm="linf")
    alpha = certified_radius(model, x, y, norm="linf", alpha=True)
    t0 = time.perf_counter()
    exact = minimal_distance(model, x, y, norm="linf", rtol=1e-3, time_limit=args.time_limit)
    exact_wall = time.perf_counter() - t0
    attacks = {label: attack_distances(model, data.x, y, label, exact.upper) for label in args.attacks}
    best_attack = np.min(np.stack([d for d, _ in attacks.values()]), axis=0)

    cmd = " ".join(["python benchmarks/certify_brackets.py", *sys.argv[1:]])
    lines = [f"# Certified and exact brackets on the 784-50-50-10 MLP: `{cmd}`", "",
             f"{platform.platform()}, torch {torch.__version__}, {args.threads} thread(s), load average {load:.1f} "
             f"at the start; first {args.n} correctly classified held-out images (rows "
             f"{int(data.index[0])}–{int(data.index[-1])}); all distances L∞ in pixel units [0, 1]", "",
             "| row | CROWN | α-CROWN | exact min (lower–upper) | " + " | ".join(args.attacks)
             + " | CROWN ÷ exact | best attack ÷ exact | exact time (s) |",
             "|---|---|---|---|" + "---|" * len(args.attacks) + "---|---|---|"]
    golden = []
    for i in range(len(x)):
        ratio = crown.radius[i] / exact.lower[i]
        calib = best_attack[i] / exact.upper[i]
        cells = " | ".join(f"{attacks[a][0][i]:.4f}" for a in args.attacks)
        lines.append(f"| {int(data.index[i])} | {crown.radius[i]:.4f} | {alpha.radius[i]:.4f} | "
                     f"{exact.lower[i]:.4f}–{exact.upper[i]:.4f} | {cells} | {ratio:.2f} | {calib:.2f} | "
                     f"{exact.wall_time[i]:.1f} |")
        golden.append({"row": int(data.index[i]), "label": int(y[i]), "crown_linf": float(crown.radius[i]),
                       "alpha_crown_linf": float(alpha.radius[i]), "exact_lower_linf": float(exact.lower[i]),
                       "exact_upper_linf": float(exact.upper[i]), "exact": bool(exact.exact[i]),
                       **{f"{a}_linf": float(attacks[a][0][i]) for a in args.attacks}})
    ordered = bool(np.all(crown.radius <= exact.lower + 1e-12) and np.all(exact.upper <= best_attack + 1e-12))
    lines += ["", "| summary | value |", "|---|---|",
              f"| exact to 0.1 % | {int(exact.exact.sum())} / {len(x)} |",
              f"| CROWN ≤ exact ≤ attack on every sample | {ordered} |",
              f"| median CROWN ÷ exact (min) | {np.median(crown.radius / exact.lower):.3f} "
              f"({np.min(crown.radius / exact.lower):.3f}) |",
              f"| median α-CROWN ÷ exact | {np.median(alpha.radius / exact.lower):.3f} |",
              *[f"| median {a} ÷ exact (max) | {np.median(attacks[a][0] / exact.upper):.3f} "
                f"({np.max(attacks[a][0] / exact.upper):.3f}); {attacks[a][1]:.0f} s |" for a in args.attacks],
              f"| median best attack ÷ exact | {np.median(best_attack / exact.upper):.3f} |",
              f"| CROWN radius per sample (median) | {np.median(crown.wall_time) * 1000:.0f} ms over "
              f"{np.median(crown.evaluations):.0f} CROWN runs |",
              f"| exact minimal distance: median / max / total per {len(x)} samples | "
              f"{np.median(exact.wall_time):.1f} s / {np.max(exact.wall_time):.1f} s / {exact_wall:.0f} s |"]
    out = ROOT / "benchmarks" / "results" / "certify_brackets.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if args.golden:
        (ROOT / "tests" / "data" / "mlp-golden-brackets.json").write_text(json.dumps(
            {"command": cmd, "model": "tests/data/mlp-784-50-50-10.onnx", "samples": golden}, indent=1) + "\n")
        np.savez_compressed(ROOT / "tests" / "data" / "mlp-golden-witnesses.npz",
                            rows=data.index, witnesses=np.stack(exact.witnesses).astype(np.float32))


if __name__ == "__main__":
    main()
