"""The typed contract from items to reports: `ItemOutcome` per item, `RunRecord` per run.

An item (one claim about one model) hands the session an `ItemOutcome`: its `ItemRecord`
(verdict, message, typed figures chosen by the item's kind), what it learnt about the model
(`ModelInfo`, with a typed `ModelSpec`), and the attack records, counterexamples, findings
and baseline deltas it produced. xdist workers send `outcome.to_dict()`; the controller
rebuilds it with `ItemOutcome.from_dict` and assembles one `RunRecord`, which is what every
report renders and what `robustcheck.json` holds. Rebuilding from JSON is derived from the
type hints (`typed_data.from_plain`), never from a hand table. Import-light: standard library.

Figures per item kind live in `figures.py`; add a kind there (`FIGURES`).
"""

from __future__ import annotations

import builtins
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from robustcheck.errors import ClaimFailure
from robustcheck.figures import FIGURES, Figures
from robustcheck.typed_data import from_plain, to_plain

SCHEMA_VERSION = 2

Verdict = Literal["passed", "failed", "error", "skipped"]
RunVerdict = Literal["passed", "failed", "error", "skipped", "interrupted", "incomplete"]
Severity = Literal["error", "warning", "info"]

#: Worst first. A model's (and a run's) verdict is the worst of its items'.
VERDICT_ORDER: tuple[Verdict, ...] = ("error", "failed", "passed", "skipped")
SEVERITY_ORDER: tuple[Severity, ...] = ("error", "warning", "info")


def severity_rank(severity: str) -> int:
    """Sort key: errors first, then warnings, then information (unknown last)."""
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else len(SEVERITY_ORDER)


def is_bad(verdict: str) -> bool:
    """A verdict that needs a look: the claim did not hold, or could not be checked."""
    return verdict in ("failed", "error")


def worst_verdict(verdicts: list[Verdict] | set[Verdict]) -> Verdict:
    """The worst verdict present ("skipped" when there is none)."""
    return next((v for v in VERDICT_ORDER if v in verdicts), "skipped")


def classify_outcome(outcome: str, exc: BaseException | None) -> Verdict:
    """The one rule for an item's verdict, from pytest's outcome and the exception it raised.

    A claim that was checked and did not hold raises a `ClaimFailure` (robustcheck's
    `GateFailure` and `RobustnessViolation`): "failed". Anything else that stopped an item (a
    model or data error, a bug, even a stray `assert`) means the claim could not be checked: "error".
    """
    if outcome == "passed":
        return "passed"
    if outcome == "skipped":
        return "skipped"
    return "failed" if isinstance(exc, ClaimFailure) else "error"


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
    # Per norm, per sample (null where it failed): kept by the parts of a sample-split model, whose
    # merge recomputes the distortion statistics; empty otherwise.
    sample_distances: dict[str, list[float | None]] = field(default_factory=dict)
    # The pool rows those per-sample lists belong to (a part's rows, or the whole pool in order).
    pool_rows: list[int] = field(default_factory=list)

    @property
    def minimal_norm(self) -> bool:
        """A minimal-norm attack's run (C&W, EAD, JSMA…), not a bounded one's. Every attack is
        one of the two kinds (`attacks.base`), and only a bounded one records an ε."""
        return self.epsilon is None


NORM_LABELS = {"l0": "L0", "l1": "L1", "l2": "L2", "linf": "Linf"}


@dataclass
class Counterexample:
    """A verified adversarial example, with what a reviewer needs to judge it.

    `describe`, `label_change` and `distance_text` are the one place its text is formatted;
    item messages, `RobustnessViolation` and the reports all use them.
    """

    model: str
    property: str
    attack: str
    norm: str
    sample_index: int
    dataset_index: int | None
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

    @builtins.property  # the field `property` shadows the builtin in this class body
    def distance(self) -> float:
        """The distance in the attack's own norm (inf when unknown)."""
        d = self.distances.get(self.norm)
        return float(d) if d is not None and math.isfinite(d) else math.inf

    def where(self) -> str:
        row = "" if self.dataset_index is None else f" (dataset row {self.dataset_index})"
        return f"sample {self.sample_index}{row}"

    def label_change(self) -> str:
        """"label 4 (99.5%) -> 2 (54.0%)", with the target when there was one."""
        target = "" if self.target is None else f" (target {self.target})"
        return (f"label {self.true_label} ({self.confidence_true:.1%}) -> {self.adv_label} "
                f"({self.confidence_adv:.1%}){target}")

    def distance_text(self, *, with_epsilon: bool = True) -> str:
        """"L0 8  L1 0.9517  L2 0.3873  Linf 0.2559  (epsilon 5 in L2)"."""
        parts = []
        for norm, label in NORM_LABELS.items():
            if norm in self.distances:
                value = self.distances[norm]
                whole = norm == "l0" and math.isfinite(value)
                parts.append(f"{label} {value:.0f}" if whole else f"{label} {value:.4g}")
        text = "  ".join(parts)
        if with_epsilon and self.epsilon is not None:
            text += f"  (epsilon {self.epsilon:g} in {NORM_LABELS.get(self.norm, self.norm.upper())})"
        return text

    def describe(self) -> str:
        """One line: where, label change, distances."""
        return f"{self.attack} {self.where()}, {self.label_change()}, distances {self.distance_text()}"


