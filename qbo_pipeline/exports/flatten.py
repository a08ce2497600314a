r"""Flatten QBO payloads into spreadsheet tables, and rebuild the payloads from those tables.

A record becomes one row of its entity's *main table*; every array in it becomes a *child
table* with one row per element, keyed by the record and the element's position, recursively,
so that no leaf value is lost and the tables can be folded back into the exact payloads.

Column names (the CSV headers) are JSON paths:

* ``BillAddr.Line1``, ``CustomerRef.value``: a leaf value, its path from the record (main table)
  or from the array element (child table). A key holding ``\``, ``.``, ``#``, ``[`` or ``]``
  has that character escaped with a backslash (the empty key is written ``\~``), so a path never
  collides with the names below.
* ``Line[]``: the number of elements of the array ``Line`` (0 for ``[]``, empty when absent).
* ``#Id``: in child tables, the ``Id`` of the record the row belongs to (in the main table only
  when a record has no string ``Id``; it then holds the lake's key of the record).
* ``#Line``, ``#Line.LinkedTxn``: the 0-based position of the row's element in each enclosing
  array, outermost first. Child tables are named by their array's path (``Line``,
  ``Line.LinkedTxn``, ``TxnTaxDetail.TaxLine``).
* ``[value]``: the element itself, for arrays of scalars (or of arrays).
* ``<path>#offset``: for date-time columns, the UTC offset (``UTC-07:00``, ``UTC`` for ``Z``)
  of the value, which is written as ``yyyy-mm-dd hh:mm:ss`` local time so that spreadsheets
  read it as a date-time.

Each column has a *kind*, computed over every record of the entity before any row is written
(so that every file of one entity has the same columns): ``number`` (written unquoted, ``.``
decimals, shortest round-trip form), ``boolean`` (``true``/``false``), ``date`` (ISO
``yyyy-mm-dd``), ``datetime`` (above), ``string``, or ``json`` (a column whose values mix types,
hold ``null`` or ``{}``: each cell is the value as canonical JSON text, lossless).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from qbo_pipeline.entities import Entity
from qbo_pipeline.errors import QboPipelineError

RECORD_KEY = "#Id"
"""The column of child tables holding the record's key."""

VALUE_COLUMN = "[value]"
"""The column of a child table holding a scalar (or array) element itself."""

COUNT_SUFFIX = "[]"
"""Suffix of the column that holds an array's length."""

OFFSET_SUFFIX = "#offset"
"""Suffix of the column that holds a date-time column's UTC offset."""

EMPTY_KEY = "\\~"
"""How the empty JSON key is written in a column path (never produced by escaping a real key)."""

MAIN_TABLE = ""
"""The table path of the entity's main table."""

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
"""Leading characters that make a spreadsheet evaluate a cell as a formula."""

_ESCAPED = re.compile(r"([\\.#\[\]])")
_SPLIT = re.compile(r"(?<!\\)((?:\\\\)*)\.")
_UNESCAPE = re.compile(r"\\(.)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)(Z|[+-]\d{2}:\d{2})?")

KINDS = ("number", "boolean", "date", "datetime", "string", "json")
"""Every column kind, see the module docstring."""

Row = dict[str, Any]


class FlattenError(QboPipelineError, ValueError):
    """A payload or an exported table cannot be flattened or rebuilt; the message says why."""


@lru_cache(maxsize=65_536)
def escape_key(key: str) -> str:
    r"""Escape a JSON key for use as one component of a column path (``""`` becomes ``\~``)."""
    if not key:
        return EMPTY_KEY
    if not _ESCAPED.search(key):
        return key
    return _ESCAPED.sub(r"\\\1", key)


def split_path(path: str) -> list[str]:
    """Split a column path into its JSON keys, undoing :func:`escape_key`."""
    parts: list[str] = []
    start = 0
    for match in _SPLIT.finditer(path):
        end = match.end(1)
        parts.append(path[start:end])
        start = match.end()
    parts.append(path[start:])
    return ["" if part == EMPTY_KEY else _UNESCAPE.sub(r"\1", part) for part in parts]


def index_column(table: str) -> str:
    """The column holding the element position within the array of child table ``table``."""
    return "#" + table


def record_key(payload: Mapping[str, Any], fallback: str) -> str:
    """The key child rows use for a record: its ``Id`` when a string, else ``fallback``."""
    value = payload.get("Id")
    return value if isinstance(value, str) and value else fallback


