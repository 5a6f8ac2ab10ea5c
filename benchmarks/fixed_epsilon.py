"""Fixed-ε robust accuracy: robustcheck's AutoAttack cascade against adv_lib's APGD-CE and APGD-T.

    python benchmarks/fixed_epsilon.py [--n 100] [--profile ci] [--models ...]

Per shipped model and (norm, ε) in L∞ 0.1 / 0.2 and L2 1.0 / 1.5, on the first `n` correctly
classified held-out images: robust accuracy (share of the images no verified adversarial example
within ε breaks) from the `autoattack-<norm>` cascade at the profile's budget (minimal-norm
ensemble within ε → APGD-CE → APGD-T, plus Square Attack with `--square` on the distilled models,
where the gate's masking finding fires), beside adv_lib 0.2.8's `apgd` (CE, 100 iterations) and
`apgd_targeted` (DLR, 9 targets, 100 iterations each) on the native torch module's logits. Every
output is verified by onnxruntime. The goal: ours ≤ the best of adv_lib's + 0.5 point.
"""

from __future__ import annotations

import argparse
import collections
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_libs import MODELS, ROOT, import_adv_lib, native, verified_distances  # noqa: E402

SETTINGS = (("linf", 0.1), ("linf", 0.2), ("l2", 1.0), ("l2", 1.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--profile", default="ci")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--square", action="store_true", help="Square Attack stage on the distilled models")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="fixed_epsilon.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from robustcheck import load_model
    from robustcheck.attacks import AutoAttackCascade
    from robustcheck.data import correctly_classified, load_dataset
    from robustcheck.profiles import PROFILES

    adv = import_adv_lib()
    data = load_dataset(ROOT / "models" / "data" / "mnist-heldout.npz")
    budget = PROFILES[args.profile].attacks["autoattack"]
    lines = [f"# Fixed-ε robust accuracy: `python {' '.join(['benchmarks/fixed_epsilon.py', *sys.argv[1:]])}`", "",
             f"{platform.platform()}, torch {torch.__version__}; {args.n} correctly classified held-out images per "
             f"model; robust accuracy verified by onnxruntime; cascade budget ({args.profile}): {budget}", "",
             "| model | norm | ε | robustcheck cascade | adv_lib APGD-CE | adv_lib APGD-T | best peer + 0.5 pt | "
             "cascade broken by | cascade wall (s) | APGD-CE + APGD-T wall (s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]

    def emit(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    for name in args.models:
        model = load_model(ROOT / "models" / f"{name}.onnx", parity_inputs=data.x[:16])
        pool = correctly_classified(model, data, limit=args.n)
        x, y = pool.x, pool.y
        net = native(name)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        for norm, eps in SETTINGS:
            p = float("inf") if norm == "linf" else 2.0
            peers = {}
            start = time.perf_counter()
            for label in ("apgd-ce", "apgd-t"):
                if label == "apgd-ce":
                    out = adv.apgd(net, xt, yt, eps=eps, norm=p, loss_function="ce")
                else:
                    out = adv.apgd_targeted(net, xt, yt, eps=eps, norm=p, num_targets=9)
                d = verified_distances(model, x, y, out.detach().numpy())[norm]
                peers[label] = 1 - float((d <= eps * (1 + 1e-6)).mean())
            peer_wall = time.perf_counter() - start
            square = args.square and name != "baseline" and norm == "linf"
            cascade = AutoAttackCascade(norm=norm, epsilon=eps, square=square, **budget)
            start = time.perf_counter()
            result = cascade.run(model, x, y)
            wall = time.perf_counter() - start
            ours = result.robust_accuracy(eps)
            best = min(peers.values())
            by = collections.Counter(b for b in result.extras["broken_by"] if b)
            emit(f"| {name} | {norm} | {eps:g} | {ours:.1%} | {peers['apgd-ce']:.1%} | {peers['apgd-t']:.1%} | "
                 f"{best + 0.005:.1%} {'✓' if ours <= best + 0.005 else '✗'} | "
                 f"{', '.join(f'{k} {v}' for k, v in by.items())} | {wall:.1f} | {peer_wall:.1f} |")
    (ROOT / "benchmarks" / "results" / args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
