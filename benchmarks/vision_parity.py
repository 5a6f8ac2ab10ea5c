"""Replica parity for every vision family, both torch exporters, every opset 13-20.

    python benchmarks/vision_parity.py [--width 16] [--image 32] [--families resnet,vit]

Builds each family of tests/vision_zoo.py at a realistic width, exports it with the TorchScript
exporter (`dynamo=False`) at opsets 13-20 and with the dynamo exporter (`dynamo=True`) at the
opsets it can emit (it raises a request below 18 to 18: the table gives the opset in the file),
loads it with robustcheck and reports, on 16 random and 16 real-looking inputs: the largest
|replica - onnxruntime| relative to the logit scale, argmax agreement, and the best relative gap
between the replica's directional derivative and central differences of onnxruntime.
Writes benchmarks/results/vision_parity.md.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import test_vision_exports as checks  # noqa: E402
import vision_zoo as zoo  # noqa: E402

from robustcheck import load_model  # noqa: E402


def measure(family: str, dynamo: bool, opset: int, width: int, image: int, tmp: Path) -> dict[str, object]:
    net = zoo.build(family, width, image=image)
    shape = zoo.input_shape(family, image)
    path = tmp / f"{family}-{dynamo}-{opset}.onnx"
    try:
        checks.export(net, torch.rand(2, *shape), path, opset, dynamo)
    except Exception as exc:  # an exporter limit (e.g. attention before opset 14), not a replica result
        return {"status": f"export fails: {type(exc).__name__}"}
    actual = next(o.version for o in onnx.load(str(path), load_external_data=False).opset_import if o.domain == "")
    start = time.perf_counter()
    model = load_model(path, layout="NHWC" if family == "keras-nhwc" else None)
    load = time.perf_counter() - start
    row: dict[str, object] = {"opset": actual, "load_s": load}
    if model.replica is None:
        row["status"] = f"no replica: {model.replica_reason}"
        return row
    rng = np.random.default_rng(0)
    batches = {"random": rng.uniform(size=(16, *shape)).astype(np.float32),
               "real-looking": zoo.natural_images(16, shape, seed=1).numpy()}
    for kind, x in batches.items():
        oracle, replica = model.oracle_logits(x), model.replica_logits(x)
        row[f"{kind}_rel"] = float(np.abs(replica - oracle).max() / np.abs(oracle).max())
        row[f"{kind}_argmax"] = float((replica.argmax(1) == oracle.argmax(1)).mean())
    x = batches["real-looking"][:4]
    row["grad_gap"] = min(checks.relative_gradient_error(model, x, h) for h in checks.STEPS)
    row["status"] = "ok" if (max(row["random_rel"], row["real-looking_rel"]) <= 1e-4  # type: ignore[call-overload]
                             and min(row["random_argmax"], row["real-looking_argmax"]) == 1.0  # type: ignore[call-overload]
                             and row["grad_gap"] <= 0.05) else "FAILS A GOAL"  # type: ignore[operator]
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--image", type=int, default=32)
    parser.add_argument("--families", default=",".join(zoo.FAMILIES))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "vision_parity.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    command = "python benchmarks/vision_parity.py " + " ".join(sys.argv[1:])
    rows = [f"# Vision families through both exporters: `{command.strip()}`", "",
            f"{platform.platform()}, torch {torch.__version__}, width {args.width}, {args.image}×{args.image} inputs. "
            "Parity: max |replica − onnxruntime| / max |logit| over 16 inputs (goal ≤ 1e-4); argmax: agreement "
            "(goal 100%); gradient: best relative gap of the directional derivative against central differences "
            "of onnxruntime over steps 1e-3, 3e-3, 1e-2 (goal ≤ 5%).", "",
            "| family | exporter | opset asked | opset in file | parity random | parity real-looking | argmax | "
            "gradient gap | load (s) | status |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families.split(","):
            for dynamo in (False, True):
                for opset in (range(18, 21) if dynamo else range(13, 21)):
                    r = measure(family, dynamo, opset, args.width, args.image, Path(tmp))
                    exporter = "dynamo" if dynamo else "torchscript"
                    if "random_rel" not in r:
                        rows.append(f"| {family} | {exporter} | {opset} | {r.get('opset', '–')} | – | – | – | – | "
                                    f"{r.get('load_s', 0):.2f} | {r['status']} |")
                    else:
                        argmax = min(r["random_argmax"], r["real-looking_argmax"])  # type: ignore[call-overload]
                        rows.append(f"| {family} | {exporter} | {opset} | {r['opset']} | {r['random_rel']:.1e} | "
                                    f"{r['real-looking_rel']:.1e} | {argmax:.0%} | {r['grad_gap']:.2%} | "
                                    f"{r['load_s']:.2f} | {r['status']} |")
                    print(rows[-1], flush=True)
    Path(args.out).write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
