"""Charts for the HTML report, drawn with matplotlib and returned as inline SVG.

Only rendering happens here: every number plotted comes straight from the record (the
robustness curves of `AttackRecord.curve`, the per-sample `AttackRecord.min_distances`).
matplotlib is imported inside the functions and used through its object API: a `Figure`
drawn by the non-interactive SVG canvas, no pyplot, no backend switch, rcParams changed only
inside an `rc_context` (a user's own matplotlib settings stay untouched). Text stays SVG
`<text>` (`svg.fonttype = 'none'`), so charts are small and sharp. The SVG is cleaned for
inlining in HTML: no XML prolog or DOCTYPE, no namespace declarations, no `<style>` that
would leak into the page, no reference that is not an in-document `#id`, ids prefixed so
several charts can share one page, and numbers rounded to keep the page small.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from robustcheck.record import AttackRecord

#: Okabe-Ito, a colour-blind-safe palette; attacks get colours in a stable order.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
NORM_LABELS = {"l0": "L0", "l1": "L1", "l2": "L2", "linf": "L∞"}
MAX_PANELS = 4
HIST_BINS = 24

_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "robustcheck",
    "svg.image_inline": True,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 9.0,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9.0,
    "axes.edgecolor": "#9aa3ad",
    "axes.labelcolor": "#2b3138",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e6e9ee",
    "grid.linewidth": 0.8,
    "xtick.color": "#4a525c",
    "ytick.color": "#4a525c",
    "legend.frameon": False,
    "legend.fontsize": 8.0,
    "text.usetex": False,
    "path.simplify": True,
}


def norm_label(norm: str) -> str:
    return NORM_LABELS.get(norm, norm.upper())


def colour_map(labels: Iterable[str]) -> dict[str, str]:
    """A stable colour per attack label (same colour for an attack in every chart of a report)."""
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(sorted(set(labels)))}


def robustness_curves_svg(attacks: Sequence[AttackRecord], *, epsilons: Iterable[tuple[str, float]] = (),
                          colours: dict[str, str] | None = None, id_prefix: str = "c") -> str | None:
    """Robust accuracy against ε, one panel per norm, one line per attack.

    `epsilons` are (norm, ε) pairs of the configured checks, drawn as dotted guides.
    Returns None when no attack has a curve.
    """
    groups = _by_norm([a for a in attacks if a.curve])
    if not groups:
        return None
    colours = colours or colour_map(a.attack for a in attacks)
    marks: dict[str, set[float]] = {}
    for norm, eps in epsilons:
        if eps is not None and math.isfinite(eps):
            marks.setdefault(norm, set()).add(float(eps))
    fig, axes = _figure(len(groups), height=2.8)
    for ax, (norm, group) in zip(axes, groups):
        for attack in group:
            xs = [p.epsilon for p in attack.curve if _finite(p.epsilon) and _finite(p.robust_accuracy)]
            ys = [p.robust_accuracy for p in attack.curve if _finite(p.epsilon) and _finite(p.robust_accuracy)]
            if not xs:
                continue
            colour = colours.get(attack.attack, PALETTE[0])
            label = _text(_attack_label(attack))
            if not attack.minimal_norm or len(xs) <= 2:
                # A bounded attack measures one ε: show the measured points, not a fake curve.
                ax.plot(xs, ys, color=colour, linestyle="--", linewidth=1.2, marker="o", markersize=4, label=label)
            else:
                ax.step(xs, ys, where="post", color=colour, linewidth=1.6, label=label)
        for eps in sorted(marks.get(norm, ())):
            ax.axvline(eps, color="#6b7480", linestyle=":", linewidth=1.0)
            ax.annotate(f"ε={eps:g}", xy=(eps, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -10),
                        textcoords="offset points", fontsize=7.5, color="#4a525c")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlim(left=0)
        ax.yaxis.set_major_formatter(_percent_formatter())
        ax.set_xlabel(f"ε ({norm_label(norm)} distance)")
        ax.set_ylabel("robust accuracy")
        ax.set_title(f"Robust accuracy vs ε — {norm_label(norm)}", loc="left")
        ax.legend(loc="lower left")
    return _svg(fig, id_prefix, "Robust accuracy against epsilon for each attack", half=len(groups) == 1)


def distortion_histograms_svg(attacks: Sequence[AttackRecord], *, colours: dict[str, str] | None = None,
                              id_prefix: str = "h") -> str | None:
    """Histograms of the per-sample minimal distortion of successful attacks, one panel per norm."""
    found = [a for a in attacks if any(_finite(d) for d in a.min_distances)]
    # A bounded attack (FGSM, PGD) stops anywhere inside its ε-ball: its distances are not minimal.
    # Show it only for a norm no minimum-seeking attack covers.
    searched = {a.norm for a in found if a.minimal_norm}
    groups = _by_norm([a for a in found if a.minimal_norm or a.norm not in searched])
    if not groups:
        return None
    colours = colours or colour_map(a.attack for a in attacks)
    fig, axes = _figure(len(groups), height=2.8 if len(groups) == 1 else 2.3)  # a lone panel pairs with a curve
    for ax, (norm, group) in zip(axes, groups):
        values = [[float(d) for d in a.min_distances if d is not None and _finite(d)] for a in group]
        top = max(max(v) for v in values if v)
        bottom = min(min(v) for v in values if v)
        lo = 0.0 if bottom >= 0 else bottom
        hi = top if top > lo else lo + 1.0
        bins = [lo + (hi - lo) * i / HIST_BINS for i in range(HIST_BINS + 1)]
        for attack, vals in zip(group, values):
            if not vals:
                continue
            failed = sum(1 for d in attack.min_distances if not _finite(d))
            label = _text(f"{_attack_label(attack)} (n={len(vals)}" + (f", {failed} not broken)" if failed else ")"))
            colour = colours.get(attack.attack, PALETTE[0])
            ax.hist(vals, bins=bins, color=colour, alpha=0.35, label=label)
            ax.hist(vals, bins=bins, color=colour, histtype="step", linewidth=1.3)
        ax.set_xlabel(f"minimal {norm_label(norm)} distortion")
        ax.set_ylabel("samples")
        ax.yaxis.set_major_locator(_integer_locator())
        ax.set_title(f"Distortion of successful attacks — {norm_label(norm)}", loc="left")
        ax.legend(loc="best")
    return _svg(fig, id_prefix, "Histogram of the minimal distortion found per sample", half=len(groups) == 1)


# -- helpers ------------------------------------------------------------------------------
def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _attack_label(attack: AttackRecord) -> str:
    label = attack.attack + (" (targeted)" if attack.targeted else "")
    if attack.epsilon is not None:
        label += f" @ {attack.epsilon:g}"
    return label


def _text(text: str) -> str:
    """Plain text for matplotlib: no mathtext (a `$` in a name must not be parsed)."""
    return text.replace("\\", "\\\\").replace("$", r"\$")


def _by_norm(attacks: Sequence[AttackRecord]) -> list[tuple[str, list[AttackRecord]]]:
    order = {"l0": 0, "l1": 1, "l2": 2, "linf": 3}
    groups: dict[str, list[AttackRecord]] = {}
    for attack in attacks:
        groups.setdefault(attack.norm, []).append(attack)
    ranked = sorted(groups.items(), key=lambda kv: (order.get(kv[0], 9), kv[0]))
    return ranked[:MAX_PANELS]


def _integer_locator() -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _percent_formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: f"{v:.0%}")


def _figure(panels: int, height: float) -> Any:
    from matplotlib.figure import Figure

    cols = 2 if panels > 1 else 1
    rows = math.ceil(panels / cols)
    with _rc():
        fig = Figure(figsize=(5.4 * cols, height * rows), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[panels:]:
        ax.set_visible(False)
    return fig, axes[:panels]


def _rc() -> Any:
    import matplotlib

    return matplotlib.rc_context(_RC)  # type: ignore[arg-type]


def _svg(fig: Any, id_prefix: str, title: str, *, half: bool = False) -> str:
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    FigureCanvasSVG(fig)
    buf = io.StringIO()
    with _rc():
        fig.savefig(buf, format="svg", metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    # A one-panel chart is shown at half width, so text has the same size in every chart.
    return clean_svg(buf.getvalue(), id_prefix, title, css_class="chart half" if half else "chart")


_ID = re.compile(r'\bid="([^"]+)"')
_TAG = re.compile(r"<\s*([A-Za-z][\w:.-]*)([^>]*)>")
_BANNED = {"script", "foreignobject", "image", "a", "iframe", "object", "embed"}


def clean_svg(svg: str, id_prefix: str, title: str = "", *, css_class: str = "chart") -> str:
    """Make matplotlib's SVG safe and tidy to inline in an HTML page (see the module docstring)."""
    from html import escape

    start = svg.find("<svg")
    if start < 0:
        raise ValueError("not an SVG document")
    svg = svg[start:]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r"<style[^>]*>.*?</style>", "", svg, flags=re.S)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    svg = svg.replace("xlink:href=", "href=")
    # Only in-document references survive; anything else (a URL, a file) is dropped.
    svg = re.sub(r'\s+href="(?!#)[^"]*"', "", svg)
    svg = re.sub(r"url\((?!#)[^)]*\)", "none", svg)
    # Smaller: keep only the ids something refers to, round coordinates, fold whitespace.
    referenced = set(re.findall(r'href="#([^"]+)"', svg)) | set(re.findall(r"url\(#([^)]+)\)", svg))
    svg = re.sub(r'\s+id="([^"]+)"', lambda m: m.group(0) if m.group(1) in referenced else "", svg)
    svg = re.sub(r'\s+transform="rotate\(-?0 [^"]*\)"', "", svg)
    svg = re.sub(r'\b(d|x|y|x1|x2|y1|y2|cx|cy|r|width|height|transform|points)="([^"]*)"',
                 lambda m: f'{m.group(1)}="' + re.sub(r"(\d\.\d\d)\d+", r"\1", m.group(2)) + '"', svg)
    svg = re.sub(r">\s+<", "><", svg)
    svg = re.sub(r"\s*\n\s*", " ", svg)
    svg = re.sub(r'\s+"', '"', svg)
    svg = re.sub(r'style="([^"]*)"', lambda m: 'style="' + re.sub(r"\s*([:;])\s*", r"\1", m.group(1)) + '"', svg)
    for _ in range(4):  # unwrap attribute-less groups around a single element, drop empty ones
        svg = re.sub(r"<g>(<(path|use|text)\b[^>]*?(?:/>|>[^<]*</\2>))</g>", r"\1", svg)
        svg = re.sub(r"<g>\s*</g>|<defs>\s*</defs>", "", svg)
    ids = set(_ID.findall(svg))
    if ids:
        svg = _ID.sub(lambda m: f'id="{id_prefix}-{m.group(1)}"', svg)
        def prefixed(m: re.Match[str]) -> str:
            return m.group(1) + (f"{id_prefix}-" if m.group(2) in ids else "") + m.group(2)

        svg = re.sub(r'(href="#)([^"]+)', prefixed, svg)
        svg = re.sub(r"(url\(#)([^)]+)", prefixed, svg)
    # Scale with the page: keep the viewBox, drop the fixed size.
    head_end = svg.index(">")
    head = svg[:head_end]
    head = re.sub(r'\s+(width|height|version)="[^"]*"', "", head)
    label = escape(title, quote=True)
    head += f' class="{escape(css_class, quote=True)}" role="img" aria-label="{label}"'
    svg = head + svg[head_end:]
    for tag, attrs in _TAG.findall(svg):
        if tag.lower() in _BANNED or re.search(r"(^|\s)on\w+\s*=", attrs, flags=re.I):
            raise ValueError(f"unexpected active content in a chart: <{tag}>")
    return svg.strip()
