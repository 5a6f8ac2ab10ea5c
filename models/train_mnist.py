#!/usr/bin/env python3
"""Train robustcheck's reference MNIST models: a baseline and a defensively distilled student.

Defensive distillation (Papernot, McDaniel, Wu, Jha & Swami, 2016):

1. teacher: trained with cross-entropy on softmax(z / T);
2. student: same architecture, trained on the teacher's soft labels softmax(teacher(x) / T)
   with the loss on softmax(student(x) / T), at the same temperature T;
3. the student is deployed at T = 1, i.e. its raw logits z are the output.

The deployed logits come out roughly T times larger than a normally trained network's, so
softmax(z) saturates in float32 (exactly 1.0 for the top class, exactly 0.0 for the rest) and
the input-gradient of the cross-entropy loss is exactly zero: gradient masking, not robustness.

Data: the MNIST *test* set only (the training set is not available offline), with a fixed split:
images 0-7999 train, 8000-9999 held out (see models/data/README.md).

Outputs in --out-dir: baseline.onnx, distilled.onnx (student logits), distilled-softmax.onnx
(student + Softmax head), weights/{baseline,distilled}.pt (state_dicts for
mnist_cnn.build_cnn(width)) and training-summary.json.

Reproduce the shipped models (from the repository root):

    python models/train_mnist.py --out-dir models/

Deterministic: seeded torch RNG, seeded DataLoader order and augmentation, deterministic
algorithms, a fixed thread count (--threads, part of the recipe: a different thread count may
change float summation order and hence the last bits of the weights).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
TRAIN_END = 8000  # images [0, 8000) train; [8000, 10000) held out
HELDOUT_END = 10000
MAX_ONNX_BYTES = 2 * 1024 * 1024
SUMMARY_KEYS = ("baseline", "distilled", "teacher", "settings", "data", "environment", "wall_time_s", "files")


def _load_arch():
    """Import mnist_cnn.py from next to this file (no package import needed)."""
    name = "robustcheck_models_mnist_cnn"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / "mnist_cnn.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


arch = _load_arch()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out-dir", type=Path, default=HERE, help="where the ONNX files, weights/ and the summary go")
    p.add_argument("--data-dir", type=Path, default=HERE / "data",
                   help="holds t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz")
    p.add_argument("--train-limit", type=int, default=TRAIN_END, help="train on the first N of images 0-7999")
    p.add_argument("--eval-limit", type=int, default=None,
                   help="evaluate on the first N held-out images (default: all 2000)")
    p.add_argument("--epochs", type=int, default=60, help="epochs per model (baseline, teacher and student each)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3, help="peak Adam learning rate (linear warm-up, cosine decay)")
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--shift", type=int, default=2, help="random translation augmentation, +/- pixels (0 = off)")
    p.add_argument("--width", type=float, default=0.5, help="width multiplier of the C&W MNIST CNN")
    p.add_argument("--temperature", type=float, default=100.0, help="distillation temperature T")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (fixed for reproducibility)")
    p.add_argument("--models", choices=("all", "baseline"), default="all",
                   help="'baseline' trains only the baseline (quick reproducibility check)")
    p.add_argument("--write-heldout", action="store_true",
                   help="also (re)write DATA_DIR/mnist-heldout.npz (images 8000-9999)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if not 1 <= args.train_limit <= TRAIN_END:
        p.error(f"--train-limit must be in 1..{TRAIN_END}")
    if args.eval_limit is not None and not 1 <= args.eval_limit <= HELDOUT_END - TRAIN_END:
        p.error(f"--eval-limit must be in 1..{HELDOUT_END - TRAIN_END}")
    if args.epochs < 1 or args.batch_size < 1 or args.threads < 1:
        p.error("--epochs, --batch-size and --threads must be positive")
    if not args.temperature > 0:
        p.error("--temperature must be positive")
    return args


# --------------------------------------------------------------------------- data


def load_split(data_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y = arch.load_idx(data_dir / "t10k-images-idx3-ubyte.gz", data_dir / "t10k-labels-idx1-ubyte.gz")
    if len(x) != HELDOUT_END:
        raise ValueError(f"{data_dir}: expected the 10,000-image MNIST test set, got {len(x)} images")
    return x[:TRAIN_END], y[:TRAIN_END], x[TRAIN_END:], y[TRAIN_END:]


def write_heldout(data_dir: Path, x_held: np.ndarray, y_held: np.ndarray) -> Path:
    path = data_dir / "mnist-heldout.npz"
    index = np.arange(TRAIN_END, TRAIN_END + len(y_held), dtype=np.int64)
    np.savez_compressed(path, x=x_held.astype(np.float32), y=y_held.astype(np.int64), index=index)
    return path


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image by an independent integer offset in [-max_shift, max_shift]^2 (zero fill)."""
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=gen)
    rows = offsets[:, :1] + torch.arange(h)  # (n, h)
    cols = offsets[:, 1:] + torch.arange(w)  # (n, w)
    batch = torch.arange(n)[:, None, None]
    return padded[batch, 0, rows[:, :, None], cols[:, None, :]].unsqueeze(1)


