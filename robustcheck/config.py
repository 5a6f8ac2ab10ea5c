"""Suite configuration: `robustcheck.toml` beside the models, defaults in `[tool.robustcheck]`.

Parsed into frozen dataclasses and validated eagerly: an unknown key, a wrong type or a
missing file is one `ConfigError` naming the file, the key and what was expected. The
format (see the README for a full example):

    [defaults]                      # applies to every model
    dataset = "data/mnist-heldout.npz"
    samples = 100
    min_clean_accuracy = 0.97
    masking = "fail"                # or "warn"

    [[defaults.check]]
    type = "robust-accuracy"        # or "robust" (no adversarial example within ε); "transform" and
                                    # "accuracy-under": see transforms/checks.py
    attack = "cw-l2"
    epsilon = 1.0
    min = 0.5

    [models."distilled*"]           # a model file stem or a glob over stems
    min_clean_accuracy = 0.975

Import-light: no numpy, no torch until an attack label is looked up (the attack registry).
"""

from __future__ import annotations

import fnmatch
import math
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from robustcheck import input_config
from robustcheck.errors import AttackParamError, ConfigError, RobustcheckError
from robustcheck.input_config import ImageDatasetSpec
from robustcheck.transforms.checks import TRANSFORM_CHECK_TYPES, TransformCheck, parse_transform_check

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_NAME = "robustcheck.toml"

CHECK_TYPES = ("robust", "robust-accuracy", "certified-accuracy")
#: The minimal-norm attack that gives a certified-accuracy check's brackets their upper end, per norm.
BRACKET_ATTACKS = {"linf": "cw-linf", "l2": "cw-l2"}


@dataclass(frozen=True)
class DatasetSpec:
    """An `.npz` (x, y) file, or IDX images + labels with an optional scale."""

    path: Path
    labels: Path | None = None
    scale: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "labels": None if self.labels is None else str(self.labels),
                "scale": self.scale}


@dataclass(frozen=True)
class Check:
    """One robustness claim about a model, turned into one test item."""

    type: str
    attack: str
    epsilon: float
    min: float | None = None
    targeted: bool = False
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def id(self) -> str:
        eps = f"{self.epsilon:g}"
        if self.type == "certified-accuracy":
            return f"{self.type}[{self.norm}@{eps}]"
        suffix = "-targeted" if self.targeted else ""
        return f"{self.type}[{self.attack}{suffix}@{eps}]"

    @property
    def norm(self) -> str:
        from robustcheck.attacks.registry import attack_spec

        return attack_spec(self.attack).norm


@dataclass(frozen=True)
class ModelConfig:
    """The resolved settings of one model file."""

    dataset: DatasetSpec | ImageDatasetSpec | None = None
    # (low, high), or per channel ((lows...), (highs...)) for inputs in normalised space
    input_range: tuple[float, float] | tuple[tuple[float, ...], ...] | None = None
    layout: Literal["NCHW", "NHWC"] | None = None
    output: str | None = None
    samples: int | None = None
    min_clean_accuracy: float | None = None
    masking: Literal["fail", "warn"] = "fail"
    baseline_tolerance: float = 0.02
    certify: bool = False
    checks: tuple[Check | TransformCheck, ...] = ()
    attacks: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    source: str = ""
    preprocess: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    classes: tuple[str, ...] | None = None
    device: str | None = None

    def attack_params(self, label: str) -> dict[str, Any]:
        return dict(next((p for name, p in self.attacks if name == label), ()))

    def to_dict(self) -> dict[str, Any]:
        """Plain data for records and reports."""
        return {
            "dataset": None if self.dataset is None else self.dataset.to_dict(),
            "input_range": None if self.input_range is None else [
                list(v) if isinstance(v, tuple) else v for v in self.input_range],
            "preprocess": None if self.preprocess is None else {"mean": list(self.preprocess[0]),
                                                                "std": list(self.preprocess[1])},
            "classes": None if self.classes is None else list(self.classes), "device": self.device,
            "layout": self.layout, "output": self.output, "samples": self.samples,
            "min_clean_accuracy": self.min_clean_accuracy, "masking": self.masking,
            "baseline_tolerance": self.baseline_tolerance, "certify": self.certify,
            "checks": [c.to_dict() if isinstance(c, TransformCheck) else
                       {"id": c.id, "type": c.type, "attack": c.attack, "epsilon": c.epsilon, "min": c.min,
                        "targeted": c.targeted, "params": dict(c.params)} for c in self.checks],
            "attacks": {name: dict(p) for name, p in self.attacks},
            "source": self.source,
        }


