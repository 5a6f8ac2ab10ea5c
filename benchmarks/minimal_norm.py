"""Minimal-norm ensembles against the reference: per-sample ratios, success and wall-time ratios.

    python benchmarks/reference_runs.py            # once: the peers' full-budget runs (cached)
    python benchmarks/minimal_norm.py [--profiles ci thorough] [--models ...] [--norms ...]

Per shipped model and norm, on the images of the reference runs: `minimal_norm(norm, profile)`
(and, for context, each member alone at the same budget) against the per-sample reference of
benchmarks/reference_runs.py (the minimum over foolbox C&W-L2 / EAD 9 × 1,000 and adv_lib
FMN/DDN/FAB/PDPGD at 1,000 steps; L0: robustcheck's C&W-L0 and JSMA, and adv_lib FMN-L0).
Ratio = our distance / the reference, per sample where both succeeded: mean, p90, max, share
above 1.05. Wall time is a ratio to foolbox C&W-L2 9 × 1,000 on the same images, timed in this
same process right before (on the first `--cw-timing-n` images, ours timed on the same ones;
unless --no-cw-timing: then the cached reference run's time, taken under another load).
Also writes tests/data/minimal_norm_reference.json: the reference distances of the first
`--test-n` images, which the CI quality bars compare against.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_libs import MODELS, ROOT, WEIGHTS, foolbox_output, native  # noqa: E402
from reference_runs import load_cache, reference  # noqa: E402

TEST_REFERENCE = ROOT / "tests" / "data" / "minimal_norm_reference.json"


def ratio_stats(ours: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    both = np.isfinite(ours) & np.isfinite(ref) & (ref > 0)
    r = ours[both] / ref[both]
    if not len(r):
        return {"mean": float("nan"), "p90": float("nan"), "max": float("nan"), "above": float("nan")}
    return {"mean": float(r.mean()), "p90": float(np.percentile(r, 90)), "max": float(r.max()),
            "above": float((r > 1.05).mean())}


def _distances(entry: dict[str, Any], label: str, norm: str) -> np.ndarray:
    """One cached reference attack's verified distances in `norm` (inf where it failed)."""
    return np.array([np.inf if v is None else v for v in entry["attacks"][label][norm]])


def _median(d: np.ndarray) -> float:
    """Median over every sample, a failure counting as infinitely far (nan when none)."""
    return float(np.median(d)) if len(d) else float("nan")


