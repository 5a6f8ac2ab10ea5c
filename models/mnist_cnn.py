"""The reference MNIST classifier and a reader for MNIST's gzip-compressed IDX files.

Importable as a plain file (no package needed), e.g. with importlib:

    spec = importlib.util.spec_from_file_location("mnist_cnn", "models/mnist_cnn.py")
    mnist_cnn = importlib.util.module_from_spec(spec); spec.loader.exec_module(mnist_cnn)
    net = mnist_cnn.build_cnn(0.5); net.load_state_dict(torch.load("models/weights/baseline.pt"))

The architecture is Carlini & Wagner's MNIST network (2017), itself the network of
Papernot et al.'s defensive distillation paper (2016):

    conv32 - conv32 - maxpool2 - conv64 - conv64 - maxpool2 - fc200 - fc200 - fc10

with 3x3 "valid" convolutions, ReLU after every conv and hidden fc layer, and dropout 0.5 before
and between the fc layers (active in training only). Every width is multiplied by `width`;
the shipped models use width 0.5 (conv16-conv16-pool-conv32-conv32-pool-fc100-fc100-fc10).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
from torch import nn

__all__ = ["build_cnn", "load_idx", "IMAGES_MAGIC", "LABELS_MAGIC"]

IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dimension

# Carlini & Wagner's full-width MNIST network.
_CONV = (32, 32, 64, 64)
_FC = (200, 200)


def _scaled(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def build_cnn(width: float = 0.5, num_classes: int = 10, dropout: float = 0.5) -> nn.Module:
    """The C&W MNIST CNN with every channel/unit count multiplied by `width`.

    Input (N, 1, 28, 28) float32 in [0, 1]; output (N, num_classes) logits.
    Spatial sizes: 28 -> 26 -> 24 -> pool 12 -> 10 -> 8 -> pool 4, so the first fc layer sees
    conv4 * 4 * 4 features.
    """
    if not width > 0:
        raise ValueError(f"width must be positive, got {width!r}")
    c1, c2, c3, c4 = (_scaled(c, width) for c in _CONV)
    f1, f2 = (_scaled(f, width) for f in _FC)
    return nn.Sequential(
        nn.Conv2d(1, c1, 3), nn.ReLU(),
        nn.Conv2d(c1, c2, 3), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c2, c3, 3), nn.ReLU(),
        nn.Conv2d(c3, c4, 3), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(c4 * 4 * 4, f1), nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(f1, f2), nn.ReLU(),
        nn.Linear(f2, num_classes),
    )


def _read_idx_gz(path: Path, magic: int, what: str) -> tuple[np.ndarray, list[int]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such MNIST {what} file")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path}: cannot read MNIST {what} file ({exc})") from None
    if len(raw) < 4:
        raise ValueError(f"{path}: too short to be an IDX {what} file ({len(raw)} bytes)")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        hint = ""
        if found in (IMAGES_MAGIC, LABELS_MAGIC):
            hint = " (images and labels files swapped?)"
        raise ValueError(f"{path}: bad magic number {found} (0x{found:08x}) for an IDX {what} file, "
                         f"expected {magic} (0x{magic:08x}){hint}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=header)
    expected = int(np.prod(dims))
    if data.size != expected:
        raise ValueError(f"{path}: IDX header announces shape {dims} ({expected} bytes) "
                         f"but the file holds {data.size} bytes of data (truncated or corrupt?)")
    return data.reshape(dims), dims


def load_idx(images_gz: str | os.PathLike[str], labels_gz: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read MNIST images and labels from (gzip-compressed) IDX files.

    Returns x float32 (N, 1, 28, 28) in [0, 1] (pixel / 255) and y int64 (N,).
    Raises ValueError with the file name on a wrong magic number, a truncated file or a
    count mismatch, FileNotFoundError if a file is missing.
    """
    images, idims = _read_idx_gz(Path(images_gz), IMAGES_MAGIC, "images")
    labels, _ = _read_idx_gz(Path(labels_gz), LABELS_MAGIC, "labels")
    if len(idims) != 3:
        raise ValueError(f"{images_gz}: expected 3 dimensions (N, rows, cols), got {idims}")
    if len(images) != len(labels):
        raise ValueError(f"{images_gz} has {len(images)} images but {labels_gz} has {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{labels_gz}: label {int(labels.max())} outside 0-9")
    x = (images.astype(np.float32) / np.float32(255.0))[:, None, :, :]
    return np.ascontiguousarray(x), labels.astype(np.int64)
