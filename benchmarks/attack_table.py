"""Every robustcheck attack on the shipped models, side by side: the weak probes distillation
defeats against the strong attacks that do not care.

    python benchmarks/attack_table.py [--n 100]

On the first `n` correctly classified held-out images of each model, untargeted, success as
judged by onnxruntime; distances over successful samples. Settings are the attacks issue's
quality bars (PGD-L∞ ε 0.3, 40 steps) or stated per row; the full-budget C&W-L2 and EAD
runs are in benchmarks/peers.py.
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
MODELS = ("baseline", "distilled", "distilled-softmax")


#: The reference C&W-L∞ and -L0 loops are slow (many τ levels / pixel-freezing rounds, each a
#: full optimisation): they run on the first SLOW_ROWS_N images only, as their rows say.
SLOW_ROWS_N = 10


def attacks() -> dict[str, tuple[str, object]]:
    """Row label → (settings, attack)."""
    from robustcheck.attacks import EAD, FGSM, JSMA, PGD, CarliniWagnerL0, CarliniWagnerL2, CarliniWagnerLinf

    return {
        "FGSM, CE on softmax": ("L∞ ε 0.3", FGSM(epsilon=0.3, loss="ce")),
        "PGD, CE on softmax": ("L∞ ε 0.3, 40 steps", PGD(epsilon=0.3, steps=40, loss="ce")),
        "PGD, DLR": ("L∞ ε 0.3, 40 steps", PGD(epsilon=0.3, steps=40, loss="dlr")),
        "PGD, margin on logits": ("L∞ ε 0.3, 40 steps", PGD(epsilon=0.3, steps=40, loss="margin")),
        "JSMA, softmax saliency": ("γ 0.1, θ +1", JSMA()),
        "JSMA, logit saliency": ("γ 0.1, θ +1", JSMA(use_logits=True)),
        "C&W L2, f1 (CE on softmax)": ("5 × 300", CarliniWagnerL2(objective="f1", binary_search_steps=5,
                                                                  max_iterations=300)),
        "C&W L2, f6 (logit margin)": ("5 × 300", CarliniWagnerL2(binary_search_steps=5, max_iterations=300)),
        "EAD, L1 rule": ("5 × 300", EAD(decision_rule="L1", binary_search_steps=5, max_iterations=300)),
        "C&W L∞": (f"reference schedule, 1,000 iterations per (τ, c), c₀ 1e-2; first {SLOW_ROWS_N} images",
                   CarliniWagnerLinf(initial_const=1e-2)),
        "C&W L0": (f"reference rule, ≤ 1,000 iterations per (round, c); first {SLOW_ROWS_N} images",
                   CarliniWagnerL0()),
    }


def shipped_pools(names: tuple[str, ...], n: int) -> dict[str, tuple[object, object]]:
    """Per shipped model: (the loaded model, its first `n` correctly classified held-out images)."""
    from robustcheck import load_model
    from robustcheck.data import correctly_classified, load_dataset

    data = load_dataset(ROOT / "models" / "data" / "mnist-heldout.npz")
    pools = {}
    for name in names:
        model = load_model(ROOT / "models" / f"{name}.onnx", parity_inputs=data.x[:16])
        pools[name] = (model, correctly_classified(model, data, limit=n))
    return pools


def timed_cell(attack, model, x: np.ndarray, y: np.ndarray) -> str:
    """Run `attack` and format "success, median distance in its norm, wall" for a table cell."""
    start = time.perf_counter()
    result = attack.run(model, x, y)
    wall = time.perf_counter() - start
    d = result.distances[result.norm][result.success]
    median = f"{result.norm.upper()} {np.median(d):.3g}" if len(d) else "–"
    return f"{result.success_rate:.0%}, {median}, {wall:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(2)
    lines = [f"# Attack table: `python {' '.join(['benchmarks/attack_table.py', *sys.argv[1:]])}`", "",
             f"{platform.platform()}, torch {torch.__version__}; {args.n} correctly classified held-out images per "
             "model, untargeted; success judged by onnxruntime; median distance over successes in the attack's norm",
             "",
             "| attack | settings | " + " | ".join(f"{m}: success, median dist., wall" for m in MODELS) + " |",
             "|---|---|" + "---|" * len(MODELS)]
    pools = shipped_pools(MODELS, args.n)
    for label, (settings, attack) in attacks().items():
        cells = []
        for name in MODELS:
            model, pool = pools[name]
            m = SLOW_ROWS_N if label.startswith(("C&W L∞", "C&W L0")) else len(pool.x)
            cells.append(timed_cell(attack, model, pool.x[:m], pool.y[:m]))
        lines.append(f"| {label} | {settings} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    out = ROOT / "benchmarks" / "results" / "attack_table.md"
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
