"""The one renderer: ``--json`` documents, text lines and tables, sizes, times, progress.

Commands build a document (a dict, a list, or engine results: frozen dataclasses, with
``to_json()`` where their JSON differs from their fields) and a ``human`` callback;
:func:`emit` prints exactly one of the two, through :func:`jsonable`. Warnings and progress go
to standard error, so standard output stays the document (or the streamed file).

Nothing a person needs is cut: a table that does not fit the terminal becomes one block per
row (:func:`print_table`; ``--wide`` keeps the table whatever the width), no line is broken
by the renderer (the terminal wraps it), and repeated messages are said once with a count
(:func:`echo_lines`, :func:`warn`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import click

from ownvault.cli.app import Ctx, get_ctx

if TYPE_CHECKING:
    from rich.console import Console

    from ownvault.engine.store.shares import Problem

__all__ = [
    "Advance",
    "SetTotal",
    "StepProgress",
    "ago",
    "echo_lines",
    "emit",
    "err_console",
    "group_lines",
    "human_size",
    "jsonable",
    "out_console",
    "pct",
    "print_table",
    "progress_bar",
    "render_verdict",
    "report_problem",
    "step_progress",
    "terminal_width",
    "timestamp",
    "warn",
]

# rich is imported when something is drawn with it (a table, a warning, a progress bar):
# a command that prints a line or a JSON document starts without it.
err_console: Console  # made on first use (module __getattr__)
out_console: Console
_consoles: dict[bool, Console] = {}


def _console(stderr: bool) -> Console:
    if stderr not in _consoles:
        from rich.console import Console  # noqa: PLC0415 - see above

        _consoles[stderr] = Console(stderr=stderr)
    return _consoles[stderr]


def __getattr__(name: str) -> Console:
    if name in ("err_console", "out_console"):
        return _console(name == "err_console")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


Advance = Callable[[int], None]
SetTotal = Callable[[int], None]
StepProgress = Callable[[int, int], None]


@runtime_checkable
class _HasJson(Protocol):
    def to_json(self) -> dict[str, object]: ...


def jsonable(value: object) -> object:
    """The JSON document an engine result stands for: its ``to_json()`` where it has one, a
    dataclass field by field (one with its own text form, such as a CID, as that text),
    lists and dicts item by item; anything else as it is."""
    if isinstance(value, _HasJson):
        return value.to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if type(value).__str__ is not object.__str__:  # a value with a text form (a CID)
            return str(value)
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def emit(ctx: Ctx, document: object, human: Callable[[], None]) -> None:
    """Print ``document`` as JSON when ``--json``, else call ``human`` to render it.

    Engine results in it are rendered through :func:`jsonable`."""
    if ctx.json:
        document = jsonable(document)
        sys.stdout.write(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
    else:
        human()


_warned: Counter[str] = Counter()


def warn(message: str) -> None:
    """``warning: message`` on standard error, never broken by the renderer. A message said
    again is counted instead, and the count is given once when the command ends."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:  # outside a command there is no end to count until
        _print_warning(message)
        return
    root = ctx.find_root()
    if not root.meta.get("ownvault.render.warned"):
        root.meta["ownvault.render.warned"] = True
        root.call_on_close(_flush_warnings)
    _warned[message] += 1
    if _warned[message] == 1:
        _print_warning(message)


def _print_warning(message: str) -> None:
    from rich.text import Text  # noqa: PLC0415 - see err_console

    line = Text.assemble(("warning:", "yellow"), f" {message}")
    _console(True).print(line, soft_wrap=True, highlight=False)


def _flush_warnings() -> None:
    repeated = [(m, n) for m, n in _warned.items() if n > 1]
    _warned.clear()
    for message, count in repeated:
        _print_warning(f"{count}\u00d7 (in all) {message}")


def report_problem(p: Problem) -> None:
    warn(f"{p.kind} share {p.share} at provider {p.provider}: {p.message}")


_ID = re.compile(r"\b[0-9a-f]{12,}\b")


def group_lines(lines: Iterable[str]) -> list[str]:
    """Lines with repeats said once, in first-seen order, as ``N\u00d7 message`` (a
    multiplication sign after the count). Lines that differ only in long hexadecimal ids
    (packs, grants, chunks) count as the same message, the ids shown as ``…``."""
    groups: dict[str, list[str]] = {}
    for line in lines:
        groups.setdefault(_ID.sub("\u2026", line), []).append(line)
    out = []
    for key, members in groups.items():
        if len(members) == 1:
            out.append(members[0])
        elif len(set(members)) == 1:
            out.append(f"{len(members)}\u00d7 {members[0]}")
        else:
            out.append(f"{len(members)}\u00d7 {key}")
    return out


