"""The HTML report: one self-contained file made from the run record.

No JavaScript, no network: styles are inline, fonts are the system's, charts are inline SVG
(`charts.py`), counterexample pictures are PNG data URIs (`images.py`), collapsible parts are
`<details>`, and a Content-Security-Policy forbids scripts and any fetch except `data:`
images, as a second line of defence. Jinja2 autoescapes everything: names, metadata,
config values and finding text supplied by models or configs are shown as text, never
interpreted. Only the SVG charts are inserted unescaped, after `charts.clean_svg`.

The page stays small: `gallery.py` shows at most `GALLERY_PER_MODEL` counterexamples per
model (smallest distortion first, spread over the properties) and `GALLERY_TOTAL` for the
whole report; the report says how many were left out and where the rest are.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustcheck.figures import ClaimFigures
from robustcheck.record import is_bad, severity_rank
from robustcheck.report import Summary, fmt_num, fmt_pct, fmt_seconds, norm_name, summarize
from robustcheck.report.certification import proof_views
from robustcheck.report.gallery import GALLERY_PER_MODEL, GALLERY_TOTAL, model_gallery
from robustcheck.typed_data import to_plain

if TYPE_CHECKING:
    from robustcheck.record import AttackRecord, ModelRecord, ModelSpec, RunRecord

MESSAGE_LIMIT = 6000
ATTENTION_LIMIT = 40
TRUNCATED = "\n… (truncated; the full text is in robustcheck.json)"
TEMPLATE = "report.html.j2"
#: Scripts and every fetch are forbidden; only inline styles and data: images are allowed.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def write_html(record: RunRecord, path: str | os.PathLike[str]) -> Path:
    """Render the report and write it atomically to `path` (counterexample files are read
    from the paths in the record; relative ones are also looked up next to `path`)."""
    from robustcheck.paths import write_atomic

    path = Path(path)
    write_atomic(path, render_html(record, base_dir=path.parent))
    return path


def render_html(record: RunRecord, *, base_dir: str | os.PathLike[str] | None = None) -> str:
    """The report as one HTML string."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(str(Path(__file__).resolve().parent / "templates")),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    view = build_view(record, base_dir=None if base_dir is None else Path(base_dir))
    return env.get_template(TEMPLATE).render(**view)


# -- the view: plain, display-ready data for the template ---------------------------------------
def build_view(record: RunRecord, *, base_dir: Path | None = None) -> dict[str, Any]:
    from markupsafe import Markup

    from robustcheck.report import charts

    summary = summarize(record)
    colours = charts.colour_map(a.attack for m in record.models for a in m.attacks)
    budget = [GALLERY_TOTAL]
    pictures: dict[tuple[Any, ...], Any] = {}  # one drawing per file, for entries that share one
    models = []
    for index, (model, ms) in enumerate(zip(record.models, summary.models)):
        models.append(_model_view(model, ms.anchor, index, colours, budget, base_dir, pictures, Markup))
    attention = _attention(models)
    shown = sum(m["gallery_entries"] for m in models)
    total = sum(len(m.counterexamples) for m in record.models)
    return {
        "csp": CSP,
        "title": f"robustcheck report — {summary.verdict.upper()}",
        "verdict": summary.verdict,
        "run": _run_view(record),
        "summary": _summary_view(summary),
        "attention": attention[:ATTENTION_LIMIT],
        "attention_more": max(0, len(attention) - ATTENTION_LIMIT),
        "baseline": [_delta_view(d) for d in record.baseline],
        "baseline_file": record.run.baseline_file,
        "baseline_notes": any(d.note for d in record.baseline),
        "regressions": summary.regressions,
        "models": models,
        "gallery_per_model": GALLERY_PER_MODEL,
        "gallery_total": GALLERY_TOTAL,
        "counterexamples_shown": shown,
        "counterexamples_total": total,
        "report_dir": record.run.report_dir,
        "schema_version": record.schema_version,
    }


