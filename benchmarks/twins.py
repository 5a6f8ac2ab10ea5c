"""Adaptive attacks on twins of the shipped baseline (issue 14's goals), side by side.

    python benchmarks/twins.py [--samples 100] [--profile ci] [--models ...] [--noise-cw] [--threads 2] [--out FILE]

Builds the twins of tests/twins.py (rounded, 3-bit, thermometer and noise-injected inputs;
static int8 QDQ and QLinear, dynamic uint8; a batch-1 export) and attacks each with the
profile's C&W-L2 and PGD budgets, in `exact` and `adaptive` mode where they differ, on the first
`samples` held-out images. Robust accuracy counts every one of those rows (a misclassified row is
not robust); C&W's median L2 is over its successes and is compared with the float baseline's on
the same images. Every success is asked again of onnxruntime ("re-verified"). The noise twin is
judged by majority vote and attacked with EOT at 20, 40 and 80 draws beside a single draw (exact).
Writes a markdown table to benchmarks/results/twins.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

QUANTIZED = ("int8-qdq", "int8-qlinear", "uint8-dynamic")
DEFAULT_MODELS = ("baseline", "rounded", "3bit", "thermometer", *QUANTIZED, "batch1", "noise")


def _attacks(profile: str) -> dict[str, Any]:
    from robustcheck.attacks import PGD, CarliniWagnerL2
    from robustcheck.profiles import PROFILES

    budget = PROFILES[profile].attacks
    pgd = {k: v for k, v in budget.get("pgd", {}).items()}
    return {
        "cw": CarliniWagnerL2(**budget.get("cw-l2", {})),
        "pgd-l2@1": PGD(norm="l2", epsilon=1.0, loss="margin", **pgd),
        "pgd-linf@0.1": PGD(norm="linf", epsilon=0.1, loss="margin", **pgd),
        # One 3-bit input step: what L∞ 0.1 becomes after the 3-bit twin's rounding (0 → 1/7).
        "pgd-linf@1/7": PGD(norm="linf", epsilon=1 / 7, loss="margin", **pgd),
        "pgd-linf@0.3": PGD(norm="linf", epsilon=0.3, loss="margin", **pgd),
    }


def _rate(flags: np.ndarray) -> str:
    return f"{100 * flags.mean():.0f}%" if len(flags) else "-"


def _reverified(model: Any, result: Any) -> str:
    rows = np.flatnonzero(result.success)
    if not len(rows):
        return "-"
    again = model.predict(result.x_adv[rows]) != result.y[rows]
    return f"{int(again.sum())}/{len(rows)}"


def _parity(model: Any, x: np.ndarray) -> str:
    report = model.parity
    if model.replica is None:
        return f"no replica ({model.replica_reason})"
    if report.kind == "distribution":
        return f"distribution: spread ratio {report.spread_ratio:.2f}, {report.draws} draws"
    oracle, mirror = model.oracle_logits(x), model.replica_logits(x)
    diff = np.abs(oracle - mirror)
    if report.output_step:
        steps = diff / report.output_step
        return (f"{100 * (steps <= 1 + 1e-5).mean():.2f}% of {diff.size} outputs within 1 step "
                f"(max {steps.max():.2f}, {100 * (steps > 1e-6).mean():.2f}% off at all)")
    return f"max |Δ| {diff.max():.2g} over {diff.size} outputs"


def _row(name: str, mode: str, model: Any, data: Any, correct: np.ndarray, attacks: dict[str, Any],
         base_median: float | None) -> tuple[str, float]:
    from robustcheck.metrics import robust_accuracy

    pool = np.flatnonzero(correct)
    cells, walls = [], []
    cw_median = np.nan
    l2_broken = np.zeros(len(correct), dtype=bool)
    for label, attack in attacks.items():
        start = time.perf_counter()
        result = attack.run(model, data.x[pool], data.y[pool])
        walls.append(time.perf_counter() - start)
        broken = np.zeros(len(correct), dtype=bool)
        if label == "cw":
            l2 = result.distances["l2"]
            broken[pool] = result.success & (l2 <= 1.0)
            l2_broken |= broken
            cw_median = float(np.median(l2[result.success])) if result.success.any() else np.inf
            ratio = "" if base_median is None else f" ({cw_median / base_median:.2f}×)"
            cells += [_rate(result.success), f"{cw_median:.3f}{ratio}",
                      f"{100 * robust_accuracy(correct, broken):.0f}%", _reverified(model, result)]
        elif label == "pgd-linf@0.3":
            cells.append(_rate(result.success))
        else:
            broken[pool] = result.success
            if label == "pgd-l2@1":
                l2_broken |= broken
            cells.append(f"{100 * robust_accuracy(correct, broken):.0f}%")
    # The gate's figure is the worst case over attacks: a row either attack breaks within L2 1.0.
    cells.insert(5, f"{100 * robust_accuracy(correct, l2_broken):.0f}%")
    line = f"| {name} | {mode} | " + " | ".join(cells) + f" | {sum(walls):.0f} s |"
    return line, cw_median


def _noise_rows(model: Any, data: Any, correct: np.ndarray, profile: str, with_cw: bool) -> list[str]:
    from robustcheck.attacks import PGD, CarliniWagnerL2
    from robustcheck.metrics import robust_accuracy
    from robustcheck.profiles import PROFILES

    budget = PROFILES[profile].attacks
    attacks: dict[str, Any] = {f"pgd-l2@{e:g}": PGD(norm="l2", epsilon=e, loss="margin", **budget.get("pgd", {}))
                               for e in (1.0, 2.0)}
    attacks["pgd-linf@0.1"] = PGD(norm="linf", epsilon=0.1, loss="margin", **budget.get("pgd", {}))
    if with_cw:
        attacks["cw-l2@1"] = CarliniWagnerL2(**budget.get("cw-l2", {}))
    pool = np.flatnonzero(correct)
    rows = []
    for mode, draws in (("exact", 1), ("adaptive", 20), ("adaptive", 40), ("adaptive", 80)):
        model.eot_draws = draws
        cells = []
        start = time.perf_counter()
        with model.gradients(mode):
            for label, attack in attacks.items():
                result = attack.run(model, data.x[pool], data.y[pool])
                broken = np.zeros(len(correct), dtype=bool)
                broken[pool] = result.success & (result.distances["l2"] <= 1.0 if label.startswith("cw") else True)
                cells.append(f"{100 * robust_accuracy(correct, broken):.0f}% ({_reverified(model, result)})")
        rows.append(f"| noise | {mode}, {draws} draw{'s' if draws > 1 else ''} | " + " | ".join(cells)
                    + f" | {time.perf_counter() - start:.0f} s |")
        print(rows[-1], flush=True)
    header = ("| model | gradients | " + " | ".join(f"robust acc. {k} (re-verified)" for k in attacks) + " | wall |\n|"
              + "---|" * (len(attacks) + 3))
    return [header, *rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--profile", default="ci")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--noise-cw", action="store_true", help="also C&W-L2 with EOT on the noise twin (slow)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "twins.md"))
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 on a loaded machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from twins import build_twins

    from robustcheck.data import load_dataset
    from robustcheck.model import load_model

    data = load_dataset(ROOT / "models" / "data" / "mnist-heldout.npz").take(np.arange(args.samples))
    folder = Path(tempfile.mkdtemp(prefix="twins-"))
    paths = build_twins(folder, [m for m in args.models if m != "baseline"])
    paths["baseline"] = ROOT / "models" / "baseline.onnx"
    attacks = _attacks(args.profile)
    command = " ".join(["python benchmarks/twins.py", *sys.argv[1:]])
    lines = [f"# Adaptive attacks on the baseline's twins: `{command}`", "",
             f"{platform.platform()}, torch {torch.__version__}, load average at start "
             f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; first {args.samples} held-out images; "
             f"profile `{args.profile}` budgets (C&W-L2 {attacks['cw'].binary_search_steps} × "
             f"{attacks['cw'].max_iterations}, PGD {attacks['pgd-l2@1'].steps} steps × "
             f"{attacks['pgd-l2@1'].restarts}); "
             "margin loss for PGD.", "",
             "| model | gradients | C&W-L2 success | C&W median L2 (× baseline) | robust acc. C&W L2 1.0 | re-verified "
             "| robust acc. PGD L2 1.0 | robust acc. L2 1.0, C&W ∪ PGD | robust acc. PGD L∞ 0.1 "
             "| robust acc. PGD L∞ 1/7 "
             "| PGD L∞ 0.3 success | wall |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    parity_lines = ["", "| model | clean accuracy | replica | parity on these images |", "|---|---|---|---|"]
    base_median = None
    noise: list[str] = []
    for name in args.models:
        model = load_model(paths[name], parity_inputs=data.x[:16])
        correct = model.predict(data.x) == data.y
        rules = ", ".join(getattr(model.replica, "adaptive_ops", []) or []) or "-"
        parity_lines.append(f"| {name} | {100 * correct.mean():.0f}% | adaptive rules: {rules}"
                            f"{'; randomized' if model.randomized else ''} | {_parity(model, data.x)} |")
        if name == "noise":
            noise = _noise_rows(model, data, correct, args.profile, args.noise_cw)
            continue
        for mode in (("exact", "adaptive") if model.has_adaptive_gradients else ("exact",)):
            with model.gradients(mode):
                line, median = _row(name, mode, model, data, correct, attacks, base_median)
            if name == "baseline":
                base_median = median
            lines.append(line)
            print(line, flush=True)
    out = lines + parity_lines + (["", "Noise twin (σ 0.2), judged by majority vote:", "", *noise] if noise else [])
    Path(args.out).write_text("\n".join(out) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
