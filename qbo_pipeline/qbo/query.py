r"""Build QBO queries with every value escaped.

QBO's query language has no parameters, so values are written into the statement. :func:`quote`
makes any value a safe literal (quotes and backslashes escaped, unicode kept as is), and
:func:`select` assembles ``SELECT ... FROM ... WHERE ... ORDERBY ... STARTPOSITION ... MAXRESULTS``
from :class:`Condition` objects whose field names and operators are checked, so that no name in the
books (``O'Brien \ "Ltd"``, ``x' OR Id > '0``) can break or alter a query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from qbo_pipeline import entities
from qbo_pipeline.entities import MAX_PAGE_SIZE, Entity
from qbo_pipeline.errors import QboPipelineError

OPERATORS = ("=", "<", ">", "<=", ">=", "IN", "LIKE")
"""The comparison operators QBO's query language has (no OR, no !=)."""

_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*$")
_ORDER = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_.]*)(?:\s+(ASC|DESC))?\s*$", re.IGNORECASE)
_ACTIVE = re.compile(r"(?<![A-Za-z0-9_.])Active(?![A-Za-z0-9_])", re.IGNORECASE)


class QueryBuildError(QboPipelineError, ValueError):
    """A query cannot be built from what was given; the message names the bad part."""


def quote(value: object) -> str:
    r"""Render a value as a QBO query literal.

    Strings are single-quoted with ``\`` and ``'`` backslash-escaped; booleans are ``true`` and
    ``false``; numbers are quoted decimal text (as QBO's own examples write them); datetimes must
    be timezone-aware and become ISO 8601; dates become ``YYYY-MM-DD``.

    Raises:
        QueryBuildError: For ``None``, NUL characters, naive datetimes and unsupported types.
    """
    if value is None:
        raise QueryBuildError("None has no QBO query literal; leave the condition out instead")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise QueryBuildError(f"datetime {value.isoformat()} needs a timezone for QBO")
        text = value.isoformat(timespec="seconds")
    elif isinstance(value, date):
        text = value.isoformat()
    elif isinstance(value, int | Decimal):
        text = str(value)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise QueryBuildError(f"{value} is not a number QBO can compare with")
        text = repr(value)
    elif isinstance(value, str):
        text = value
    else:
        raise QueryBuildError(f"cannot use a {type(value).__name__} as a QBO query value")
    if "\x00" in text:
        raise QueryBuildError("a query value cannot contain a NUL character")
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class Condition:
    """One ``field op value`` term of a WHERE clause (terms are joined with AND).

    Attributes:
        field: A property name, dotted for nested ones (``MetaData.LastUpdatedTime``).
        op: One of :data:`OPERATORS`.
        value: The value; a sequence for ``IN``.
    """

    field: str
    op: str
    value: Any

    def __post_init__(self) -> None:
        """Check the field name and the operator."""
        if not isinstance(self.field, str) or not _FIELD.match(self.field):
            raise QueryBuildError(f"{self.field!r} is not a QBO property name")
        op = str(self.op).strip().upper()
        if op not in OPERATORS:
            raise QueryBuildError(f"{self.op!r} is not a QBO operator ({', '.join(OPERATORS)})")
        object.__setattr__(self, "op", op)
        if op == "IN":
            if isinstance(self.value, str | bytes) or not isinstance(self.value, Iterable):
                raise QueryBuildError(f"IN on {self.field} needs a list of values")
            values = tuple(self.value)
            if not values:
                raise QueryBuildError(f"IN on {self.field} needs at least one value")
            object.__setattr__(self, "value", values)
        if self.field.lower() == "id" and op not in ("=", "IN"):
            raise QueryBuildError("QBO only accepts = and IN on Id")

    def render(self) -> str:
        """The term as query text."""
        if self.op == "IN":
            return f"{self.field} IN ({', '.join(quote(v) for v in self.value)})"
        return f"{self.field} {self.op} {quote(self.value)}"


def eq(field: str, value: Any) -> Condition:
    """``field = value``."""
    return Condition(field, "=", value)


def in_(field: str, values: Iterable[Any]) -> Condition:
    """``field IN (values...)``."""
    return Condition(field, "IN", tuple(values))


def like(field: str, pattern: str) -> Condition:
    """``field LIKE pattern`` (``%`` is the only wildcard)."""
    return Condition(field, "LIKE", pattern)