# --------------------------------------------------------------------------- training


def train_model(kind: str, x: np.ndarray, y: np.ndarray, args: argparse.Namespace, seed: int,
                teacher: nn.Module | None = None, log=print) -> tuple[nn.Module, dict]:
    """kind: 'baseline' (CE on z), 'teacher' (CE on z/T) or 'student' (soft-label CE at T)."""
    torch.manual_seed(seed)
    model = arch.build_cnn(args.width)
    T = float(args.temperature)
    data = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    order = torch.Generator().manual_seed(seed + 1)
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch_size, shuffle=True, generator=order,
                                         drop_last=len(data) > args.batch_size, num_workers=0)
    aug = torch.Generator().manual_seed(seed + 2)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps = args.epochs * len(loader)
    warm = max(1, int(round(args.warmup_epochs * len(loader))))

    def lr_at(step: int) -> float:  # linear warm-up, then cosine to 0
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    if teacher is not None:
        teacher.eval()
    start = time.perf_counter()
    history = []
    for epoch in range(args.epochs):
        model.train()
        total, correct, seen = 0.0, 0, 0
        for xb, yb in loader:
            xb = random_shift(xb, args.shift, aug)
            z = model(xb)
            if kind == "baseline":
                loss = F.cross_entropy(z, yb)
            elif kind == "teacher":
                loss = F.cross_entropy(z / T, yb)
            elif kind == "student":
                assert teacher is not None
                with torch.no_grad():
                    soft = torch.softmax(teacher(xb) / T, dim=1)
                loss = -(soft * F.log_softmax(z / T, dim=1)).sum(dim=1).mean()
            else:
                raise ValueError(kind)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(yb)
            correct += int((z.argmax(1) == yb).sum())
            seen += len(yb)
        history.append({"epoch": epoch + 1, "loss": total / seen, "train_acc": correct / seen})
        log(f"  [{kind}] epoch {epoch + 1}/{args.epochs} loss {total / seen:.5f} "
            f"train-acc(aug) {correct / seen:.4f} ({time.perf_counter() - start:.0f}s)")
    model.eval()
    info = {"seed": seed, "epochs": args.epochs, "steps": steps, "wall_time_s": round(time.perf_counter() - start, 1),
            "final_train_loss": history[-1]["loss"], "final_train_acc_augmented": history[-1]["train_acc"]}
    return model, info


# --------------------------------------------------------------------------- export and checks


