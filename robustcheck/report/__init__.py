"""Reports made from a `RunRecord`: JSON (the source of truth), console (rich) and HTML.

Renderers never compute: they read figures that the run put into the record. This module
holds what the console and HTML views share — the summary figures picked out of the record
and the number formats — and `write_reports`, the one call the plugin makes at the end of
a run. Import-light: rich, jinja2, matplotlib and Pillow load inside the functions that
need them.

Public entry points:

- `write_reports(record, json_path, html_path)` → writes both files (JSON validated first)
- `robustcheck.report.json_report.write_json(record, path)`
- `robustcheck.report.html.write_html(record, path)` / `render_html(record)`
- `robustcheck.report.terminal.make_console(...)`, `progress(...)`
- `robustcheck.report.console.render_summary(...)`, `render_header(...)`
- `robustcheck.report.images.write_counterexample_png(...)`
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustcheck.figures import RobustAccuracyFigures, RobustPropertyFigures
from robustcheck.record import SEVERITY_ORDER

if TYPE_CHECKING:
    from robustcheck.record import ModelRecord, RunRecord

__all__ = ["write_reports", "summarize", "Summary", "ModelSummary", "RobustColumn"]

NORM_NAMES = {"l0": "L0", "l1": "L1", "l2": "L2", "linf": "L∞"}


def write_reports(record: RunRecord, json_path: str | os.PathLike[str] | None,
                  html_path: str | os.PathLike[str] | None) -> None:
    """Write the JSON record, then the HTML report made from it (either path may be None)."""
    if json_path is not None:
        from robustcheck.report.json_report import write_json

        write_json(record, json_path)
    if html_path is not None:
        from robustcheck.report.html import write_html

        write_html(record, html_path)


# -- shared summary -------------------------------------------------------------------------
@dataclass(frozen=True)
class RobustColumn:
    """One robust-accuracy figure that several models may share: attack, norm, ε."""

    attack: str
    norm: str
    epsilon: float
    targeted: bool = False

    @property
    def label(self) -> str:
        t = " targeted" if self.targeted else ""
        return f"{self.attack}{t} {norm_name(self.norm)} ε={self.epsilon:g}"


@dataclass
class RobustFigure:
    value: float | None
    minimum: float | None = None  # the configured gate, when an item measured it
    verdict: str | None = None  # the item's verdict; None when read from an attack record
    #: Attack label → samples it broke within ε (the worst case: check's attack, then the cascade).
    broken_by: dict[str, int] = field(default_factory=dict)
    #: The same attack on exact gradients when this figure came from adaptive ones (the gap is evidence).
    exact: float | None = None

    @property
    def broken_by_text(self) -> str:
        """"cw-l2 12 · apgd-t 1": the attacks that broke samples, with their counts ("" when none)."""
        return " · ".join(f"{k} {v}" for k, v in self.broken_by.items() if v)


@dataclass
class ModelSummary:
    name: str
    verdict: str
    error: str | None
    clean_accuracy: float | None
    robust: dict[RobustColumn, RobustFigure]
    #: (attack, norm, median minimal distortion) for the attacks that search for the minimum.
    distortions: list[tuple[str, str, float | None]]
    findings: dict[str, int]
    finding_ids: list[str]
    items: dict[str, int]
    counterexamples: int
    anchor: str = ""


@dataclass
class Summary:
    columns: list[RobustColumn]
    models: list[ModelSummary]
    verdict: str
    totals: dict[str, int] = field(default_factory=dict)
    regressions: int = 0


def summarize(record: RunRecord) -> Summary:
    """Pick the summary figures out of the record (no figure is computed here)."""
    columns: list[RobustColumn] = []
    models = []
    for index, model in enumerate(record.models):
        robust = _robust_figures(model)
        for col in robust:
            if col not in columns:
                columns.append(col)
        findings: dict[str, int] = {s: sum(f.severity == s for f in model.findings) for s in SEVERITY_ORDER}
        items: dict[str, int] = {}
        for item in model.items:
            items[item.verdict] = items.get(item.verdict, 0) + 1
        models.append(ModelSummary(
            name=model.name, verdict=model.verdict, error=model.error, clean_accuracy=_num(model.clean_accuracy),
            robust=robust,
            distortions=[(a.attack, a.norm, _median(a)) for a in model.attacks if a.minimal_norm],
            findings=findings, finding_ids=[f.id for f in model.findings], items=items,
            counterexamples=len(model.counterexamples), anchor=anchor(model.name, index),
        ))
    columns.sort(key=lambda c: (c.norm, c.attack, c.epsilon, c.targeted))
    totals: dict[str, int] = {}
    for m in models:
        for verdict, n in m.items.items():
            totals[verdict] = totals.get(verdict, 0) + n
    regressions = sum(d.regressed for d in record.baseline)
    return Summary(columns, models, record.verdict, totals, regressions)


def _robust_figures(model: ModelRecord) -> dict[RobustColumn, RobustFigure]:
    out: dict[RobustColumn, RobustFigure] = {}
    # A robust[...] property on an adaptive model: its exact-gradient figure goes with its pool run's column.
    exact_of = {RobustColumn(f.attack, f.norm, f.epsilon, f.targeted): _num(f.exact_robust_accuracy)
                for f in (item.figures for item in model.items)
                if isinstance(f, RobustPropertyFigures) and f.exact_robust_accuracy is not None}
    for item in model.items:
        f = item.figures
        if not isinstance(f, RobustAccuracyFigures) or not math.isfinite(f.epsilon):
            continue
        col = RobustColumn(f.attack, f.norm, f.epsilon, f.targeted)
        out[col] = RobustFigure(_num(f.robust_accuracy), _num(f.min), item.verdict, dict(f.broken_by),
                                exact=_num(f.exact_robust_accuracy))
    for attack in model.attacks:
        # A bounded attack's curve ends at its ε: that point is the robust accuracy it measured.
        if attack.epsilon is None or not attack.curve:
            continue
        col = RobustColumn(attack.attack, attack.norm, float(attack.epsilon), attack.targeted)
        if col in out:
            continue
        last = attack.curve[-1]
        if last.epsilon is not None and math.isclose(last.epsilon, attack.epsilon, rel_tol=1e-9, abs_tol=1e-12):
            out[col] = RobustFigure(_num(last.robust_accuracy), exact=exact_of.get(col))
    return out


def _median(attack: Any) -> float | None:
    for d in attack.distortion:
        if d.norm == attack.norm:
            return _num(d.median)
    return None


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


# -- formats --------------------------------------------------------------------------------
def norm_name(norm: str) -> str:
    return NORM_NAMES.get(norm, norm.upper())


def fmt_pct(value: Any, digits: int = 1) -> str:
    v = _num(value)
    return "—" if v is None else f"{v * 100:.{digits}f}%"


def fmt_num(value: Any, digits: int = 4) -> str:
    v = _num(value)
    if v is None:
        return "—"
    if v == int(v) and abs(v) < 1e9:
        return str(int(v))
    return f"{v:.{digits}g}"


def fmt_seconds(value: Any) -> str:
    v = _num(value)
    if v is None:
        return "—"
    if v < 1:
        return f"{v * 1000:.0f} ms"
    if v < 120:
        return f"{v:.1f} s"
    return f"{int(v // 60)} min {v % 60:02.0f} s"


def anchor(name: str, index: int) -> str:
    """A safe, unique HTML id for a model section."""
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:40].strip("-")
    return f"model-{index}-{safe}" if safe else f"model-{index}"


def display_path(path: str | os.PathLike[str] | None) -> str:
    if path is None:
        return ""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)
