"""Certification speed and tightness on the shipped models.

    python benchmarks/certify_speed.py [--n 5] [--certified-n 500] [--skip ...]

Sections (each can be skipped):
- `cnn`: CROWN on the baseline CNN: one (sample, ε) per call, and a full certified radius by
  bisection per sample, L∞ and L2, median over the first `n` correctly classified images;
- `mlp`: the same on the 784-50-50-10 MLP (milliseconds);
- `exact`: exact fixed-ε verdicts on the MLP at 0.9× and 1.1× each sample's exact minimal
  distance (read from tests/data/mlp-golden-brackets.json), branch and bound on HiGHS LPs
  against HiGHS's own MIP solver on the same MILP;
- `certified`: the IBP-trained model's certified accuracy (CROWN and α-CROWN) at its training
  ε = 0.1 against PGD-L∞ robust accuracy (DLR, 100 steps, 5 restarts) on `certified-n` images.

Wall times are single measurements on a shared machine: the load average is printed with them.
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
HELDOUT = ROOT / "models" / "data" / "mnist-heldout.npz"
MLP = ROOT / "tests" / "data" / "mlp-784-50-50-10.onnx"


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def crown_section(name: str, path: Path, n: int, eps: dict[str, list[float]]) -> list[str]:
    from robustcheck.certify import certified_radius, certify
    from robustcheck.data import correctly_classified, load_dataset
    from robustcheck.model import load_model

    model = load_model(path)
    data = correctly_classified(model, load_dataset(HELDOUT, limit=200), limit=n)
    certify(model, data.x[:1], data.y[:1], norm="linf", epsilon=1e-3)  # first-call set-up (torch.func)
    lines = [f"| {name} | norm | ε | CROWN per (sample, ε): median (max) | certified |", "|---|---|---|---|---|"]
    for norm, values in eps.items():
        for e in values:
            times, proven = [], 0
            for i in range(len(data)):
                t0 = time.perf_counter()
                cert = certify(model, data.x[i:i + 1], data.y[i:i + 1], norm=norm, epsilon=e)
                times.append(time.perf_counter() - t0)
                proven += int(cert.certified[0])
            lines.append(f"| | {norm} | {e:g} | {_ms(np.median(times))} ({_ms(max(times))}) | {proven}/{len(data)} |")
            print(lines[-1], flush=True)
    lines += ["", f"| {name} | norm | certified radius: median | per sample: median (max) | CROWN runs |",
              "|---|---|---|---|---|"]
    for norm in eps:
        r = certified_radius(model, data.x, data.y, norm=norm)
        lines.append(f"| | {norm} | {np.median(r.radius):.4f} | {_ms(np.median(r.wall_time))} "
                     f"({_ms(r.wall_time.max())}) | {np.median(r.evaluations):.0f} |")
        print(lines[-1], flush=True)
    return lines


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def exact_section(n: int, time_limit: float) -> list[str]:
    from robustcheck.certify.certifier import Certifier
    from robustcheck.certify.exact import query
    from robustcheck.data import load_dataset
    from robustcheck.model import load_model

    golden = json.loads((ROOT / "tests" / "data" / "mlp-golden-brackets.json").read_text())["samples"][:n]
    model = load_model(MLP)
    data = load_dataset(HELDOUT)
    where = {int(r): i for i, r in enumerate(data.index)}
    certifier = Certifier(model)
    lines = ["| solver | ε | verdicts | median time | max time |", "|---|---|---|---|---|"]
    for solver in ("bab", "highs-mip"):
        for factor in (0.9, 1.1):
            times, verdicts = [], {"robust": 0, "violated": 0, "unknown": 0}
            for g in golden:
                x = data.x[where[g["row"]]].astype(np.float64)
                eps = factor * g["exact_lower_linf"]
                t0 = time.perf_counter()
                v = query(certifier, x, g["label"], "linf", eps, time_limit, solver=solver)
                times.append(time.perf_counter() - t0)
                verdicts[v.status] += 1
            summary = ", ".join(f"{k} {c}" for k, c in verdicts.items() if c)
            lines.append(f"| {solver} | {factor}× exact min | {summary} | {np.median(times):.2f} s "
                         f"| {max(times):.2f} s |")
            print(lines[-1], flush=True)
    return lines


def certified_section(n: int) -> list[str]:
    from robustcheck.attacks import make_attack
    from robustcheck.certify import certify
    from robustcheck.data import load_dataset
    from robustcheck.metrics import robust_accuracy
    from robustcheck.model import load_model

    model = load_model(ROOT / "models" / "certified.onnx")
    data = load_dataset(HELDOUT, limit=n)
    correct = model.predict(data.x) == data.y
    lines = ["| certified.onnx at L∞ 0.1 | accuracy | wall |", "|---|---|---|"]
    lines.append(f"| clean | {correct.mean():.3f} | |")
    for alpha in (False, True):
        t0 = time.perf_counter()
        cert = certify(model, data.x, data.y, norm="linf", epsilon=0.1, alpha=alpha)
        lines.append(f"| certified ({'α-CROWN' if alpha else 'CROWN'}) | {cert.certified_accuracy:.3f} | "
                     f"{time.perf_counter() - t0:.0f} s |")
        print(lines[-1], flush=True)
    t0 = time.perf_counter()
    broken = np.zeros(len(data), dtype=bool)
    attack = make_attack("pgd-linf", {"epsilon": 0.1, "steps": 100, "restarts": 5, "loss": "dlr"})
    broken[correct] = attack.run(model, data.x[correct], data.y[correct], seed=0).success
    lines.append(f"| PGD-L∞ robust (DLR, 100 steps, 5 restarts) | {robust_accuracy(correct, broken):.3f} | "
                 f"{time.perf_counter() - t0:.0f} s |")
    print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5)
    parser.add_argument("--exact-n", type=int, default=20)
    parser.add_argument("--certified-n", type=int, default=500)
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip", nargs="*", default=[], choices=["cnn", "mlp", "exact", "certified"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cmd = " ".join(["python benchmarks/certify_speed.py", *sys.argv[1:]])
    lines = [f"# Certification speed and tightness: `{cmd}`", "",
             f"{platform.platform()}, torch {torch.__version__}, {args.threads} thread(s); load average {_load()} "
             "at the start (2 cores shared)", ""]
    if "cnn" not in args.skip:
        lines += crown_section("baseline.onnx", ROOT / "models" / "baseline.onnx", args.n,
                               {"linf": [0.005, 0.01, 0.015], "l2": [0.03, 0.05]}) + [f"(load {_load()})", ""]
    if "mlp" not in args.skip:
        lines += crown_section("mlp-784-50-50-10", MLP, args.n, {"linf": [0.01, 0.03], "l2": [0.3]}) + [""]
    if "exact" not in args.skip:
        lines += exact_section(args.exact_n, args.time_limit) + [f"(load {_load()})", ""]
    if "certified" not in args.skip:
        lines += certified_section(args.certified_n) + [f"(load {_load()})", ""]
    out = ROOT / "benchmarks" / "results" / "certify_speed.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