ALL_ACTIVE_STATES = Condition("Active", "IN", (True, False))
"""The condition that makes a name-list query return inactive records too."""


def select(
    entity: Entity | str,
    *,
    where: Sequence[Condition] | str | None = None,
    order_by: str | None = None,
    start: int | None = None,
    max_results: int | None = None,
    fields: Sequence[str] | None = None,
    count: bool = False,
) -> str:
    """Build a QBO ``SELECT`` statement.

    Args:
        entity: A catalogue entity or its name.
        where: Conditions joined with AND, or a trusted WHERE text (no leading ``WHERE``).
        order_by: ``Field`` or ``Field DESC``.
        start: 1-based STARTPOSITION.
        max_results: MAXRESULTS, 1 to 1000.
        fields: Property names to select instead of ``*``.
        count: ``SELECT COUNT(*)`` (paging and fields do not apply).

    Raises:
        QueryBuildError: If any part is malformed.
    """
    name = _entity_name(entity)
    if count:
        if fields:
            raise QueryBuildError("COUNT(*) cannot select fields")
        projection = "COUNT(*)"
    elif fields:
        for f in fields:
            if not _FIELD.match(f):
                raise QueryBuildError(f"{f!r} is not a QBO property name")
        projection = ", ".join(fields)
    else:
        projection = "*"
    parts = [f"SELECT {projection} FROM {name}"]
    clause = where_clause(where)
    if clause:
        parts.append(f"WHERE {clause}")
    if order_by:
        match = _ORDER.match(order_by)
        if not match or not _FIELD.match(match.group(1)):
            raise QueryBuildError(f"{order_by!r} is not a valid ORDERBY (Field [ASC|DESC])")
        direction = f" {match.group(2).upper()}" if match.group(2) else ""
        parts.append(f"ORDERBY {match.group(1)}{direction}")
    if start is not None:
        if isinstance(start, bool) or not isinstance(start, int) or start < 1:
            raise QueryBuildError(f"STARTPOSITION must be a whole number >= 1, not {start!r}")
        parts.append(f"STARTPOSITION {start}")
    if max_results is not None:
        if (
            isinstance(max_results, bool)
            or not isinstance(max_results, int)
            or not 1 <= max_results <= MAX_PAGE_SIZE
        ):
            raise QueryBuildError(f"MAXRESULTS must be 1 to {MAX_PAGE_SIZE}, not {max_results!r}")
        parts.append(f"MAXRESULTS {max_results}")
    return " ".join(parts)


def where_clause(where: Sequence[Condition] | str | None) -> str:
    """The WHERE text (without the keyword) for conditions or a trusted string."""
    if where is None:
        return ""
    if isinstance(where, str):
        text = where.strip()
        if text[:6].upper() == "WHERE ":
            text = text[6:].strip()
        return text
    terms = []
    for cond in where:
        if not isinstance(cond, Condition):
            raise QueryBuildError(f"WHERE terms must be Condition objects, not {cond!r}")
        terms.append(cond.render())
    return " AND ".join(terms)


def mentions_active(where: Sequence[Condition] | str | None) -> bool:
    """Whether a WHERE already filters on ``Active`` (so inactive records are its business)."""
    if where is None:
        return False
    if isinstance(where, str):
        return bool(_ACTIVE.search(_strip_literals(where)))
    return any(c.field.lower() == "active" for c in where)


def with_inactive(
    entity: Entity, where: Sequence[Condition] | str | None
) -> Sequence[Condition] | str | None:
    """Add ``Active IN (true, false)`` for name-lists, unless the WHERE already says."""
    if not entity.has_active or mentions_active(where):
        return where
    if where is None:
        return [ALL_ACTIVE_STATES]
    if isinstance(where, str):
        clause = where_clause(where)
        return f"{ALL_ACTIVE_STATES.render()} AND {clause}" if clause else [ALL_ACTIVE_STATES]
    return [ALL_ACTIVE_STATES, *where]


def _entity_name(entity: Entity | str) -> str:
    if isinstance(entity, Entity):
        return entity.name
    return entities.get(entity).name


def _strip_literals(text: str) -> str:
    """Blank out quoted literals so that a value mentioning Active is not mistaken for a filter."""
    return re.sub(r"'(?:\\.|[^'\\])*'", "''", text)