def export_onnx(module: nn.Module, path: Path, output_name: str) -> None:
    module.eval()
    dummy = torch.zeros(2, 1, 28, 28)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.onnx.export(module, (dummy,), str(path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=[output_name],
                          dynamic_axes={"input": {0: "N"}, output_name: {0: "N"}},
                          do_constant_folding=True)


def check_onnx(path: Path, module: nn.Module, probe: np.ndarray) -> dict:
    """onnx.checker, size, input/output names, dynamic batch, batch 1 and 7 agree with torch."""
    import onnx
    import onnxruntime as ort

    size = path.stat().st_size
    if size >= MAX_ONNX_BYTES:
        raise RuntimeError(f"{path}: {size} bytes, over the 2 MB limit")
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    if opset != 17:
        raise RuntimeError(f"{path}: opset {opset}, expected 17")
    ops = sorted({n.op_type for n in proto.graph.node})
    if "Dropout" in ops:
        raise RuntimeError(f"{path}: graph contains Dropout (not exported in eval mode?)")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
    if inp.name != "input" or not isinstance(inp.shape[0], str) or list(inp.shape[1:]) != [1, 28, 28]:
        raise RuntimeError(f"{path}: unexpected input {inp.name} {inp.shape}")
    for n in (1, 7):
        xb = probe[:n]
        got = sess.run(None, {"input": xb})[0]
        if got.shape != (n, 10):
            raise RuntimeError(f"{path}: batch {n} gives output shape {got.shape}")
        with torch.no_grad():
            ref = module(torch.from_numpy(xb)).numpy()
        tol = 1e-4 + 1e-5 * float(np.abs(ref).max())
        if not np.allclose(got, ref, atol=tol, rtol=0):
            raise RuntimeError(f"{path}: onnxruntime and torch disagree at batch {n} "
                               f"(max |diff| {np.abs(got - ref).max():.3g} > {tol:.3g})")
    return {"file": path.name, "bytes": size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "opset": opset, "input": inp.name, "input_shape": [str(d) for d in inp.shape], "output": out.name,
            "ops": ops}


def ort_outputs(path: Path, x: np.ndarray, batch: int = 500) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {"input": x[i:i + batch]})[0] for i in range(0, len(x), batch)])


def zero_gradient_fractions(module: nn.Module, x: np.ndarray, y: np.ndarray, batch: int = 250) -> dict:
    """Fraction of inputs whose float32 input-gradient of cross-entropy is exactly zero (every pixel).

    'softmax_then_log': probs = softmax(logits) in float32, loss = -log(probs[y]) (how old
    softmax-based attacks, e.g. on a model exporting probabilities, compute it);
    'cross_entropy': F.cross_entropy(logits, y) (fused log-softmax, numerically stabler).
    """
    module.eval()
    counts = {"softmax_then_log": 0, "cross_entropy": 0}
    for i in range(0, len(x), batch):
        yb = torch.from_numpy(y[i:i + batch])
        for key in counts:
            xb = torch.from_numpy(x[i:i + batch]).clone().requires_grad_(True)
            z = module(xb)
            if key == "softmax_then_log":
                probs = torch.softmax(z, dim=1)
                loss = -torch.log(probs.gather(1, yb[:, None])).sum()
            else:
                loss = F.cross_entropy(z, yb, reduction="sum")
            (g,) = torch.autograd.grad(loss, xb)  # eval mode: rows independent, sum = per-row losses
            counts[key] += int((g.flatten(1) == 0).all(dim=1).sum())
    n = len(x)
    return {"n": n, **{f"zero_grad_fraction_{k}": (counts[k] / n if n else float("nan")) for k in counts},
            **{f"zero_grad_count_{k}": counts[k] for k in counts}}


