"""RunRecord: the plain, versioned, JSON-able record of a run.

Everything the reports show comes from here; the JSON file is the source of truth. Items
(pytest test items) produce `ItemRecord`s carrying the figures they measured; xdist workers
ship them to the controller inside their test reports, and the controller merges them into
one `RunRecord` per run. Import-light: no numpy, no torch.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

SCHEMA_VERSION = 1

Verdict = Literal["passed", "failed", "error", "skipped"]
Severity = Literal["error", "warning", "info"]


@dataclass
class Distortion:
    """Summary of the per-sample distances of the successful adversarial examples."""

    norm: str
    count: int
    mean: float | None
    median: float | None
    min: float | None
    max: float | None


@dataclass
class CurvePoint:
    epsilon: float
    robust_accuracy: float


@dataclass
class AttackRecord:
    """One attack run on one model: settings, success, distortions, robustness curve."""

    attack: str
    norm: str
    params: dict[str, Any]
    samples: int
    success_rate: float
    wall_time_s: float
    replica_disagreements: int
    epsilon: float | None = None
    distortion: list[Distortion] = field(default_factory=list)
    # Per-sample minimal distortion in the attack's norm (null where the attack failed).
    min_distances: list[float | None] = field(default_factory=list)
    curve: list[CurvePoint] = field(default_factory=list)
    targeted: bool = False


@dataclass
class Counterexample:
    """A verified adversarial example, saved to disk, with what a reviewer needs to judge it."""

    model: str
    property: str
    attack: str
    norm: str
    sample_index: int
    dataset_index: int
    true_label: int
    adv_label: int
    target: int | None
    confidence_true: float
    confidence_adv: float
    distances: dict[str, float]
    epsilon: float | None
    npz: str | None = None
    png: str | None = None
    reproduce: str | None = None


@dataclass
class FindingRecord:
    """A diagnostics finding (see robustcheck.diagnostics.Finding) as plain data."""

    id: str
    severity: Severity
    title: str
    evidence: dict[str, Any]
    explanation: str
    remedy: str
    samples: list[int] = field(default_factory=list)


@dataclass
class ItemRecord:
    """The outcome of one pytest item (one claim about one model)."""

    nodeid: str
    model: str
    kind: str
    name: str
    verdict: Verdict
    message: str = ""
    figures: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0


@dataclass
class ModelRecord:
    """Everything measured on one model file."""

    name: str
    file: str
    sha256: str | None = None
    error: str | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    clean_accuracy: float | None = None
    samples: int | None = None
    items: list[ItemRecord] = field(default_factory=list)
    attacks: list[AttackRecord] = field(default_factory=list)
    counterexamples: list[Counterexample] = field(default_factory=list)
    findings: list[FindingRecord] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        verdicts = {i.verdict for i in self.items}
        for v in ("error", "failed", "passed"):
            if v in verdicts:
                return v  # type: ignore[return-value]
        return "skipped"


@dataclass
class BaselineDelta:
    """One model's comparison against the baseline run (the last release)."""

    model: str
    metric: str
    baseline: float | None
    current: float | None
    tolerance: float | None
    regressed: bool
    note: str = ""


@dataclass
class RunInfo:
    robustcheck: str
    versions: dict[str, str]
    profile: str
    seed: int
    machine: dict[str, Any]
    started: str
    finished: str | None = None
    duration_s: float | None = None
    workers: int = 0
    interrupted: bool = False
    config_files: list[str] = field(default_factory=list)
    baseline_file: str | None = None
    report_dir: str = "reports"


@dataclass
class RunRecord:
    run: RunInfo
    models: list[ModelRecord] = field(default_factory=list)
    baseline: list[BaselineDelta] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def model(self, name: str) -> ModelRecord | None:
        return next((m for m in self.models if m.name == name), None)


def _build(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (nested) record dataclass from plain data, ignoring unknown keys."""
    nested = {
        RunRecord: {"run": RunInfo, "models": [ModelRecord], "baseline": [BaselineDelta]},
        ModelRecord: {"items": [ItemRecord], "attacks": [AttackRecord], "counterexamples": [Counterexample],
                      "findings": [FindingRecord]},
        AttackRecord: {"distortion": [Distortion], "curve": [CurvePoint]},
    }.get(cls, {})
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in cls.__dataclass_fields__:
            continue
        kind = nested.get(key)
        if isinstance(kind, list) and value is not None:
            kwargs[key] = [_build(kind[0], v) for v in value]
        elif kind is not None and value is not None:
            kwargs[key] = _build(kind, value)
        else:
            kwargs[key] = value
    return cls(**kwargs)


def record_from_dict(data: dict[str, Any]) -> RunRecord:
    """Parse a record read from JSON; raises ValueError on another schema version."""
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"robustcheck record schema version {version!r}; this robustcheck reads {SCHEMA_VERSION}")
    return _build(RunRecord, data)


def load_record(path: str | os.PathLike[str]) -> RunRecord:
    """Read a robustcheck.json written by an earlier run."""
    with open(path, encoding="utf-8") as fh:
        return record_from_dict(json.load(fh))


def write_atomic(path: str | os.PathLike[str], text: str | bytes) -> None:
    """Write a file so that readers see the old or the new content, never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8") if isinstance(text, str) else text
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        # mkstemp creates 0600 files; reports are shared artefacts: use the usual umask-derived mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
