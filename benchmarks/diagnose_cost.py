"""Cost and findings of a full `robustcheck.diagnose` on each shipped model, per budget.

    python benchmarks/diagnose_cost.py [--budget ci] [--controls]

Uses the first 64 correctly classified held-out images (the ci profile's pool) and prints
the wall time and the findings (id, severity) per model. `--controls` adds the diagnostics
tests' positive and negative controls (tests/controls.py: trained networks with a masking
defence wrapped around them, exported to ONNX in a temporary folder).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def control_models(folder: Path) -> dict[str, Path]:
    """The diagnostics controls, exported to `folder` (the same recipes as tests/test_diagnostics.py)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from controls import NoisyInput, RoundedInput, ScaledSoftmax, export, train_mlp, trained_baseline

    from robustcheck.data import load_dataset

    train = load_dataset(ROOT / "models" / "data" / "t10k-images-idx3-ubyte.gz",
                         labels=ROOT / "models" / "data" / "t10k-labels-idx1-ubyte.gz", scale=1 / 255, limit=8000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "control: logits x1000 + softmax": export(ScaledSoftmax(trained_baseline()), folder / "scaled.onnx"),
            "control: input rounded to 1/255": export(RoundedInput(trained_baseline()), folder / "rounded.onnx"),
            "control: Gaussian input noise": export(NoisyInput(trained_baseline()), folder / "noisy.onnx"),
            "control: k-WTA MLP": export(train_mlp(train.x, train.y, kwta_ratio=0.1), folder / "kwta.onnx"),
            "control: plain MLP": export(train_mlp(train.x, train.y), folder / "mlp.onnx"),
            "control: baseline, dynamo export": export(trained_baseline(), folder / "dynamo.onnx", dynamo=True),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="ci", choices=["smoke", "ci", "thorough"],
                        help="the profile whose diagnostics budget to use")
    parser.add_argument("--controls", action="store_true", help="also diagnose the tests' masking controls")
    args = parser.parse_args()
    torch.set_num_threads(2)
    from robustcheck import load_model
    from robustcheck.data import correctly_classified, load_dataset
    from robustcheck.diagnostics import diagnose

    data = load_dataset(ROOT / "models" / "data" / "mnist-heldout.npz")
    models = {name: ROOT / "models" / f"{name}.onnx" for name in ("baseline", "distilled", "distilled-softmax")}
    with tempfile.TemporaryDirectory() as tmp:
        if args.controls:
            models.update(control_models(Path(tmp)))
        flag = " --controls" if args.controls else ""
        print(f"# `python benchmarks/diagnose_cost.py --budget {args.budget}{flag}`\n")
        print("| model | wall (s) | findings |\n|---|---|---|")
        for name, path in models.items():
            model = load_model(path, parity_inputs=data.x[:16])
            pool = correctly_classified(model, data.take(torch.arange(64).numpy()))
            start = time.perf_counter()
            findings = diagnose(model, pool.x, pool.y, budget=args.budget)
            elapsed = time.perf_counter() - start
            listed = ", ".join(f"{f.id} ({f.severity})" for f in findings) or "none"
            print(f"| {name} | {elapsed:.1f} | {listed} |", flush=True)


if __name__ == "__main__":
    main()
