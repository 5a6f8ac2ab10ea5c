"""Coercing ONNX attribute and input values into ints, axes, dtypes and torch tensors."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from robustcheck.replica.registry import UnsupportedGraph

Tensor = torch.Tensor


def node_attributes(node: onnx.NodeProto) -> dict[str, Any]:
    """A node's attributes as Python values (strings decoded, tensors as numpy arrays)."""
    out: dict[str, Any] = {}
    for a in node.attribute:
        value = helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, onnx.TensorProto):
            value = numpy_helper.to_array(value)
        out[a.name] = value
    return out


def to_tensor(array: np.ndarray) -> Tensor:
    """A torch tensor owning a copy of `array` (string tensors are unsupported); 0-d stays 0-d."""
    if array.dtype.kind == "U" or array.dtype.kind == "O":
        raise UnsupportedGraph("string tensors")
    # np.ascontiguousarray would turn a 0-d array into shape (1,): TorchScript exports gather
    # shape entries with 0-d constant indices, and a (1,) index there changes every rank after it.
    return torch.from_numpy(np.array(array, order="C", copy=True))


def ints(value: Any) -> list[int]:
    """An attribute or input holding integers (tensor, array, scalar or list) as a list."""
    if value is None:
        return []
    if isinstance(value, Tensor):
        return [int(v) for v in value.reshape(-1).tolist()]
    if isinstance(value, np.ndarray):
        return [int(v) for v in value.reshape(-1).tolist()]
    if isinstance(value, (int, np.integer)):
        return [int(value)]
    return [int(v) for v in value]


def axis(value: int, rank: int) -> int:
    """A possibly negative ONNX axis as a non-negative one."""
    return value + rank if value < 0 else value


def as_tensor(value: Any, like: Tensor | None = None) -> Tensor:
    """`value` as a tensor; floating constants take `like`'s dtype."""
    if isinstance(value, Tensor):
        return value
    t = torch.as_tensor(value)
    if like is not None and t.is_floating_point():
        t = t.to(like.dtype)
    return t


def tensor_pair(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    return as_tensor(a), as_tensor(b)


def optional_input(args: list[Any], i: int) -> Any:
    """Input `i` of a node, or None when it is absent or left empty."""
    return args[i] if len(args) > i else None


_ONNX_TO_TORCH_DTYPE: dict[int, torch.dtype] = {
    onnx.TensorProto.FLOAT: torch.float32,
    onnx.TensorProto.DOUBLE: torch.float64,
    onnx.TensorProto.FLOAT16: torch.float16,
    onnx.TensorProto.BFLOAT16: torch.bfloat16,
    onnx.TensorProto.INT64: torch.int64,
    onnx.TensorProto.INT32: torch.int32,
    onnx.TensorProto.INT16: torch.int16,
    onnx.TensorProto.INT8: torch.int8,
    onnx.TensorProto.UINT8: torch.uint8,
    onnx.TensorProto.BOOL: torch.bool,
}


def torch_dtype(onnx_type: int) -> torch.dtype:
    if onnx_type not in _ONNX_TO_TORCH_DTYPE:
        raise UnsupportedGraph(f"tensor type {onnx.TensorProto.DataType.Name(onnx_type)}")
    return _ONNX_TO_TORCH_DTYPE[onnx_type]
