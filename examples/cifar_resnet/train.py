#!/usr/bin/env python3
"""Train the demo: a CIFAR-style ResNet-8 on Shapes-10 (shapes.py), trained on normalised input.

    python examples/cifar_resnet/train.py            # writes everything next to this script

Writes resnet8.onnx (input: normalised NCHW [N, 3, 32, 32], output logits [N, 10]), the
held-out test images as a class-folder dataset data/test/<class>/NNN.png, and
training-summary.json (settings, seeds, normalisation, accuracy through onnxruntime,
versions, checksums). The ONNX graph expects `(x - mean) / std`; robustcheck.toml declares
that `preprocess`, so ε and distances are in pixel space.

Deterministic: seeded data, seeded torch RNG, deterministic algorithms, one thread.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import shapes
import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = nn.Sequential()
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.skip(x))


class ResNet8(nn.Module):
    """He et al.'s CIFAR ResNet with one basic block per stage (16, 32, 64 channels): 78k parameters."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.stages = nn.Sequential(Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2))
        self.head = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.adaptive_avg_pool2d(self.stages(self.stem(x)), 1).flatten(1))


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random 4-pixel-padded crops and horizontal flips (CIFAR's standard augmentation)."""
    n = len(x)
    padded = F.pad(x, (4, 4, 4, 4), mode="reflect")
    oy, ox = torch.randint(0, 9, (2, n), generator=g)
    out = torch.stack([padded[i, :, oy[i]:oy[i] + 32, ox[i]:ox[i] + 32] for i in range(n)])
    flip = torch.rand(n, generator=g) < 0.5
    out[flip] = out[flip].flip(3)
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", type=int, default=12000)
    parser.add_argument("--test-per-class", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--out-dir", type=Path, default=HERE)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    start = time.time()

    train_u8, train_y = shapes.make(args.train, seed=1)
    test_u8, test_y = shapes.make(args.test_per_class * len(shapes.CLASSES), seed=2)
    train = torch.from_numpy(train_u8).permute(0, 3, 1, 2).float() / 255
    mean = train.mean(dim=(0, 2, 3))
    std = train.std(dim=(0, 2, 3))
    norm = lambda x: (x - mean[None, :, None, None]) / std[None, :, None, None]  # noqa: E731

    net = ResNet8()
    steps_per_epoch = args.train // 128
    optimiser = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, 0.1, total_steps=args.epochs * steps_per_epoch)
    g = torch.Generator().manual_seed(3)
    labels = torch.from_numpy(train_y)
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(args.train, generator=g)
        total = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * 128:(step + 1) * 128]
            loss = F.cross_entropy(net(norm(augment(train[idx], g))), labels[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss)
        print(f"epoch {epoch + 1}: loss {total / steps_per_epoch:.3f}", flush=True)
    net.eval()

    out = args.out_dir
    folder = out / "data" / "test"
    for name in shapes.CLASSES:
        (folder / name).mkdir(parents=True, exist_ok=True)
        for old in (folder / name).glob("*.png"):
            old.unlink()
    from PIL import Image

    for i, (img, label) in enumerate(zip(test_u8, test_y)):
        Image.fromarray(img).save(folder / shapes.CLASSES[label] / f"{i:03d}.png", optimize=True)

    onnx_path = out / "resnet8.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(2, 3, 32, 32),), str(onnx_path), input_names=["normalised_image"],
                          output_names=["logits"], opset_version=17, dynamo=False,
                          dynamic_axes={"normalised_image": {0: "N"}, "logits": {0: "N"}})

    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    test = torch.from_numpy(test_u8).permute(0, 3, 1, 2).float() / 255
    (logits,) = session.run(None, {"normalised_image": norm(test).numpy()})
    with torch.no_grad():
        native = net(norm(test)).numpy()
    accuracy = float((logits.argmax(1) == test_y).mean())
    summary = {
        "command": "python examples/cifar_resnet/train.py",
        "data": {"generator": "examples/cifar_resnet/shapes.py", "classes": list(shapes.CLASSES),
                 "train": {"count": args.train, "seed": 1}, "test": {"count": len(test_y), "seed": 2,
                                                                     "folder": "data/test"}},
        "preprocess": {"mean": [round(float(v), 6) for v in mean], "std": [round(float(v), 6) for v in std]},
        "training": {"epochs": args.epochs, "batch": 128, "optimiser": "SGD nesterov momentum 0.9, wd 5e-4",
                     "schedule": "one-cycle, peak lr 0.1", "augmentation": "pad-4 random crop, horizontal flip",
                     "seconds": round(time.time() - start, 1)},
        "parameters": sum(p.numel() for p in net.parameters()),
        "test_accuracy_onnxruntime": accuracy,
        "max_abs_diff_onnxruntime_vs_torch": float(np.abs(logits - native).max()),
        "versions": {"torch": torch.__version__, "onnxruntime": ort.__version__, "python": platform.python_version()},
        "sha256": {"resnet8.onnx": sha256(onnx_path)},
    }
    (out / "training-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
