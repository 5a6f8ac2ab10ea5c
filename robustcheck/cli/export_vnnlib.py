"""`python -m robustcheck export-vnnlib`: VNN-COMP instances for external verifiers, and their answers.

    python -m robustcheck export-vnnlib models/certified.onnx --dataset models/data/mnist-heldout.npz \\
        --epsilon 0.1 --samples 20 --out vnncomp/
    # run α,β-CROWN (or any VNN-COMP verifier) on vnncomp/instances.csv, one result file per instance
    python -m robustcheck export-vnnlib --ingest results/ --manifest vnncomp/manifest.json --tool abcrown
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HELP = "write VNN-COMP instances (logits ONNX + L-inf .vnnlib properties), or ingest a verifier's results"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m robustcheck export-vnnlib", description=HELP)
    parser.add_argument("model", nargs="?", type=Path, help="the ONNX classifier to export")
    parser.add_argument("--dataset", type=Path, help=".npz dataset (x in the model's layout, y)")
    parser.add_argument("--epsilon", type=float, help="L-inf radius, in the model's input units")
    parser.add_argument("--samples", type=int, default=10, help="first N correctly classified rows (default 10)")
    parser.add_argument("--input-range", type=float, nargs=2, default=(0.0, 1.0), metavar=("LOW", "HIGH"))
    parser.add_argument("--timeout", type=float, default=60.0, help="per-instance timeout in instances.csv")
    parser.add_argument("--out", type=Path, default=Path("vnncomp"), help="output folder (default vnncomp/)")
    parser.add_argument("--ingest", type=Path, metavar="RESULTS", help="folder of result files to judge")
    parser.add_argument("--manifest", type=Path, help="manifest.json written by the export (with --ingest)")
    parser.add_argument("--tool", default="abcrown", help="the verifier's name, as reports show it")
    args = parser.parse_args(argv)
    from robustcheck.certify import vnnlib
    from robustcheck.data import load_dataset
    from robustcheck.errors import RobustcheckError
    from robustcheck.model import load_model

    try:
        if args.ingest is not None:
            if args.manifest is None:
                parser.error("--ingest needs --manifest")
            manifest = json.loads(args.manifest.read_text())
            model = load_model(manifest["model"], input_range=tuple(manifest["input_range"]))
            data = load_dataset(manifest["dataset"])
            where = {int(r): i for i, r in enumerate(data.index)}
            x = data.x[[where[inst["row"]] for inst in manifest["instances"]]]
            verdicts = vnnlib.ingest(model, x, args.manifest, args.ingest, args.tool)
            out = args.manifest.parent / f"verdicts-{args.tool}.json"
            out.write_text(json.dumps(vnnlib.verdicts_json(verdicts), indent=2) + "\n")
            for v in verdicts:
                print(f"{v.instance}: {v.status}")
            print(f"wrote {out}")
            return 0
        if args.model is None or args.dataset is None or args.epsilon is None:
            parser.error("export needs MODEL, --dataset and --epsilon")
        model = load_model(args.model, input_range=tuple(args.input_range))
        data = load_dataset(args.dataset)
        correct = np.flatnonzero(model.predict(data.x) == data.y)[: args.samples]
        manifest_path = vnnlib.export(model, data.x[correct], data.y[correct], data.index[correct], args.epsilon,
                                      args.out, args.timeout)
        manifest = json.loads(manifest_path.read_text())
        manifest["dataset"] = str(args.dataset)
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
        print(f"wrote {len(correct)} instances to {args.out} "
              f"(instances.csv, vnnlib/, {manifest['onnx']}, manifest.json)")
        return 0
    except (RobustcheckError, ValueError, OSError) as exc:
        print(f"export-vnnlib: {exc}", file=sys.stderr)
        return 1
