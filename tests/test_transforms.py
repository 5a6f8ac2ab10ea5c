"""Natural transformations: identity at magnitude 0, agreement with reference implementations
(Pillow's affine resampling and JPEG, scipy.ndimage's Gaussian filter, numpy), layouts and input
ranges, the Hypothesis strategies, and shrinking to a known threshold on real ONNX models.

scipy is a test-only dependency (the `dev` extra): Pillow's GaussianBlur is a box-blur
approximation and refuses float images, so the exact truncated Gaussian comes from scipy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import scipy.ndimage
from hypothesis import find
from onnx import TensorProto, helper, numpy_helper
from PIL import Image, ImageEnhance

from robustcheck.errors import ConfigError
from robustcheck.model import Model, load_model
from robustcheck.transforms import FAMILIES, ImageFormat, TransformSpec, apply_transform, smallest_transform_failure
from robustcheck.transforms.probe import TransformProbe
from robustcheck.transforms.search import Draw, find_smallest_failure
from robustcheck.transforms.strategies import transform_params
from robustcheck.transforms.sweep import accuracy_under, dense_grid_smallest, grid_rings

UNIT = ImageFormat("NCHW", (0.0, 1.0))
MAXIMA = {"rotate": 30, "translate": 3, "scale": 0.5, "brightness": 0.5, "contrast": 0.5, "noise": 0.3,
          "blur": 2, "jpeg": 10}


def framed(rng: np.random.Generator, n: int = 3, size: int = 20, frame: int = 3) -> np.ndarray:
    """Random NCHW grey images in [0, 1] with a black frame (so every reference agrees at the edges)."""
    x = np.zeros((n, 1, size, size), np.float32)
    x[:, :, frame:-frame, frame:-frame] = rng.random((n, 1, size - 2 * frame, size - 2 * frame))
    return x


def pil_affine(image: np.ndarray, coefficients: tuple[float, ...]) -> np.ndarray:
    """Pillow's bilinear affine resampling of a float image; coefficients map output to input
    pixels, in Pillow's coordinates (pixel centres at +0.5)."""
    out = Image.fromarray(image, mode="F").transform(image.shape[::-1], Image.AFFINE, coefficients,
                                                     resample=Image.BILINEAR)
    return np.asarray(out)


@pytest.mark.parametrize("name", list(FAMILIES))
@pytest.mark.parametrize("fmt", [ImageFormat("NCHW", (0.0, 1.0)), ImageFormat("NHWC", (0.0, 255.0)),
                                 ImageFormat(None, (-1.0, 1.0))], ids=["nchw01", "nhwc255", "nhw-sym"])
def test_magnitude_zero_is_the_identity(name: str, fmt: ImageFormat) -> None:
    rng = np.random.default_rng(0)
    shape = {"NCHW": (4, 3, 12, 12), "NHWC": (4, 12, 12, 3), None: (4, 12, 12)}[fmt.layout]
    x = (fmt.low + fmt.span * rng.random(shape)).astype(np.float32)
    spec = TransformSpec.parse(name, MAXIMA[name])
    for offset in (0, 1234):
        (params,) = spec.directions(0, offset)
        assert np.array_equal(spec.apply(x, [params] * len(x), fmt), x)


def test_rotation_translation_scaling_match_pillow(heldout) -> None:
    rng = np.random.default_rng(1)
    for x in (framed(rng), heldout.x[:3]):
        size = x.shape[-1]
        c = size / 2  # the image centre in Pillow's coordinates
        cases = [
            ("rotate", {"angle": 17.0}, None),
            ("rotate", {"angle": -123.4}, None),
            ("translate", {"dx": 1.3, "dy": -0.7}, (1, 0, -1.3, 0, 1, 0.7)),
            ("scale", {"scale": 1.3}, (1 / 1.3, 0, c - c / 1.3, 0, 1 / 1.3, c - c / 1.3)),
            ("scale", {"scale": 0.6}, (1 / 0.6, 0, c - c / 0.6, 0, 1 / 0.6, c - c / 0.6)),
        ]
        for name, params, coefficients in cases:
            ours = apply_transform(x, name, [params] * len(x), UNIT)
            for i in range(len(x)):
                if name == "rotate":
                    turned = Image.fromarray(x[i, 0], mode="F").rotate(params["angle"], resample=Image.BILINEAR)
                    ref = np.asarray(turned)
                else:
                    ref = pil_affine(x[i, 0], coefficients)
                np.testing.assert_allclose(ours[i, 0], ref, atol=2e-6, err_msg=f"{name} {params}")


