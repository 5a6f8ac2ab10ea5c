"""Shared fixtures: the shipped reference models and their held-out data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
HELDOUT = MODELS / "data" / "mnist-heldout.npz"

pytest_plugins = ["pytester"]


def pytest_configure(config: pytest.Config) -> None:
    # Under `-n 2` each worker gets one core's worth of torch threads instead of fighting over both.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


@pytest.fixture(scope="session")
def heldout():
    """The 2,000 held-out MNIST images (8000–9999), x in [0, 1] NCHW float32."""
    from robustcheck.data import load_dataset

    return load_dataset(HELDOUT)


@pytest.fixture(scope="session")
def shipped():
    """Loader for the shipped models by name, cached per session: shipped('baseline')."""
    from robustcheck.data import load_dataset
    from robustcheck.model import load_model

    cache: dict[str, object] = {}
    parity = load_dataset(HELDOUT).x[:16]

    def get(name: str):
        if name not in cache:
            cache[name] = load_model(MODELS / f"{name}.onnx", parity_inputs=parity)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def correct100(shipped, heldout):
    """The first 100 held-out images each shipped model classifies correctly: correct100('baseline')."""
    from robustcheck.data import correctly_classified

    cache: dict[str, object] = {}

    def get(name: str):
        if name not in cache:
            cache[name] = correctly_classified(shipped(name), heldout, limit=100)
        return cache[name]

    return get
