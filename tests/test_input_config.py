"""Config keys about inputs (preprocess, per-channel input_range, classes, device, image datasets),
and the shipped demo's model run: pixel-space image folder, preprocessing and class names in the record."""

from __future__ import annotations

from pathlib import Path

import pytest

from robustcheck.config import load_suite_config
from robustcheck.errors import ConfigError
from robustcheck.input_config import ImageDatasetSpec

DEMO = Path(__file__).resolve().parents[1] / "examples" / "cifar_resnet"


def _config(tmp_path: Path, text: str) -> Path:
    (tmp_path / "imgs" / "cat").mkdir(parents=True, exist_ok=True)
    path = tmp_path / "robustcheck.toml"
    path.write_text(text)
    return path


def test_input_keys_are_read(tmp_path: Path) -> None:
    path = _config(tmp_path, """
[defaults]
dataset = { images = "imgs", resize = 36, crop = 32 }
preprocess = { mean = [0.5, 0.4, 0.3], std = 0.25 }
classes = ["cat", "dog"]
device = "auto"
[models.raw]
input_range = [[-2, -1, 0], [2, 3, 4]]
""")
    suite = load_suite_config([path])
    cfg = suite.for_model("any")
    assert isinstance(cfg.dataset, ImageDatasetSpec) and cfg.dataset.form == "folder"
    assert cfg.dataset.resize == 36 and cfg.dataset.crop == (32, 32)
    assert cfg.preprocess == ((0.5, 0.4, 0.3), (0.25,)) and cfg.classes == ("cat", "dog") and cfg.device == "auto"
    assert suite.for_model("raw").input_range == ((-2.0, -1.0, 0.0), (2.0, 3.0, 4.0))
    plain = cfg.to_dict()
    assert plain["preprocess"] == {"mean": [0.5, 0.4, 0.3], "std": [0.25]} and plain["device"] == "auto"


@pytest.mark.parametrize(("line", "words"), [
    ('preprocess = { mean = [0.5], std = [0] }', "'defaults.preprocess.std' must be positive"),
    ('preprocess = { mean = [0.5] }', "'defaults.preprocess' must be a table"),
    ('device = "tpu"', "'defaults.device' must be one of"),
    ('classes = ["a", "a"]', "distinct"),
    ('input_range = [[0, 1], [1]]', "'defaults.input_range'"),
    ('dataset = { images = "nowhere" }', "does not exist"),
    ('dataset = { images = "imgs", zoom = 2 }', "unknown key 'defaults.dataset.zoom'"),
    ('dataset = { images = "imgs", channels = 2 }', "'defaults.dataset.channels' must be 1"),
])
def test_bad_input_keys_are_one_line(tmp_path: Path, line: str, words: str) -> None:
    path = _config(tmp_path, f"[defaults]\n{line}\n")
    with pytest.raises(ConfigError) as info:
        load_suite_config([path])
    text = str(info.value)
    assert words in text and str(path) in text and "\n" not in text


def test_demo_model_run_reads_pixels_and_records_preprocess(tmp_path: Path) -> None:
    from robustcheck.model_run import ModelRun
    from robustcheck.profiles import PROFILES

    cfg = load_suite_config([DEMO / "robustcheck.toml"]).for_model("resnet8")
    run = ModelRun(DEMO / "resnet8.onnx", cfg, PROFILES["smoke"], 0, tmp_path)
    assert run.data.class_names is not None and run.data.class_names[0] == "disk"
    assert float(run.data.x[:8].min()) >= 0.0 and float(run.data.x[:8].max()) <= 1.0  # pixel space
    assert run.clean_accuracy >= 0.95
    spec = run.model.spec()
    assert spec.preprocess is not None and spec.preprocess["mean"][0] == pytest.approx(0.499641)
    assert spec.device == "cpu" and spec.parity is not None and spec.parity.passed
