"""The terminal robustcheck writes to: a rich Console that follows pytest's settings, and progress.

`make_console` builds the `rich.console.Console` the console view writes to. Colour is on
only when asked for (`--color=yes`) or when the output is a terminal and neither `NO_COLOR`
nor `TERM=dumb` says otherwise. The progress display exists only on an interactive terminal.
Import-light: rich loads inside the functions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


class _TerminalWriterFile:
    """File-like adapter for pytest's TerminalWriter (keeps its line bookkeeping correct)."""

    def __init__(self, tw: Any) -> None:
        self._tw = tw
        self._file = getattr(tw, "_file", None)

    def write(self, text: str) -> int:
        self._tw.write(text)
        return len(text)

    def flush(self) -> None:
        self._tw.flush()

    def isatty(self) -> bool:
        return _isatty(self._file)

    @property
    def encoding(self) -> str:
        return getattr(self._file, "encoding", None) or "utf-8"


def _isatty(file: Any) -> bool:
    try:
        return bool(file is not None and file.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def colour_wanted(file: Any, color: bool | None, environ: dict[str, str] | None = None) -> bool:
    """pytest's rule: --color=yes/no wins; else PY_COLORS, NO_COLOR, FORCE_COLOR, then a TTY that is not dumb."""
    if color is not None:
        return color
    env = os.environ if environ is None else environ
    if env.get("PY_COLORS") in ("0", "1"):
        return env["PY_COLORS"] == "1"
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    return _isatty(file) and env.get("TERM") != "dumb"


def make_console(file: Any = None, *, color: bool | None = None, width: int | None = None,
                 quiet: bool = False) -> Console:
    """A rich Console for robustcheck's terminal output.

    `file`: a text stream or pytest's TerminalWriter (default: sys.stdout). `color`: True for
    `--color=yes`, False for `--color=no`, None to decide from the environment and the stream.
    `width`: columns to wrap to (default: the TerminalWriter's width, else rich's detection).
    `quiet`: pytest's `-q`: `render_summary` prints one line per model instead of a table.
    """
    import sys

    from rich.console import Console

    if file is None:
        file = sys.stdout
    if hasattr(file, "fullwidth") and hasattr(file, "_file"):  # pytest's TerminalWriter
        if width is None:
            width = int(file.fullwidth)
        if color is None:
            color = bool(getattr(file, "hasmarkup", False))
        file = _TerminalWriterFile(file)
    tty = _isatty(file)
    colour = colour_wanted(file, color)
    interactive = tty and os.environ.get("TERM") != "dumb" and not os.environ.get("CI")
    console = Console(
        file=file,
        width=width,
        force_terminal=colour,
        force_interactive=interactive,
        color_system=("auto" if tty else "standard") if colour else None,
        no_color=not colour,
        highlight=False,
        markup=False,
        emoji=False,
        legacy_windows=False,
        soft_wrap=False,
    )
    console.robustcheck_quiet = quiet  # type: ignore[attr-defined]
    return console


@contextmanager
def progress(console: Console, total: int | None, description: str) -> Iterator[Any]:
    """A transient progress bar for a long attack, shown only on an interactive terminal.

    Yields an object with `advance(n=1)` and `update(completed)`; elsewhere (CI, pipes,
    `TERM=dumb`) both do nothing and nothing is printed.
    """
    if not console.is_interactive or not console.is_terminal:
        yield _NoProgress()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield _Progress(bar, task)


class _NoProgress:
    def advance(self, n: float = 1) -> None:
        pass

    def update(self, completed: float) -> None:
        pass


class _Progress:
    def __init__(self, bar: Any, task: Any) -> None:
        self._bar, self._task = bar, task

    def advance(self, n: float = 1) -> None:
        self._bar.advance(self._task, n)

    def update(self, completed: float) -> None:
        self._bar.update(self._task, completed=completed)
