"""Whole models exported with both torch exporters load, match onnxruntime, and have honest gradients."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from robustcheck import load_model


class SmallCNN(nn.Module):
    def __init__(self, softmax: bool = False) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AvgPool2d(2),
                                      nn.Conv2d(4, 8, 3), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(8 * 2 * 2, 10))
        self.softmax = softmax

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.head(self.features(x))
        return torch.softmax(z, dim=1) if self.softmax else z


class NHWC255(nn.Module):
    """Takes NHWC images in [0, 255], as tf/keras exports do."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 8 * 8, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.permute(0, 3, 1, 2) / 255.0)


class ResidualMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(12, 16)
        self.block = nn.Sequential(nn.LayerNorm(16), nn.Linear(16, 16), nn.GELU())
        self.out = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        return self.out(h + self.block(h))


def _export(net: nn.Module, example: torch.Tensor, path: Path, *, dynamo: bool, dynamic: bool = True) -> Path:
    torch.manual_seed(0)
    net.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            shapes = ({0: torch.export.Dim("batch")},) if dynamic else None
            torch.onnx.export(net, (example,), str(path), input_names=["x"], output_names=["y"], dynamo=True,
                              dynamic_shapes=shapes)
        else:
            axes = {"x": {0: "batch"}, "y": {0: "batch"}} if dynamic else None
            torch.onnx.export(net, (example,), str(path), input_names=["x"], output_names=["y"], opset_version=17,
                              dynamic_axes=axes, dynamo=False)
    return path


def _randomise_bn(net: nn.Module) -> nn.Module:
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return net


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("softmax", [False, True], ids=["logits", "softmax"])
def test_cnn_exports(tmp_path: Path, dynamo: bool, softmax: bool) -> None:
    torch.manual_seed(0)
    net = _randomise_bn(SmallCNN(softmax)).eval()
    model = load_model(_export(net, torch.rand(2, 1, 12, 12), tmp_path / "cnn.onnx", dynamo=dynamo))
    assert model.parity is not None and model.parity.passed, model.replica_reason
    assert model.output_spec.kind == ("cut-softmax" if softmax else "logits")
    x = np.random.default_rng(1).uniform(size=(6, 1, 12, 12)).astype(np.float32)
    np.testing.assert_allclose(model.replica_logits(x), model.oracle_logits(x), rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        xt = torch.from_numpy(x)
        reference = SmallCNN.forward(net, xt) if not softmax else net.head(net.features(xt))
    np.testing.assert_allclose(model.oracle_logits(x), reference.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_nhwc_0_255_input(tmp_path: Path, dynamo: bool) -> None:
    torch.manual_seed(0)
    path = _export(NHWC255(), torch.rand(2, 10, 10, 3) * 255, tmp_path / "nhwc.onnx", dynamo=dynamo)
    model = load_model(path, layout="NHWC", input_range=(0, 255))
    assert model.input_spec.layout == "NHWC" and model.input_range == (0.0, 255.0)
    assert model.parity.passed
    x = (np.random.default_rng(2).uniform(size=(4, 10, 10, 3)) * 255).astype(np.float32)
    np.testing.assert_allclose(model.replica_logits(x), model.oracle_logits(x), rtol=1e-4, atol=1e-4)
    assert load_model(path).input_spec.layout == "NHWC"  # inferred: last dim 3, second dim 10


def test_fixed_batch_of_one(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = _export(SmallCNN(), torch.rand(1, 1, 12, 12), tmp_path / "b1.onnx", dynamo=False, dynamic=False)
    model = load_model(path)
    assert model.input_spec.fixed_batch == 1
    x = np.random.default_rng(3).uniform(size=(7, 1, 12, 12)).astype(np.float32)
    assert model.predict(x).shape == (7,)
    np.testing.assert_allclose(model.replica_logits(x), model.oracle_logits(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("net_name", ["residual-mlp", "nhwc"])
def test_replica_gradients_match_finite_differences_of_the_oracle(tmp_path: Path, dynamo: bool, net_name: str) -> None:
    torch.manual_seed(0)
    if net_name == "residual-mlp":
        net, example, kwargs = ResidualMLP(), torch.rand(2, 12), {}
        x = np.random.default_rng(4).uniform(size=(3, 12))
        h = 1e-2
    else:
        net, example, kwargs = NHWC255(), torch.rand(2, 10, 10, 3) * 255, {"layout": "NHWC", "input_range": (0, 255)}
        x = np.random.default_rng(4).uniform(size=(3, 10, 10, 3)) * 255
        h = 2.0
    model = load_model(_export(net, example, tmp_path / "g.onnx", dynamo=dynamo), **kwargs)
    x = x.astype(np.float32)
    weights = np.random.default_rng(5).normal(size=model.num_classes)

    def loss(logits: torch.Tensor) -> torch.Tensor:
        return logits @ torch.from_numpy(weights).float()

    _, grad = model.logits_and_grad(x, loss)
    direction = np.random.default_rng(6).normal(size=x.shape).astype(np.float32)
    direction /= np.linalg.norm(direction.reshape(len(x), -1), axis=1).reshape((-1,) + (1,) * (x.ndim - 1))
    up = model.oracle_logits((x + h * direction).astype(np.float32)).astype(np.float64) @ weights
    down = model.oracle_logits((x - h * direction).astype(np.float32)).astype(np.float64) @ weights
    numeric = (up - down) / (2 * h)
    analytic = (grad.astype(np.float64) * direction).reshape(len(x), -1).sum(axis=1)
    np.testing.assert_allclose(analytic, numeric, rtol=0.05, atol=1e-3 * np.abs(numeric).max())
