"""CPU cost and strength of the shipped robust-accuracy claim's attacks, old vs new `ci`, side by side.

    python benchmarks/ci_attack_cost.py [--n 16] [--models baseline distilled]

On the first `n` correctly classified held-out images, one torch thread, CPU seconds
(time.process_time: robust to other jobs' load, unlike wall time) of: C&W-L2 at the `ci`
budget (the shipped suite's attack before issue 13) and `min-l2` at the `ci` budget plus the
AutoAttack cascade (APGD-CE, APGD-T) at L2 1.0 on the images it left standing (the new
`robust-accuracy[min-l2@1]`), interleaved in one process. Reports median L2 and robust accuracy.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
EPS = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--models", nargs="+", default=["baseline", "distilled"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    from robustcheck import load_model
    from robustcheck.attacks import AutoAttackCascade, make_attack
    from robustcheck.data import correctly_classified, load_dataset
    from robustcheck.profiles import PROFILES

    ci = PROFILES["ci"].attacks
    data = load_dataset(ROOT / "models" / "data" / "mnist-heldout.npz")
    print(f"`python benchmarks/ci_attack_cost.py {' '.join(sys.argv[1:])}`\n")
    print("| model | attack (ci) | CPU s | median L2 | robust acc. at L2 1.0 | broken by |")
    print("|---|---|---|---|---|---|")
    for name in args.models:
        model = load_model(ROOT / "models" / f"{name}.onnx", parity_inputs=data.x[:16])
        pool = correctly_classified(model, data, limit=args.n)
        x, y = pool.x, pool.y
        start = time.process_time()
        cw = make_attack("cw-l2", ci["cw-l2"]).run(model, x, y)
        cw_cpu = time.process_time() - start
        print(f"| {name} | cw-l2 {ci['cw-l2']} | {cw_cpu:.1f} | {np.median(cw.distances['l2']):.3f} | "
              f"{1 - cw.within(EPS).mean():.1%} | cw-l2 {int(cw.within(EPS).sum())} |", flush=True)
        start = time.process_time()
        ens = make_attack("min-l2", ci["min-norm"]).run(model, x, y)
        rest = np.flatnonzero(~ens.within(EPS))
        cascade = AutoAttackCascade(norm="l2", epsilon=EPS, min_norm=False, steps=ci["autoattack"]["steps"])
        extra = cascade.run(model, x[rest], y[rest]) if len(rest) else None
        new_cpu = time.process_time() - start
        more = 0 if extra is None else int(extra.within(EPS).sum())
        broken = int(ens.within(EPS).sum()) + more
        print(f"| {name} | min-l2 {ci['min-norm']} + cascade (APGD {ci['autoattack']['steps']}) | {new_cpu:.1f} | "
              f"{np.median(ens.distances['l2']):.3f} | {1 - broken / len(x):.1%} | "
              f"min-l2 {int(ens.within(EPS).sum())}, cascade {more} |", flush=True)


if __name__ == "__main__":
    main()