def flatten_record(payload: Mapping[str, Any], key: str) -> dict[str, list[Row]]:
    """Flatten one payload into rows by table path (``""`` is the main table).

    Args:
        payload: The record as QBO returned it.
        key: The record's key (see :func:`record_key`); written to child rows as ``#Id`` and to
            the main row only when the payload's ``Id`` is not that key.

    Returns:
        The main row under ``""`` and the child rows under each array's table path, in
        document order; every value is a JSON value (a leaf, ``{}`` or, in ``[value]``, a list).

    Raises:
        FlattenError: If the payload is not a JSON object.
    """
    if not isinstance(payload, Mapping):
        raise FlattenError(f"record {key!r} is a {type(payload).__name__}, not a JSON object")
    main: Row = {}
    if payload.get("Id") != key:
        main[RECORD_KEY] = key
    tables: dict[str, list[Row]] = {MAIN_TABLE: [main]}
    _walk(payload, "", main, MAIN_TABLE, {RECORD_KEY: key}, tables)
    return tables


def _walk(
    node: Mapping[str, Any],
    prefix: str,
    row: Row,
    table: str,
    keys: Row,
    tables: dict[str, list[Row]],
) -> None:
    for name, value in node.items():
        if type(name) is not str:
            raise FlattenError(f"key {name!r} is not a string")
        column = prefix + escape_key(name)
        kind = type(value)
        if kind is dict or (kind is not list and isinstance(value, dict)):
            if value:
                _walk(value, column + ".", row, table, keys, tables)
            else:
                row[column] = {}
        elif kind is list or isinstance(value, list):
            row[column + COUNT_SUFFIX] = len(value)
            if not value:
                continue
            child = f"{table}.{column}" if table else column
            position = index_column(child)
            rows = tables.setdefault(child, [])
            for i, item in enumerate(value):
                child_keys = {**keys, position: i}
                child_row = dict(child_keys)
                rows.append(child_row)
                if isinstance(item, dict):
                    _walk(item, "", child_row, child, child_keys, tables)
                else:
                    child_row[VALUE_COLUMN] = item
        else:
            row[column] = value


_TAGS = {str: "str", int: "number", float: "number", bool: "bool", type(None): "null"}


def _type_tag(value: Any) -> str:
    tag = _TAGS.get(type(value))
    if tag is not None:
        return tag
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "str"
    return "other"


@dataclass
class ColumnStats:
    """What one column held across every record of an entity."""

    types: set[str] = field(default_factory=set)
    all_dates: bool = True
    all_datetimes: bool = True

    def observe(self, value: Any) -> None:
        """Take one more value into account."""
        tag = _TAGS.get(type(value)) or _type_tag(value)
        if tag not in self.types:
            self.types.add(tag)
        if tag == "str" and (self.all_dates or self.all_datetimes):
            if self.all_dates and not _DATE.fullmatch(value):
                self.all_dates = False
            if self.all_datetimes and not _DATETIME.fullmatch(value):
                self.all_datetimes = False

    @property
    def kind(self) -> str:
        """The column's kind (one of :data:`KINDS`)."""
        if self.types == {"number"}:
            return "number"
        if self.types == {"bool"}:
            return "boolean"
        if self.types == {"str"}:
            if self.all_dates:
                return "date"
            if self.all_datetimes:
                return "datetime"
            return "string"
        return "json"


@dataclass(frozen=True)
class Column:
    """One CSV column: its path name, its kind, and its header cell as written."""

    name: str
    kind: str


@dataclass
class TableSchema:
    """The columns of one table, collected over every record of an entity."""

    path: str
    stats: dict[str, ColumnStats] = field(default_factory=dict)
    rows: int = 0

    def observe(self, rows: Iterable[Row]) -> None:
        """Take rows of this table into account."""
        stats = self.stats
        for row in rows:
            self.rows += 1
            for name, value in row.items():
                column = stats.get(name)
                if column is None:
                    column = stats[name] = ColumnStats()
                column.observe(value)


@dataclass
class EntitySchema:
    """Every table and column of one entity, built in a first pass over its records."""

    entity: Entity
    tables: dict[str, TableSchema] = field(default_factory=dict)
    records: int = 0

    def observe(self, flat: Mapping[str, list[Row]]) -> None:
        """Take one flattened record into account."""
        self.records += 1
        for path, rows in flat.items():
            table = self.tables.get(path)
            if table is None:
                table = self.tables[path] = TableSchema(path)
            table.observe(rows)

    def table_paths(self) -> list[str]:
        """The main table, then child tables, parents before children, by name."""
        paths = set(self.tables) | {MAIN_TABLE}
        return sorted(paths, key=lambda p: (p != MAIN_TABLE, p))

    def columns(self, path: str) -> list[Column]:
        """The ordered columns of a table (see :func:`order_columns`)."""
        table = self.tables.get(path)
        if table is None:
            return [Column("Id", "string")] if path == MAIN_TABLE else []
        return order_columns(self.entity, path, table.stats)