def echo_lines(lines: Iterable[str], *, err: bool = False) -> None:
    """Print ``lines`` with repeated messages grouped (:func:`group_lines`)."""
    for line in group_lines(lines):
        click.echo(line, err=err)


def terminal_width() -> int | None:
    """The width to lay text out in: ``$COLUMNS``, else the terminal's; ``None`` (no limit)
    when standard output is a pipe or a file, where a table row stays one line to grep."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        return max(20, int(columns))
    if not sys.stdout.isatty():
        return None
    import shutil  # noqa: PLC0415 - with bz2 and lzma: only when a table needs the width

    return max(20, shutil.get_terminal_size(fallback=(80, 24)).columns)


def print_table(
    columns: Sequence[str], rows: Iterable[Sequence[str]], *, no_wrap: bool = False
) -> None:
    """A borderless text table on standard output that never cuts a value.

    When the table is wider than the terminal (and ``--wide`` is not given), each row
    becomes a block instead: its first value on a line, then ``column: value`` pairs filling
    the width. (``no_wrap`` is accepted for old callers: nothing is wrapped or cut now.)"""
    from rich.cells import cell_len  # noqa: PLC0415 - see err_console
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    del no_wrap
    table_rows = [[str(cell) for cell in row] for row in rows]
    widths = [cell_len(col) for col in columns]
    for row in table_rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], max((cell_len(x) for x in cell.splitlines()), default=0))
    natural = sum(widths) + 2 * (len(widths) - 1)
    wide = click.get_current_context(silent=True) is not None and get_ctx().wide
    width = terminal_width()
    if width is not None and natural > width and not wide:
        _print_blocks(columns, table_rows, width)
        return
    table = Table(box=None, pad_edge=False, padding=(0, 1), show_edge=False)
    for col in columns:
        table.add_column(col, no_wrap=True, overflow="ignore")
    for row in table_rows:
        table.add_row(*(Text(cell) for cell in row))
    Console(width=max(natural, 1), highlight=False).print(table, crop=False)


def _print_blocks(columns: Sequence[str], rows: list[list[str]], width: int) -> None:
    """Each row as a block: the first value, then indented ``column: value`` pairs."""
    from rich.cells import cell_len  # noqa: PLC0415 - see err_console

    for row in rows:
        click.echo(row[0])
        line = ""
        for col, cell in zip(columns[1:], row[1:], strict=True):
            if not cell:
                continue
            pair = f"{col}: {' '.join(cell.splitlines())}"
            if line and cell_len(line) + 2 + cell_len(pair) > width:
                click.echo(line)
                line = ""
            line = f"{line}  {pair}" if line else f"  {pair}"
        if line:
            click.echo(line)


def human_size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def timestamp(
    ts: float | None, *, sep: str = "T", timespec: str = "seconds", none: str = "-"
) -> str:
    """A local ISO time, or ``none`` when there is no time."""
    if ts is None:
        return none
    return datetime.datetime.fromtimestamp(ts).isoformat(sep=sep, timespec=timespec)


def ago(ts: float, now: float | None = None) -> str:
    s = max(0.0, (time.time() if now is None else now) - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s / size:.0f}{unit} ago"
    return f"{s:.0f}s ago"


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


@contextlib.contextmanager
def progress_bar(ctx: Ctx, label: str) -> Iterator[tuple[Advance, SetTotal] | tuple[None, None]]:
    """(advance, set_total) callbacks driving a progress bar on a terminal; none otherwise."""
    if ctx.json or not sys.stderr.isatty():
        yield None, None
        return
    from rich.progress import (  # noqa: PLC0415 - only commands that move bytes show one
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn(label),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=_console(True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)
        yield (lambda n: bar.advance(task, n)), (lambda t: bar.update(task, total=t))


@contextlib.contextmanager
def step_progress(ctx: Ctx, label: str) -> Iterator[StepProgress]:
    """A ``progress(done, total)`` callback for step-wise engine work (one step per call)."""
    with progress_bar(ctx, label) as (advance, set_total):

        def step(done: int, total: int) -> None:
            if set_total is not None and advance is not None:
                set_total(total)
                advance(1)

        yield step


def render_verdict(health: dict[str, Any], machine: dict[str, Any]) -> None:
    """The verdict as `check` and `status` both print it (``engine.health.verdict``)."""
    click.echo(health["summary"])
    for line in health["reasons"][1:]:
        click.echo(f"  also: {line}")
    click.echo(machine["summary"])
