"""Peer attack libraries for the benchmarks: the native torch modules they attack, the adv_lib
import shim, and the onnxruntime check every peer output goes through.

Install (benchmark-only, never a runtime dependency of robustcheck; see shared/peers.md):

    pip install -c constraints.txt -e '.[bench]'
    pip install --no-deps torchattacks==3.5.1 adv_lib==0.2.8

adv_lib imports torchvision (only for its LPIPS distance) and visdom (only for its logger) when
`adv_lib.attacks` is imported; neither imports beside torch 2.13, and FMN/DDN/FAB/PDPGD/APGD call
neither, so `import_adv_lib` registers empty stand-ins for them in `sys.modules` first.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("baseline", "distilled", "distilled-softmax")
#: The weights each shipped ONNX file was exported from (distilled-softmax adds a Softmax head,
#: which robustcheck cuts; peers get the logits, foolbox issue #618).
WEIGHTS = {"baseline": "baseline", "distilled": "distilled", "distilled-softmax": "distilled"}


def native(model_name: str) -> torch.nn.Module:
    """The torch module `model_name`.onnx was exported from, in eval mode, returning logits."""
    spec = importlib.util.spec_from_file_location("mnist_cnn", ROOT / "models" / "mnist_cnn.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    net = module.build_cnn(0.5)
    net.load_state_dict(torch.load(ROOT / "models" / "weights" / f"{WEIGHTS[model_name]}.pt"))
    return net.eval()


def import_adv_lib() -> Any:
    """`adv_lib.attacks` with stand-ins for the torchvision and visdom modules it cannot import here."""
    if "adv_lib.attacks" in sys.modules:
        return sys.modules["adv_lib.attacks"]
    for name in ("torchvision", "torchvision.models", "torchvision.transforms", "visdom"):
        if name not in sys.modules:
            stub = types.ModuleType(name)
            stub.__path__ = []  # type: ignore[attr-defined]
            sys.modules[name] = stub
    sys.modules["visdom"].Visdom = object  # type: ignore[attr-defined]
    sys.modules["torchvision"].models = sys.modules["torchvision.models"]  # type: ignore[attr-defined]
    import adv_lib.attacks

    return adv_lib.attacks


def verified_distances(model: Any, x: np.ndarray, y: np.ndarray, x_adv: np.ndarray) -> dict[str, np.ndarray]:
    """Per sample L0/L1/L2/L∞ distance of a peer's output, inf where onnxruntime does not call it
    adversarial, where it leaves the box or is not finite (foolbox's zeros-on-failure included)."""
    from robustcheck.metrics import distances

    x_adv = np.asarray(x_adv, dtype=np.float32)
    finite = np.isfinite(x_adv.reshape(len(x_adv), -1)).all(axis=1)
    x_adv = np.where(finite.reshape((-1,) + (1,) * (x.ndim - 1)), x_adv, x)
    ok = finite & (model.predict(x_adv) != y) & model.in_box(x_adv, 1e-6)
    return {k: np.where(ok, v, np.inf) for k, v in distances(x, x_adv).items()}


def foolbox_output(raw: np.ndarray, x: np.ndarray) -> np.ndarray:
    """foolbox's C&W/EAD return a zeros image where they failed: map those rows back to the input."""
    adv = np.array(raw, copy=True)
    zeros = ~adv.reshape(len(adv), -1).any(axis=1)
    adv[zeros] = x[zeros]
    return adv