def cw_time(name: str, x: np.ndarray, y: np.ndarray) -> float:
    """Seconds foolbox C&W-L2 9 × 1,000 takes on these images, now."""
    import foolbox as fb

    fmodel = fb.PyTorchModel(native(name), bounds=(0, 1))
    attack = fb.attacks.L2CarliniWagnerAttack(binary_search_steps=9, steps=1000, stepsize=1e-2, initial_const=1e-3)
    start = time.perf_counter()
    raw, _, _ = attack(fmodel, torch.from_numpy(x), torch.from_numpy(y), epsilons=None)
    foolbox_output(raw.numpy(), x)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=["ci"])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--norms", nargs="+", default=["l2", "linf", "l1", "l0"])
    parser.add_argument("--members", action="store_true", help="also run each ensemble member alone")
    parser.add_argument("--no-cw-timing", action="store_true")
    parser.add_argument("--cw-timing-n", type=int, default=None, help="images the time ratio is taken on")
    parser.add_argument("--n", type=int, default=None, help="only the first n reference images")
    parser.add_argument("--test-n", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="minimal_norm.md")
    parser.add_argument("--drop", nargs="*", default=[], metavar="NORM:MEMBER",
                        help="ablation: run the ensembles without these members (e.g. linf:apgd-t-min-linf)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from robustcheck import load_model
    from robustcheck.attacks import ensemble as ensembles
    from robustcheck.attacks import minimal_norm

    for spec in args.drop:
        norm, _, member = spec.partition(":")
        ensembles.MEMBERS[norm] = tuple(m for m in ensembles.MEMBERS[norm] if m[0] != member)
    dropped = f" without {', '.join(args.drop)}" if args.drop else ""
    from robustcheck.data import load_dataset

    data = load_dataset(ROOT / "models" / "data" / "mnist-heldout.npz")
    cache = load_cache()
    command = " ".join(["python", "benchmarks/minimal_norm.py", *sys.argv[1:]])
    lines = [f"# Minimal-norm ensembles vs the reference: `{command}`",
             "", f"{platform.platform()}, torch {torch.__version__}; success verified by onnxruntime; ratio = our "
             "distance / the per-sample reference (min over the peers' full-budget runs), over samples both broke; "
             "time ratio = our wall time / foolbox C&W-L2 9 × 1,000 on the same images in the same process.", "",
             "| model | norm | attack | budget | success | mean ratio | p90 | max | share > 1.05 | median "
             "| median C&W-L2 9×1000 | mean ratio to adv_lib's best | wall (s) | time ratio |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    test_ref: dict[str, Any] = {}

    def emit(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    for name in args.models:
        entry = cache[WEIGHTS[name]]
        rows = np.asarray(entry["dataset_rows"])[: args.n]
        model = load_model(ROOT / "models" / f"{name}.onnx", parity_inputs=data.x[:16])
        where = {int(i): k for k, i in enumerate(data.index)}
        positions = np.array([where[int(r)] for r in rows])
        x, y = data.x[positions], data.y[positions]
        if (model.predict(x) != y).any():
            raise SystemExit(f"{name}: the reference images are not all classified correctly by this model")
        k = len(x) if args.cw_timing_n is None else args.cw_timing_n
        # The cached run's time covers all its images: scaled to the k timed here.
        cached = entry["attacks"]["foolbox-cw-l2"]["wall_s"] * k / len(entry["dataset_rows"])
        cw_wall = cached if args.no_cw_timing else cw_time(WEIGHTS[name], x[:k], y[:k])
        emit(f"| {name} | – | foolbox C&W-L2 | 9 × 1,000, {k} images | – | – | – | – | – | – | – | – "
             f"| {cw_wall:.1f} | 1 |")
        test_ref[name] = {"dataset_rows": rows[: args.test_n].tolist(), "reference": {}}
        for norm in args.norms:
            ref = reference(cache, WEIGHTS[name], norm)[: len(rows)]
            cw_d = _distances(entry, "foolbox-cw-l2", norm)[: len(rows)]
            peers = [_distances(entry, label, norm)[: len(rows)] for label in entry["attacks"]
                     if label.startswith("adv_lib-")]
            adv_best = np.min(peers, axis=0) if peers else np.full(len(rows), np.nan)
            test_ref[name]["reference"][norm] = [float(v) for v in ref[: args.test_n]]
            for profile in args.profiles:
                ensemble = minimal_norm(norm, profile)
                runs = [(f"min-{norm}", ensemble)]
                if args.members:
                    runs += [(label, attack) for label, attack in ensemble.members()]
                for label, attack in runs:
                    start = time.perf_counter()
                    timed = attack.run(model, x[:k], y[:k])
                    wall = time.perf_counter() - start
                    result = timed if k == len(x) else attack.run(model, x, y)
                    d = result.distances[norm]
                    s = ratio_stats(d, ref)
                    emit(f"| {name} | {norm} | {label}{dropped if label.startswith('min-') else ''} | "
                         f"{profile}: {ensemble.steps} steps | "
                         f"{result.success_rate:.0%} | {s['mean']:.3f} | {s['p90']:.3f} | {s['max']:.3f} | "
                         f"{s['above']:.0%} | {_median(d):.3f} | {_median(cw_d):.3f} | "
                         f"{ratio_stats(d, adv_best)['mean']:.3f} | {wall:.1f} | {wall / cw_wall:.3f} |")
    out = ROOT / "benchmarks" / "results" / args.out
    out.write_text("\n".join(lines) + "\n")
    TEST_REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    source = "benchmarks/minimal_norm.py (the reference of benchmarks/reference_runs.py)"
    TEST_REFERENCE.write_text(json.dumps({"source": source, "models": test_ref}, indent=1) + "\n")


if __name__ == "__main__":
    main()
