"""The one renderer: ``--json`` documents, text lines and tables, sizes, times, progress.

Commands build a document (a dict, a list, or engine results: frozen dataclasses, with
``to_json()`` where their JSON differs from their fields) and a ``human`` callback;
:func:`emit` prints exactly one of the two, through :func:`jsonable`. Warnings and progress go
to standard error, so standard output stays the document (or the streamed file).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol, runtime_checkable

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from ownvault.cli.app import Ctx
from ownvault.engine.store.shares import Problem

__all__ = [
    "Advance",
    "SetTotal",
    "StepProgress",
    "ago",
    "emit",
    "err_console",
    "human_size",
    "jsonable",
    "out_console",
    "pct",
    "print_table",
    "progress_bar",
    "report_problem",
    "step_progress",
    "timestamp",
    "warn",
]

err_console = Console(stderr=True)
out_console = Console()

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


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/yellow] {message}", highlight=False)


def report_problem(p: Problem) -> None:
    warn(f"{p.kind} share {p.share} at provider {p.provider}: {p.message}")


def print_table(
    columns: Sequence[str], rows: Iterable[Sequence[str]], *, no_wrap: bool = False
) -> None:
    """A borderless text table on standard output."""
    table = Table(box=None)
    for col in columns:
        table.add_column(col, no_wrap=no_wrap)
    for row in rows:
        table.add_row(*row)
    out_console.print(table)


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
    with Progress(
        TextColumn(label),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
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
