"""Preprocessing: pixel-space inputs for a model trained on normalised ones, and per-channel bounds."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import vision_zoo as zoo
from torch import nn

from robustcheck import load_model
from robustcheck.attacks import PGD, CarliniWagnerL2
from robustcheck.errors import ModelError
from robustcheck.model import Model

#: A short C&W-L2: the equality holds for any budget, this one finds every sample's example.
CW = CarliniWagnerL2(binary_search_steps=4, max_iterations=50, initial_const=1.0, learning_rate=0.05)
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class Normalise(nn.Module):
    def __init__(self, channels_last: bool = False) -> None:
        super().__init__()
        shape = (1, 1, 1, 3) if channels_last else (1, 3, 1, 1)
        self.register_buffer("mean", torch.tensor(MEAN).reshape(shape))
        self.register_buffer("std", torch.tensor(STD).reshape(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, 2, 1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8 * 4 * 4, 5)).eval()


def _export(net: nn.Module, path: Path, shape: tuple[int, ...]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (torch.rand(2, *shape),), str(path), input_names=["x"], output_names=["y"],
                          opset_version=17, dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False)
    return path


@pytest.fixture(scope="module")
def twin_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Model, Model, np.ndarray, np.ndarray]:
    """The same CNN: one graph takes normalised input (loaded with `preprocess`), the other has
    the normalisation baked in; pixel-space images the network classifies, and its labels."""
    tmp = tmp_path_factory.mktemp("preprocess")
    net = small_cnn()
    shape = (3, 8, 8)
    normalised = load_model(_export(net, tmp / "normalised.onnx", shape), preprocess={"mean": MEAN, "std": STD})
    baked = load_model(_export(nn.Sequential(Normalise(), net), tmp / "baked.onnx", shape))
    x = zoo.natural_images(5, shape, seed=3).numpy()
    return normalised, baked, x, baked.predict(x)


def test_normalised_input_model_equals_the_baked_in_graph(twin_models: tuple[Model, Model, np.ndarray, np.ndarray]) \
        -> None:
    normalised, baked, x, y = twin_models
    assert normalised.input_range == baked.input_range == (0.0, 1.0)
    assert normalised.parity is not None and normalised.parity.passed
    np.testing.assert_allclose(normalised.oracle_logits(x), baked.oracle_logits(x), rtol=1e-5, atol=1e-5)
    weights = torch.linspace(-1, 1, normalised.num_classes)
    _, g1 = normalised.logits_and_grad(x, lambda z: z @ weights)
    _, g2 = baked.logits_and_grad(x, lambda z: z @ weights)
    np.testing.assert_allclose(g1, g2, rtol=1e-4, atol=1e-6)


def test_minimal_l2_distance_is_the_same_in_pixel_space(twin_models: tuple[Model, Model, np.ndarray, np.ndarray]) \
        -> None:
    normalised, baked, x, y = twin_models
    a, b = CW.run(normalised, x, y, seed=0), CW.run(baked, x, y, seed=0)
    assert a.success.all() and b.success.all()
    np.testing.assert_allclose(a.distances["l2"], b.distances["l2"], rtol=0, atol=1e-4)
    # counterexamples are pixel-space images, inside [0, 1], whatever the graph receives
    assert normalised.in_box(a.x_adv, 1e-6).all() and a.x_adv.min() >= -1e-6 and a.x_adv.max() <= 1 + 1e-6


def test_bounded_attack_is_the_same_in_pixel_space(twin_models: tuple[Model, Model, np.ndarray, np.ndarray]) -> None:
    normalised, baked, x, y = twin_models
    attack = PGD(epsilon=0.03, steps=10, norm="linf")
    a, b = attack.run(normalised, x, y, seed=1), attack.run(baked, x, y, seed=1)
    np.testing.assert_array_equal(a.success, b.success)
    np.testing.assert_allclose(a.x_adv, b.x_adv, atol=1e-5)


def test_per_channel_bounds_in_normalised_space(twin_models: tuple[Model, Model, np.ndarray, np.ndarray],
                                                tmp_path: Path) -> None:
    """A user working in normalised space: inputs, box and ε there; counterexamples stay inside each
    channel's interval, never just inside the envelope of all channels."""
    normalised, _, x, y = twin_models
    low = [(0 - m) / s for m, s in zip(MEAN, STD)]
    high = [(1 - m) / s for m, s in zip(MEAN, STD)]
    model = load_model(normalised.path, input_range=(low, high))
    assert model.input_range == (min(low), max(high)) and model.input_spec.channel_bounds is not None
    xn = ((x - np.reshape(MEAN, (1, 3, 1, 1))) / np.reshape(STD, (1, 3, 1, 1))).astype(np.float32)
    assert model.parity is not None and model.parity.passed
    assert model.in_box(xn, 1e-6).all()
    outside = xn.copy()
    outside[:, 0] = max(high)  # inside the envelope, above the red channel's 2.249
    assert not model.in_box(outside).any()
    result = CW.run(model, xn, y, seed=0)
    assert result.success.all()
    assert model.in_box(result.x_adv).all()
    # the same images attacked in pixel space need about std (≈ 0.225) times the distance
    pixel = CW.run(normalised, x, y, seed=0)
    ratio = np.median(pixel.distances["l2"] / result.distances["l2"])
    assert 0.15 < ratio < 0.35, ratio


def test_preprocess_is_validated_against_the_input(twin_models: tuple[Model, Model, np.ndarray, np.ndarray]) -> None:
    path = twin_models[0].path
    with pytest.raises(ModelError, match="preprocess mean/std has 2 values but the input has 3 channels"):
        load_model(path, preprocess={"mean": [0.5, 0.5], "std": [0.2, 0.2]})
    with pytest.raises(ModelError, match="std must be positive"):
        load_model(path, preprocess={"mean": 0.5, "std": [0.2, 0.0, 0.2]})
    with pytest.raises(ModelError, match="keys mean and std"):
        load_model(path, preprocess={"mean": 0.5, "scale": 2})
    with pytest.raises(ModelError, match="low < high per channel"):
        load_model(path, input_range=([0, 0, 1], [1, 1, 1]))


def test_nhwc_preprocess_uses_the_last_axis(tmp_path: Path) -> None:
    net = zoo.build("keras-nhwc", 4)
    shape = (10, 10, 3)
    plain = _export(net, tmp_path / "nhwc.onnx", shape)
    baked = load_model(_export(nn.Sequential(Normalise(channels_last=True), net), tmp_path / "baked.onnx", shape))
    model = load_model(plain, preprocess={"mean": MEAN, "std": STD})
    assert model.input_spec.layout == "NHWC"
    x = zoo.natural_images(4, shape, seed=2).numpy()
    np.testing.assert_allclose(model.oracle_logits(x), baked.oracle_logits(x), rtol=1e-5, atol=1e-5)
