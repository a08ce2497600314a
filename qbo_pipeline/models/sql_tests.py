"""Column tests declared in the SQL as comment tags (lea's idea).

A tag follows the column it tests, on the same line of the final ``select``::

    invoice_id,           -- #NO_NULLS
    realm_id,             -- #UNIQUE_BY(realm_id, snapshot_id)
    status,               -- #ACCEPTED_VALUES('live', 'retired')

- ``#UNIQUE``: no two rows share a non-null value of the column;
- ``#NO_NULLS``: the column is never null;
- ``#UNIQUE_BY(a, b, ...)``: no two rows share the combination (a table-level test; it may also
  sit on a comment line of its own);
- ``#ACCEPTED_VALUES(v1, v2, ...)``: every non-null value is one of the SQL literals listed.

Each test is a query counting the offending rows; a model passes when every count is 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TAG = re.compile(r"#(UNIQUE_BY|UNIQUE|NO_NULLS|ACCEPTED_VALUES)\b(?:\(([^)]*)\))?")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
KINDS = ("UNIQUE", "NO_NULLS", "UNIQUE_BY", "ACCEPTED_VALUES")


class TestDeclarationError(ValueError):
    """A test tag is malformed; the message names the file and line."""

    __test__ = False  # not a pytest class


@dataclass(frozen=True)
class ColumnTest:
    """One declared test.

    Attributes:
        kind: ``UNIQUE``, ``NO_NULLS``, ``UNIQUE_BY`` or ``ACCEPTED_VALUES``.
        columns: The columns tested (one, or several for ``UNIQUE_BY``).
        values: The SQL literals of ``ACCEPTED_VALUES``.
        line: The line of the model file that declared it.
    """

    __test__ = False  # not a pytest class

    kind: str
    columns: tuple[str, ...]
    values: tuple[str, ...] = ()
    line: int = 0

    @property
    def label(self) -> str:
        """A short human name: ``UNIQUE(invoice_id)``."""
        return f"{self.kind}({', '.join(self.columns)})"

    def failing_rows_sql(self, relation: str) -> str:
        """A query returning the number of rows of ``relation`` that break the test."""
        cols = ", ".join(_quote(c) for c in self.columns)
        if self.kind == "NO_NULLS":
            return f"select count(*) from {relation} where {cols} is null"
        if self.kind in ("UNIQUE", "UNIQUE_BY"):
            not_null = " and ".join(f"{_quote(c)} is not null" for c in self.columns)
            return (
                f"select coalesce(sum(n), 0) from (select count(*) as n from {relation} "
                f"where {not_null} group by {cols} having count(*) > 1)"
            )
        values = ", ".join(self.values)
        return (
            f"select count(*) from {relation} where {cols} is not null and {cols} not in ({values})"
        )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def parse_tests(sql: str, *, where: str = "<sql>") -> tuple[ColumnTest, ...]:
    """Find the test tags in a model's SQL.

    Raises:
        TestDeclarationError: For a tag without the column or arguments it needs.
    """
    tests: list[ColumnTest] = []
    for number, line in enumerate(sql.splitlines(), start=1):
        code, sep, comment = line.partition("--")
        if not sep:
            continue
        for match in _TAG.finditer(comment):
            kind, args = match.group(1), match.group(2)
            column = _column_of(code)
            if kind == "UNIQUE_BY":
                columns = tuple(a.strip() for a in (args or "").split(",") if a.strip())
                if not columns or not all(_IDENT.match(c) for c in columns):
                    raise TestDeclarationError(
                        f"{where}:{number}: #UNIQUE_BY needs column names, as #UNIQUE_BY(a, b)"
                    )
                tests.append(ColumnTest(kind, columns, line=number))
                continue
            if column is None:
                raise TestDeclarationError(
                    f"{where}:{number}: #{kind} must follow a column of the final select"
                )
            if kind == "ACCEPTED_VALUES":
                values = tuple(v.strip() for v in (args or "").split(",") if v.strip())
                if not values:
                    raise TestDeclarationError(
                        f"{where}:{number}: #ACCEPTED_VALUES needs values, as #ACCEPTED_VALUES('a')"
                    )
                tests.append(ColumnTest(kind, (column,), values, line=number))
            else:
                tests.append(ColumnTest(kind, (column,), line=number))
    return tuple(tests)


def _column_of(code: str) -> str | None:
    """The output name of the column expression on one line (its alias, or its last name)."""
    code = code.strip().rstrip(",").strip()
    if not code:
        return None
    tail = re.split(r"\s+as\s+", code, flags=re.IGNORECASE)[-1].strip()
    tail = tail.split()[-1].split(".")[-1].strip('"')
    return tail if _IDENT.match(tail) else None