_MAIN_LEAD = (
    "Id",
    "SyncToken",
    "{name_field}",
    "DisplayName",
    "Name",
    "FullyQualifiedName",
    "DocNumber",
    "TxnDate",
    "DueDate",
    "{amount_field}",
    "TotalAmt",
    "Amount",
    "Balance",
    "HomeTotalAmt",
    "CurrencyRef.value",
    "Active",
    "MetaData.CreateTime",
    "MetaData.LastUpdatedTime",
)
_CHILD_LEAD = ("Id", "LineNum", "Description", "Amount", "DetailType", "TxnId", "TxnType")


def leading_columns(entity: Entity, path: str) -> list[str]:
    """The fixed leading column order of a table, before the rest sorted by name."""
    if path != MAIN_TABLE:
        return list(_CHILD_LEAD)
    fill = {"name_field": entity.name_field or "", "amount_field": entity.amount_field or ""}
    lead = [name.format(**fill) for name in _MAIN_LEAD]
    return list(dict.fromkeys(name for name in lead if name))


def order_columns(entity: Entity, path: str, stats: Mapping[str, ColumnStats]) -> list[Column]:
    """Order a table's columns: keys, the fixed leading columns, then the rest by name.

    A ``datetime`` column is followed by its ``#offset`` column. Keys come first: ``#Id`` and
    the array positions, outermost first.
    """
    keys = sorted((n for n in stats if n.startswith("#")), key=lambda n: (n != RECORD_KEY, len(n)))
    lead = [n for n in leading_columns(entity, path) if n in stats]
    rest = sorted(n for n in stats if not n.startswith("#") and n not in lead)
    columns: list[Column] = []
    for name in (*keys, *lead, *rest):
        kind = stats[name].kind
        if name.startswith("#") and name != RECORD_KEY:
            kind = "number"
        columns.append(Column(name, kind))
        if kind == "datetime":
            columns.append(Column(name + OFFSET_SUFFIX, "offset"))
    return columns


def canonical_text(value: Any) -> str:
    """A JSON value as canonical JSON text (sorted keys, no whitespace, UTF-8)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError:  # integers beyond 64 bits: the stdlib keeps them exact
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def neutralise(text: str) -> str:
    """Make a string safe from spreadsheet formula evaluation, reversibly.

    A string starting with a formula trigger (``= + - @``, tab, CR), or with single quotes
    followed by one, gets one more leading single quote; :func:`unneutralise` removes it.
    """
    if text.lstrip("'")[:1] in FORMULA_TRIGGERS:
        return "'" + text
    return text


def unneutralise(text: str) -> str:
    """Undo :func:`neutralise`."""
    if text[:1] == "'" and text.lstrip("'")[:1] in FORMULA_TRIGGERS:
        return text[1:]
    return text


def format_number(value: int | float) -> str:
    """A JSON number as spreadsheets and JSON both read it: ``.`` decimals, no grouping."""
    return str(value) if isinstance(value, int) else repr(value)


def format_cells(
    columns: Sequence[Column], rows: Sequence[Row], *, neutralise_cells: bool = True
) -> dict[str, list[str | None]]:
    """The text of every cell of ``rows``, by column name (``None`` for an absent value).

    Raises:
        FlattenError: If a value does not fit its column's kind (the schema was computed over
            other records than these).
    """
    cells: dict[str, list[str | None]] = {}
    for column in columns:
        if column.kind == "offset":
            continue
        values = [row.get(column.name, _ABSENT) for row in rows]
        if column.kind == "datetime":
            texts, offsets = _datetime_cells(column.name, values)
            cells[column.name] = texts
            cells[column.name + OFFSET_SUFFIX] = offsets
            continue
        fmt = _FORMATTERS[column.kind]
        if column.kind == "string" and not neutralise_cells:
            fmt = _plain_string
        try:
            cells[column.name] = [None if v is _ABSENT else fmt(v) for v in values]
        except _KindError as exc:
            raise FlattenError(
                f"column {column.name!r} is {column.kind} but a record holds {exc.args[0]!r}"
            ) from None
    return {c.name: cells[c.name] for c in columns}


_ABSENT = object()


class _KindError(Exception):
    """A value that does not fit its column's kind (internal; becomes a FlattenError)."""


def _number_cell(value: Any) -> str:
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is float:
        return repr(value)
    raise _KindError(value)


