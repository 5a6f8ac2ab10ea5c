"""How proofs show in the reports: one line per certifying item (console and HTML), and the
bracket chart (certified accuracy ≤ true robust accuracy ≤ what the attack leaves, over ε).

Every number comes from the item's figures (`CertifiedAccuracyFigures`, the per-sample verdicts
of `RobustPropertyFigures`); nothing is computed here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from robustcheck.figures import CertifiedAccuracyFigures, RobustPropertyFigures
from robustcheck.report import fmt_num, fmt_pct, norm_name

if TYPE_CHECKING:
    from robustcheck.record import ItemRecord, ModelRecord, RunRecord


def certification_line(item: ItemRecord) -> str | None:
    """The item's proof figures in one line (None for items that certify nothing)."""
    f = item.figures
    if isinstance(f, CertifiedAccuracyFigures):
        line = (f"{item.name}: certified {fmt_pct(f.certified_accuracy)} (gate {fmt_pct(f.min, 0)}, "
                f"{f.method}), attack leaves {fmt_pct(f.empirical_accuracy)}; "
                f"{f.proven} proven, {f.violated} violated, {f.unrefuted} unrefuted")
        if f.brackets:
            line += (f"; brackets on {len(f.brackets)} samples: median certified {norm_name(f.norm)} "
                     f"{fmt_num(f.median_certified, 3)} ≤ true ≤ median {f.attack} {fmt_num(f.median_attack, 3)} "
                     f"(median ratio {fmt_num(f.median_ratio, 3)}×)")
        return line
    if isinstance(f, RobustPropertyFigures) and f.certification is not None:
        proven = "—" if f.proven is None else str(f.proven)
        return (f"{item.name}: {proven} proven, {f.violated} violated, {f.unrefuted} unrefuted "
                f"(certification: {f.certification})")
    return None


def certification_lines(record: RunRecord) -> list[str]:
    """"<model> <item line>" for every item with proof figures, in record order."""
    return [f"{m.name} {line}" for m in record.models for i in m.items
            if (line := certification_line(i)) is not None]


def bracket_chart_svg(figures: CertifiedAccuracyFigures, *, id_prefix: str = "b") -> str | None:
    """Certified and empirical robust accuracy of the bracketed samples against ε (None: no points)."""
    from robustcheck.report import charts

    points = [p for p in figures.bracket_curve if charts._finite(p.epsilon)]
    if not points:
        return None
    fig, axes = charts._figure(1, height=2.8)
    ax = axes[0]
    xs = [p.epsilon for p in points]
    ax.step(xs, [p.empirical_accuracy for p in points], where="post", color=charts.PALETTE[1], linewidth=1.6,
            label=f"not broken by {figures.attack} (upper bound)")
    ax.step(xs, [p.certified_accuracy for p in points], where="post", color=charts.PALETTE[0], linewidth=1.6,
            label=f"proven by {figures.method} (lower bound)")
    ax.fill_between(xs, [p.certified_accuracy for p in points], [p.empirical_accuracy for p in points],
                    step="post", color="#c9d3de", alpha=0.5, label="true robust accuracy lies here")
    ax.axvline(figures.epsilon, color="#6b7480", linestyle=":", linewidth=1.0)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(left=0)
    ax.yaxis.set_major_formatter(charts._percent_formatter())
    ax.set_xlabel(f"ε ({charts.norm_label(figures.norm)} distance)")
    ax.set_ylabel("robust accuracy")
    ax.set_title(f"Certified vs empirical robust accuracy ({len(figures.brackets)} samples)", loc="left")
    ax.legend(loc="lower left")
    return charts._svg(fig, id_prefix, "Certified and empirical robust accuracy against epsilon", half=True)


def proof_views(model: ModelRecord, id_prefix: str, markup: Any) -> list[dict[str, Any]]:
    """The HTML report's "Proofs and brackets" entries of one model: line, chart, bracket rows."""
    views = []
    for k, item in enumerate(model.items):
        line = certification_line(item)
        if line is None:
            continue
        f = item.figures
        chart, rows = None, []
        if isinstance(f, CertifiedAccuracyFigures):
            try:
                svg = bracket_chart_svg(f, id_prefix=f"{id_prefix}{k}")
            except Exception as exc:  # a chart must never cost the whole report
                line += f" (chart could not be drawn: {type(exc).__name__}: {exc})"
                svg = None
            chart = None if svg is None else markup(svg)
            rows = [{"sample": b.sample, "row": b.dataset_index, "certified": fmt_num(b.certified, 4),
                     "attack": fmt_num(b.attack, 4), "ratio": fmt_num(b.ratio, 3)} for b in f.brackets]
        views.append({"line": line, "chart": chart, "brackets": rows})
    return views
