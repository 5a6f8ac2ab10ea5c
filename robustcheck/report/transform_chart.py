"""The HTML report's chart of accuracy against magnitude, one panel per transformation.

Drawn from the `accuracy-under` items' figures (`curve_levels`, `curve_accuracy`: accuracy at
0, ¼, ½, ¾ and all of the configured level), with the item's gate as a dotted line. Uses the
report's matplotlib style and SVG cleaning (charts.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from robustcheck.figures import AccuracyUnderFigures
from robustcheck.record import ItemRecord
from robustcheck.report.charts import MAX_PANELS, PALETTE, _figure, _percent_formatter, _svg, _text

#: The x-axis label per transformation (the first component's level, in its unit).
AXIS = {"rotate": "rotation (degrees)", "translate": "shift (pixels)", "scale": "scale change",
        "brightness": "brightness shift", "contrast": "contrast change", "noise": "noise σ",
        "blur": "blur σ (pixels)", "jpeg": "JPEG quality"}


def transform_accuracy_svg(items: Sequence[ItemRecord], id_prefix: str = "t") -> str | None:
    """Accuracy against magnitude for every `accuracy-under` item with a curve, or None."""
    panels: dict[str, list[tuple[str, AccuracyUnderFigures]]] = {}
    for item in items:
        f = item.figures
        if isinstance(f, AccuracyUnderFigures) and f.curve_levels and len(f.curve_levels) == len(f.curve_accuracy):
            panels.setdefault(f.transform, []).append((item.name, f))
    groups = list(panels.items())[:MAX_PANELS]
    if not groups:
        return None
    fig, axes = _figure(len(groups), height=2.8)
    for ax, (transform, curves) in zip(axes, groups):
        for k, (name, f) in enumerate(curves):
            colour = PALETTE[k % len(PALETTE)]
            ax.plot(f.curve_levels, f.curve_accuracy, color=colour, marker="o", markersize=4, linewidth=1.4,
                    label=_text(name))
            ax.axhline(f.min, color=colour, linestyle=":", linewidth=1.0)
        first = transform.split("+")[0]
        if first == "jpeg":
            ax.invert_xaxis()       # lower quality is the larger change
        ax.set_ylim(-0.02, 1.02)
        ax.yaxis.set_major_formatter(_percent_formatter())
        ax.set_xlabel(AXIS.get(first, first) + (" (all components together)" if "+" in transform else ""))
        ax.set_ylabel("accuracy, every direction")
        ax.set_title(f"Accuracy under {_text(transform)}", loc="left")
        ax.legend(loc="lower left")
    return _svg(fig, id_prefix, "Accuracy against the magnitude of each transformation", half=len(groups) == 1)
