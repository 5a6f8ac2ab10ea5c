"""Time the shipped model suite under each profile, serial and with `-n 2`, side by side.

    python benchmarks/suite.py [--profiles smoke ci thorough] [--xdist]

Each run is `pytest --robustcheck models/` in a fresh copy of models/ (empty counterexample
store), so times include loading, attacks, diagnostics and reports. Strength is read from the
run's own JSON record: per model, attack success rate and median distortion, robust accuracy
at each check's ε, and the verdicts. Prints a markdown table; writes it to
benchmarks/results/suite.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_suite(profile: str, workers: int) -> tuple[float, int, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "models", work / "models", ignore=shutil.ignore_patterns("weights", "*.py", "*.gz"))
        cmd = [sys.executable, "-m", "pytest", "--robustcheck", "models", f"--robustcheck-profile={profile}",
               "-p", "no:cacheprovider", "-q"]
        if workers:
            cmd += ["-n", str(workers)]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        record = json.loads((work / "reports" / "robustcheck.json").read_text())
    return elapsed, proc.returncode, record


def summarise(data: dict) -> dict[str, str]:
    from robustcheck.figures import RobustAccuracyFigures
    from robustcheck.record import RunRecord

    out = {}
    for model in RunRecord.from_dict(data).models:
        figures = [f"{i.name}={i.figures.robust_accuracy:.2f}" for i in model.items
                   if isinstance(i.figures, RobustAccuracyFigures)]
        attacks = []
        for a in model.attacks:
            median = next((d.median for d in a.distortion if d.norm == a.norm), None)
            attacks.append(f"{a.attack} {a.success_rate:.0%} (median {a.norm} "
                           f"{float('nan') if median is None else median:.3g})")
        failed = sorted(i.name for i in model.items if i.verdict != "passed")
        out[model.name] = f"{'; '.join(attacks)}; {', '.join(figures)}; failed: {', '.join(failed) or 'none'}"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=["smoke", "ci", "thorough"])
    parser.add_argument("--xdist", action="store_true", help="also run each profile with -n 2 and report the speed-up")
    args = parser.parse_args()
    lines = [f"# Suite timings: `python {' '.join(['benchmarks/suite.py', *sys.argv[1:]])}`", "",
             f"{platform.platform()}, {platform.processor() or platform.machine()}, "
             f"Python {platform.python_version()}", "",
             "| profile | workers | wall (s) | exit "
             "| per model: attack success (median distortion); robust accuracy; failed items |",
             "|---|---|---|---|---|"]
    serial_times: dict[str, float] = {}
    for profile in args.profiles:
        for workers in ([0, 2] if args.xdist else [0]):
            elapsed, code, record = run_suite(profile, workers)
            if workers == 0:
                serial_times[profile] = elapsed
            detail = "<br>".join(f"**{k}**: {v}" for k, v in summarise(record).items())
            speed = "" if workers == 0 else f" ({serial_times[profile] / elapsed:.2f}× vs serial)"
            lines.append(f"| {profile} | {workers or 1} | {elapsed:.0f}{speed} | {code} | {detail} |")
            print(lines[-1], flush=True)
    out = ROOT / "benchmarks" / "results" / "suite.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