def evaluate(name: str, onnx_path: Path, module: nn.Module, x: np.ndarray, y: np.ndarray,
             softmax_path: Path | None = None) -> dict:
    logits = ort_outputs(onnx_path, x)
    pred = logits.argmax(1)
    correct = pred == y
    top2 = np.sort(logits, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    with torch.no_grad():
        torch_logits = module(torch.from_numpy(x)).numpy()
    out = {
        "heldout_n": int(len(y)),
        "heldout_accuracy_onnxruntime": float(correct.mean()),
        "heldout_errors": int((~correct).sum()),
        "mean_abs_logit": float(np.abs(logits).mean()),
        "median_top1_top2_margin": float(np.median(margin)),
        "max_abs_logit": float(np.abs(logits).max()),
        "torch_onnxruntime_max_abs_diff": float(np.abs(torch_logits - logits).max()),
        "zero_gradient_on_correct": zero_gradient_fractions(module, x[correct], y[correct]),
    }
    if softmax_path is not None:
        probs = ort_outputs(softmax_path, x)
        p_true = probs[np.arange(len(y)), y]
        out["softmax_model"] = {
            "heldout_accuracy_onnxruntime": float((probs.argmax(1) == y).mean()),
            "max_abs_row_sum_minus_1": float(np.abs(probs.sum(1) - 1).max()),
            "fraction_top_prob_exactly_1": float((probs.max(1) == 1.0).mean()),
            "fraction_correct_with_p_true_exactly_1":
                float((p_true[correct] == 1.0).mean()) if correct.any() else float("nan"),
        }
    return out


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict:
    """Train, export, check and summarise; returns the summary. Restores torch's global settings."""
    args = parse_args(argv)
    saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
             getattr(torch.backends.mkldnn, "deterministic", None))
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    if saved[2] is not None:
        torch.backends.mkldnn.deterministic = True
    try:
        return _run(args, argv)
    finally:
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1])
        if saved[2] is not None:
            torch.backends.mkldnn.deterministic = saved[2]