@dataclass
class Finding:
    """A gradient-masking or attack-failure finding: stable id, severity, measured evidence."""

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
    # The figures class is chosen by `kind` (figures.FIGURES); null when the item stopped early.
    figures: Figures | None = field(default=None, metadata={"by": "kind", "table": FIGURES})
    duration_s: float = 0.0


@dataclass
class InputInfo:
    name: str
    shape: list[int | str]
    dtype: str
    layout: Literal["NCHW", "NHWC"] | None
    range: list[float]
    fixed_batch: int | None = None
    # Per-channel input box {"low": [...], "high": [...]} when given (inputs in normalised space).
    channel_bounds: dict[str, list[float]] | None = None


@dataclass
class OutputInfo:
    name: str
    kind: str
    classes: int
    cut_node: str | None = None


@dataclass
class ParityInfo:
    samples: int
    source: str
    max_abs_diff: float
    max_rel_diff: float
    argmax_agreement: float
    passed: bool
    #: "exact" (per call), "quantized" (in output quantisation steps) or "distribution" (randomized).
    kind: str = "exact"
    output_step: float | None = None
    within_one_step: float | None = None
    draws: int | None = None
    spread_ratio: float | None = None


@dataclass
class ModelSpec:
    """The model's input and output as robustcheck uses them, and how its gradients come."""

    input: InputInfo
    output: OutputInfo
    replica: str | None = None
    replica_reason: str | None = None
    nondifferentiable_ops: list[str] = field(default_factory=list)
    parity: ParityInfo | None = None
    warnings: list[str] = field(default_factory=list)
    #: "adaptive" where the replica has surrogate backward rules or random ops (issue 14), else "exact".
    gradient_mode: str = "exact"
    adaptive_ops: list[str] = field(default_factory=list)
    #: Judged by a majority vote over repeated onnxruntime calls (robustcheck/randomized_oracle.py).
    randomized: bool = False
    # {"mean": [...], "std": [...]}: inputs are pixel space, the graph receives (x - mean) / std.
    preprocess: dict[str, list[float]] | None = None
    device: str = "cpu"


@dataclass
class ModelInfo:
    """What an item learnt about its model file (every item of a model reports the same)."""

    name: str
    file: str
    sha256: str | None = None
    error: str | None = None
    spec: ModelSpec | None = None
    # The model's resolved settings, echoed as configured (shown, never read by the reports).
    config: dict[str, Any] = field(default_factory=dict)
    clean_accuracy: float | None = None
    samples: int | None = None
    # Class names in output order, when configured or read from an image folder (reports show them).
    class_names: list[str] | None = None
    # In a sharded run with fewer models than shards: this job's part of the model's rows, "part/parts".
    share: str | None = None


@dataclass
class ModelRecord(ModelInfo):
    """Everything measured on one model file."""

    __derived__: ClassVar[tuple[str, ...]] = ("verdict",)

    items: list[ItemRecord] = field(default_factory=list)
    attacks: list[AttackRecord] = field(default_factory=list)
    counterexamples: list[Counterexample] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        return "error" if self.error else worst_verdict({i.verdict for i in self.items})


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
class ItemOutcome:
    """What one item hands the session. JSON-able through `to_dict` (xdist sends that)."""

    item: ItemRecord
    model: ModelInfo
    attacks: list[AttackRecord] = field(default_factory=list)
    counterexamples: list[Counterexample] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    baseline: list[BaselineDelta] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemOutcome:
        return from_plain(cls, data)


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
    # robustcheck items pytest collected for this run (None when unknown); fewer recorded = incomplete.
    items_collected: int | None = None
    # "K/N" for one job of a sharded run (--robustcheck-shard); merged records hold the shards' list.
    shard: str | None = None
    config_files: list[str] = field(default_factory=list)
    baseline_file: str | None = None
    report_dir: str = "reports"


@dataclass
class RunRecord:
    run: RunInfo
    models: list[ModelRecord] = field(default_factory=list)
    baseline: list[BaselineDelta] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION

    __derived__: ClassVar[tuple[str, ...]] = ("verdict",)

    @property
    def items_recorded(self) -> int:
        return sum(len(m.items) for m in self.models)

    @property
    def verdict(self) -> RunVerdict:
        """The run's overall verdict: never "passed" for an interrupted or incomplete run."""
        if self.run.interrupted:
            return "interrupted"
        if self.run.items_collected is not None and self.items_recorded < self.run.items_collected:
            return "incomplete"
        verdict = worst_verdict({m.verdict for m in self.models})
        if verdict == "passed" and any(d.regressed for d in self.baseline):
            return "failed"
        return verdict

    def model(self, name: str) -> ModelRecord | None:
        return next((m for m in self.models if m.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """Rebuild a record read from JSON (this schema version or version 1); raises PlainDataError."""
        from robustcheck.typed_data import PlainDataError

        if not isinstance(data, dict):
            raise PlainDataError("a robustcheck record is a JSON object")
        version = data.get("schema_version")
        if version == 1:
            from robustcheck.record_v1 import upgrade_v1

            data = upgrade_v1(data)
        elif version != SCHEMA_VERSION:
            raise PlainDataError(f"schema version {version!r}; this robustcheck reads 1 and {SCHEMA_VERSION}")
        return from_plain(cls, data)

    @classmethod
    def from_json(cls, text: str | bytes) -> RunRecord:
        return cls.from_dict(json.loads(text))


def load_record(path: str | os.PathLike[str]) -> RunRecord:
    """Read a robustcheck.json written by an earlier run."""
    with open(path, encoding="utf-8") as fh:
        return RunRecord.from_json(fh.read())
