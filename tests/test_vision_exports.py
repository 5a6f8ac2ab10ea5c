"""The vision families teams ship, exported by both torch exporters, through the replica.

For each family (tests/vision_zoo.py, tiny widths) and each exporter (TorchScript:
`dynamo=False`; dynamo: `dynamo=True`), one opset per run, rotating over 13-20 across the
families (the dynamo exporter emits 18 at least); the full sweep is
`python benchmarks/vision_parity.py`. Checked: onnxruntime reproduces the native module;
the replica reproduces onnxruntime to 1e-4 of the logit scale with the same argmax on random
and on real-looking inputs; and its input gradients match central finite differences of
onnxruntime within 5%.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import vision_zoo as zoo

from robustcheck import load_model
from robustcheck.model import Model

FAMILIES = list(zoo.FAMILIES)
IMAGE = 16
WIDTH = 4
#: TorchScript below 14 has no scaled_dot_product_attention (DeiT's nn.MultiheadAttention).
MIN_OPSET = {"deit": 14}


def opset_for(family: str, dynamo: bool) -> int:
    """The opset this run exports `family` at: rotating over 13-20 (dynamo: 18-20) by family."""
    i = FAMILIES.index(family)
    if dynamo:
        return 18 + i % 3
    return max(MIN_OPSET.get(family, 13), 13 + i % 8)


def export(net: torch.nn.Module, example: torch.Tensor, path: Path, opset: int, dynamo: bool) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(net, (example,), str(path), input_names=["x"], output_names=["y"], dynamo=True,
                              opset_version=opset, dynamic_shapes=({0: torch.export.Dim("batch")},),
                              verbose=False)
        else:
            torch.onnx.export(net, (example,), str(path), input_names=["x"], output_names=["y"], dynamo=False,
                              opset_version=opset, dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    return path


def exported_model(family: str, dynamo: bool, tmp: Path, opset: int | None = None) -> tuple[torch.nn.Module, Model]:
    net = zoo.build(family, WIDTH, image=IMAGE)
    shape = zoo.input_shape(family, IMAGE)
    opset = opset or opset_for(family, dynamo)
    path = export(net, torch.rand(2, *shape), tmp / f"{family}-{'dynamo' if dynamo else 'ts'}-{opset}.onnx", opset,
                  dynamo)
    return net, load_model(path, layout="NHWC" if family == "keras-nhwc" else None)


def inputs(family: str) -> dict[str, np.ndarray]:
    shape = zoo.input_shape(family, IMAGE)
    rng = np.random.default_rng(0)
    return {"random": rng.uniform(size=(8, *shape)).astype(np.float32),
            "real-looking": zoo.natural_images(8, shape, seed=1).numpy()}


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("family", FAMILIES)
def test_family_parity_and_gradients(tmp_path: Path, family: str, dynamo: bool) -> None:
    net, model = exported_model(family, dynamo, tmp_path)
    assert model.replica is not None, model.replica_reason
    for kind, x in inputs(family).items():
        oracle = model.oracle_logits(x)
        with torch.no_grad():
            native = net(torch.from_numpy(x)).numpy()
        scale = np.abs(oracle).max()
        np.testing.assert_allclose(oracle, native, atol=1e-4 * scale, err_msg=f"onnxruntime vs torch, {kind}")
        replica = model.replica_logits(x)
        gap = np.abs(replica - oracle).max()
        assert gap <= 1e-4 * scale, f"{kind}: replica off by {gap:.3g} at logit scale {scale:.3g}"
        assert (replica.argmax(1) == oracle.argmax(1)).all(), kind
    x = inputs(family)["real-looking"][:3]
    errors = [relative_gradient_error(model, x, step) for step in STEPS]
    assert min(errors) <= 0.05, f"replica gradients vs central differences of onnxruntime: {errors} at steps {STEPS}"


#: Central-difference steps (input range 1): float32 rounding dominates below, ReLU kinks and
#: curvature above. A correct gradient matches at one of them; one 5% off matches at none.
STEPS = (1e-3, 3e-3, 1e-2)


def relative_gradient_error(model: Model, x: np.ndarray, h: float) -> float:
    """Worst relative gap, over the samples, between d/dt w·logits(x + t·v) at t=0 from the
    replica's gradient and from central differences of onnxruntime (float64 accumulation).

    v is half the replica's gradient direction, half a random one: the derivative is large
    enough to measure in float32, and a gradient pointing the wrong way changes it.
    """
    weights = np.random.default_rng(5).normal(size=model.num_classes)
    _, grad = model.logits_and_grad(x, lambda z: z @ torch.from_numpy(weights).float())

    def unit(v: np.ndarray) -> np.ndarray:
        return v / np.linalg.norm(v.reshape(len(v), -1), axis=1).reshape((-1,) + (1,) * (v.ndim - 1))

    direction = unit(unit(grad) + unit(np.random.default_rng(6).normal(size=x.shape))).astype(np.float32)
    up = model.oracle_logits((x + h * direction).astype(np.float32)).astype(np.float64) @ weights
    down = model.oracle_logits((x - h * direction).astype(np.float32)).astype(np.float64) @ weights
    analytic = (grad.astype(np.float64) * direction).reshape(len(x), -1).sum(axis=1)
    numeric = (up - down) / (2 * h)
    return float(np.max(np.abs(analytic - numeric) / np.abs(numeric)))


def test_zero_dimensional_constants_keep_their_rank() -> None:
    # TorchScript exports x.shape[0] as Gather(Shape(x), <0-d constant>); a (1,) index there made
    # the ViT's cls-token Concat fail with "Tensors must have same number of dimensions".
    from robustcheck.replica.coercion import to_tensor

    for value in (np.array(0, np.int64), np.array(1.5, np.float32), np.array(True)):
        assert to_tensor(value).dim() == 0
