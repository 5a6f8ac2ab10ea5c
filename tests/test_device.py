"""The device option: CPU by default, CUDA when asked and present, attack batches fitted to memory."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from robustcheck import load_model
from robustcheck.attacks import CarliniWagnerL2
from robustcheck.device import fit_batch, onnxruntime_providers, resolve_device
from robustcheck.errors import ModelError

HAS_CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def cnn_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)).eval()
    path = tmp_path_factory.mktemp("device") / "cnn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(2, 3, 8, 8),), str(path), input_names=["x"], output_names=["y"],
                          opset_version=17, dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False)
    return path


def test_cpu_is_the_default_and_auto_falls_back(cnn_path: Path) -> None:
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if HAS_CUDA else "cpu")
    model = load_model(cnn_path)
    assert model.device == torch.device("cpu")
    assert model.session.get_providers() == ["CPUExecutionProvider"]


def test_unknown_or_missing_device_is_one_line(cnn_path: Path) -> None:
    with pytest.raises(ModelError, match="device must be one of auto, cpu, cuda, got 'gpu'"):
        load_model(cnn_path, device="gpu")
    if not HAS_CUDA:
        with pytest.raises(ModelError, match="device 'cuda' requested but torch sees no GPU") as info:
            load_model(cnn_path, device="cuda")
        assert "\n" not in str(info.value) and str(cnn_path) in str(info.value)


def test_onnxruntime_uses_cuda_only_on_a_gpu_with_the_provider() -> None:
    gpu, cpu = torch.device("cuda"), torch.device("cpu")
    assert onnxruntime_providers(gpu, ["CUDAExecutionProvider", "CPUExecutionProvider"])[0] == "CUDAExecutionProvider"
    assert onnxruntime_providers(gpu, ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert onnxruntime_providers(cpu, ["CUDAExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]


def test_out_of_memory_halves_the_batch_until_it_fits() -> None:
    """A workload that needs batch ≤ 12 (the allocator's error torch raises is simulated by size)."""
    tried: list[int] = []

    def run(batch: int) -> int:
        tried.append(batch)
        if batch > 12:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return batch

    halved: list[int] = []
    assert fit_batch(run, 100, on_halve=halved.append) == 12
    assert tried == [100, 50, 25, 12] and halved == [50, 25, 12]
    cpu_tried: list[int] = []

    def cpu_run(batch: int) -> int:
        cpu_tried.append(batch)
        if batch > 3:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:116] DefaultCPUAllocator: can't allocate memory")
        return batch

    assert fit_batch(cpu_run, 8) == 2 and cpu_tried == [8, 4, 2]
    with pytest.raises(ModelError, match="out of memory even at batch size 1"):
        fit_batch(lambda b: (_ for _ in ()).throw(torch.cuda.OutOfMemoryError("out of memory")), 4)
    with pytest.raises(ValueError, match="unrelated"):  # other errors are not retried
        fit_batch(lambda b: (_ for _ in ()).throw(ValueError("unrelated")), 4)


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_cuda_replica_matches_the_cpu_one(cnn_path: Path) -> None:
    cpu, gpu = load_model(cnn_path), load_model(cnn_path, device="cuda")
    assert gpu.device.type == "cuda" and gpu.parity is not None and gpu.parity.passed
    x = np.random.default_rng(0).uniform(size=(6, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(gpu.replica_logits(x), cpu.replica_logits(x), rtol=1e-4, atol=1e-5)
    weights = torch.linspace(-1, 1, 5)
    _, g_cpu = cpu.logits_and_grad(x, lambda z: z @ weights)
    _, g_gpu = gpu.logits_and_grad(x, lambda z: z @ weights)
    np.testing.assert_allclose(g_gpu, g_cpu, rtol=1e-3, atol=1e-5)
    y = cpu.predict(x)
    attack = CarliniWagnerL2(binary_search_steps=2, max_iterations=30)
    assert attack.run(gpu, x, y).success.mean() == attack.run(cpu, x, y).success.mean()
