"""Load time of a deep graph: a chain of Add nodes, listed in order and in reverse.

    python benchmarks/deep_graph.py [--nodes 100000] [--repeats 3]

Issue 18: 20,000 chained nodes took 127 s in the old quadratic topological sort. This builds
an N-node chain `v(i+1) = v(i) + c`, saves it, and times `load_model` end to end (file
reading and checker, output choice, ordering and pruning, the onnxruntime session, the
probe, the replica build and the parity check), best of `--repeats`, for the file in order
and in reverse order (which forces a full re-sort). Each phase is also timed on its own by
calling the same functions load_model calls, so the table shows where the time goes and how
much of it is onnxruntime's own session building. Writes benchmarks/results/deep_graph.md.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]


def chain(n: int, reverse: bool) -> onnx.ModelProto:
    nodes = [helper.make_node("Add", [f"v{i}", "c"], [f"v{i + 1}"]) for i in range(n)]
    if reverse:
        nodes.reverse()
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("v0", TensorProto.FLOAT, ["N", 3])],
                              [helper.make_tensor_value_info(f"v{n}", TensorProto.FLOAT, ["N", 3])],
                              initializer=[numpy_helper.from_array(np.array([1.0, -1.0, 0.5], np.float32), "c")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def phases(path: Path) -> dict[str, float]:
    """The steps of load_model, one at a time (same functions, same order)."""
    from robustcheck.graph_surgery import choose_output, prune_to
    from robustcheck.model import load_model
    from robustcheck.onnx_file import read_model
    from robustcheck.oracle_session import make_session
    from robustcheck.replica import build_replica

    out: dict[str, float] = {}
    out["read + checker"], (proto, _) = timed(lambda: read_model(path, 1 << 30))
    out["choose output"], (name, *_rest) = timed(lambda: choose_output(proto, None, str(path)))
    out["order + prune"], pruned = timed(lambda: prune_to(proto, name))
    out["onnxruntime session"], session = timed(lambda: make_session(pruned, str(path), None))
    x = np.random.default_rng(0).uniform(size=(16, 3)).astype(np.float32)
    out["onnxruntime run (16 rows)"], _ = timed(lambda: session.run([name], {"v0": x}))
    out["replica build"], replica = timed(lambda: build_replica(pruned, "v0", [name]))
    with torch.no_grad():
        out["replica forward (16 rows)"], _ = timed(lambda: replica(torch.from_numpy(x)))
    model = load_model(path)
    assert model.parity is not None and model.parity.passed, model.replica_reason
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # the reversed file fails onnx.checker's order check: a warning
    from robustcheck.model import load_model

    rows = [f"# Deep graph load time: `python {' '.join(['benchmarks/deep_graph.py', *sys.argv[1:]])}`", "",
            f"{platform.platform()}, torch {torch.__version__}, onnxruntime "
            f"{__import__('onnxruntime').__version__}, 1 torch thread, best of {args.repeats}", "",
            f"A chain of {args.nodes:,} Add nodes (`v(i+1) = v(i) + c`). Target (issue 18): under 10 s.", "",
            "| file order | load_model total (s) | " + " | ".join(PHASES) + " |",
            "|---|---|" + "---|" * len(PHASES)]
    with tempfile.TemporaryDirectory() as tmp:
        for reverse in (False, True):
            path = Path(tmp) / f"chain-{'reversed' if reverse else 'sorted'}.onnx"
            onnx.save_model(chain(args.nodes, reverse), str(path))
            total = min(timed(lambda: load_model(path))[0] for _ in range(args.repeats))  # noqa: B023
            parts = phases(path)
            cells = " | ".join(f"{parts[p]:.2f}" for p in PHASES)
            rows.append(f"| {'reversed' if reverse else 'sorted'} | {total:.2f} | {cells} |")
            print(rows[-1], flush=True)
    out = ROOT / "benchmarks" / "results" / "deep_graph.md"
    out.write_text("\n".join(rows) + "\n")
    print("\n".join(rows))


PHASES = ["read + checker", "choose output", "order + prune", "onnxruntime session", "onnxruntime run (16 rows)",
          "replica build", "replica forward (16 rows)"]

if __name__ == "__main__":
    main()
