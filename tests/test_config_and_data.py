"""Suite config parsing and dataset reading: precise errors, merging, IDX and npz."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robustcheck.config import find_config_files, load_suite_config
from robustcheck.data import load_dataset
from robustcheck.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]


def _write(folder: Path, text: str, name: str = "robustcheck.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.npz").write_bytes(b"")
    path = folder / name
    path.write_text(text)
    return path


def test_defaults_and_glob_sections_merge(tmp_path: Path) -> None:
    path = _write(tmp_path, """
[defaults]
dataset = "data.npz"
samples = 50
min_clean_accuracy = 0.9
[[defaults.check]]
type = "robust-accuracy"
attack = "ead-l1"
epsilon = 10
min = 0.4
[defaults.attacks.ead-l1]
beta = 0.01
[models."dist*"]
min_clean_accuracy = 0.95
masking = "warn"
""")
    suite = load_suite_config([path])
    base, dist = suite.for_model("baseline"), suite.for_model("distilled-softmax")
    assert base.min_clean_accuracy == 0.9 and dist.min_clean_accuracy == 0.95
    assert base.masking == "fail" and dist.masking == "warn"
    assert base.dataset is not None and base.dataset.path == tmp_path / "data.npz"
    assert [c.id for c in base.checks] == ["robust-accuracy[ead-l1@10]"]
    assert base.checks[0].norm == "l1"
    assert base.attack_params("ead-l1") == {"beta": 0.01}
    assert base.to_dict()["checks"][0]["min"] == 0.4


def test_pyproject_defaults_are_overridden_by_robustcheck_toml(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.robustcheck.defaults]\nsamples = 10\nmasking = 'warn'\n")
    models = tmp_path / "models"
    _write(models, "[defaults]\nsamples = 20\n")
    files = find_config_files(models / "m.onnx", tmp_path)
    assert files == [tmp_path / "pyproject.toml", models / "robustcheck.toml"]
    config = load_suite_config(files).for_model("m")
    assert config.samples == 20 and config.masking == "warn"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[defaults]\nlayout = 'CHW'\n", "'defaults.layout' must be \"NCHW\" or \"NHWC\""),
        ("[defaults]\ninput_range = [1, 0]\n", "'defaults.input_range' must be a [low, high] pair"),
        ("[defaults]\nmin_clean_accuracy = 97\n", "'defaults.min_clean_accuracy' must be a number in [0, 1]"),
        ("[defaults]\nmasking = 'loud'\n", "'defaults.masking' must be \"fail\" or \"warn\""),
        ("[[defaults.check]]\ntype = 'robust-accuracy'\nattack = 'cw-l2'\nepsilon = 1\n",
         "'defaults.check[0].min' must be a number in [0, 1]"),
        ("[[defaults.check]]\ntype = 'robust'\nattack = 'cw-l2'\nepsilon = -1\n",
         "'defaults.check[0].epsilon' must be a positive finite number"),
        ("[[defaults.check]]\ntype = 'robust-accuracy'\nattack = 'cw-l2'\nepsilon = nan\nmin = 1.0\n",
         "'defaults.check[0].epsilon' must be a positive finite number, got nan"),
        ("[[defaults.check]]\ntype = 'robust'\nattack = 'cw-l2'\nepsilon = inf\n",
         "'defaults.check[0].epsilon' must be a positive finite number, got inf"),
        ("[[defaults.check]]\ntype = 'robust-accuracy'\nattack = 'cw-l2'\nepsilon = 1\nmin = nan\n",
         "'defaults.check[0].min' must be a number in [0, 1]"),
        ("[defaults]\nmin_clean_accuracy = nan\n", "'defaults.min_clean_accuracy' must be a number in [0, 1], got nan"),
        ("[defaults]\nbaseline_tolerance = -inf\n", "'defaults.baseline_tolerance' must be a number in [0, 1]"),
        ("[defaults]\ninput_range = [0, inf]\n", "'defaults.input_range' must be a [low, high] pair of finite numbers"),
        ("[defaults]\ninput_range = [nan, 1]\n", "'defaults.input_range' must be a [low, high] pair of finite numbers"),
        ("[defaults]\ndataset = {images = 'data.npz', labels = 'data.npz', scale = nan}\n",
         "'defaults.dataset.scale' must be a positive finite number, got nan"),
        ("[defaults]\nsamples = 0\n", "'defaults.samples' must be a positive integer"),
        ("[defaults]\nsamples = 1.5\n", "'defaults.samples' must be a positive integer"),
        ("[[defaults.check]]\ntype = 'robust'\nattack = 'cw-l2'\nepsilon = 1\nmin = 0.5\n",
         "'defaults.check[0].min' applies to robust-accuracy and certified-accuracy checks only"),
        ("[defaults.attacks.cw-l7]\nsteps = 1\n", "unknown attack 'defaults.attacks.cw-l7'"),
        ("[models.x]\nbogus = 1\n", "unknown key 'models.x.bogus'"),
        ("[nonsense]\n", "unknown key 'nonsense'"),
        ("[defaults]\ndataset = {images = 'data.npz', labels = 'nope.gz'}\n", "nope.gz, which does not exist"),
    ],
)
def test_config_errors_name_file_key_and_expectation(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_suite_config([path])
    assert str(exc.value).startswith(str(path) + ":")
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_reads_idx_and_npz(tmp_path: Path) -> None:
    images = ROOT / "models" / "data" / "t10k-images-idx3-ubyte.gz"
    labels = ROOT / "models" / "data" / "t10k-labels-idx1-ubyte.gz"
    mnist = load_dataset(images, labels=labels, scale=1 / 255)
    assert mnist.x.shape == (10000, 1, 28, 28) and mnist.x.max() <= 1.0
    assert mnist.y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(mnist.y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    np.savez(tmp_path / "d.npz", x=mnist.x[:5], y=mnist.y[:5])
    small = load_dataset(tmp_path / "d.npz", limit=3)
    assert len(small) == 3 and small.index.tolist() == [0, 1, 2]


def test_bad_datasets_get_one_line_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad-idx3-ubyte.gz"
    bad.write_bytes(gzip.compress(b"\x01\x02\x03\x04"))
    with pytest.raises(DataError, match="bad magic number"):
        load_dataset(bad, labels=bad)
    truncated = tmp_path / "t-idx1-ubyte"
    truncated.write_bytes(b"\x00\x00\x08\x01" + (100).to_bytes(4, "big") + bytes(10))
    with pytest.raises(DataError, match="truncated"):
        load_dataset(truncated, labels=truncated)
    np.savez(tmp_path / "noy.npz", x=np.zeros((2, 3)))
    with pytest.raises(DataError, match="missing array"):
        load_dataset(tmp_path / "noy.npz")
    np.savez(tmp_path / "nan.npz", x=np.full((2, 3), np.nan), y=np.zeros(2, int))
    with pytest.raises(DataError, match="NaN"):
        load_dataset(tmp_path / "nan.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_dataset(tmp_path / "junk.npz")


# -- the config loader on random input: a valid config or one line naming the file, never a crash --------
_KNOWN = ["dataset", "input_range", "layout", "output", "samples", "min_clean_accuracy", "masking",
          "baseline_tolerance", "check", "attacks", "type", "attack", "epsilon", "min", "targeted", "params",
          "images", "labels", "scale", "cw-l2", "pgd-linf", "robust", "robust-accuracy", "defaults", "models"]
_scalars = (st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.sampled_from(_KNOWN)
            | st.sampled_from(["data.npz", "NCHW", "NHWC", "fail", "warn", "nope.npz"]) | st.text(max_size=8))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.sampled_from(_KNOWN) | st.text(max_size=6), inner, max_size=4),
                       max_leaves=25)
_checks = st.lists(st.dictionaries(st.sampled_from(_KNOWN), _values, max_size=6), max_size=3)
_sections = st.dictionaries(st.sampled_from(_KNOWN), _values | _checks, max_size=6)


def _toml_value(value) -> str:
    """A TOML inline value (TOML has no null: None never reaches here)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != value:
            return "nan"
        return ("inf" if value > 0 else "-inf") if abs(value) == float("inf") else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(defaults=_sections, models=st.dictionaries(st.text(max_size=6), _sections, max_size=2),
       extra=st.dictionaries(st.sampled_from(_KNOWN), _values, max_size=2))
