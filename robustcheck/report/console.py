"""The console view: a rich summary table of a run, following pytest's terminal settings.

It writes to the `rich.console.Console` that `terminal.make_console` builds (colour, width
and quiet mode as pytest has them); without colour the output is plain text (ASCII table
rules, no escape codes), which is what CI logs get. Model-supplied text is never parsed as
rich markup.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from robustcheck.record import is_bad
from robustcheck.report import (
    ModelSummary,
    Summary,
    display_path,
    fmt_num,
    fmt_pct,
    fmt_seconds,
    norm_name,
    summarize,
)
from robustcheck.report.certification import certification_lines

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from robustcheck.record import RunRecord

#: Above this many robust-accuracy figures, they share one column instead of one column each.
MAX_ROBUST_COLUMNS = 3

VERDICT_STYLE = {"passed": "bold green", "failed": "bold red", "error": "bold red reverse", "skipped": "yellow",
                 "interrupted": "bold yellow reverse", "incomplete": "bold yellow reverse"}
SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def render_header(models: Sequence[Any] | int, profile: str, seed: int) -> str:
    """The line for pytest's report header: robustcheck version, models, profile and seed."""
    from robustcheck import __version__

    if isinstance(models, int):
        count, names = models, []
    else:
        names = [os.path.splitext(os.path.basename(os.fspath(m)))[0] for m in models]
        count = len(names)
    listed = ""
    if names:
        shown = ", ".join(names[:5]) + (f", … (+{len(names) - 5})" if len(names) > 5 else "")
        listed = f" ({shown})"
    plural = "model" if count == 1 else "models"
    return f"robustcheck {__version__}: {count} {plural}{listed}, profile {profile}, seed {seed}"


def render_summary(record: RunRecord, *, console: Console, html_path: Any = None, json_path: Any = None,
                   compact: bool | None = None) -> None:
    """Print the run's summary: one table (a row per model), regressions, and where the reports are."""
    from rich.text import Text

    summary = summarize(record)
    if compact is None:
        compact = bool(getattr(console, "robustcheck_quiet", False))
    plain = console.color_system is None
    if not summary.models:
        console.print(Text("robustcheck: no model was tested"))
    elif compact:
        for m in summary.models:
            console.print(_compact_line(m, summary))
    else:
        console.print(_run_line(record, summary))
        console.print(_table(summary, plain=plain, width=console.width))
        console.print()
        findings = _findings_lines(record)
        if findings:
            console.print(Text("findings:", style="bold"))
            for line in findings:
                console.print(line)
        proofs = certification_lines(record)
        if proofs:
            console.print(Text("certification (proven / violated by a verified example / unrefuted):", style="bold"))
            for text in proofs:
                console.print(Text(f"  {text}"))
    for m in summary.models:
        if m.error:
            line = Text()
            line.append(f"{m.name}: ", style="bold")
            line.append("could not be tested: ", style="bold red")
            line.append(m.error)
            console.print(line)
    regressions = [d for d in record.baseline if d.regressed]
    if regressions:
        where = f" ({display_path(record.run.baseline_file)})" if record.run.baseline_file else ""
        head = Text(f"baseline comparison{where}: ", style="bold")
        head.append(f"{len(regressions)} regression{'s' if len(regressions) != 1 else ''}", style="bold red")
        console.print(head)
        for d in regressions:
            if d.baseline is not None and d.current is not None and d.metric != "masking-findings":
                what = f"{fmt_pct(d.baseline)} → {fmt_pct(d.current)}"
                if d.tolerance is not None:
                    what += f" (tolerance {fmt_pct(d.tolerance)})"
            else:
                what = f"{fmt_num(d.baseline)} → {fmt_num(d.current)}"
            note = f"; {d.note}" if d.note else ""
            console.print(Text(f"  {d.model} {d.metric}: {what}{note}"))
    if record.verdict == "interrupted":
        console.print(Text("run interrupted: the figures above are partial", style="bold yellow"))
    elif record.verdict == "incomplete":
        console.print(Text(f"run incomplete: {record.items_recorded} of {record.run.items_collected} checks recorded; "
                           "the figures above are partial", style="bold yellow"))
    if html_path is not None:
        line = Text("HTML report: ", style="bold")
        line.append(display_path(html_path))
        console.print(line)
    if json_path is not None:
        line = Text("JSON record: ", style="bold")
        line.append(display_path(json_path))
        console.print(line)


# -- pieces ---------------------------------------------------------------------------------
def _run_line(record: RunRecord, summary: Summary) -> Text:
    from rich.text import Text

    run = record.run
    n = len(summary.models)
    line = Text()
    line.append("robustcheck: ", style="bold")
    line.append(_verdict_word(summary.verdict), style=VERDICT_STYLE.get(summary.verdict, ""))
    items = ", ".join(f"{count} {verdict}" for verdict, count in sorted(summary.totals.items()))
    line.append(f" — {n} model{'s' if n != 1 else ''}, items {items or 'none'}; profile {run.profile}, "
                f"seed {run.seed}, {fmt_seconds(run.duration_s)}")
    return line


