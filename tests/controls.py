"""Positive and negative controls for the diagnostics, built from trained networks.

The shipped baseline CNN (trained by models/train_mnist.py) is wrapped with the defence whose
symptom a control must show, and exported to ONNX; the plain MLP is trained here, seeded,
on the training split (a few seconds).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]


def _cnn_module():
    spec = importlib.util.spec_from_file_location("mnist_cnn", ROOT / "models" / "mnist_cnn.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def trained_baseline() -> nn.Module:
    net = _cnn_module().build_cnn(0.5)
    net.load_state_dict(torch.load(ROOT / "models" / "weights" / "baseline.pt"))
    return net.eval()


class ScaledSoftmax(nn.Module):
    """Logits × 1000 before a Softmax: a saturated probability head."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x) * 1000.0, dim=1)


class RoundedInput(nn.Module):
    """Input quantised to 1/255 before the network (Round in the graph)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.round(x * 255.0) / 255.0)


class NoisyInput(nn.Module):
    """Gaussian input noise at inference (RandomNormalLike in the graph)."""

    def __init__(self, net: nn.Module, sigma: float = 0.3) -> None:
        super().__init__()
        self.net, self.sigma = net, sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x + self.sigma * torch.randn_like(x))


class KWTA(nn.Module):
    """k-winners-take-all on the hidden layer of an MLP (Xiao et al., ICLR 2020; AttackBench's
    masking model): only the k largest activations pass, so the output jumps whenever the set
    of winners changes."""

    def __init__(self, mlp: nn.Sequential, ratio: float = 0.1) -> None:
        super().__init__()
        self.mlp, self.ratio = mlp, ratio

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.mlp[1](self.mlp[0](x))
        k = max(1, int(self.ratio * h.shape[1]))
        threshold = torch.topk(h, k, dim=1).values[:, -1:]
        h = torch.where(h >= threshold, h, torch.zeros_like(h))
        return self.mlp[3](h)


def train_mlp(x: np.ndarray, y: np.ndarray, epochs: int = 3, seed: int = 0,
              kwta_ratio: float | None = None) -> nn.Module:
    """A 784-256-10 ReLU MLP trained with Adam on (x, y); seeded and deterministic. With
    `kwta_ratio` the k-WTA layer is in place during training, as in Xiao et al."""
    torch.manual_seed(seed)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    net: nn.Module = KWTA(mlp, kwta_ratio) if kwta_ratio else mlp
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), 64):
            idx = order[i:i + 64]
            loss = nn.functional.cross_entropy(net(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def export(net: nn.Module, path: Path, *, dynamo: bool = False) -> Path:
    example = (torch.zeros(2, 1, 28, 28),)
    if dynamo:
        torch.onnx.export(net, example, str(path), input_names=["input"], output_names=["out"], dynamo=True,
                          dynamic_shapes=({0: torch.export.Dim("batch")},))
    else:
        torch.onnx.export(net, example, str(path), input_names=["input"], output_names=["out"], opset_version=17,
                          dynamic_axes={"input": {0: "batch"}, "out": {0: "batch"}}, dynamo=False)
    return path