def test_a_composition_is_one_affine_resampling() -> None:
    x = framed(np.random.default_rng(2), n=1, size=24, frame=6)
    ours = apply_transform(x, ["rotate", "translate"], [{"angle": 20.0, "dx": 1.5, "dy": 0.5}], UNIT)
    # Pillow's rotate(translate=...) rotates, then shifts, in one resampling.
    ref = Image.fromarray(x[0, 0], mode="F").rotate(20.0, resample=Image.BILINEAR, translate=(1.5, 0.5))
    np.testing.assert_allclose(ours[0, 0], np.asarray(ref), atol=2e-6)


def test_layouts_and_ranges_give_the_same_transformation() -> None:
    rng = np.random.default_rng(3)
    x = framed(rng, n=2)
    params = [{"angle": 9.0, "dx": -1.0, "dy": 0.25, "brightness": 0.1}] * 2
    spec = ["rotate", "translate", "brightness"]
    nchw = apply_transform(x, spec, params, UNIT)
    nhwc = apply_transform(x.transpose(0, 2, 3, 1) * 255, spec, params, ImageFormat("NHWC", (0.0, 255.0)))
    flat = apply_transform(x[:, 0] * 2 - 1, spec, params, ImageFormat(None, (-1.0, 1.0)))
    np.testing.assert_allclose(nhwc.transpose(0, 3, 1, 2) / 255, nchw, atol=1e-5)
    np.testing.assert_allclose((flat + 1) / 2, nchw[:, 0], atol=1e-6)


def test_blur_matches_scipy_gaussian_filter() -> None:
    rng = np.random.default_rng(4)
    x = rng.random((2, 3, 16, 16)).astype(np.float32)
    for sigma in (0.3, 1.0, 2.7):
        ours = apply_transform(x, "blur", [{"blur_sigma": sigma}] * 2, UNIT)
        for i in range(2):
            for ch in range(3):
                ref = scipy.ndimage.gaussian_filter(x[i, ch].astype(np.float64), sigma, mode="nearest", truncate=4.0)
                np.testing.assert_allclose(ours[i, ch], ref, atol=1e-6)


def test_brightness_contrast_and_noise() -> None:
    rng = np.random.default_rng(5)
    x = rng.random((2, 1, 10, 10)).astype(np.float32)
    box = ImageFormat("NCHW", (0.0, 255.0))
    bright = apply_transform(x * 255, "brightness", [{"brightness": 0.2}] * 2, box)
    np.testing.assert_allclose(bright, np.clip(x * 255 + 51, 0, 255), atol=1e-4)
    # Pillow's Contrast blends with the image's mean grey (rounded to an integer level).
    pixels = (x[0, 0] * 255).round().astype(np.uint8)
    ref = np.asarray(ImageEnhance.Contrast(Image.fromarray(pixels)).enhance(0.6), dtype=np.float64)
    ours = apply_transform(pixels[None, None].astype(np.float32), "contrast", [{"contrast": 0.6}], box)[0, 0]
    assert np.abs(ours - ref).max() <= 1.0
    one = apply_transform(x, "noise", [{"noise_sigma": 0.05, "noise_seed": 7}] * 2, UNIT)
    again = apply_transform(x, "noise", [{"noise_sigma": 0.05, "noise_seed": 7}] * 2, UNIT)
    other = apply_transform(x, "noise", [{"noise_sigma": 0.05, "noise_seed": 8}] * 2, UNIT)
    assert np.array_equal(one, again) and not np.array_equal(one, other)
    mid = (x > 0.2) & (x < 0.8)  # no clipping there: the same pattern at half the σ is half the change
    half = apply_transform(x, "noise", [{"noise_sigma": 0.025, "noise_seed": 7}] * 2, UNIT)
    np.testing.assert_allclose((half - x)[mid], (one - x)[mid] / 2, atol=1e-6)
    assert 0.04 < np.std((one - x)[mid]) < 0.06


def test_jpeg_matches_pillow_and_keeps_the_box() -> None:
    rng = np.random.default_rng(6)
    rgb = (rng.random((1, 16, 16, 3)) * 255).round().astype(np.float32)
    ours = apply_transform(rgb, "jpeg", [{"quality": 40}], ImageFormat("NHWC", (0.0, 255.0)))
    buffer = __import__("io").BytesIO()
    Image.fromarray(rgb[0].astype(np.uint8)).save(buffer, format="JPEG", quality=40)
    np.testing.assert_array_equal(ours[0], np.asarray(Image.open(buffer), dtype=np.float32))
    gray = framed(rng, n=2)
    low, high = (apply_transform(gray, "jpeg", [{"quality": q}] * 2, UNIT) for q in (10, 90))
    assert low.min() >= 0 and low.max() <= 1
    assert np.abs(low - gray).mean() > np.abs(high - gray).mean()


