"""Replica forward+backward against the native torch module it was exported from, side by side.

    python benchmarks/replica_vs_native.py

Builds the shipped architecture (models/mnist_cnn.py, trained baseline weights), exports it
to ONNX, loads it with robustcheck, and times one input-gradient pass (sum of logits) of the
replica and of the native module, interleaved, at batch 1 and 100; also one C&W-L2 iteration
(Adam step included) against one raw replica forward+backward. Reports medians and ratios.
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

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 200


def _native() -> torch.nn.Module:
    spec = importlib.util.spec_from_file_location("mnist_cnn", ROOT / "models" / "mnist_cnn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    net = module.build_cnn(0.5)
    net.load_state_dict(torch.load(ROOT / "models" / "weights" / "baseline.pt"))
    return net.eval()


def _time(fn, repeats: int = REPEATS) -> float:
    for _ in range(5):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    torch.set_num_threads(2)
    from robustcheck import load_model
    from robustcheck.attacks.carlini_wagner import _Box
    from robustcheck.attacks.objectives import f6

    native = _native()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "baseline.onnx"
        torch.onnx.export(native, (torch.zeros(2, 1, 28, 28),), str(path), input_names=["input"],
                          output_names=["logits"], opset_version=17, dynamic_axes={"input": {0: "n"}}, dynamo=False)
        model = load_model(path)
    rows = [f"# Replica vs native: `python {' '.join(['benchmarks/replica_vs_native.py', *sys.argv[1:]])}`", "",
            f"{platform.platform()}, torch {torch.__version__}, 2 threads, median of {REPEATS}", "",
            "| batch | native fwd+bwd (ms) | replica fwd+bwd (ms) | ratio | C&W-L2 iteration (ms) | iteration / replica fwd+bwd |",
            "|---|---|---|---|---|---|"]
    for batch in (1, 100):
        x = torch.from_numpy(np.random.default_rng(0).uniform(size=(batch, 1, 28, 28)).astype(np.float32))

        def native_pass() -> None:
            xi = x.clone().requires_grad_(True)
            torch.autograd.grad(native(xi).sum(), xi)

        def replica_pass() -> None:
            xi = x.clone().requires_grad_(True)
            torch.autograd.grad(model.torch_logits(xi).sum(), xi)

        box = _Box(0.0, 1.0)
        w = box.to_w(x).requires_grad_(True)
        optimizer = torch.optim.Adam([w], lr=1e-2)
        labels = torch.zeros(batch, dtype=torch.long)
        const = torch.full((batch,), 1.0)

        def cw_iteration() -> None:
            adv = box.to_x(w)
            logits = model.torch_logits(adv)
            loss = ((adv - x).flatten(1).pow(2).sum(1) + const * f6(logits, labels, False)).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        # Interleave the measurements so that machine noise hits both sides alike.
        native_t, replica_t, cw_t = [], [], []
        for _ in range(5):
            native_t.append(_time(native_pass, REPEATS // 5))
            replica_t.append(_time(replica_pass, REPEATS // 5))
            cw_t.append(_time(cw_iteration, REPEATS // 5))
        n, r, c = (statistics.median(v) * 1e3 for v in (native_t, replica_t, cw_t))
        rows.append(f"| {batch} | {n:.3f} | {r:.3f} | {r / n:.2f}× | {c:.3f} | {c / r:.2f}× |")
        print(rows[-1], flush=True)
    out = ROOT / "benchmarks" / "results" / "replica_vs_native.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