def _attention(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What needs a look first: models that could not be tested, failed checks, error findings."""
    out = []
    for m in models:
        if m["error"]:
            out.append({"model": m["name"], "href": m["anchor"], "tag": "error", "label": "not tested",
                        "text": m["error"].splitlines()[0] if m["error"] else ""})
        for c in m["checks"]:
            if is_bad(c["verdict"]):
                first = next((line for line in c["message"].splitlines() if line.strip()), "")
                first = first.removeprefix(f'{m["name"]}: ')
                out.append({"model": m["name"], "href": c["anchor"], "tag": c["verdict"], "label": c["name"],
                            "text": first})
        for f in m["findings"]:
            if f["severity"] == "error":
                out.append({"model": m["name"], "href": f["anchor"], "tag": "finding", "label": f["id"],
                            "text": f["title"]})
    for entry in out:
        if len(entry["text"]) > 300:
            entry["text"] = entry["text"][:300] + "…"
    return out


def _run_view(record: RunRecord) -> dict[str, Any]:
    run = record.run
    return {
        "robustcheck": run.robustcheck,
        "profile": run.profile,
        "seed": run.seed,
        "started": _when(run.started),
        "finished": _when(run.finished),
        "duration": fmt_seconds(run.duration_s),
        "workers": run.workers,
        "interrupted": run.interrupted,
        "items_collected": run.items_collected,
        "items_recorded": record.items_recorded,
        "config_files": list(run.config_files),
        "baseline_file": run.baseline_file,
        "versions": sorted((str(k), str(v)) for k, v in run.versions.items()),
        "machine": sorted((str(k), _value(v)) for k, v in run.machine.items()),
    }


def _summary_view(summary: Summary) -> dict[str, Any]:
    columns = [{"attack": c.attack, "norm": norm_name(c.norm), "epsilon": f"{c.epsilon:g}",
                "targeted": c.targeted} for c in summary.columns]
    rows = []
    for m in summary.models:
        cells: list[dict[str, Any] | None] = []
        for col in summary.columns:
            fig = m.robust.get(col)
            if fig is None:
                cells.append(None)
                continue
            bad = is_bad(fig.verdict or "")
            cells.append({"value": fmt_pct(fig.value), "gate": None if fig.minimum is None else fmt_pct(fig.minimum, 0),
                          "bad": bad, "from_item": fig.verdict is not None,
                          "exact": None if fig.exact is None else fmt_pct(fig.exact),
                          "broken_by": fig.broken_by_text if len(fig.broken_by) > 1 else ""})
        total = sum(m.items.values())
        ok = m.items.get("passed", 0) + m.items.get("skipped", 0)
        rows.append({
            "name": m.name, "anchor": m.anchor, "verdict": m.verdict, "error": m.error,
            "items_ok": ok, "items_total": total, "items_bad": total - ok,
            "clean": fmt_pct(m.clean_accuracy), "cells": cells,
            "distortions": [{"attack": a, "norm": norm_name(n), "median": fmt_num(v, 3)} for a, n, v in m.distortions],
            "findings": [{"severity": s, "count": n} for s, n in m.findings.items() if n],
            "counterexamples": m.counterexamples,
        })
    return {"columns": columns, "rows": rows, "verdict": summary.verdict, "totals": summary.totals}


def _delta_view(d: Any) -> dict[str, Any]:
    pct = d.metric != "masking-findings" and all(v is None or (0 <= v <= 1) for v in (d.baseline, d.current))
    fmt = fmt_pct if pct else fmt_num
    change = None
    if d.baseline is not None and d.current is not None and all(math.isfinite(v) for v in (d.baseline, d.current)):
        diff = d.current - d.baseline
        change = (f"{diff * 100:+.1f} pt" if pct else f"{diff:+g}") if diff else "±0"
    return {"model": d.model, "metric": d.metric, "baseline": fmt(d.baseline), "current": fmt(d.current),
            "change": change or "—", "tolerance": "—" if d.tolerance is None else fmt(d.tolerance),
            "regressed": d.regressed, "note": d.note}


def _model_view(model: ModelRecord, anchor: str, index: int, colours: dict[str, str], budget: list[int],
                base_dir: Path | None, pictures: dict[tuple[Any, ...], Any], markup: Any) -> dict[str, Any]:
    from robustcheck.report import charts
    from robustcheck.report.transform_chart import transform_accuracy_svg

    spec = model.spec
    inp = None if spec is None else spec.input
    out = None if spec is None else spec.output
    epsilons = [(i.figures.norm, i.figures.epsilon) for i in model.items
                if isinstance(i.figures, ClaimFigures) and math.isfinite(i.figures.epsilon)]
    curves = hist = transforms = None
    chart_error = None
    try:
        if model.attacks:
            curves = charts.robustness_curves_svg(model.attacks, epsilons=epsilons, colours=colours,
                                                  id_prefix=f"m{index}c")
            hist = charts.distortion_histograms_svg(model.attacks, colours=colours, id_prefix=f"m{index}h")
        transforms = transform_accuracy_svg(model.items, id_prefix=f"m{index}t")
    except Exception as exc:  # a chart must never cost the whole report
        chart_error = f"charts could not be drawn: {type(exc).__name__}: {exc}"
    gallery, notes = model_gallery(model, inp, budget, base_dir, pictures)
    findings = sorted(model.findings, key=lambda f: (severity_rank(f.severity), f.id))
    return {
        "name": model.name,
        "anchor": anchor,
        "verdict": "error" if model.error else model.verdict,
        "file": model.file,
        "sha256": model.sha256,
        "error": model.error,
        "clean": fmt_pct(model.clean_accuracy),
        "samples": model.samples,
        "input": {"name": inp.name, "shape": _value(inp.shape), "dtype": inp.dtype,
                  "layout": inp.layout or "—", "range": _value(inp.range)} if inp else None,
        "output": {"name": out.name, "kind": out.kind, "classes": out.classes,
                   "cut_node": out.cut_node} if out else None,
        "spec_facts": [] if spec is None else _spec_facts(spec),
        "warnings": [] if spec is None else list(spec.warnings),
        "checks": [_item_view(i, f"{anchor}-check-{k}") for k, i in enumerate(model.items)],
        "findings": [_finding_view(f, f"{anchor}-finding-{k}") for k, f in enumerate(findings)],
        "finding_errors": sum(f.severity == "error" for f in findings),
        "charts_pair": bool(curves and hist and _half(curves) and _half(hist)),
        "curves": None if curves is None else markup(curves),
        "histograms": None if hist is None else markup(hist),
        "transform_chart": None if transforms is None else markup(transforms),
        "chart_error": chart_error,
        "attacks": [_attack_view(a, colours) for a in model.attacks],
        "proofs": proof_views(model, f"m{index}b", markup),
        "gallery": gallery,
        "gallery_notes": notes,
        "gallery_entries": sum(card["entries"] for card in gallery),
        "counterexamples_total": len(model.counterexamples),
        "config": _pretty(model.config),
        "spec": _pretty(to_plain(model.spec)),
    }


def _half(svg: str) -> bool:
    return 'class="chart half"' in svg[:400]


def _spec_facts(spec: ModelSpec) -> list[tuple[str, str]]:
    facts = []
    if spec.replica is not None or spec.replica_reason:
        facts.append(("gradients", f"{spec.replica or 'none'}" +
                      (f" ({spec.replica_reason})" if spec.replica_reason else "")))
    if spec.parity is not None:
        facts.append(("replica parity", ", ".join(f"{k} {_value(v)}" for k, v in vars(spec.parity).items())))
    if spec.nondifferentiable_ops:
        facts.append(("non-differentiable ops", _value(spec.nondifferentiable_ops)))
    if spec.gradient_mode == "adaptive":
        eot = "; EOT over random draws" if spec.randomized else ""
        facts.append(("attack gradients", f"adaptive: surrogate backward rules for "
                                          f"{', '.join(spec.adaptive_ops) or 'no op'}{eot}"))
    if spec.randomized:
        facts.append(("oracle", "randomized: a label is the majority vote over repeated onnxruntime calls"))
    return facts


def _item_view(item: Any, anchor: str) -> dict[str, Any]:
    message = item.message or ""
    truncated = len(message) > MESSAGE_LIMIT
    return {
        "name": item.name, "kind": item.kind, "nodeid": item.nodeid, "verdict": item.verdict, "anchor": anchor,
        "bad": is_bad(item.verdict),
        "duration": fmt_seconds(item.duration_s),
        "figures": [] if item.figures is None else [(k, _value(v)) for k, v in vars(item.figures).items()],
        "message": message[:MESSAGE_LIMIT] + (TRUNCATED if truncated else ""),
    }


def _finding_view(f: Any, anchor: str) -> dict[str, Any]:
    return {"anchor": anchor, "id": f.id, "severity": f.severity, "title": f.title, "explanation": f.explanation,
            "remedy": f.remedy, "evidence": [(str(k), _value(v)) for k, v in f.evidence.items()],
            "samples": ", ".join(str(s) for s in f.samples[:50]) + (" …" if len(f.samples) > 50 else "")}


def _attack_view(a: AttackRecord, colours: dict[str, str]) -> dict[str, Any]:
    own = next((d for d in a.distortion if d.norm == a.norm), None)
    others = [f"{norm_name(d.norm)} {fmt_num(d.median, 3)}" for d in a.distortion if d.norm != a.norm and d.count]
    return {
        "attack": a.attack, "norm": norm_name(a.norm), "targeted": a.targeted,
        "epsilon": "—" if a.epsilon is None else f"{a.epsilon:g}", "samples": a.samples,
        "success": fmt_pct(a.success_rate), "wall": fmt_seconds(a.wall_time_s),
        "disagreements": a.replica_disagreements,
        "median": fmt_num(own.median, 3) if own else "—", "mean": fmt_num(own.mean, 3) if own else "—",
        "min": fmt_num(own.min, 3) if own else "—", "max": fmt_num(own.max, 3) if own else "—",
        "others": ", ".join(others),
        "params": [(str(k), _value(v)) for k, v in sorted(a.params.items())],
        "colour": colours.get(a.attack, "#888888"),
    }


def _when(stamp: str | None) -> str:
    """An ISO timestamp as "2026-11-24 09:12:03 UTC" (as given when it does not parse)."""
    if not stamp:
        return "—"
    from datetime import datetime, timezone

    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if when.tzinfo is not None and when.utcoffset() == timezone.utc.utcoffset(None):
        return when.strftime("%Y-%m-%d %H:%M:%S UTC")
    return when.isoformat(sep=" ")


# -- values ----------------------------------------------------------------------------------------
def _value(v: Any) -> str:
    """A config value, figure or evidence item as short display text."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return fmt_num(v, 4)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return v
    if isinstance(v, (list, tuple)) and all(isinstance(x, (int, float, str)) and not isinstance(x, bool) for x in v):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    try:
        return json.dumps(v, ensure_ascii=False, default=str, allow_nan=True)
    except (TypeError, ValueError):
        return str(v)


def _pretty(data: Any) -> str:
    try:
        return json.dumps(data, indent=2, ensure_ascii=False, default=str, allow_nan=True)
    except (TypeError, ValueError):
        return str(data)
