"""The reference attacks of the minimal-norm benchmark, run once and cached per sample.

    python benchmarks/reference_runs.py [--n 100] [--models baseline distilled] [--only fab-l2 ...]

Per shipped model (its first `n` correctly classified held-out images) and reference attack:
every output verified by onnxruntime (label changed, finite, inside the box), its L0/L1/L2/L∞
distance per sample (null where it failed) and its wall time, written to
benchmarks/results/reference_runs_<model>.json as each attack finishes (a rerun skips what is
there). C&W-L0 runs on the first 20 images only (null beyond).
The reference of a sample in a norm is the minimum over every attack's verified output measured
in that norm: foolbox C&W-L2 and EAD at 9 × 1,000, adv_lib FMN (L0/L1/L2/L∞), DDN, FAB and PDPGD
(L1/L2/L∞) at 1,000 steps, and for L0 robustcheck's C&W-L0 and JSMA. distilled-softmax has the
distilled model's weights and logits (robustcheck cuts its Softmax): it shares its reference.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_libs import ROOT, foolbox_output, import_adv_lib, native, verified_distances  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
STEPS = 1000
#: C&W-L0 (rounds of full descents freezing pixels) runs on the first images only.
SLOW_ROWS = {"robustcheck-cw-l0": 20}


def cache_path(model_name: str) -> Path:
    return RESULTS / f"reference_runs_{model_name}.json"


def reference_attacks(net: torch.nn.Module, model: Any) -> dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """Attack label → f(x, y) returning candidate adversarial inputs (numpy, model layout)."""
    import foolbox as fb

    adv = import_adv_lib()
    fmodel = fb.PyTorchModel(net, bounds=(0, 1))

    def fool(attack: Any) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        def run(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            raw, _, _ = attack(fmodel, torch.from_numpy(x), torch.from_numpy(y), epsilons=None)
            return foolbox_output(raw.numpy(), x)
        return run

    def advlib(fn: Callable[..., torch.Tensor], **kw: Any) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        def run(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            return fn(net, torch.from_numpy(x), torch.from_numpy(y), **kw).detach().numpy()
        return run

    def ours(attack: Any) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        return lambda x, y: attack.run(model, x, y).x_adv

    from robustcheck.attacks import JSMA, CarliniWagnerL0

    norms = {"l0": 0, "l1": 1, "l2": 2, "linf": float("inf")}
    table: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
        "foolbox-cw-l2": fool(fb.attacks.L2CarliniWagnerAttack(binary_search_steps=9, steps=STEPS, stepsize=1e-2,
                                                               initial_const=1e-3)),
        "foolbox-ead": fool(fb.attacks.EADAttack(binary_search_steps=9, steps=STEPS, initial_const=1e-3,
                                                 regularization=1e-3, decision_rule="EN")),
        "adv_lib-ddn": advlib(adv.ddn, steps=STEPS, levels=None),
    }
    for label, p in norms.items():
        table[f"adv_lib-fmn-{label}"] = advlib(adv.fmn, norm=p, steps=STEPS)
    for label in ("l1", "l2", "linf"):
        table[f"adv_lib-fab-{label}"] = advlib(adv.fab, norm=norms[label], n_iter=STEPS)
        table[f"adv_lib-pdpgd-{label}"] = advlib(adv.pdpgd, norm=norms[label], num_steps=STEPS)
    table["robustcheck-jsma"] = ours(JSMA(refine_steps=0))
    # The slow ones last: FAB computes every class's gradient per step; C&W-L0 runs many rounds.
    for label in ("l1", "l2", "linf"):
        table[f"adv_lib-fab-{label}"] = table.pop(f"adv_lib-fab-{label}")
    table["robustcheck-cw-l0"] = ours(CarliniWagnerL0(refine_steps=0))
    return table


def load_cache() -> dict[str, Any]:
    """Every model's cached reference runs: model name -> entry."""
    out: dict[str, Any] = {}
    for path in sorted(RESULTS.glob("reference_runs_*.json")):
        out.update(json.loads(path.read_text()))
    return out


def reference(cache: dict[str, Any], model_name: str, norm: str) -> np.ndarray:
    """Per sample, the smallest verified distance in `norm` over every cached reference attack."""
    runs = cache[model_name]["attacks"]
    rows = [np.array([np.inf if v is None else v for v in run[norm]]) for run in runs.values()]
    return np.min(rows, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--models", nargs="+", default=["baseline", "distilled"])
    parser.add_argument("--only", nargs="*", default=None, help="attack labels to (re)run")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from robustcheck import load_model
    from robustcheck.data import correctly_classified, load_dataset

    data = load_dataset(ROOT / "models" / "data" / "mnist-heldout.npz")
    for name in args.models:
        cache = load_cache()
        model = load_model(ROOT / "models" / f"{name}.onnx", parity_inputs=data.x[:16])
        pool = correctly_classified(model, data, limit=args.n)
        entry = cache.setdefault(name, {"n": args.n, "dataset_rows": pool.index.tolist(), "attacks": {}})
        if entry["dataset_rows"] != pool.index.tolist():
            raise SystemExit(f"{cache_path(name)}: cached rows differ from this pool; delete the file to rerun")
        for label, attack in reference_attacks(native(name), model).items():
            if label in entry["attacks"] and (args.only is None or label not in args.only):
                continue
            if args.only is not None and label not in args.only:
                continue
            m = SLOW_ROWS.get(label, len(pool.x))
            start = time.perf_counter()
            x_adv = attack(pool.x[:m], pool.y[:m])
            wall = time.perf_counter() - start
            dist = verified_distances(model, pool.x[:m], pool.y[:m], x_adv)
            dist = {k: np.concatenate([v, np.full(len(pool.x) - m, np.inf)]) for k, v in dist.items()}
            entry["attacks"][label] = {"wall_s": wall, **{k: [None if not np.isfinite(v) else float(v) for v in d]
                                                          for k, d in dist.items()}}
            ok = np.isfinite(dist["l2"][:m])
            entry["attacks"][label]["rows"] = m
            print(f"{name} {label}: success {ok.mean():.0%} of {m}, wall {wall:.1f} s", flush=True)
            RESULTS.mkdir(parents=True, exist_ok=True)
            cache_path(name).write_text(json.dumps({name: entry}))


if __name__ == "__main__":
    main()
