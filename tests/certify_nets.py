"""Small ONNX networks for the certifier's tests, written node by node with onnx.helper.

`Builder` appends nodes with random constant weights (seeded) and writes a model file that
`load_model` reads like any other; `OP_CASES` is one small network per supported operator
(and operator variant), each with ReLUs around it so the bounds are not trivial.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper


class Builder:
    """A graph under construction: `x` is the current variable tensor's name."""

    def __init__(self, input_shape: tuple[int, ...], seed: int = 0, scale: float = 1.0) -> None:
        self.rng = np.random.default_rng(seed)
        self.input_shape = input_shape
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.x = "input"
        self.shape = (1,) + tuple(input_shape)
        self.scale = scale
        self._n = 0

    def name(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def const(self, value: np.ndarray, prefix: str = "c") -> str:
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def weight(self, *shape: int, scale: float | None = None) -> str:
        s = self.scale / np.sqrt(max(1, int(np.prod(shape[1:])))) if scale is None else scale
        return self.const((self.rng.standard_normal(shape) * s * 1.5).astype(np.float32), "w")

    def op(self, op_type: str, inputs: list[str], shape: tuple[int, ...], **attrs: Any) -> str:
        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        self.x, self.shape = out, shape
        return out

    # -- common layers --------------------------------------------------------------------------
    def gemm(self, units: int) -> str:
        fan_in = self.shape[-1]
        return self.op("Gemm", [self.x, self.weight(units, fan_in), self.weight(units, scale=0.3)], (1, units),
                       transB=1)

    def conv(self, out_ch: int, k: int, *, stride: int = 1, pad: int | list[int] = 0, dilation: int = 1,
             groups: int = 1) -> str:
        _, c, h, w = self.shape
        pads = [pad] * 4 if isinstance(pad, int) else pad
        oh = (h + pads[0] + pads[2] - dilation * (k - 1) - 1) // stride + 1
        ow = (w + pads[1] + pads[3] - dilation * (k - 1) - 1) // stride + 1
        weight = self.weight(out_ch, c // groups, k, k)
        return self.op("Conv", [self.x, weight, self.weight(out_ch, scale=0.3)], (1, out_ch, oh, ow),
                       kernel_shape=[k, k], strides=[stride, stride], pads=pads, dilations=[dilation, dilation],
                       group=groups)

    def relu(self) -> str:
        return self.op("Relu", [self.x], self.shape)

    def flatten(self) -> str:
        return self.op("Flatten", [self.x], (1, int(np.prod(self.shape[1:]))), axis=1)

    def head(self, classes: int = 3) -> str:
        if len(self.shape) > 2:
            self.flatten()
        return self.gemm(classes)

    def save(self, path: Path, opset: int = 17) -> Path:
        graph = helper.make_graph(
            self.nodes, "certify-test",
            [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["N", *self.input_shape])],
            [helper.make_tensor_value_info(self.x, onnx.TensorProto.FLOAT, ["N", self.shape[-1]])],
            initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        path.write_bytes(model.SerializeToString())
        return path


def random_mlp(path: Path, seed: int, sizes: list[int], activation: str = "Relu", alpha: float = 0.1) -> Path:
    """input (sizes[0],) → [Gemm → activation]* → Gemm(sizes[-1])."""
    b = Builder((sizes[0],), seed)
    for units in sizes[1:-1]:
        b.gemm(units)
        if activation == "Relu":
            b.relu()
        else:
            b.op("LeakyRelu", [b.x], b.shape, alpha=alpha)
    b.gemm(sizes[-1])
    return b.save(path)


def random_cnn(path: Path, seed: int, channels: int = 3, pool: str = "MaxPool") -> Path:
    """input (1, 8, 8) → conv → ReLU → pool → conv → ReLU → flatten → Gemm(3)."""
    b = Builder((1, 8, 8), seed)
    b.conv(channels, 3, pad=1)
    b.relu()
    _, c, h, w = b.shape
    b.op(pool, [b.x], (1, c, h // 2, w // 2), kernel_shape=[2, 2], strides=[2, 2])
    b.conv(channels, 3, stride=1)
    b.relu()
    b.head(3)
    return b.save(path)


def _residual(b: Builder) -> None:
    b.gemm(6)
    b.relu()
    skip = b.x
    b.gemm(6)
    other = b.x
    b.op("Add", [skip, other], (1, 6))
    b.relu()
    b.op("Sub", [b.x, skip], (1, 6))


def _conv_variants(b: Builder) -> None:
    b.conv(4, 3, stride=2, pad=1)
    b.relu()
    b.conv(4, 2, dilation=2, groups=2, pad=[0, 1, 1, 0])


def _affine_constants(b: Builder) -> None:
    b.gemm(5)
    b.relu()
    b.op("Sub", [b.const(np.float32([0.5, -0.2, 0.1, 0.0, 0.3])), b.x], (1, 5))
    b.op("Mul", [b.x, b.const(np.float32([1.5, -2.0, 0.5, 1.0, -0.7]))], (1, 5))
    b.op("Div", [b.x, b.const(np.float32(-1.3))], (1, 5))
    b.op("Add", [b.const(np.float32([0.2, 0.1, -0.4, 0.0, 0.6])), b.x], (1, 5))


def _matmul(b: Builder) -> None:
    b.op("MatMul", [b.x, b.weight(b.shape[-1], 6)], (1, 6))
    b.relu()
    b.op("Reshape", [b.x, b.const(np.int64([-1, 6, 1]))], (1, 6, 1))
    b.op("MatMul", [b.weight(5, 6), b.x], (1, 5, 1))
    b.op("Transpose", [b.x], (1, 1, 5), perm=[0, 2, 1])
    b.op("Reshape", [b.x, b.const(np.int64([-1, 5]))], (1, 5))


def _batchnorm(b: Builder) -> None:
    b.conv(3, 3, pad=1)
    c = b.shape[1]
    rng = b.rng
    b.op("BatchNormalization", [b.x, b.const(rng.uniform(-2, 2, c).astype(np.float32)),
                                b.const(rng.uniform(-1, 1, c).astype(np.float32)),
                                b.const(rng.uniform(-1, 1, c).astype(np.float32)),
                                b.const(rng.uniform(0.2, 2, c).astype(np.float32))], b.shape, epsilon=1e-3)


def _transpose_image(b: Builder) -> None:
    b.conv(3, 3)
    b.relu()
    _, c, h, w = b.shape
    b.op("Transpose", [b.x], (1, h, w, c), perm=[0, 2, 3, 1])
    b.op("Reshape", [b.x, b.const(np.int64([-1, h * w, c]))], (1, h * w, c))
    b.op("Reshape", [b.x, b.const(np.int64([-1, h * w * c]))], (1, h * w * c))


def _pool(op: str, **attrs: Any) -> Callable[[Builder], None]:
    def build(b: Builder) -> None:
        b.conv(3, 3, pad=1)
        b.relu()
        _, c, h, w = b.shape
        k = attrs.get("kernel_shape", [1])[0]
        s = attrs.get("strides", [1])[0]
        p = attrs.get("pads", [0] * 4)
        ceil = attrs.get("ceil_mode", 0)
        size = (h + p[0] + p[2] - k + (s - 1 if ceil else 0)) // s + 1
        b.op(op, [b.x], (1, c, size, size), **attrs)
    return build


def _global_pool(b: Builder) -> None:
    b.conv(4, 3, pad=1)
    b.relu()
    b.op("GlobalAveragePool", [b.x], (1, 4, 1, 1))


def _leaky(alpha: float) -> Callable[[Builder], None]:
    def build(b: Builder) -> None:
        b.gemm(6)
        b.op("LeakyRelu", [b.x], b.shape, alpha=alpha)
        b.gemm(6)
        b.op("LeakyRelu", [b.x], b.shape, alpha=alpha)
    return build


def _passthrough(b: Builder) -> None:
    b.gemm(6)
    b.relu()
    b.op("Identity", [b.x], b.shape)
    b.op("Dropout", [b.x], b.shape)


# name -> (input shape, body); every case ends in a Gemm head with 3 classes.
OP_CASES: dict[str, tuple[tuple[int, ...], Callable[[Builder], None]]] = {
    "conv-stride-pad-dilation-groups": ((2, 7, 7), _conv_variants),
    "gemm-relu": ((4,), lambda b: (b.gemm(6), b.relu(), b.gemm(6), b.relu())),
    "matmul-transpose-reshape": ((4,), _matmul),
    "add-sub-mul-div-constants": ((4,), _affine_constants),
    "add-sub-residual": ((4,), _residual),
    "batchnorm": ((2, 5, 5), _batchnorm),
    "flatten-transpose-reshape": ((1, 6, 6), _transpose_image),
    "leakyrelu": ((4,), _leaky(0.1)),
    "leakyrelu-negative-slope": ((4,), _leaky(-0.3)),
    "leakyrelu-concave": ((4,), _leaky(1.7)),
    "maxpool": ((1, 6, 6), _pool("MaxPool", kernel_shape=[2, 2], strides=[2, 2])),
    "maxpool-overlapping-padded-ceil": ((1, 6, 6), _pool("MaxPool", kernel_shape=[3, 3], strides=[2, 2],
                                                         pads=[1, 1, 1, 1], ceil_mode=1)),
    "averagepool": ((1, 6, 6), _pool("AveragePool", kernel_shape=[2, 2], strides=[2, 2])),
    "averagepool-padded": ((1, 6, 6), _pool("AveragePool", kernel_shape=[3, 3], strides=[1, 1],
                                            pads=[1, 1, 1, 1], count_include_pad=0)),
    "globalaveragepool": ((1, 5, 5), _global_pool),
    "identity-dropout": ((4,), _passthrough),
}


def op_case(name: str, path: Path, seed: int = 0) -> Path:
    shape, body = OP_CASES[name]
    b = Builder(shape, seed)
    body(b)
    b.head(3)
    return b.save(path)