@dataclass(frozen=True)
class SuiteConfig:
    """Defaults plus per-model sections, as read from one or two files."""

    defaults: dict[str, Any] = field(default_factory=dict)
    models: tuple[tuple[str, dict[str, Any]], ...] = ()
    files: tuple[str, ...] = ()

    def for_model(self, stem: str) -> ModelConfig:
        """The settings for the model file with this stem (defaults, then every matching section)."""
        merged = dict(self.defaults)
        for pattern, section in self.models:
            if fnmatch.fnmatchcase(stem, pattern):
                merged.update(section)
        return replace(_to_model_config(merged), source=", ".join(self.files))


_KEYS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "dataset": ((str, dict), "a path to an .npz file, an image folder or a .csv, or a table {images, labels, "
                             "scale} (IDX) or {images | csv, resize, crop, channels} (image files)"),
    "input_range": (list, "a [low, high] pair of numbers, or [[lows], [highs]] per channel"),
    "preprocess": (dict, "a table { mean = [...], std = [...] }"),
    "classes": (list, "a list of class names in output order"),
    "device": (str, "\"auto\", \"cpu\" or \"cuda\""),
    "layout": (str, "\"NCHW\" or \"NHWC\""),
    "output": (str, "the name of the output holding the logits"),
    "samples": (int, "a positive integer (samples per model)"),
    "min_clean_accuracy": ((int, float), "a number in [0, 1]"),
    "masking": (str, "\"fail\" or \"warn\""),
    "baseline_tolerance": ((int, float), "a number in [0, 1]"),
    "check": (list, "an array of tables [[check]]"),
    "certify": (bool, "true or false (robust checks also run CROWN: proven / violated / unrefuted)"),
    "attacks": (dict, "a table of attack labels to hyper-parameter tables"),
}
_CHECK_KEYS = {"type", "attack", "epsilon", "min", "targeted", "params", "norm"}


def load_suite_config(files: list[Path]) -> SuiteConfig:
    """Read and validate config files, later files overriding earlier ones.

    A file is either a `robustcheck.toml` (keys at the top level: `defaults`, `models`) or a
    `pyproject.toml` (the same keys under `[tool.robustcheck]`).
    """
    defaults: dict[str, Any] = {}
    models: list[tuple[str, dict[str, Any]]] = []
    used: list[str] = []
    for path in files:
        data = _read_toml(path)
        if path.name == "pyproject.toml":
            tool = data.get("tool")
            section = tool.get("robustcheck") if isinstance(tool, dict) else None
            if section is None:
                continue
            if not isinstance(section, dict):
                raise ConfigError(f"{path}: 'tool.robustcheck' must be a table")
            data = section
            where = "[tool.robustcheck]"
        else:
            where = ""
        used.append(str(path))
        unknown = set(data) - {"defaults", "models"}
        if unknown:
            raise ConfigError(f"{path}: unknown key '{sorted(unknown)[0]}' in {where or 'the top level'} "
                              "(expected 'defaults' or 'models')")
        prefix = "tool.robustcheck." if where else ""
        defaults.update(_section(path, prefix + "defaults", data.get("defaults", {})))
        sections = data.get("models", {})
        if not isinstance(sections, dict):
            raise ConfigError(f"{path}: 'models' must be a table of model-name sections")
        for pattern, section in sections.items():
            models.append((pattern, _section(path, f"{prefix}models.{pattern}", section)))
    suite = SuiteConfig(defaults, tuple(models), tuple(used))
    # Resolve every section now so that errors surface before anything runs.
    _to_model_config(dict(defaults))
    for _pattern, section in models:
        _to_model_config({**defaults, **section})
    return suite


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); TOML files are UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def _section(path: Path, where: str, section: Any) -> dict[str, Any]:
    """Validate one defaults/models section; returns it with paths resolved against the file."""
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: '{where}' must be a table")
    out: dict[str, Any] = {"_file_": path}
    for key, value in section.items():
        if key not in _KEYS:
            raise ConfigError(f"{path}: unknown key '{where}.{key}' (known keys: {', '.join(sorted(_KEYS))})")
        kinds, expected = _KEYS[key]
        if not isinstance(value, kinds) or isinstance(value, bool) and kinds in (int, (int, float)):
            raise ConfigError(f"{path}: '{where}.{key}' must be {expected}, got {value!r}")
        out[key] = _validate(path, f"{where}.{key}", key, value)
    return out


