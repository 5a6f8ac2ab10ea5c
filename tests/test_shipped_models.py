"""The shipped reference models meet their quality bars, measured here through onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import MODELS


@pytest.mark.parametrize(("name", "bar"), [("baseline", 0.98), ("distilled", 0.975), ("distilled-softmax", 0.975)])
def test_heldout_accuracy(shipped, heldout, name: str, bar: float) -> None:
    model = shipped(name)
    assert len(heldout) == 2000 and heldout.index[0] == 8000
    accuracy = float((model.predict(heldout.x) == heldout.y).mean())
    assert accuracy >= bar, f"{name}: {accuracy:.4f}"


def test_distillation_inflates_the_logits(shipped, heldout) -> None:
    scale = {n: float(np.abs(shipped(n).oracle_logits(heldout.x)).mean()) for n in ("baseline", "distilled")}
    assert scale["distilled"] >= 20 * scale["baseline"], scale


def test_softmax_head_is_cut_and_matches_the_logits_model(shipped, heldout) -> None:
    logits, softmax = shipped("distilled"), shipped("distilled-softmax")
    assert logits.output_spec.kind == "logits"
    assert softmax.output_spec.kind == "cut-softmax"
    assert softmax.replica is not None and softmax.parity.passed
    x = heldout.x[:64]
    reference = logits.oracle_logits(x)
    atol = 1e-3 + 1e-5 * np.abs(reference).max()
    np.testing.assert_allclose(softmax.replica_logits(x), reference, rtol=1e-5, atol=atol)
    np.testing.assert_array_equal(softmax.predict(x), logits.predict(x))


def test_distilled_softmax_saturates_in_float32(shipped, heldout) -> None:
    import torch

    model = shipped("distilled")
    x = torch.from_numpy(heldout.x[:200]).requires_grad_(True)
    y = torch.from_numpy(heldout.y[:200])
    loss = torch.nn.functional.cross_entropy(model.torch_logits(x), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    zero = (grad.flatten(1).abs().amax(dim=1) == 0).float().mean().item()
    assert zero >= 0.9, f"only {zero:.1%} of the input gradients vanish"


@pytest.mark.parametrize("name", ["baseline", "distilled", "distilled-softmax"])
def test_files_are_small(name: str) -> None:
    assert (MODELS / f"{name}.onnx").stat().st_size < 2 * 1024 * 1024
