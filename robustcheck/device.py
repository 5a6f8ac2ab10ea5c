"""Where the replica runs ("auto" | "cpu" | "cuda"), onnxruntime's providers, and batches fitted to memory.

The CPU is the default. "auto" takes a GPU when torch sees one; onnxruntime then uses its CUDA
provider when the installed onnxruntime has it (the `onnxruntime-gpu` wheel), and its CPU
provider otherwise, so the oracle never depends on the GPU being there. Attacks keep their
tensors where they create them: the model moves each batch to the replica's device and the
logits back, so no attack needs to know.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Literal, TypeVar

import torch

from robustcheck.errors import ModelError

DeviceSpec = Literal["auto", "cpu", "cuda"]
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
T = TypeVar("T")


def resolve_device(spec: str | None, label: str = "robustcheck") -> torch.device:
    """The torch device for `spec`; "cuda" without a usable GPU is a one-line ModelError."""
    spec = spec or "cpu"
    if spec not in DEVICES:
        raise ModelError(f"{label}: device must be one of {', '.join(DEVICES)}, got {spec!r}")
    if spec == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if spec == "auto":
        return torch.device("cpu")
    raise ModelError(f"{label}: device 'cuda' requested but torch sees no GPU (torch {torch.__version__}; "
                     "a CPU-only wheel, or no driver); use device = \"auto\" to fall back to the CPU")


def onnxruntime_providers(device: torch.device, available: list[str]) -> list[str]:
    """onnxruntime's providers for `device`: CUDA first when on a GPU and installed, CPU always."""
    if device.type == "cuda" and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def is_out_of_memory(exc: BaseException) -> bool:
    """A torch allocation failure on the GPU or the CPU."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        "out of memory" in text or "can't allocate memory" in text or isinstance(exc, MemoryError))


def fit_batch(run: Callable[[int], T], batch_size: int, *, label: str = "attack",
              on_halve: Callable[[int], None] | None = None) -> T:
    """`run(batch_size)`, halving the batch and retrying whenever it runs out of memory.

    Raises ModelError when even a batch of 1 does not fit. `on_halve(new_size)` is told each
    halving (the record notes the batch actually used).
    """
    size = max(1, int(batch_size))
    while True:
        try:
            return run(size)
        except (RuntimeError, MemoryError) as exc:
            if not is_out_of_memory(exc):
                raise
            del exc
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if size == 1:
                raise ModelError(f"{label}: out of memory even at batch size 1") from None
            size = max(1, size // 2)
            if on_halve is not None:
                on_halve(size)
