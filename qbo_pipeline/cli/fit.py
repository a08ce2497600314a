"""Query results as a table that fits the terminal: one line per row, long values cut.

A value is shown on one line and cut at :data:`CELL_WIDTH` characters; columns are shown from the
left as long as there is room for them, and the others are named as hidden, so a wide result
(``select *`` of a payload column) reads as a table rather than hundreds of wrapped lines.
CSV and JSON keep every column and full values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

CELL_WIDTH = 32
"""The most characters of a value a table shows."""

_BORDER = 3
"""What each column adds to a table's width besides its text: padding on both sides and a rule."""


@dataclass
class FittedTable:
    """A table fitted to a width, with what it had to leave out."""

    table: Table
    hidden: list[str] = field(default_factory=list)
    """Columns left out, in order."""
    cut: bool = False
    """Whether some value was cut short."""


def one_line(value: Any, width: int = CELL_WIDTH) -> str:
    """A value on one line, cut to ``width`` characters with an ellipsis."""
    text = "" if value is None else str(value)
    text = " ".join(text.split()) if ("\n" in text or "\r" in text or "\t" in text) else text
    return text if len(text) <= width else text[: width - 1] + "…"


def fit_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], width: int) -> FittedTable:
    """The rows as a table no wider than ``width``: cells cut, columns beyond the width hidden."""
    cells = [[one_line(v) for v in row] for row in rows]
    cut = any(
        len(str(v)) > CELL_WIDTH or "\n" in str(v) for row in rows for v in row if v is not None
    )
    widths = []
    for i, name in enumerate(columns):
        longest = max((len(row[i]) for row in cells), default=0)
        widths.append(max(min(len(name), CELL_WIDTH), longest, 1))
    shown: list[int] = []
    used = 1  # the table's left rule
    for i, w in enumerate(widths):  # left to right, skipping a column that does not fit
        if shown and used + w + _BORDER > width:
            continue
        shown.append(i)
        used += w + _BORDER
    table = Table()
    for i in shown:
        table.add_column(one_line(columns[i]), no_wrap=True, overflow="ellipsis", min_width=1)
    for row in cells:
        table.add_row(*(row[i] for i in shown))
    hidden = [columns[i] for i in range(len(columns)) if i not in set(shown)]
    return FittedTable(table=table, hidden=hidden, cut=cut)
