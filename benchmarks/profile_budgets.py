"""C&W-L∞ and C&W-L0 at each profile's budget: what `smoke`, `ci` and `thorough` buy.

    python benchmarks/profile_budgets.py [--n 20]

The slow reference attacks are not in the shipped config, so the suite benchmark does not
measure them; this does, with the exact hyper-parameters of robustcheck/profiles.py, on the
first `n` correctly classified held-out images of the baseline and the distilled model.
Success is judged by onnxruntime; distances are medians over successful samples.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("baseline", "distilled")
ATTACKS = ("cw-linf", "cw-l0")
#: A budget below every profile's, to show why the profiles do not go lower.
TOO_SMALL = {"cw-linf": {"max_iterations": 200}, "cw-l0": {"max_iterations": 100}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(2)
    from robustcheck import load_model
    from robustcheck.attacks import ATTACKS as CLASSES
    from robustcheck.data import correctly_classified, load_dataset
    from robustcheck.profiles import PROFILES

    data = load_dataset(ROOT / "models" / "data" / "mnist-heldout.npz")
    lines = [f"# Profile budgets: `python {' '.join(['benchmarks/profile_budgets.py', *sys.argv[1:]])}`", "",
             f"{platform.platform()}, torch {torch.__version__}; first {args.n} correctly classified held-out images, "
             "untargeted; success judged by onnxruntime; median distance over successes", "",
             "| attack | budget | settings | " + " | ".join(f"{m}: success, median dist., wall" for m in MODELS) + " |",
             "|---|---|---|" + "---|" * len(MODELS)]
    pools = {}
    for name in MODELS:
        model = load_model(ROOT / "models" / f"{name}.onnx", parity_inputs=data.x[:16])
        pools[name] = (model, correctly_classified(model, data, limit=args.n))
    for attack_name in ATTACKS:
        budgets = [("too small", TOO_SMALL[attack_name])]
        budgets += [(profile.name, profile.attacks.get(attack_name, {})) for profile in PROFILES.values()]
        if attack_name == "cw-linf":  # thorough departs from the reference's learning rate; show why
            budgets.append(("reference", {}))
        for budget, params in budgets:
            attack = CLASSES[attack_name](**params)
            cells = []
            for name in MODELS:
                model, pool = pools[name]
                start = time.perf_counter()
                result = attack.run(model, pool.x, pool.y)
                wall = time.perf_counter() - start
                d = result.distances[result.norm][result.success]
                median = f"{result.norm.upper()} {np.median(d):.3g}" if len(d) else "–"
                cells.append(f"{result.success_rate:.0%}, {median}, {wall:.1f} s")
            settings = ", ".join(f"{k} {v:g}" for k, v in params.items()) or "reference defaults"
            lines.append(f"| {attack_name} | {budget} | {settings} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
    out = ROOT / "benchmarks" / "results" / "profile_budgets.md"
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