def _table(summary: Summary, *, plain: bool, width: int) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(box=_box() if plain else box.SIMPLE_HEAD, show_edge=False, header_style="bold",
                  padding=(0, 1), collapse_padding=True, pad_edge=False, expand=False)
    table.add_column("model", overflow="fold", min_width=8)
    table.add_column("verdict", no_wrap=True)
    table.add_column("clean", justify="right", no_wrap=True)
    # One column per robust-accuracy figure while they fit; beyond that, one column of lines.
    separate = len(summary.columns) <= MAX_ROBUST_COLUMNS and width >= 56 + 8 * len(summary.columns)
    if separate:
        for col in summary.columns:
            table.add_column(f"{col.attack}\n{norm_name(col.norm)} ≤ {col.epsilon:g}", justify="right")
    elif summary.columns:
        table.add_column("robust accuracy")
    table.add_column("median\ndistortion")
    table.add_column("findings")
    for m in summary.models:
        row: list[Any] = [_name(m), _verdict_cell(m), fmt_pct(m.clean_accuracy)]
        if separate:
            row += [_robust_cell(m, col) for col in summary.columns]
        elif summary.columns:
            row.append(_robust_lines(m, summary))
        row.append(_distortion_cell(m))
        row.append(_findings_cell(m))
        table.add_row(*row, end_section=True)
    return table


def _box() -> Any:
    from rich.box import Box

    # Like rich's SIMPLE_HEAD, in ASCII: a rule under the header, no verticals (greppable CI logs).
    return Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)


def _name(m: ModelSummary) -> Text:
    from rich.text import Text

    return Text(m.name, style="bold")


def _verdict_word(verdict: str) -> str:
    return verdict.upper()


def _verdict_cell(m: ModelSummary) -> Text:
    from rich.text import Text

    text = Text(_verdict_word(m.verdict), style=VERDICT_STYLE.get(m.verdict, ""))
    bad = m.items.get("failed", 0) + m.items.get("error", 0)
    total = sum(m.items.values())
    if total:
        text.append(f"\n{total - bad}/{total} ok", style="dim")
    return text


def _robust_cell(m: ModelSummary, col: Any) -> Text:
    from rich.text import Text

    fig = m.robust.get(col)
    if fig is None:
        return Text("—", style="dim")
    style = "red" if is_bad(fig.verdict or "") else ""
    text = Text(fmt_pct(fig.value), style=style)
    if fig.minimum is not None:
        text.append(f"\nmin {fmt_pct(fig.minimum, 0)}", style="dim")
    if fig.exact is not None:
        text.append(f"\nexact grad. {fmt_pct(fig.exact)}", style="dim")
    if len(fig.broken_by) > 1:  # the cascade ran after the check's attack: say who broke what
        text.append(f"\n{fig.broken_by_text}", style="dim")
    return text


def _robust_lines(m: ModelSummary, summary: Summary) -> Text:
    from rich.text import Text

    text = Text()
    for col in summary.columns:
        fig = m.robust.get(col)
        if fig is None:
            continue
        if text:
            text.append("\n")
        text.append(f"{col.label}: ")
        text.append(fmt_pct(fig.value), style="red" if is_bad(fig.verdict or "") else "")
        if fig.exact is not None:
            text.append(f" (exact grad. {fmt_pct(fig.exact)})", style="dim")
        if len(fig.broken_by) > 1:
            text.append(f" ({fig.broken_by_text})", style="dim")
    return text or Text("—", style="dim")


def _distortion_cell(m: ModelSummary) -> Text:
    from rich.text import Text

    text = Text()
    for attack, norm, median in m.distortions:
        if text:
            text.append("\n")
        # The norm is usually in the attack's label (cw-l2); name it when it is not (ead-en: L1).
        label = attack if norm in attack else f"{attack} {norm_name(norm)}"
        text.append(f"{label} {fmt_num(median, 3)}")
    return text or Text("—", style="dim")


def _findings_cell(m: ModelSummary) -> Text:
    from rich.text import Text

    counts = [(s, n) for s, n in m.findings.items() if n]
    if not counts:
        return Text("none", style="dim")
    text = Text()
    for i, (severity, n) in enumerate(counts):
        if i:
            text.append("\n")
        text.append(f"{n} {severity}{'s' if n != 1 else ''}", style=SEVERITY_STYLE.get(severity, ""))
    return text


def _findings_lines(record: RunRecord) -> list[Text]:
    from rich.text import Text

    lines = []
    for model in record.models:
        if not model.findings:
            continue
        line = Text("  ")
        line.append(model.name, style="bold")
        line.append(": ")
        for i, f in enumerate(model.findings):
            if i:
                line.append(", ")
            line.append(f.id, style=SEVERITY_STYLE.get(f.severity, ""))
            line.append(f" ({f.severity})", style="dim")
        lines.append(line)
    return lines


def _compact_line(m: ModelSummary, summary: Summary) -> Text:
    from rich.text import Text

    line = Text()
    line.append(f"{m.name}: ", style="bold")
    line.append(_verdict_word(m.verdict), style=VERDICT_STYLE.get(m.verdict, ""))
    parts = [f"clean {fmt_pct(m.clean_accuracy)}"]
    for col in summary.columns:
        fig = m.robust.get(col)
        if fig is not None:
            exact = "" if fig.exact is None else f" (exact grad. {fmt_pct(fig.exact)})"
            parts.append(f"robust {col.label} {fmt_pct(fig.value)}{exact}")
    errors = m.findings.get("error", 0)
    if errors:
        parts.append(f"{errors} masking error{'s' if errors != 1 else ''}")
    line.append(" · " + " · ".join(parts))
    return line
