"""Cost of a full `robustcheck.diagnose` on each shipped model, per budget.

    python benchmarks/diagnose_cost.py [--budget default]

Uses the first 64 correctly classified held-out images (the ci profile's pool) and prints
the wall time and the findings (id, severity) per model.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="default", choices=["smoke", "default", "thorough"])
    args = parser.parse_args()
    torch.set_num_threads(2)
    from robustcheck import load_model
    from robustcheck.data import correctly_classified, load_dataset
    from robustcheck.diagnostics import diagnose

    data = load_dataset(ROOT / "models" / "data" / "mnist-heldout.npz")
    print(f"# `python benchmarks/diagnose_cost.py --budget {args.budget}`\n")
    print("| model | wall (s) | findings |\n|---|---|---|")
    for name in ("baseline", "distilled", "distilled-softmax"):
        model = load_model(ROOT / "models" / f"{name}.onnx", parity_inputs=data.x[:16])
        pool = correctly_classified(model, data.take(torch.arange(64).numpy()))
        start = time.perf_counter()
        findings = diagnose(model, pool.x, pool.y, budget=args.budget)
        elapsed = time.perf_counter() - start
        listed = ", ".join(f"{f.id} ({f.severity})" for f in findings) or "none"
        print(f"| {name} | {elapsed:.1f} | {listed} |", flush=True)


if __name__ == "__main__":
    main()
