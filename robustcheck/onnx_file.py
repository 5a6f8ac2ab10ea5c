"""Reading an ONNX file that nobody reviewed: size caps, no pickle, external data confined.

The file is parsed by protobuf only (never unpickled or executed). Tensors stored as
external data, wherever they sit (the main graph, If/Loop/Scan bodies at any depth, node
attributes, sparse tensors, model-local functions, training graphs), are read here, by
robustcheck, from inside the model's own folder and under the size cap. Every location is
validated before any data file is opened, and none is left for onnxruntime to resolve.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import onnx

from robustcheck.errors import ModelError, first_line


def read_model(path: Path, max_bytes: int) -> tuple[onnx.ModelProto, list[str]]:
    """Parse `path` and inline its external data; returns the model and warnings for the record."""
    label = str(path)
    if not path.exists():
        raise ModelError(f"{label}: no such file")
    if not path.is_file():
        raise ModelError(f"{label}: not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise ModelError(f"{label}: empty file")
    if size > max_bytes:
        raise ModelError(f"{label}: {size} bytes exceeds the size cap of {max_bytes} bytes")
    try:
        proto = onnx.load_model(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises several types; none of them is a user message
        raise ModelError(f"{label}: not a valid ONNX model ({type(exc).__name__}: {first_line(exc)})") from None
    if proto.ir_version <= 0 or not proto.graph.node or not proto.graph.output:
        raise ModelError(f"{label}: not a valid ONNX model (no graph, nodes or outputs: truncated or not ONNX)")
    load_external_data(proto, path, max_bytes)
    found: list[str] = []
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        message = f"{path.name}: onnx.checker rejects the graph ({first_line(exc)}); testing it as onnxruntime runs it"
        found.append(message)
        warnings.warn(message, stacklevel=3)
    return proto, found


# ---------------------------------------------------------------------------------------
# Every tensor of a model


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        yield from _node_tensors(node.attribute)


def _node_tensors(attributes: Iterable[onnx.AttributeProto]) -> Iterator[onnx.TensorProto]:
    for attr in attributes:
        if attr.HasField("t"):
            yield attr.t
        yield from attr.tensors
        for sparse in ([attr.sparse_tensor] if attr.HasField("sparse_tensor") else []) + list(attr.sparse_tensors):
            yield sparse.values
            yield sparse.indices
        for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
            yield from _graph_tensors(sub)


def all_tensors(proto: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every TensorProto the model holds, in every graph, subgraph, attribute and function."""
    yield from _graph_tensors(proto.graph)
    for function in proto.functions:
        yield from _node_tensors(function.attribute_proto)
        for node in function.node:
            yield from _node_tensors(node.attribute)
    for info in proto.training_info:
        yield from _graph_tensors(info.initialization)
        yield from _graph_tensors(info.algorithm)


# ---------------------------------------------------------------------------------------
# External data


@dataclass(frozen=True)
class _ExternalSpan:
    tensor: onnx.TensorProto
    file: Path
    offset: int
    length: int


def _span(tensor: onnx.TensorProto, base: Path, label: str) -> _ExternalSpan:
    """Where a tensor's external data lies, validated: inside `base`, numeric offset/length, in the file."""
    info = {e.key: e.value for e in tensor.external_data}
    location = info.get("location", "")
    outside = f"{label}: external data {location!r} of tensor {tensor.name!r} lies outside the model's folder"
    if not location or os.path.isabs(location) or ".." in Path(location).parts:
        raise ModelError(outside)
    target = (base / location).resolve()  # follows symlinks: where the bytes really are
    if base not in target.parents:
        raise ModelError(outside)
    if not target.is_file():
        raise ModelError(f"{label}: external data file {location!r} of tensor {tensor.name!r} is missing "
                         f"or not a regular file")
    size = target.stat().st_size
    numbers: dict[str, int] = {}
    for key in ("offset", "length"):
        text = info.get(key)
        try:
            numbers[key] = int(text) if text is not None else (0 if key == "offset" else -1)
        except ValueError:
            raise ModelError(
                f"{label}: external data {key} {text!r} of tensor {tensor.name!r} is not a number") from None
        if text is not None and numbers[key] < 0:
            raise ModelError(f"{label}: external data {key} {text!r} of tensor {tensor.name!r} is negative")
    offset, length = numbers["offset"], numbers["length"]
    if length < 0:
        length = size - offset
    if offset + length > size:
        raise ModelError(f"{label}: external data of tensor {tensor.name!r} ({length} bytes at offset {offset}) "
                         f"runs past the end of {location!r} ({size} bytes)")
    return _ExternalSpan(tensor, target, offset, length)


def load_external_data(proto: onnx.ModelProto, path: Path, max_bytes: int) -> None:
    """Inline every external tensor, refusing any location outside the model's own folder.

    All locations are validated, and the total checked against `max_bytes`, before the first
    data file is opened.
    """
    base = path.parent.resolve()
    label = str(path)
    spans = [_span(t, base, label) for t in all_tensors(proto) if t.data_location == onnx.TensorProto.EXTERNAL]
    total = sum(s.length for s in spans)
    if total > max_bytes:
        raise ModelError(f"{label}: external data of {total} bytes exceeds the size cap of {max_bytes} bytes")
    for span in spans:
        try:
            with span.file.open("rb") as fh:
                fh.seek(span.offset)
                data = fh.read(span.length)
        except OSError as exc:
            raise ModelError(f"{label}: cannot read external data of tensor {span.tensor.name!r} "
                             f"({first_line(exc)})") from None
        if len(data) != span.length:
            raise ModelError(f"{label}: external data of tensor {span.tensor.name!r} is truncated")
        span.tensor.raw_data = data
        span.tensor.data_location = onnx.TensorProto.DEFAULT
        del span.tensor.external_data[:]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
