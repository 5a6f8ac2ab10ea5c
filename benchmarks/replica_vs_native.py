"""Replica forward+backward against the native torch module it was exported from, side by side.

    python benchmarks/replica_vs_native.py

Builds the shipped architecture (models/mnist_cnn.py, trained baseline weights), exports it
to ONNX, loads it with robustcheck, and times one input-gradient pass (sum of logits) of the
replica and of the native module, interleaved, at batch 1 and 100; also one iteration of the
real C&W-L2 and EAD loops (Adam / FISTA step and best-example bookkeeping included; EAD also
evaluates the iterate it keeps, a second forward) against one raw replica forward+backward.
Reports medians and ratios.
"""

from __future__ import annotations

import importlib.util
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from timing import median_seconds

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 200
#: Iterations of the attack run whose mean gives one iteration's cost.
ITERATIONS_PER_RUN = 200


def _native() -> torch.nn.Module:
    spec = importlib.util.spec_from_file_location("mnist_cnn", ROOT / "models" / "mnist_cnn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    net = module.build_cnn(0.5)
    net.load_state_dict(torch.load(ROOT / "models" / "weights" / "baseline.pt"))
    return net.eval()


def main() -> None:
    torch.set_num_threads(2)
    from robustcheck import load_model
    from robustcheck.attacks import EAD, CarliniWagnerL2

    native = _native()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "baseline.onnx"
        torch.onnx.export(native, (torch.zeros(2, 1, 28, 28),), str(path), input_names=["input"],
                          output_names=["logits"], opset_version=17, dynamic_axes={"input": {0: "n"}}, dynamo=False)
        model = load_model(path)
    rows = [f"# Replica vs native: `python {' '.join(['benchmarks/replica_vs_native.py', *sys.argv[1:]])}`", "",
            f"{platform.platform()}, torch {torch.__version__}, 2 threads, median of {REPEATS}", "",
            "| batch | native fwd+bwd (ms) | replica fwd+bwd (ms) | ratio | C&W-L2 iteration (ms) | / replica fwd+bwd "
            "| EAD iteration (ms) | / replica fwd+bwd |",
            "|---|---|---|---|---|---|---|---|"]
    for batch in (1, 100):
        x = torch.from_numpy(np.random.default_rng(0).uniform(size=(batch, 1, 28, 28)).astype(np.float32))

        def native_pass(x: torch.Tensor = x) -> None:
            xi = x.clone().requires_grad_(True)
            torch.autograd.grad(native(xi).sum(), xi)

        def replica_pass(x: torch.Tensor = x) -> None:
            xi = x.clone().requires_grad_(True)
            torch.autograd.grad(model.torch_logits(xi).sum(), xi)

        xs = x.numpy()
        labels = model.predict(xs)  # the attack's starting point is correctly "classified"

        def attack_iteration(attack_class: type, xs: np.ndarray = xs, labels: np.ndarray = labels) -> float:
            """Seconds per iteration of the real attack loop (bookkeeping and Adam/FISTA included):
            a K-iteration run over K. Its setup and final oracle verification stay in, an upper
            bound that costs under 1% at K = 200; differencing two runs to cancel them doubled the
            noise instead."""
            attack = attack_class(binary_search_steps=1, max_iterations=ITERATIONS_PER_RUN, abort_early=False)
            start = time.perf_counter()
            attack.run(model, xs, labels)
            return (time.perf_counter() - start) / ITERATIONS_PER_RUN

        # Interleave the measurements so that machine noise hits both sides alike.
        native_t, replica_t, cw_t, ead_t = [], [], [], []
        attack_iteration(CarliniWagnerL2), attack_iteration(EAD)  # warm-up
        for _ in range(7):
            native_t.append(median_seconds(native_pass, REPEATS // 7, warmup=5))
            replica_t.append(median_seconds(replica_pass, REPEATS // 7, warmup=5))
            cw_t.append(attack_iteration(CarliniWagnerL2))
            ead_t.append(attack_iteration(EAD))
        n, r, c, e = (statistics.median(v) * 1e3 for v in (native_t, replica_t, cw_t, ead_t))
        rows.append(f"| {batch} | {n:.3f} | {r:.3f} | {r / n:.2f}× | {c:.3f} | {c / r:.2f}× | {e:.3f} | {e / r:.2f}× |")
        print(rows[-1], flush=True)
    out = ROOT / "benchmarks" / "results" / "replica_vs_native.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
