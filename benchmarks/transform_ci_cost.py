"""What the shipped transformation checks add to the `ci` profile's time, side by side.

    python benchmarks/transform_ci_cost.py [--rounds 3] [--profile ci]

Runs `pytest --robustcheck models/` serially in fresh copies of models/ (empty store), in
alternating rounds: the shipped config as it is, and the same with the transformation items
deselected (`-k "not <each transform name>"`). Reports the wall times, their ratio, and the
transformation items' own durations as a share of the full run (read from robustcheck.json,
which is less sensitive to other load on the machine). Writes
benchmarks/results/transform_ci_cost.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRANSFORM_KINDS = ("transform", "accuracy-under")


def run(profile: str, deselect: str | None) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "models", work / "models", ignore=shutil.ignore_patterns("weights", "*.py", "*.gz"))
        cmd = [sys.executable, "-m", "pytest", "--robustcheck", "models", f"--robustcheck-profile={profile}",
               "-p", "no:cacheprovider", "-q"] + (["-k", deselect] if deselect else [])
        start = time.perf_counter()
        subprocess.run(cmd, cwd=work, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        record = json.loads((work / "reports" / "robustcheck.json").read_text())
    return elapsed, record


def transform_names(record: dict) -> list[str]:
    from robustcheck.transforms.families import FAMILIES

    names = {i["name"] for m in record["models"] for i in m["items"] if i["kind"] in TRANSFORM_KINDS}
    return sorted({f for n in names for f in FAMILIES if f in n} | ({"accuracy-under"} if names else set()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", default="ci")
    args = parser.parse_args()
    with_t, without_t, shares, loads = [], [], [], []
    deselect = None
    for r in range(args.rounds):
        load = os.getloadavg()[0]
        loads.append(load)
        elapsed, record = run(args.profile, None)
        items = [i for m in record["models"] for i in m["items"]]
        own = sum(i["duration_s"] for i in items if i["kind"] in TRANSFORM_KINDS)
        shares.append(own / elapsed)
        with_t.append(elapsed)
        deselect = deselect or " and ".join(f"not {n}" for n in transform_names(record))
        elapsed_without, _ = run(args.profile, deselect)
        without_t.append(elapsed_without)
        print(f"round {r + 1} (load {load:.1f}): with {with_t[-1]:.1f} s, without {elapsed_without:.1f} s, "
              f"transform items {own:.1f} s", flush=True)
    lines = [f"# Transformation checks in the `{args.profile}` profile: "
             f"`python {' '.join(['benchmarks/transform_ci_cost.py', *sys.argv[1:]])}`", "",
             f"{platform.platform()}; serial runs of the shipped models/ in fresh copies, alternating; "
             f"load average at the start of each round {', '.join(f'{x:.1f}' for x in loads)}; "
             f"deselected with `-k \"{deselect}\"`.", "",
             "| round | with transform checks | without | ratio | transform items' own time / full run |",
             "|---|---|---|---|---|"]
    for r, (a, b, s) in enumerate(zip(with_t, without_t, shares)):
        lines.append(f"| {r + 1} | {a:.1f} s | {b:.1f} s | {a / b:.3f} | {s:.1%} |")
    ratios = [a / b for a, b in zip(with_t, without_t)]
    lines.append(f"| median | {statistics.median(with_t):.1f} s | {statistics.median(without_t):.1f} s | "
                 f"{statistics.median(ratios):.3f} | {statistics.median(shares):.1%} |")
    out = ROOT / "benchmarks" / "results" / "transform_ci_cost.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
