"""Peak memory of `pytest --robustcheck` on 224×224×3 inputs from an image folder, against dataset size.

    python benchmarks/memory_224.py [--images 100 400 1600] [--samples 16]

Writes a folder of N synthetic 256×256 JPEG photographs-alike (smooth gradients and blobs) in
class subfolders, a MobileNetV2-style network (tests/vision_zoo.py) taking 224×224 normalised
input, and a robustcheck.toml that resizes to 256, centre-crops 224 and declares the
normalisation; then runs the suite in a fresh process per N and reads the process's peak
resident set size (ru_maxrss). The folder is decoded a batch at a time and only the attacked
samples are kept, so the peak should not grow with N (a float32 copy of the whole folder would
add 0.6 MB per image). Writes benchmarks/results/memory_224.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import vision_zoo as zoo  # noqa: E402

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def write_suite(folder: Path, images: int, samples: int) -> None:
    from PIL import Image

    net = zoo.build("mobilenet-v2", 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(2, 3, 224, 224),), str(folder / "mobilenet.onnx"), input_names=["x"],
                          output_names=["y"], opset_version=17, dynamic_axes={"x": {0: "n"}, "y": {0: "n"}},
                          dynamo=False)
    mean = torch.tensor(MEAN).reshape(1, 3, 1, 1)
    std = torch.tensor(STD).reshape(1, 3, 1, 1)
    for start in range(0, images, 50):
        batch = zoo.natural_images(min(50, images - start), (3, 256, 256), seed=start)
        centre = batch[:, :, 16:240, 16:240]
        with torch.no_grad():
            labels = net((centre - mean) / std).argmax(1)
        for i, (img, label) in enumerate(zip(batch, labels)):
            target = folder / "data" / f"class{int(label)}"
            target.mkdir(parents=True, exist_ok=True)
            pixels = (img.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
            Image.fromarray(pixels).save(target / f"{start + i:05d}.jpg", quality=95)
    (folder / "robustcheck.toml").write_text(f"""
[defaults]
dataset = {{ images = "data", resize = 256, crop = 224 }}
classes = [{", ".join(f'"class{k}"' for k in range(10))}]
preprocess = {{ mean = {MEAN}, std = {STD} }}
samples = {samples}
min_clean_accuracy = 0.5
masking = "warn"

[[defaults.check]]
type = "robust-accuracy"
attack = "pgd-linf"
epsilon = 0.004
min = 0.0
""")


def peak_rss(folder: Path, profile: str) -> tuple[float, float, str]:
    """(peak RSS in MiB, seconds, last summary line) of one suite run in a fresh process."""
    script = ("import resource, subprocess, sys\n"
              "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
              "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
              "print((r.stdout.strip().splitlines() or [''])[-1])\n")
    command = [sys.executable, "-m", "pytest", "--robustcheck", str(folder), f"--robustcheck-profile={profile}",
               "-p", "no:cacheprovider", "-q", f"--robustcheck-report={folder / 'reports'}",
               f"--robustcheck-store={folder / '.store'}"]
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", script, *command], capture_output=True, text=True, check=True,
                         cwd=folder).stdout.splitlines()
    return int(out[0]) / 1024, time.perf_counter() - start, out[1] if len(out) > 1 else ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, nargs="+", default=[100, 400, 1600])
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "memory_224.md"))
    args = parser.parse_args()
    command = "python benchmarks/memory_224.py " + " ".join(sys.argv[1:])
    rows = [f"# Peak memory on 224×224×3 image folders: `{command.strip()}`", "",
            f"{platform.platform()}, torch {torch.__version__}; profile {args.profile}, {args.samples} attacked "
            f"samples; load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}. A float32 copy of the "
            "folder would take 0.57 MiB per image.", "",
            "| images in the folder | peak RSS (MiB) | wall (s) | pytest summary |", "|---|---|---|---|"]
    for count in args.images:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write_suite(folder, count, args.samples)
            rss, wall, summary = peak_rss(folder, args.profile)
        rows.append(f"| {count} | {rss:.0f} | {wall:.0f} | {summary} |")
        print(rows[-1], flush=True)
    Path(args.out).write_text("\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
