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
from pathlib import Path

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
    from attack_table import shipped_pools, timed_cell

    from robustcheck.attacks import attack_labels
    from robustcheck.profiles import PROFILES

    lines = [f"# Profile budgets: `python {' '.join(['benchmarks/profile_budgets.py', *sys.argv[1:]])}`", "",
             f"{platform.platform()}, torch {torch.__version__}; first {args.n} correctly classified held-out images, "
             "untargeted; success judged by onnxruntime; median distance over successes", "",
             "| attack | budget | settings | " + " | ".join(f"{m}: success, median dist., wall" for m in MODELS) + " |",
             "|---|---|---|" + "---|" * len(MODELS)]
    pools = shipped_pools(MODELS, args.n)
    classes = {spec.attack_cls.name: spec.attack_cls for spec in attack_labels().values()}
    for attack_name in ATTACKS:
        budgets = [("too small", TOO_SMALL[attack_name])]
        budgets += [(profile.name, profile.attacks.get(attack_name, {})) for profile in PROFILES.values()]
        if attack_name == "cw-linf":  # thorough departs from the reference's learning rate; show why
            budgets.append(("reference", {}))
        for budget, params in budgets:
            attack = classes[attack_name](**params)
            cells = [timed_cell(attack, model, pool.x, pool.y) for model, pool in (pools[m] for m in MODELS)]
            settings = ", ".join(f"{k} {v:g}" for k, v in params.items()) or "reference defaults"
            lines.append(f"| {attack_name} | {budget} | {settings} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
    out = ROOT / "benchmarks" / "results" / "profile_budgets.md"
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
