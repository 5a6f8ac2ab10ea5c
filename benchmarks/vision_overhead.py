"""Replica overhead on real vision sizes: a CIFAR ResNet-18 and a ViT-tiny at batch 32, side by side.

    python benchmarks/vision_overhead.py [--repeats 7] [--threads 2]

For each network (plain torch, tests/vision_zoo.py: ResNet-18 = width 64, blocks 2-2-2-2 on
32×32; ViT-tiny = width 192, depth 12, 3 heads, 4×4 patches on 32×32), exported with the
TorchScript exporter at opset 17 and loaded with robustcheck, times interleaved in one process:

- native: forward+backward of the torch module (input gradient of the summed logits);
- replica: the same through `Model.torch_logits`;
- attack iterations: one iteration of C&W-L2 (Adam step and best-example bookkeeping included)
  and of PGD-L∞ (step, projection, per-step success bookkeeping), each the marginal cost: a run
  of 1 + `--iterations` iterations minus a run of 1, divided by `--iterations` (the per-run
  onnxruntime verdicts and C&W's polish are not iterations).

Goals (issue 15): replica ≤ 1.3× native; an attack iteration ≤ 1.3× a replica forward+backward.
Medians over `--repeats` interleaved rounds; the machine's load average is printed with them.
Writes benchmarks/results/vision_overhead.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import test_vision_exports as checks  # noqa: E402
import vision_zoo as zoo  # noqa: E402
from timing import median_seconds  # noqa: E402

from robustcheck import load_model  # noqa: E402
from robustcheck.attacks import PGD, CarliniWagnerL2  # noqa: E402

BATCH = 32


def networks() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    resnet = zoo.ResNet(64, (2, 2, 2, 2))
    vit = zoo.ViT(192, depth=12, heads=3, patch=4, image=32, mlp=4)
    nets = {"ResNet-18 (CIFAR)": resnet.eval(), "ViT-tiny (4×4 patches)": vit.eval()}
    return {f"{k}, {sum(p.numel() for p in v.parameters()) / 1e6:.1f}M params": v for k, v in nets.items()}


def measure(net: torch.nn.Module, path: Path, repeats: int, iterations: int) -> tuple[float, float, float, float]:
    """Median ms of native and replica forward+backward, and of one C&W-L2 and one PGD iteration."""
    model = load_model(path)
    assert model.replica is not None, model.replica_reason
    x = torch.from_numpy(zoo.natural_images(BATCH, (3, 32, 32), seed=0).numpy())
    xs = x.numpy()
    labels = model.predict(xs)

    def native_pass() -> None:
        xi = x.clone().requires_grad_(True)
        torch.autograd.grad(net(xi).sum(), xi)

    def replica_pass() -> None:
        xi = x.clone().requires_grad_(True)
        torch.autograd.grad(model.torch_logits(xi).sum(), xi)

    def cw(steps: int) -> CarliniWagnerL2:
        return CarliniWagnerL2(binary_search_steps=1, max_iterations=steps, abort_early=False, batch_size=BATCH)

    def pgd(steps: int) -> PGD:
        return PGD(epsilon=1e-4, steps=steps, norm="linf", random_start=False, batch_size=BATCH)

    def per_iteration(make: Callable[[int], CarliniWagnerL2 | PGD]) -> float:
        # The marginal cost of an iteration: a run of 1 + `iterations` minus a run of 1, so the
        # per-run work (onnxruntime's verdicts on the candidates, C&W's polish) is left out.
        walls = []
        for steps in (1, 1 + iterations):
            start = time.perf_counter()
            make(steps).run(model, xs, labels)
            walls.append(time.perf_counter() - start)
        return (walls[1] - walls[0]) / iterations

    timings: dict[str, list[float]] = {"native": [], "replica": [], "cw": [], "pgd": []}
    per_iteration(cw), per_iteration(pgd)  # warm-up
    for _ in range(repeats):
        timings["native"].append(median_seconds(native_pass, 1))
        timings["replica"].append(median_seconds(replica_pass, 1))
        timings["cw"].append(per_iteration(cw))
        timings["pgd"].append(per_iteration(pgd))
    n, r, c, p = (statistics.median(timings[k]) * 1e3 for k in ("native", "replica", "cw", "pgd"))
    return n, r, c, p


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--iterations", type=int, default=10, help="attack iterations per timed run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "vision_overhead.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    command = "python benchmarks/vision_overhead.py " + " ".join(sys.argv[1:])
    rows = [f"# Replica overhead on vision networks: `{command.strip()}`", "",
            f"{platform.platform()}, torch {torch.__version__}, {args.threads} threads, batch {BATCH}, "
            f"medians of {args.repeats} interleaved rounds; load average at start "
            f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}", "",
            "| network | native fwd+bwd (ms) | replica fwd+bwd (ms) | replica / native | C&W-L2 iteration (ms) "
            "| / replica fwd+bwd | PGD iteration (ms) | / replica fwd+bwd |",
            "|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, net in networks().items():
            path = checks.export(net, torch.rand(2, 3, 32, 32), Path(tmp) / "net.onnx", 17, dynamo=False)
            n, r, c, p = measure(net, path, args.repeats, args.iterations)
            rows.append(f"| {name} | {n:.1f} | {r:.1f} | {r / n:.2f}× | {c:.1f} | {c / r:.2f}× | {p:.1f} | "
                        f"{p / r:.2f}× |")
            print(rows[-1], flush=True)
    Path(args.out).write_text("\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
