"""robustcheck's C&W-L2, EAD and minimal-norm L2 attacks against peer libraries, side by side,
verified by onnxruntime.

    pip install -c constraints.txt -e '.[bench]' && pip install --no-deps torchattacks==3.5.1 adv_lib==0.2.8
    python benchmarks/peers.py [--n 100] [--steps 9 --iterations 1000] [--models baseline distilled]

Peers attack the native torch module the ONNX file was exported from (models/mnist_cnn.py +
models/weights/*.pt), on its logits; robustcheck attacks the ONNX file. Every output, ours
and theirs, is judged by onnxruntime: label changed, finite, inside [0, 1]. foolbox returns a
zeros image where it fails; such rows are failures here. torchattacks' CW has no binary
search over c (one c = 1, `iterations` steps); say so when reading its row. ART runs a capped
budget on the first `--art-n` images (its C&W is plain gradient descent with a line search,
far slower per iteration); its rows say so. adv_lib 0.2.8 (imported through peer_libs'
stand-ins for torchvision and visdom) runs FMN-L2, DDN (continuous, `levels=None`), FAB-L2 and
PDPGD-L2 at `--iterations` steps, beside robustcheck's FMN-L2, DDN and `min-l2` at the same
steps. The per-sample ratios to the best of all of them are in benchmarks/minimal_norm.py.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_libs import ROOT, foolbox_output, import_adv_lib  # noqa: E402
from peer_libs import native as _native  # noqa: E402


def _verify(model, x: np.ndarray, y: np.ndarray, x_adv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x_adv = np.nan_to_num(np.asarray(x_adv, dtype=np.float32), nan=-1.0)
    ok = (model.predict(x_adv) != y) & model.in_box(x_adv, 1e-6)
    delta = (x_adv - x).reshape(len(x), -1).astype(np.float64)
    return ok, np.sqrt((delta ** 2).sum(1)), np.abs(delta).sum(1)


def _row(model_name: str, attack: str, library: str, settings: str, ok, l2, l1, wall: float) -> str:
    def stat(values: np.ndarray, fn) -> str:
        return f"{fn(values):.3f}" if len(values) else "–"
    return (f"| {model_name} | {attack} | {library} | {settings} | {ok.mean():.0%} | {stat(l2[ok], np.mean)} | "
            f"{stat(l2[ok], np.median)} | {stat(l1[ok], np.mean)} | {stat(l1[ok], np.median)} | {wall:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--steps", type=int, default=9)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--models", nargs="+", default=["baseline", "distilled"])
    parser.add_argument("--skip", nargs="*", default=[], help="libraries to skip: foolbox adv_lib torchattacks art")
    parser.add_argument("--art-n", type=int, default=20, help="images ART attacks (it is far slower)")
    parser.add_argument("--art-steps", type=int, default=5)
    parser.add_argument("--art-iterations", type=int, default=100)
    parser.add_argument("--art-only", action="store_true", help="only ART and robustcheck at ART's capped settings")
    parser.add_argument("--out", default="peers.md", help="file name under benchmarks/results/")
    args = parser.parse_args()
    torch.set_num_threads(2)
    from robustcheck import load_model
    from robustcheck.attacks import EAD, CarliniWagnerL2
    from robustcheck.data import correctly_classified, load_dataset

    data = load_dataset(ROOT / "models" / "data" / "mnist-heldout.npz")
    settings = f"{args.steps} × {args.iterations}"
    lines = [f"# Peers: `python {' '.join(['benchmarks/peers.py', *sys.argv[1:]])}`", "",
             f"{platform.platform()}, torch {torch.__version__}, {args.n} correctly classified held-out images "
             "per model; "
             "success and distances verified by onnxruntime; distances over successful samples", "",
             "| model | attack | library | settings | success | mean L2 | median L2 | mean L1 | median L1 | wall (s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]

    def emit(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    for name in args.models:
        model = load_model(ROOT / "models" / f"{name}.onnx", parity_inputs=data.x[:16])
        pool = correctly_classified(model, data, limit=args.n)
        x, y = pool.x, pool.y
        net = _native(name)
        ours = {
            "C&W L2": CarliniWagnerL2(binary_search_steps=args.steps, max_iterations=args.iterations),
            "EAD (EN, β 1e-3)": EAD(binary_search_steps=args.steps, max_iterations=args.iterations),
        }
        for label, attack in ({} if args.art_only else ours).items():
            start = time.perf_counter()
            result = attack.run(model, x, y)
            wall = time.perf_counter() - start
            emit(_row(name, label, "robustcheck", settings, *_verify(model, x, y, result.x_adv), wall))
        if "foolbox" not in args.skip and not args.art_only:
            import foolbox as fb

            fmodel = fb.PyTorchModel(net, bounds=(0, 1))
            xt, yt = torch.from_numpy(x), torch.from_numpy(y)
            for label, attack in {
                "C&W L2": fb.attacks.L2CarliniWagnerAttack(binary_search_steps=args.steps, steps=args.iterations,
                                                           stepsize=1e-2, initial_const=1e-3),
                "EAD (EN, β 1e-3)": fb.attacks.EADAttack(binary_search_steps=args.steps, steps=args.iterations,
                                                         initial_const=1e-3, regularization=1e-3, decision_rule="EN"),
            }.items():
                start = time.perf_counter()
                raw, _, _ = attack(fmodel, xt, yt, epsilons=None)
                wall = time.perf_counter() - start
                adv = foolbox_output(raw.numpy(), x)  # zeros-on-failure: a failure, not a black image
                emit(_row(name, label, "foolbox 3.3.4", settings, *_verify(model, x, y, adv), wall))
        if "adv_lib" not in args.skip and not args.art_only:
            adv_lib = import_adv_lib()
            from robustcheck.attacks import DDN, FMN, MinimalNorm

            xt, yt = torch.from_numpy(x), torch.from_numpy(y)
            steps = args.iterations
            for label, fn, kw in (("FMN L2", adv_lib.fmn, {"norm": 2, "steps": steps}),
                                  ("DDN", adv_lib.ddn, {"steps": steps, "levels": None}),
                                  ("FAB L2", adv_lib.fab, {"norm": 2, "n_iter": steps}),
                                  ("PDPGD L2", adv_lib.pdpgd, {"norm": 2, "num_steps": steps})):
                start = time.perf_counter()
                adv = fn(net, xt, yt, **kw).detach().numpy()
                wall = time.perf_counter() - start
                emit(_row(name, label, "adv_lib 0.2.8", f"{steps} steps", *_verify(model, x, y, adv), wall))
            for label, attack in {"FMN L2": FMN(norm="l2", steps=steps), "DDN": DDN(steps=steps),
                                  "min-l2 (DDN + FMN)": MinimalNorm(norm="l2", steps=steps)}.items():
                start = time.perf_counter()
                result = attack.run(model, x, y)
                wall = time.perf_counter() - start
                emit(_row(name, label, "robustcheck", f"{steps} steps", *_verify(model, x, y, result.x_adv), wall))
        if "torchattacks" not in args.skip and not args.art_only:
            import torchattacks

            start = time.perf_counter()
            cw = torchattacks.CW(net, c=1, kappa=0, steps=args.iterations, lr=1e-2)
            adv = cw(torch.from_numpy(x), torch.from_numpy(y))
            wall = time.perf_counter() - start
            emit(_row(name, "C&W L2", "torchattacks 3.5.1", f"c=1, {args.iterations} steps (no search)",
                      *_verify(model, x, y, adv.detach().numpy()), wall))
        if "art" not in args.skip:
            from art.attacks.evasion import CarliniL2Method, ElasticNet
            from art.estimators.classification import PyTorchClassifier

            classifier = PyTorchClassifier(net, loss=torch.nn.CrossEntropyLoss(), input_shape=x.shape[1:],
                                           nb_classes=10, clip_values=(0.0, 1.0))
            # ART is an order of magnitude slower per iteration: a capped budget on the first images, stated per row.
            steps, iterations = min(args.steps, args.art_steps), min(args.iterations, args.art_iterations)
            m = args.art_n
            for label, attack in {
                "C&W L2": CarliniL2Method(classifier, binary_search_steps=steps, max_iter=iterations,
                                          learning_rate=1e-2, initial_const=1e-3, batch_size=m, verbose=False),
                "EAD (EN, β 1e-3)": ElasticNet(classifier, binary_search_steps=steps, max_iter=iterations,
                                               learning_rate=1e-2, beta=1e-3, initial_const=1e-3, batch_size=m,
                                               decision_rule="EN", verbose=False),
            }.items():
                start = time.perf_counter()
                adv = attack.generate(x[:m])
                wall = time.perf_counter() - start
                emit(_row(name, label, "ART 1.20.1", f"{steps} × {iterations}, first {m} images (capped)",
                          *_verify(model, x[:m], y[:m], adv), wall))
            # robustcheck at ART's capped settings on the same images, for a like-for-like row.
            for label, attack in {
                "C&W L2": CarliniWagnerL2(binary_search_steps=steps, max_iterations=iterations),
                "EAD (EN, β 1e-3)": EAD(binary_search_steps=steps, max_iterations=iterations),
            }.items():
                start = time.perf_counter()
                result = attack.run(model, x[:m], y[:m])
                wall = time.perf_counter() - start
                emit(_row(name, label, "robustcheck", f"{steps} × {iterations}, first {m} images (ART's cap)",
                          *_verify(model, x[:m], y[:m], result.x_adv), wall))
    out = ROOT / "benchmarks" / "results" / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
