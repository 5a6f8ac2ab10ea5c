"""The console summary: content, colour rules (NO_COLOR, --color, TTY), width, quiet, progress."""

from __future__ import annotations

import dataclasses
import io
import re

import pytest
from report_fixtures import realistic_record

from robustcheck.record import ModelRecord, RunRecord
from robustcheck.report.console import render_header, render_summary
from robustcheck.report.terminal import make_console, progress

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("NO_COLOR", "FORCE_COLOR", "PY_COLORS", "CI", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    return monkeypatch


@pytest.fixture
def record(tmp_path):
    return realistic_record(tmp_path)


def _render(record, stream, **kwargs) -> str:
    console = make_console(stream, **kwargs)
    render_summary(record, console=console, html_path="reports/robustcheck.html", json_path="reports/robustcheck.json")
    return stream.getvalue()


def test_plain_summary_has_the_figures_and_no_escape_codes(clean_env, record):
    out = _render(record, io.StringIO(), color=False, width=120)
    assert not ANSI.search(out)
    for text in ("baseline", "distilled-softmax", "PASSED", "FAILED", "99.5%", "cw-l2", "L2 ≤ 1", "fgsm-linf",
                 "2 errors", "1 warning", "vanishing-softmax-gradients", "HTML report: reports/robustcheck.html",
                 "JSON record: reports/robustcheck.json", "1 regression", "87.5% → 79.7%"):
        assert text in out, text
    base = next(i for i in record.models[0].items if i.name == "robust-accuracy[cw-l2@1]").figures.robust_accuracy
    assert f"{base:.1%}" in out  # robust accuracy read from the item's figures
    assert "1.23" in out  # the median distortion of cw-l2 on the baseline
    assert re.search(r"^-{20,}", out, re.M)  # plain ASCII header rule, no box drawing
    assert not set("│─╭╮╰╯┃━") & set(out)


def test_colour_on_request(clean_env, record):
    out = _render(record, io.StringIO(), color=True, width=120)
    assert ANSI.search(out)
    assert "\x1b[1;31mFAILED" in out or re.search(r"\x1b\[[0-9;]*31[0-9;]*mFAILED", out)


def test_auto_colour_follows_the_tty_and_no_color(clean_env, record):
    assert ANSI.search(_render(record, FakeTTY(), color=None, width=120))  # a terminal: colour
    assert not ANSI.search(_render(record, io.StringIO(), color=None, width=120))  # a pipe / CI log: plain
    clean_env.setenv("NO_COLOR", "1")
    assert not ANSI.search(_render(record, FakeTTY(), color=None, width=120))  # NO_COLOR wins over the TTY
    assert ANSI.search(_render(record, io.StringIO(), color=True, width=120))  # but --color=yes wins over NO_COLOR


def test_color_no_and_dumb_terminals_are_plain(clean_env, record):
    assert not ANSI.search(_render(record, FakeTTY(), color=False, width=120))
    clean_env.setenv("TERM", "dumb")
    assert not ANSI.search(_render(record, FakeTTY(), color=None, width=120))


def test_width_is_honoured(clean_env, record):
    for width in (60, 80, 100):
        out = _render(record, io.StringIO(), color=False, width=width)
        longest = max(len(line) for line in out.splitlines())
        assert longest <= width, (width, longest)
    wide = _render(record, io.StringIO(), color=False, width=160)
    assert max(len(line) for line in wide.splitlines()) > 100
    assert "distilled-softmax" in wide  # not folded when there is room


def test_columns_env_is_used_without_explicit_width(clean_env, record):
    clean_env.setenv("COLUMNS", "70")
    out = _render(record, io.StringIO(), color=False)
    assert max(len(line) for line in out.splitlines()) <= 70


def test_pytest_terminal_writer(clean_env, record):
    from _pytest._io.terminalwriter import TerminalWriter

    buf = io.StringIO()
    tw = TerminalWriter(buf)
    tw.hasmarkup = False
    tw.fullwidth = 90
    console = make_console(tw, color=None, width=None, quiet=False)
    assert console.width == 90
    render_summary(record, console=console, html_path="reports/robustcheck.html")
    out = buf.getvalue()
    assert "distilled" in out and not ANSI.search(out)
    tw.hasmarkup = True
    buf2 = io.StringIO()
    tw2 = TerminalWriter(buf2)
    tw2.hasmarkup = True
    render_summary(record, console=make_console(tw2, color=None, width=100), html_path=None)
    assert ANSI.search(buf2.getvalue())


def test_quiet_prints_one_line_per_model(clean_env, record):
    out = _render(record, io.StringIO(), color=False, width=200, quiet=True)
    lines = [line for line in out.splitlines() if line.startswith(("baseline:", "distilled:", "distilled-softmax:"))]
    assert len(lines) == 3
    assert "2 masking errors" in out and "HTML report" in out


def test_model_text_is_not_rich_markup(clean_env, tmp_path):
    record = realistic_record(tmp_path)
    record.models[0].name = "[bold red]evil[/] :smile:"
    out = _render(record, io.StringIO(), color=False, width=160)
    assert "[bold red]evil[/] :smile:" in out


def test_errors_interrupted_and_empty_runs(clean_env, tmp_path):
    record = realistic_record(tmp_path)
    record.models.append(ModelRecord(name="broken", file="models/broken.onnx", error="broken.onnx: not an ONNX model"))
    record.run.interrupted = True
    out = _render(record, io.StringIO(), color=False, width=120)
    assert "broken: could not be tested: broken.onnx: not an ONNX model" in out
    assert "run interrupted" in out
    empty = RunRecord(run=record.run)
    assert "no model was tested" in _render(empty, io.StringIO(), color=False, width=80)


def test_many_robust_figures_share_one_column(clean_env, tmp_path):
    record = realistic_record(tmp_path)
    for m in record.models:
        for i in list(m.items):
            if i.kind == "robust-accuracy":
                for eps in (0.5, 2.0):
                    m.items.append(dataclasses.replace(i, name=f"{i.name}-{eps}",
                                                       figures=dataclasses.replace(i.figures, epsilon=eps)))
    out = _render(record, io.StringIO(), color=False, width=120)
    assert "robust accuracy" in out and "cw-l2 L2 ε=0.5:" in out
    assert max(len(line) for line in out.splitlines()) <= 120


def test_header_line():
    from robustcheck import __version__

    line = render_header(["models/baseline.onnx", "models/distilled.onnx"], "ci", 7)
    assert line == f"robustcheck {__version__}: 2 models (baseline, distilled), profile ci, seed 7"
    assert render_header(1, "smoke", 0).endswith("1 model, profile smoke, seed 0")
    many = render_header([f"m{i}.onnx" for i in range(9)], "ci", 0)
    assert "(+4)" in many


def test_progress_is_silent_off_a_terminal(clean_env):
    buf = io.StringIO()
    console = make_console(buf, color=True, width=80)
    with progress(console, 10, "cw-l2 on baseline") as bar:
        for _ in range(10):
            bar.advance()
        bar.update(10)
    assert buf.getvalue() == ""


def test_progress_on_a_terminal(clean_env):
    buf = FakeTTY()
    console = make_console(buf, color=True, width=80)
    assert console.is_interactive
    with progress(console, 4, "cw-l2 on baseline") as bar:
        for _ in range(4):
            bar.advance()
    assert "cw-l2 on baseline" in ANSI.sub("", buf.getvalue())
    clean_env.setenv("CI", "true")
    ci = make_console(FakeTTY(), color=True, width=80)
    assert not ci.is_interactive  # no live display in CI logs, even on a pseudo-terminal


def test_incomplete_and_interrupted_runs_never_read_passed(clean_env, tmp_path):
    record = realistic_record(tmp_path)
    record.models = record.models[:1]  # the baseline model passed every item
    record.baseline = []
    assert "robustcheck: PASSED" in _render(record, io.StringIO(), color=False, width=120)
    record.run.items_collected = len(record.models[0].items) + 3
    out = _render(record, io.StringIO(), color=False, width=120)
    assert "robustcheck: INCOMPLETE" in out and "run incomplete: 6 of 9 checks recorded" in out
    record.run.interrupted = True
    out = _render(record, io.StringIO(), color=False, width=120)
    assert "robustcheck: INTERRUPTED" in out and "PASSED —" not in out