def _is_number(value: Any) -> bool:
    """A finite int or float (TOML also has nan and inf, and true is an int to Python)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(path: Path, where: str, value: Any, expected: str, *, low: float | None = None,
            high: float | None = None, positive: bool = False) -> float:
    """`value` as a float when it is a finite number in range; else a ConfigError naming file, key, expectation."""
    if not _is_number(value) or (positive and value <= 0) or (low is not None and value < low) \
            or (high is not None and value > high):
        raise ConfigError(f"{path}: '{where}' must be {expected}, got {value!r}")
    return float(value)


def _validate(path: Path, where: str, key: str, value: Any) -> Any:
    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{path}: '{where}' must be {expected}, got {value!r}")

    if key == "dataset":
        return _dataset(path, where, value)
    if key == "input_range":
        return input_config.input_range(path, where, value)
    if key in ("preprocess", "classes", "device"):
        return getattr(input_config, key)(path, where, value)
    if key == "layout" and value not in ("NCHW", "NHWC"):
        raise bad("\"NCHW\" or \"NHWC\"")
    if key == "samples" and value < 1:
        raise bad("a positive integer")
    if key in ("min_clean_accuracy", "baseline_tolerance"):
        return _number(path, where, value, "a number in [0, 1]", low=0.0, high=1.0)
    if key == "masking" and value not in ("fail", "warn"):
        raise bad("\"fail\" or \"warn\"")
    if key == "check":
        return tuple(_check(path, f"{where}[{i}]", c) for i, c in enumerate(value))
    if key == "attacks":
        labels = _attack_labels()
        for label, params in value.items():
            if label not in labels:
                raise ConfigError(f"{path}: unknown attack '{where}.{label}' (known: {', '.join(labels)})")
            if not isinstance(params, dict):
                raise ConfigError(f"{path}: '{where}.{label}' must be a table of hyper-parameters")
            _validate_attack_params(path, f"{where}.{label}", label, params)
        return tuple((label, tuple(sorted(p.items()))) for label, p in value.items())
    return value


def _dataset(path: Path, where: str, value: Any) -> DatasetSpec | ImageDatasetSpec:
    images = input_config.image_dataset(path, where, value)
    if images is not None:
        return images
    base = path.parent
    if isinstance(value, str):
        spec = DatasetSpec(base / value)
    else:
        unknown = set(value) - {"images", "labels", "scale", "path"}
        if unknown:
            raise ConfigError(f"{path}: unknown key '{where}.{sorted(unknown)[0]}' (expected images, labels, scale)")
        images = value.get("images", value.get("path"))
        if not isinstance(images, str):
            raise ConfigError(f"{path}: '{where}.images' must be a path")
        labels = value.get("labels")
        if labels is not None and not isinstance(labels, str):
            raise ConfigError(f"{path}: '{where}.labels' must be a path")
        scale = value.get("scale")
        if scale is not None:
            scale = _number(path, f"{where}.scale", scale, "a positive finite number", positive=True)
        spec = DatasetSpec(base / images, None if labels is None else base / labels, scale)
    for file in (spec.path, spec.labels):
        if file is not None and not file.is_file():
            raise ConfigError(f"{path}: '{where}' refers to {file}, which does not exist")
    if spec.labels is None and spec.path.suffix != ".npz":
        raise ConfigError(f"{path}: '{where}' must be an .npz file or a table with images and labels")
    return spec


def _check(path: Path, where: str, value: Any) -> Check | TransformCheck:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: '{where}' must be a table")
    if value.get("type") in TRANSFORM_CHECK_TYPES:
        return parse_transform_check(path, where, value)
    unknown = set(value) - _CHECK_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key '{where}.{sorted(unknown)[0]}' "
                          f"(known: {', '.join(sorted(_CHECK_KEYS))})")
    kind = value.get("type")
    if kind not in CHECK_TYPES:
        raise ConfigError(f"{path}: '{where}.type' must be one of {', '.join(CHECK_TYPES + TRANSFORM_CHECK_TYPES)}, "
                          f"got {kind!r}")
    attack = value.get("attack")
    if kind == "certified-accuracy":
        attack = _bracket_attack(path, where, value.get("norm"), attack)
    elif "norm" in value:
        raise ConfigError(f"{path}: '{where}.norm' applies to certified-accuracy checks only (an attack has its norm)")
    labels = _attack_labels()
    if attack not in labels:
        raise ConfigError(f"{path}: '{where}.attack' must be one of {', '.join(labels)}, got {attack!r}")
    eps = _number(path, f"{where}.epsilon", value.get("epsilon"), "a positive finite number", positive=True)
    minimum = value.get("min")
    if kind in ("robust-accuracy", "certified-accuracy"):
        minimum = _number(path, f"{where}.min", minimum, f"a number in [0, 1] for {kind}", low=0.0, high=1.0)
    elif minimum is not None:
        raise ConfigError(f"{path}: '{where}.min' applies to robust-accuracy and certified-accuracy checks only")
    targeted = value.get("targeted", False)
    if not isinstance(targeted, bool):
        raise ConfigError(f"{path}: '{where}.targeted' must be true or false, got {targeted!r}")
    params = value.get("params", {})
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: '{where}.params' must be a table of hyper-parameters")
    _validate_attack_params(path, f"{where}.params", attack, params)
    return Check(kind, attack, eps, minimum, targeted,
                 tuple(sorted(params.items())))


def _bracket_attack(path: Path, where: str, norm: Any, attack: Any) -> Any:
    """A certified-accuracy check's norm (required) and its bracket attack (default by norm, same norm)."""
    if norm not in BRACKET_ATTACKS:
        raise ConfigError(f"{path}: '{where}.norm' must be one of {', '.join(BRACKET_ATTACKS)}, got {norm!r}")
    if attack is None:
        return BRACKET_ATTACKS[norm]
    from robustcheck.attacks.registry import attack_spec

    if attack in _attack_labels() and attack_spec(attack).norm != norm:
        raise ConfigError(f"{path}: '{where}.attack' {attack!r} is not an {norm} attack (it bounds the brackets)")
    return attack


