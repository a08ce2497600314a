"""Listings the CLI prints (snapshots, plans, companies): a table, CSV or JSON.

A table never cuts an id: id columns keep their full width at any terminal width and the other
columns give way; in a pipe the table keeps its natural width. CSV and JSON carry every field
for scripts.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

PIPE_WIDTH = 10_000
"""The width a table may take outside a terminal (a table takes only what it needs)."""


class ListFormat(StrEnum):
    """Output formats of the listing commands."""

    TABLE = "table"
    CSV = "csv"
    JSON = "json"


def format_option() -> Any:
    """The ``--format`` option of a listing command."""
    return typer.Option(
        ListFormat.TABLE, "--format", "-f", help="table, or csv / json for scripts (every field)."
    )


@dataclass(frozen=True)
class Column:
    """A column of a listing: its key in the rows, its heading, and how the table shows it."""

    key: str
    heading: str
    numeric: bool = False
    identifier: bool = False
    """An id: never cut or wrapped in the table."""


def table(title: str, columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> Table:
    """A rich table of ``rows`` whose id columns are as wide as their longest value."""
    result = Table(title=title, title_justify="left")
    for column in columns:
        widest = max((len(_cell(row.get(column.key))) for row in rows), default=0)
        result.add_column(
            column.heading,
            justify="right" if column.numeric else "left",
            no_wrap=column.identifier,
            min_width=max(widest, len(column.heading)) if column.identifier else None,
        )
    for row in rows:
        result.add_row(*(_cell(row.get(c.key)) for c in columns))
    return result


def print_table(console: Console, renderable: Any) -> None:
    """Print a table: fitted to a terminal, at its natural width in a pipe or a file."""
    if console.is_terminal:
        console.print(renderable)
    else:
        Console(file=console.file, width=PIPE_WIDTH, no_color=True).print(renderable)


def emit(
    console: Console,
    fmt: ListFormat,
    rows: Sequence[dict[str, Any]],
    *,
    tables: Sequence[Table] = (),
) -> None:
    """Print a listing: ``tables`` for ``table``, every field of ``rows`` for csv and json."""
    if fmt is ListFormat.JSON:
        typer.echo(json.dumps(list(rows), indent=2, ensure_ascii=False, default=str))
    elif fmt is ListFormat.CSV:
        keys: list[str] = []
        for row in rows:
            keys += [k for k in row if k not in keys]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: _csv(v) for k, v in row.items()} for row in rows)
        typer.echo(buffer.getvalue(), nl=False)
    else:
        for rendered in tables:
            print_table(console, rendered)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _csv(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value