def test_specs_are_validated_with_one_line_errors() -> None:
    spec = TransformSpec.parse(["rotate", "translate"], [10, 2])
    assert spec.id == "rotate+translate@10,2" and TransformSpec.parse("jpeg", 30).id == "jpeg@30"
    assert TransformSpec.parse("jpeg", 30).level_text(TransformSpec.parse("jpeg", 30).steps) == "quality 30"
    for transform, maximum, message in [
        ("spin", 3, "unknown transform 'spin'"), ("rotate", 0, "max for rotate must be > 0"),
        (["rotate", "rotate"], [1, 2], "names each transform once"), (["rotate", "blur"], 3, "a list of 2 numbers"),
        ("jpeg", 100, "max for jpeg must be >= 1 and <= 99"), (["a", "b", "c", "d"], 1, "two or three names"),
    ]:
        with pytest.raises(ConfigError, match=message):
            TransformSpec.parse(transform, maximum, where="robustcheck.toml: check 2")


def test_strategies_stay_within_max_and_shrink_to_the_identity() -> None:
    assert find(transform_params("rotate", 10), lambda p: True) == {"angle": 0.0}
    assert find(transform_params("jpeg", 30), lambda p: True) == {"quality": 100.0}
    big = find(transform_params(["rotate", "translate"], [10, 2]), lambda p: abs(p["angle"]) >= 4)
    assert big["angle"] == 4.0 and max(abs(big["dx"]), abs(big["dy"])) == pytest.approx(0.8)
    seen = find(transform_params("translate", 2), lambda p: max(abs(p["dx"]), abs(p["dy"])) > 1.999)
    assert max(abs(seen["dx"]), abs(seen["dy"])) == pytest.approx(2.0)


# -- real ONNX models with a known threshold --------------------------------------------------

def linear_model(path: Path, weights: np.ndarray, bias: float) -> Model:
    """A real ONNX classifier on (N, 1, H, W) inputs: class 0 scores w·x + bias, class 1 scores 0."""
    w = weights.reshape(-1).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "W", "B"], ["z"])], "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, *weights.shape])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 2])],
        initializer=[numpy_helper.from_array(np.stack([w, np.zeros_like(w)], axis=1), "W"),
                     numpy_helper.from_array(np.array([bias, 0.0], np.float32), "B")])
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return load_model(path, layout="NCHW")


@pytest.fixture(scope="module")
def mean_model(tmp_path_factory: pytest.TempPathFactory) -> Model:
    """Class 0 while the mean pixel stays below 0.5: brightness flips it at exactly 0.5 − mean."""
    return linear_model(tmp_path_factory.mktemp("mean") / "mean.onnx", -np.full((12, 12), 1 / 144), 0.5)


@pytest.fixture(scope="module")
def centroid_model(tmp_path_factory: pytest.TempPathFactory) -> Model:
    """Class 0 while the mass-weighted column stays left of 14: Σ (14 − col)·x > 0."""
    cols = np.broadcast_to(np.arange(24, dtype=np.float64), (24, 24))
    return linear_model(tmp_path_factory.mktemp("centroid") / "centroid.onnx", 14.0 - cols, 0.0)


def test_shrinking_reaches_a_known_brightness_threshold(mean_model: Model) -> None:
    rng = np.random.default_rng(7)
    x = (0.3 + 0.1 * rng.random((4, 1, 12, 12))).astype(np.float32)      # means 0.33–0.37: no clipping
    threshold = 0.5 - x.reshape(4, -1).mean(axis=1, dtype=np.float64)
    out = smallest_transform_failure(mean_model, x, np.zeros(4, np.int64), transform="brightness", max=0.9, seed=3)
    for o, t in zip(out, threshold):
        assert o.failed and o.params["brightness"] > 0          # only brightening flips it
        assert t <= o.magnitude <= t + 0.005 + 1e-9             # the first grid level past the threshold
        assert o.first_level >= o.level and o.predicted == 1 and o.confidence_predicted >= 0.5
    assert any(o.first_level > 2 * o.level for o in out), "Hypothesis's first failures were not larger"
    again = smallest_transform_failure(mean_model, x, np.zeros(4, np.int64), transform="brightness", max=0.9, seed=3)
    assert again == out