def test_random_toml_gives_a_config_or_one_line(tmp_path: Path, defaults, models, extra) -> None:
    lines = [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in extra.items()]
    lines.append("[defaults]")
    lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in defaults.items()]
    for name, section in models.items():
        lines.append(f"[models.{json.dumps(name)}]")
        lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in section.items()]
    path = _write(tmp_path, "\n".join(lines) + "\n")
    try:
        suite = load_suite_config([path])
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(f"{path}:") and "\n" not in message, message
        return
    for stem in ["m", *models]:
        config = suite.for_model(stem)
        for check in config.checks:
            assert math.isfinite(check.epsilon) and check.epsilon > 0
            assert check.min is None or 0 <= check.min <= 1
        assert config.input_range is None or all(math.isfinite(v) for v in config.input_range)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200))
def test_random_bytes_give_a_config_or_one_line(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "robustcheck.toml"
    path.write_bytes(data)
    try:
        load_suite_config([path])
    except ConfigError as exc:
        assert str(exc).startswith(f"{path}:") and "\n" not in str(exc)


def test_a_non_finite_figure_gate_or_epsilon_never_passes(tmp_path: Path) -> None:
    from toy_suite import write_suite

    from robustcheck.attacks import CarliniWagnerL2
    from robustcheck.evaluation import gate_met
    from robustcheck.model import load_model
    from robustcheck.properties import assert_robust, robust_accuracy

    assert gate_met(0.7, 0.5, 1.0) and not gate_met(0.4, 0.5, 1.0)
    for bad in (math.nan, math.inf, -math.inf):
        assert not gate_met(bad, 0.5) and not gate_met(0.7, bad) and not gate_met(0.7, 0.5, bad)
    folder = write_suite(tmp_path / "models")
    model = load_model(folder / "toy.onnx")
    with np.load(folder / "data.npz") as data:
        x, y = data["x"][:4], data["y"][:4]
    attack = CarliniWagnerL2(binary_search_steps=1, max_iterations=5)
    for eps in (math.nan, math.inf, 0.0):
        with pytest.raises(ValueError, match="epsilon must be a positive finite number"):
            assert_robust(model, x, y, attack, eps)
        with pytest.raises(ValueError, match="epsilon must be a positive finite number"):
            robust_accuracy(model, x, y, attack, eps)
