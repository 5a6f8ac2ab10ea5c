#!/usr/bin/env python3
"""Train robustcheck's verification reference models.

1. `certified.onnx`: a small MNIST CNN trained with interval bound propagation (IBP; Gowal et al.,
   "On the Effectiveness of Interval Bound Propagation for Training Verifiably Robust Models",
   2018): the loss mixes cross-entropy on the clean logits with cross-entropy on the worst-case
   logits that IBP bounds over the L∞ ball of radius ε_train, with ε ramped up linearly and the
   mixing weight κ going from 1 to 0.5 (the paper's schedule, shortened to this data set).
   Architecture (Gowal et al.'s "small" model, with padding): conv 4x4/2 16 - ReLU - conv 4x4/2 32 -
   ReLU - fc 100 - ReLU - fc 10.
2. `mlp-784-50-50-10.onnx`: a plainly trained 784-50-50-10 ReLU MLP (input images, flattened in
   the graph), small enough for exact MILP verification; the tests keep its golden brackets.

Data: MNIST test images 0-7999 (the shipped models' training split; 8000-9999 are held out).

    python models/train_certified.py                 # both, into models/ and tests/data/
    python models/train_certified.py --models mlp    # only the MLP

Deterministic on one machine: seeded RNGs, deterministic algorithms, fixed thread count.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TRAIN_END = 8000


def load_split(data_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("mnist_cnn", HERE / "mnist_cnn.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    x, y = module.load_idx(data_dir / "t10k-images-idx3-ubyte.gz", data_dir / "t10k-labels-idx1-ubyte.gz")
    return x[:TRAIN_END], y[:TRAIN_END], x[TRAIN_END:], y[TRAIN_END:]


def certified_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 16, 4, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 4, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 100), nn.ReLU(),
        nn.Linear(100, 10),
    )


def small_mlp() -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 50), nn.ReLU(), nn.Linear(50, 10))


def ibp_worst_logits(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """Per class j, an IBP upper bound of z_j − z_y over the L∞ ball (0 for j = y), the last layer
    folded into the margin specification as Gowal et al. do."""
    low, high = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)
    layers = list(model)
    for layer in layers[:-1]:
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            center, radius = (high + low) / 2, (high - low) / 2
            center = layer(center)
            radius = (F.conv2d(radius, layer.weight.abs(), None, layer.stride, layer.padding)
                      if isinstance(layer, nn.Conv2d) else F.linear(radius, layer.weight.abs()))
            low, high = center - radius, center + radius
        else:  # ReLU, Flatten: monotone
            low, high = layer(low), layer(high)
    last = layers[-1]
    assert isinstance(last, nn.Linear)
    w = last.weight[None] - last.weight[y][:, None]  # (B, classes, hidden): rows of e_j − e_y
    b = last.bias[None] - last.bias[y][:, None]
    center, radius = (high + low) / 2, (high - low) / 2
    return torch.einsum("bkh,bh->bk", w, center) + torch.einsum("bkh,bh->bk", w.abs(), radius) + b


def train(kind: str, x: np.ndarray, y: np.ndarray, args: argparse.Namespace, log) -> tuple[nn.Module, dict]:
    seed = args.seed * 1000 + (11 if kind == "certified" else 12)
    torch.manual_seed(seed)
    model = certified_cnn() if kind == "certified" else small_mlp()
    epochs = args.epochs if kind == "certified" else args.mlp_epochs
    data = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch_size, shuffle=True,
                                         generator=torch.Generator().manual_seed(seed + 1), drop_last=True)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps = epochs * len(loader)
    warm = args.warmup_epochs * len(loader)
    ramp = args.ramp_epochs * len(loader)
    decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    start = time.perf_counter()
    step = 0
    for epoch in range(epochs):
        model.train()
        total = seen = 0.0
        for xb, yb in loader:
            z = model(xb)
            loss = F.cross_entropy(z, yb)
            if kind == "certified":
                progress = min(1.0, max(0.0, (step - warm) / max(1, ramp)))
                eps, kappa = args.eps_train * progress, 1.0 - 0.5 * progress
                if eps > 0:
                    robust = F.cross_entropy(ibp_worst_logits(model, xb, yb, eps), yb)
                    loss = kappa * loss + (1 - kappa) * robust
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            decay.step()
            step += 1
            total += loss.item() * len(yb)
            seen += len(yb)
        log(f"  [{kind}] epoch {epoch + 1}/{epochs} loss {total / seen:.4f} ({time.perf_counter() - start:.0f}s)")
    model.eval()
    return model, {"seed": seed, "epochs": epochs, "steps": steps, "wall_time_s": round(time.perf_counter() - start, 1)}


def export(model: nn.Module, path: Path) -> dict:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(2, 1, 28, 28),), str(path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, do_constant_folding=True)
    import onnx

    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    return {"file": str(path.relative_to(ROOT)), "bytes": path.stat().st_size,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def evaluate(model: nn.Module, path: Path, x: np.ndarray, y: np.ndarray, eps: float | None) -> dict:
    import onnxruntime as ort

    logits = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    out = {"heldout_n": len(y), "heldout_accuracy_onnxruntime": float((logits.argmax(1) == y).mean()),
           "torch_onnxruntime_max_abs_diff": float(np.abs(ref - logits).max())}
    if eps is not None:
        with torch.no_grad():
            worst = ibp_worst_logits(model, torch.from_numpy(x), torch.from_numpy(y), eps)
        verified = (worst.numpy() <= 0).sum(axis=1) == worst.shape[1]  # j = y gives exactly 0
        out[f"ibp_verified_accuracy_at_{eps:g}"] = float((verified & (logits.argmax(1) == y)).mean())
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=HERE / "data")
    p.add_argument("--models", choices=("all", "certified", "mlp"), default="all")
    p.add_argument("--certified-out", type=Path, default=HERE / "certified.onnx")
    p.add_argument("--mlp-out", type=Path, default=ROOT / "tests" / "data" / "mlp-784-50-50-10.onnx")
    p.add_argument("--epochs", type=int, default=60, help="IBP training epochs (certified CNN)")
    p.add_argument("--mlp-epochs", type=int, default=30)
    p.add_argument("--warmup-epochs", type=int, default=3, help="clean epochs before ε starts to grow")
    p.add_argument("--ramp-epochs", type=int, default=30, help="epochs over which ε grows to --eps-train")
    p.add_argument("--eps-train", type=float, default=0.15)
    p.add_argument("--eps-eval", type=float, default=0.1)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--summary", type=Path, default=HERE / "certified-training-summary.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    log = lambda *a: print(*a, flush=True)  # noqa: E731
    x_train, y_train, x_held, y_held = load_split(args.data_dir)
    summary = json.loads(args.summary.read_text()) if args.summary.exists() else {}
    if args.models in ("all", "certified"):
        model, info = train("certified", x_train, y_train, args, log)
        summary["certified"] = {"training": info, "file": export(model, args.certified_out),
                                **evaluate(model, args.certified_out, x_held, y_held, args.eps_eval)}
        log(json.dumps(summary["certified"]))
    if args.models in ("all", "mlp"):
        model, info = train("mlp", x_train, y_train, args, log)
        summary["mlp"] = {"training": info, "file": export(model, args.mlp_out),
                          **evaluate(model, args.mlp_out, x_held, y_held, None)}
        log(json.dumps(summary["mlp"]))
    summary["settings"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                           if k not in ("data_dir", "summary", "certified_out", "mlp_out")}
    summary["environment"] = {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()}
    args.summary.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    main()
