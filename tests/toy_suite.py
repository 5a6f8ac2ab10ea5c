"""A small, real, trained suite for plugin tests: a softmax-regression classifier on Gaussian blobs.

Trained in numpy (a few hundred gradient steps, seeded), exported with onnx.helper, with its
dataset as .npz and a robustcheck.toml. Small enough that a whole plugin run takes seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FEATURES = 8
CLASSES = 3


def make_data(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0.25, 0.75, size=(CLASSES, FEATURES))
    y = rng.integers(0, CLASSES, size=n)
    x = np.clip(centres[y] + rng.normal(scale=0.06, size=(n, FEATURES)), 0.0, 1.0).astype(np.float32)
    return x, y.astype(np.int64)


def train(x: np.ndarray, y: np.ndarray, steps: int = 400, lr: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    w = np.zeros((FEATURES, CLASSES))
    b = np.zeros(CLASSES)
    onehot = np.eye(CLASSES)[y]
    for _ in range(steps):
        z = x @ w + b
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) / len(x)
        w -= lr * x.T @ g
        b -= lr * g.sum(axis=0)
    return w.astype(np.float32), b.astype(np.float32)


def export(path: Path, w: np.ndarray, b: np.ndarray, *, softmax: bool = False, doc: str = "") -> Path:
    nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["logits"])]
    out = "logits"
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=-1))
        out = "probs"
    graph = helper.make_graph(nodes, "toy", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", FEATURES])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", CLASSES])],
                              initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], doc_string=doc)
    onnx.save_model(model, str(path))
    return path


TOML = """
[defaults]
dataset = "data.npz"
samples = 16
min_clean_accuracy = 0.9
masking = "warn"

[[defaults.check]]
type = "robust"
attack = "cw-l2"
epsilon = {robust_eps}

[[defaults.check]]
type = "robust-accuracy"
attack = "cw-l2"
epsilon = {gate_eps}
min = {gate_min}
"""


def write_suite(folder: Path, *, robust_eps: float = 1e-3, gate_eps: float = 1e-3, gate_min: float = 0.5,
                models: tuple[str, ...] = ("toy",), toml: str | None = None) -> Path:
    """Write models, data.npz and robustcheck.toml into `folder`; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    x, y = make_data()
    w, b = train(x, y)
    np.savez_compressed(folder / "data.npz", x=x, y=y)
    for name in models:
        export(folder / f"{name}.onnx", w, b)
    text = toml if toml is not None else TOML.format(robust_eps=robust_eps, gate_eps=gate_eps, gate_min=gate_min)
    (folder / "robustcheck.toml").write_text(text)
    return folder