def _run(args: argparse.Namespace, argv: list[str] | None) -> dict:
    log = (lambda *a, **k: None) if args.quiet else (lambda *a, **k: print(*a, **k, flush=True))
    t0 = time.perf_counter()
    x_train, y_train, x_held, y_held = load_split(args.data_dir)
    if args.write_heldout:
        log(f"wrote {write_heldout(args.data_dir, x_held, y_held)}")
    x_train, y_train = x_train[: args.train_limit], y_train[: args.train_limit]
    n_eval = args.eval_limit or len(y_held)
    x_eval, y_eval = x_held[:n_eval], y_held[:n_eval]
    out = args.out_dir
    (out / "weights").mkdir(parents=True, exist_ok=True)
    log(f"torch {torch.__version__}, {args.threads} thread(s); train on images 0-{len(y_train) - 1}, "
        f"evaluate on {TRAIN_END}-{TRAIN_END + n_eval - 1}; width {args.width}, T {args.temperature}, seed {args.seed}")

    summary: dict = {"files": {}}

    # (1) baseline
    log("training baseline (cross-entropy on z)")
    baseline, binfo = train_model("baseline", x_train, y_train, args, seed=args.seed * 1000 + 1, log=log)
    torch.save(baseline.state_dict(), out / "weights" / "baseline.pt")
    export_onnx(baseline, out / "baseline.onnx", "logits")
    summary["files"]["baseline.onnx"] = check_onnx(out / "baseline.onnx", baseline, x_eval)
    summary["baseline"] = {"training": binfo, **evaluate("baseline", out / "baseline.onnx", baseline, x_eval, y_eval)}
    log(f"  baseline: held-out accuracy (onnxruntime) {summary['baseline']['heldout_accuracy_onnxruntime']:.4f}")

    if args.models == "all":
        T = float(args.temperature)
        # (2) teacher at temperature T
        log(f"training teacher (cross-entropy on softmax(z/{T:g}))")
        teacher, tinfo = train_model("teacher", x_train, y_train, args, seed=args.seed * 1000 + 2, log=log)
        with torch.no_grad():
            t_logits = teacher(torch.from_numpy(x_eval)).numpy()
        summary["teacher"] = {"training": tinfo, "shipped": False,
                              "heldout_accuracy_torch": float((t_logits.argmax(1) == y_eval).mean()),
                              "mean_abs_logit": float(np.abs(t_logits).mean())}
        log(f"  teacher: held-out accuracy (torch) {summary['teacher']['heldout_accuracy_torch']:.4f}")

        # (3) student on the teacher's soft labels at T, deployed at T = 1
        log(f"training student (soft labels softmax(teacher(x)/{T:g}), loss on softmax(z/{T:g}))")
        student, sinfo = train_model("student", x_train, y_train, args, seed=args.seed * 1000 + 3,
                                     teacher=teacher, log=log)
        torch.save(student.state_dict(), out / "weights" / "distilled.pt")
        export_onnx(student, out / "distilled.onnx", "logits")
        head = nn.Sequential(student, nn.Softmax(dim=1)).eval()
        export_onnx(head, out / "distilled-softmax.onnx", "probabilities")
        summary["files"]["distilled.onnx"] = check_onnx(out / "distilled.onnx", student, x_eval)
        summary["files"]["distilled-softmax.onnx"] = check_onnx(out / "distilled-softmax.onnx", head, x_eval)
        summary["distilled"] = {"training": sinfo, "deployed_temperature": 1.0,
                                **evaluate("distilled", out / "distilled.onnx", student, x_eval, y_eval,
                                           softmax_path=out / "distilled-softmax.onnx")}
        ratio = summary["distilled"]["mean_abs_logit"] / summary["baseline"]["mean_abs_logit"]
        summary["distilled"]["mean_abs_logit_ratio_to_baseline"] = ratio
        log(f"  distilled: held-out accuracy (onnxruntime) {summary['distilled']['heldout_accuracy_onnxruntime']:.4f}, "
            f"mean |logit| {ratio:.1f}x the baseline's")
    else:
        summary["teacher"] = None
        summary["distilled"] = None

    for name in ("baseline.pt", "distilled.pt"):
        p = out / "weights" / name
        if p.exists() and (name == "baseline.pt" or args.models == "all"):
            summary["files"][f"weights/{name}"] = {"bytes": p.stat().st_size,
                                                  "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
    summary["settings"] = {
        "architecture": f"C&W MNIST CNN x{args.width} (mnist_cnn.build_cnn(width={args.width}))",
        "width": args.width, "temperature": args.temperature, "epochs_per_model": args.epochs,
        "batch_size": args.batch_size, "optimizer": "Adam", "peak_lr": args.lr,
        "lr_schedule": f"linear warm-up {args.warmup_epochs} epoch(s), cosine decay to 0, per step",
        "augmentation": f"random integer shift +/-{args.shift} px (zero fill)" if args.shift else "none",
        "dropout": 0.5, "seed": args.seed,
        "seeds": {"baseline": args.seed * 1000 + 1, "teacher": args.seed * 1000 + 2, "student": args.seed * 1000 + 3,
                  "note": "each model: torch.manual_seed(s); DataLoader generator s+1; augmentation generator s+2"},
        "threads": args.threads, "deterministic_algorithms": True, "models": args.models,
        "student_soft_labels": "computed online on each augmented batch by the teacher in eval mode",
        "argv": list(argv) if argv is not None else sys.argv[1:],
    }
    summary["data"] = {"source": "MNIST test set (t10k), LeCun, Cortes & Burges, CC BY-SA 3.0",
                       "train_indices": [0, len(y_train) - 1], "heldout_indices": [TRAIN_END, TRAIN_END + n_eval - 1],
                       "train_n": int(len(y_train)), "heldout_n": int(n_eval)}
    import onnx
    import onnxruntime
    summary["environment"] = {"torch": torch.__version__, "onnx": onnx.__version__,
                              "onnxruntime": onnxruntime.__version__,
                              "numpy": np.__version__, "python": platform.python_version(),
                              "platform": platform.platform(), "cpu_count": os.cpu_count()}
    summary["wall_time_s"] = round(time.perf_counter() - t0, 1)
    ordered = {k: summary[k] for k in SUMMARY_KEYS}
    (out / "training-summary.json").write_text(json.dumps(ordered, indent=2) + "\n")
    log(f"done in {summary['wall_time_s']:.0f}s; summary in {out / 'training-summary.json'}")
    return ordered


if __name__ == "__main__":
    main()