def _attack_labels() -> list[str]:
    """The registered attack labels (imports the attacks, and with them torch, on first use)."""
    from robustcheck.attacks.registry import attack_labels

    try:
        return list(attack_labels())
    except RobustcheckError as exc:  # a third-party attack that cannot be loaded
        raise ConfigError(str(exc)) from None


def _validate_attack_params(path: Path, where: str, label: str, params: dict[str, Any]) -> None:
    from robustcheck.attacks.registry import validate_params

    try:
        validate_params(label, params)
    except AttackParamError as exc:
        raise ConfigError(f"{path}: '{where}.{exc.key}' {exc.message}") from None


def _to_model_config(merged: dict[str, Any]) -> ModelConfig:
    merged = {k: v for k, v in merged.items() if not k.startswith("_")}
    checks = merged.pop("check", ())
    attacks = merged.pop("attacks", ())
    return ModelConfig(**merged, checks=tuple(checks), attacks=tuple(attacks))


def find_config_files(model_path: Path, rootdir: Path) -> list[Path]:
    """`pyproject.toml` at the root (when it has [tool.robustcheck]) then the nearest robustcheck.toml."""
    files: list[Path] = []
    pyproject = rootdir / "pyproject.toml"
    if pyproject.is_file():
        files.append(pyproject)
    folder = model_path.resolve().parent
    root = rootdir.resolve()
    while True:
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            files.append(candidate)
            break
        if folder == root or folder.parent == folder:
            break
        folder = folder.parent
    return files

