"""Brackets on the shipped CNNs: CROWN's certified radius ≤ true minimum ≤ C&W's distance, per sample.

    python benchmarks/certify_cnn_brackets.py [--models baseline certified] [--n 5] [--norms linf l2]

For the first `n` correctly classified held-out images: C&W (L∞ or L2, 1,000 iterations) gives
each sample's verified adversarial distance, CROWN's certified radius is searched by bisection
(rtol 5 %) below it. Prints medians of both and of their ratio, and CPU seconds per radius.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
HELDOUT = ROOT / "models" / "data" / "mnist-heldout.npz"
CW = {"linf": ("cw-linf", {"max_iterations": 1000}),
      "l2": ("cw-l2", {"binary_search_steps": 9, "max_iterations": 1000})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["baseline", "certified"])
    parser.add_argument("--n", type=int, default=5)
    parser.add_argument("--norms", nargs="+", default=["linf", "l2"], choices=list(CW))
    args = parser.parse_args()
    torch.set_num_threads(1)
    from robustcheck.attacks import make_attack
    from robustcheck.certify import certified_radius
    from robustcheck.data import correctly_classified, load_dataset
    from robustcheck.model import load_model

    print(f"load average {os.getloadavg()[0]:.1f}; first {args.n} correctly classified held-out images; 1 thread")
    print("| model | norm | median certified | median attack | median ratio (min–max) | CPU s per radius |")
    print("|---|---|---|---|---|---|")
    for name in args.models:
        model = load_model(ROOT / "models" / f"{name}.onnx")
        data = correctly_classified(model, load_dataset(HELDOUT, limit=200), limit=args.n)
        for norm in args.norms:
            label, params = CW[norm]
            result = make_attack(label, params).run(model, data.x, data.y, seed=0)
            attack = np.where(result.success, result.distances[norm], np.inf)
            t0 = time.process_time()
            radius = certified_radius(model, data.x, data.y, norm=norm, upper=attack, rtol=0.05).radius
            cpu = (time.process_time() - t0) / len(data)
            assert np.all(radius < attack), "a certified radius reached a verified adversarial distance"
            ratio = attack / radius
            print(f"| {name} | {norm} | {np.median(radius):.4f} | {np.median(attack):.4f} | {np.median(ratio):.1f}× "
                  f"({ratio.min():.1f}–{ratio.max():.1f}) | {cpu:.1f} |", flush=True)


if __name__ == "__main__":
    main()
