"""Twins of the shipped baseline for the adaptive-attack tests and benchmarks (issue 14).

Each twin is the trained baseline CNN (models/weights/baseline.pt) behind a classic false
defence, or its quantized or fixed-batch export; every one is built here, from the shipped
weights and the MNIST training split (images 0-7999, never the held-out images 8000-9999 the
tests evaluate on):

| twin | graph |
|---|---|
| `rounded` | input rounded to 1/255 (Mul, Round, Div) before the network |
| `3bit` | input rounded to 1/7, three bits (Round) |
| `thermometer` | 16-level thermometer code (Greater against 16 thresholds, Cast), decoded by its mean |
| `noise` | Gaussian input noise, σ = NOISE_SIGMA (RandomNormalLike) at inference |
| `int8-qdq` | static int8 quantization, QDQ format, per-channel weights (onnxruntime.quantization) |
| `int8-qlinear` | static int8 quantization, operator format (QLinearConv, QGemm, QuantizeLinear) |
| `uint8-dynamic` | dynamic uint8 quantization (DynamicQuantizeLinear, ConvInteger, MatMulInteger) |
| `batch1` | the float baseline exported for batch 1 with constant Reshape shapes [1, 512] |

Static quantization is calibrated (MinMax) on CALIBRATION_IMAGES images of the training split.
Building all of them takes a few seconds: `python tests/twins.py OUT_DIR` writes them to a folder.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from controls import ROOT, RoundedInput, export, trained_baseline
from torch import nn

NOISE_SIGMA = 0.2
THERMOMETER_LEVELS = 16
CALIBRATION_IMAGES = 200
FLOAT_TWINS = ("rounded", "3bit", "thermometer", "noise", "batch1")
QUANTIZED_TWINS = ("int8-qdq", "int8-qlinear", "uint8-dynamic")
TWINS = FLOAT_TWINS + QUANTIZED_TWINS


class QuantizedInput(nn.Module):
    """Input rounded to `levels - 1` steps over [0, 1] (Round in the graph)."""

    def __init__(self, net: nn.Module, levels: int) -> None:
        super().__init__()
        self.net, self.steps = net, float(levels - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.round(x * self.steps) / self.steps)


class Thermometer(nn.Module):
    """Buckman et al. (ICLR 2018)'s thermometer code, x > (i + 0.5) / levels per channel i, read
    back by its mean: the network sees the input on a 17-level staircase."""

    def __init__(self, net: nn.Module, levels: int = THERMOMETER_LEVELS) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("thresholds", ((torch.arange(levels) + 0.5) / levels).reshape(1, levels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        code = (x > self.thresholds).float()
        return self.net(code.mean(dim=1, keepdim=True))


class GaussianNoise(nn.Module):
    def __init__(self, net: nn.Module, sigma: float = NOISE_SIGMA) -> None:
        super().__init__()
        self.net, self.sigma = net, sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x + self.sigma * torch.randn_like(x))


class BatchOne(nn.Module):
    """The baseline with its flatten written as reshape(1, 512): a constant shape in the graph."""

    def __init__(self, net: nn.Sequential) -> None:
        super().__init__()
        self.features, self.head = net[:10], net[11:]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).reshape(1, 512))


def calibration_images() -> np.ndarray:
    from robustcheck.data import load_dataset

    data = load_dataset(ROOT / "models" / "data" / "t10k-images-idx3-ubyte.gz",
                        labels=ROOT / "models" / "data" / "t10k-labels-idx1-ubyte.gz", scale=1 / 255, limit=8000)
    return data.x[:: 8000 // CALIBRATION_IMAGES][:CALIBRATION_IMAGES]


def _quantize(name: str, float_model: Path, out: Path) -> Path:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = out.with_name(out.stem + "-prepared.onnx")
    quant_pre_process(str(float_model), str(prepared))
    if name == "uint8-dynamic":
        quantize_dynamic(str(prepared), str(out), weight_type=QuantType.QUInt8)
    else:
        images = calibration_images()

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.rows = iter(range(len(images)))

            def get_next(self) -> dict[str, np.ndarray] | None:
                i = next(self.rows, None)
                return None if i is None else {"input": images[i:i + 1]}

        fmt = QuantFormat.QDQ if name == "int8-qdq" else QuantFormat.QOperator
        quantize_static(str(prepared), str(out), Reader(), quant_format=fmt, activation_type=QuantType.QInt8,
                        weight_type=QuantType.QInt8, per_channel=name == "int8-qdq")
    prepared.unlink()
    return out


def build_twins(folder: Path, names: Iterable[str] = TWINS) -> dict[str, Path]:
    """Write the named twins as `<folder>/<name>.onnx`; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    paths: dict[str, Path] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrappers = {"rounded": lambda: RoundedInput(trained_baseline()),
                    "3bit": lambda: QuantizedInput(trained_baseline(), 8),
                    "thermometer": lambda: Thermometer(trained_baseline()),
                    "noise": lambda: GaussianNoise(trained_baseline())}
        for name in names:
            path = folder / f"{name}.onnx"
            if name in wrappers:
                paths[name] = export(wrappers[name](), path)
            elif name == "batch1":
                torch.onnx.export(BatchOne(trained_baseline()), (torch.zeros(1, 1, 28, 28),), str(path),
                                  input_names=["input"], output_names=["out"], opset_version=17, dynamo=False)
                paths[name] = path
            elif name in QUANTIZED_TWINS:
                paths[name] = _quantize(name, ROOT / "models" / "baseline.onnx", path)
            else:
                raise ValueError(f"unknown twin {name!r}; known: {', '.join(TWINS)}")
    return paths


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python tests/twins.py OUT_DIR [twin ...]")
    for twin, where in build_twins(Path(sys.argv[1]), sys.argv[2:] or TWINS).items():
        print(f"{twin}: {where}")