def test_shrinking_reaches_a_known_translation_threshold(centroid_model: Model) -> None:
    x = np.zeros((3, 1, 24, 24), np.float32)
    for i, col in enumerate((10, 11, 12)):
        x[i, 0, 8:16, col - 1:col + 2] = 1.0       # a bar centred on column `col`: flips past dx = 14 − col
    out = smallest_transform_failure(centroid_model, x, np.zeros(3, np.int64), transform="translate", max=5, seed=0)
    for o, threshold in zip(out, (4.0, 3.0, 2.0)):
        assert o.failed and o.params["dx"] > 0
        assert threshold < o.magnitude <= 1.2 * threshold
    # A dense 2-D grid of shifts (0.25 px apart) agrees to within its spacing.
    probe = TransformProbe(centroid_model, TransformSpec.parse("translate", 5))
    grid = dense_grid_smallest(probe, x, np.zeros(3, np.int64), grid_rings(probe.spec, step=0.25))
    assert grid.smallest.tolist() == [4.25, 3.25, 2.25]
    assert all(g - 0.25 < o.magnitude <= g for g, o in zip(grid.smallest, out))


def test_a_replayed_failure_runs_first(mean_model: Model) -> None:
    x = np.full((2, 1, 12, 12), 0.3, np.float32)
    probe = TransformProbe(mean_model, TransformSpec.parse("brightness", 0.9))
    stored = Draw(level=150, index=1, offset=0)                      # brightness 0.75: fails
    found = find_smallest_failure(probe, x, np.zeros(2, np.int64), examples=50, seed_value=0, replay=[stored])
    ranking = 2 * len(probe.spec.directions(probe.spec.steps))      # the pool's fragility order, up front
    assert found is not None and found.draw == stored and found.examples == 1 and probe.calls == ranking + 2
    fresh = find_smallest_failure(probe, x, np.zeros(2, np.int64), examples=50, seed_value=0)
    assert fresh is not None and fresh.draw.level == 41              # 0.2 / 0.005 = 40 levels, flips past


def test_accuracy_under_counts_every_direction(mean_model: Model) -> None:
    x = np.stack([np.full((1, 12, 12), v, np.float32) for v in (0.1, 0.3, 0.45)])
    probe = TransformProbe(mean_model, TransformSpec.parse("brightness", 0.5))
    ok = accuracy_under(probe, x, np.zeros(3, np.int64), level=probe.spec.steps // 2)   # ±0.25
    assert ok.tolist() == [True, False, False]


def test_transform_checks_parse_with_one_line_errors(tmp_path: Path) -> None:
    from robustcheck.transforms.checks import parse_transform_check

    where = tmp_path / "robustcheck.toml"
    check = parse_transform_check(where, "defaults.check[1]", {"type": "transform", "transform": "jpeg", "max": 30})
    assert check.id == "robust[jpeg@30]" and check.spec.steps == 70
    under = parse_transform_check(where, "defaults.check[2]", {"type": "accuracy-under", "min": 0.9,
                                                              "transform": ["rotate", "translate"], "level": [10, 2]})
    assert under.id == "accuracy-under[rotate+translate@10,2]" and under.min == 0.9
    for table, message in [
        ({"type": "transform", "transform": "rotate"}, r"'defaults.check\[0\].max' is required"),
        ({"type": "transform", "transform": "rotate", "max": 5, "min": 0.5}, "unknown key 'defaults.check.0..min'"),
        ({"type": "accuracy-under", "transform": "rotate", "level": 5, "min": 2}, "min' must be a number in .0, 1."),
        ({"type": "accuracy-under", "transform": "jpeg", "level": 0, "min": 0.5}, "level for jpeg must be >= 1"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_transform_check(where, "defaults.check[0]", table)


def test_transform_checks_in_a_config_file(tmp_path: Path) -> None:
    from robustcheck.config import load_suite_config
    from robustcheck.transforms.checks import TransformCheck

    path = tmp_path / "robustcheck.toml"
    path.write_text('[[defaults.check]]\ntype = "transform"\ntransform = "rotate"\nmax = 10\n\n'
                    '[[defaults.check]]\ntype = "accuracy-under"\ntransform = "blur"\nlevel = 1.5\nmin = 0.8\n')
    config = load_suite_config([path]).for_model("any")
    assert [c.id for c in config.checks] == ["robust[rotate@10]", "accuracy-under[blur@1.5]"]
    assert all(isinstance(c, TransformCheck) for c in config.checks)
    assert config.to_dict()["checks"][1] == {"id": "accuracy-under[blur@1.5]", "type": "accuracy-under",
                                             "transform": "blur", "level": 1.5, "min": 0.8}
    path.write_text('[[defaults.check]]\ntype = "transform"\ntransform = "twist"\nmax = 10\n')
    with pytest.raises(ConfigError, match=r"robustcheck.toml: 'defaults.check\[0\]': unknown transform 'twist'"):
        load_suite_config([path])