def _boolean_cell(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    raise _KindError(value)


def _string_cell(value: Any) -> str:
    if type(value) is not str:
        raise _KindError(value)
    return neutralise(value)


def _plain_string(value: Any) -> str:
    if type(value) is not str:
        raise _KindError(value)
    return value


_FORMATTERS = {
    "json": canonical_text,
    "number": _number_cell,
    "boolean": _boolean_cell,
    "date": _plain_string,
    "string": _string_cell,
}


def _datetime_cells(name: str, values: Sequence[Any]) -> tuple[list[str | None], list[str | None]]:
    texts: list[str | None] = []
    offsets: list[str | None] = []
    for value in values:
        if value is _ABSENT:
            texts.append(None)
            offsets.append(None)
            continue
        match = _DATETIME.fullmatch(value) if type(value) is str else None
        if match is None:
            raise FlattenError(f"column {name!r} is datetime but a record holds {value!r}")
        date, time, offset = match.groups()
        texts.append(f"{date} {time}")
        offsets.append("" if offset is None else "UTC" if offset == "Z" else "UTC" + offset)
    return texts, offsets


def parse_cell(kind: str, text: str, *, neutralised: bool = True) -> Any:
    """The JSON value of a cell written by :func:`format_cells` (``offset`` cells excluded).

    Raises:
        FlattenError: If the text is not a valid cell of that kind.
    """
    try:
        if kind == "json":
            return orjson.loads(text)
        if kind == "number":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "boolean":
            return {"true": True, "false": False}[text]
    except (ValueError, KeyError, orjson.JSONDecodeError) as exc:
        raise FlattenError(f"{kind} cell {text!r} cannot be read: {exc}") from None
    if kind == "string":
        return unneutralise(text) if neutralised else text
    if kind == "date":
        return text
    raise FlattenError(f"unknown column kind {kind!r}")


def join_datetime(text: str, offset: str | None) -> str:
    """Rebuild a date-time value from its ``datetime`` and ``offset`` cells."""
    date, _, time = text.partition(" ")
    tz = offset or ""
    if tz == "UTC":
        tz = "Z"
    elif tz.startswith("UTC"):
        tz = tz[3:]
    return f"{date}T{time}{tz}"


def unflatten(
    tables: Mapping[str, Iterable[Mapping[str, Any]]],
) -> list[dict[str, Any]]:
    """Rebuild payloads from the rows of :func:`flatten_record` (values already parsed).

    Args:
        tables: Rows by table path; the main table (``""``) gives the records in order, child
            tables fill their arrays. Child rows are matched by ``#Id`` and positions.

    Returns:
        The payloads, in main-table order.

    Raises:
        FlattenError: If a child row points at a record or an array that does not exist.
    """
    records: dict[str, dict[str, Any]] = {}
    ordered: list[dict[str, Any]] = []
    for row in tables.get(MAIN_TABLE, ()):
        record: dict[str, Any] = {}
        _apply(record, row)
        key = row.get(RECORD_KEY) or record.get("Id")
        if not isinstance(key, str):
            raise FlattenError(f"main row without a key: {dict(row)!r}")
        records[key] = record
        ordered.append(record)
    children = sorted((p for p in tables if p != MAIN_TABLE), key=lambda p: (p.count("."), p))
    for path in children:
        for row in tables[path]:
            _apply_child(records, path, row)
    return ordered


def _apply_child(records: Mapping[str, dict[str, Any]], path: str, row: Mapping[str, Any]) -> None:
    key = row.get(RECORD_KEY)
    if not isinstance(key, str) or key not in records:
        raise FlattenError(f"table {path!r} row points at unknown record {key!r}")
    levels = sorted((n for n in row if n.startswith("#") and n != RECORD_KEY), key=len)
    if not levels or levels[-1] != index_column(path):
        raise FlattenError(f"table {path!r} row lacks its position column {index_column(path)!r}")
    container: Any = records[key]
    previous = ""
    for i, level in enumerate(levels):
        table = level[1:]
        relative = table[len(previous) + 1 :] if previous else table
        array = _get(container, split_path(relative))
        position = row[level]
        if not isinstance(array, list) or not isinstance(position, int):
            raise FlattenError(f"table {path!r}: no array {relative!r} for row {dict(row)!r}")
        if not 0 <= position < len(array):
            raise FlattenError(f"table {path!r}: position {position} outside {relative!r}")
        if i == len(levels) - 1:
            if VALUE_COLUMN in row:
                array[position] = row[VALUE_COLUMN]
                return
            if array[position] is None:
                array[position] = {}
            element = array[position]
            _apply(element, {n: v for n, v in row.items() if not n.startswith("#")})
            return
        container = array[position]
        previous = table


def _get(node: Any, parts: Sequence[str]) -> Any:
    for part in parts:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _apply(target: dict[str, Any], row: Mapping[str, Any]) -> None:
    for name, value in row.items():
        if name.startswith("#") or name == VALUE_COLUMN:
            continue
        if name.endswith(COUNT_SUFFIX):
            parts = split_path(name[: -len(COUNT_SUFFIX)])
            _set(target, parts, [None] * int(value), keep=True)
        else:
            _set(target, split_path(name), value, keep=value == {})


def _set(target: dict[str, Any], parts: Sequence[str], value: Any, *, keep: bool) -> None:
    node = target
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    if keep and parts[-1] in node:
        return
    node[parts[-1]] = value
