r"""The QBO query language: parser, and evaluation as SQL over the sandbox store.

``SELECT * | COUNT(*) | field, ... FROM Entity [WHERE cond AND ...] [ORDERBY field [ASC|DESC], ...]
[STARTPOSITION n] [MAXRESULTS m]`` where a condition is ``field op value`` with ``= < > <= >=``,
``field IN (v, ...)`` or ``field LIKE 'pat%'``. A condition may name only a property the entity
lets queries filter on (:mod:`queryable`), else 4001 "property 'X' is not queryable"; a date
property takes only real ``'YYYY-MM-DD'`` dates and ``MetaData`` times only real dates or
date-times with a zone (``'2024-06-01T00:00:00-07:00'``), else 4001 as well. Keywords, property
and entity names are case-insensitive;
strings are single-quoted with backslash escapes (``\\'``). There is no OR. ``Id`` takes only
``=`` and ``IN``. Name-list entities return only active records unless the query filters on
``Active``. MAXRESULTS defaults to 100 and may not exceed 1000; STARTPOSITION is 1-based.

Evaluation pushes everything into SQLite (``json_extract`` over the stored payloads, the indexed
columns for ``Id``, ``Active`` and ``MetaData`` times), so a page costs what it returns. Paging
deep into a large entity stays O(page): the end of every page served is remembered (keyed by the
query without its paging and the realm's write version), and the next page continues from there
with a keyset condition instead of an OFFSET.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson

from qbo_pipeline import entities
from qbo_pipeline.entities import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Entity
from qbo_pipeline.sandbox import faults, queryable, shapes
from qbo_pipeline.sandbox.store import SandboxStore, parse_qbo_time, record_key, utc_text

# --- tokens -------------------------------------------------------------------------------------

_KEYWORDS = {
    "select",
    "from",
    "where",
    "and",
    "or",
    "orderby",
    "order",
    "by",
    "asc",
    "desc",
    "startposition",
    "maxresults",
    "in",
    "like",
    "count",
    "true",
    "false",
    "not",
    "null",
}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:\\.|[^'\\])*')
  | (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),*])
  | (?P<ident>[A-Za-z_][\w.]*)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    value: Any
    column: int


def _unescape(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            out.append(body[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            snippet = text[pos : pos + 10]
            if snippet.startswith("'"):
                raise faults.query_parse_error(
                    f'Lexical error at line 1, column {pos + 1}.  Unterminated string "{snippet}"'
                )
            raise faults.query_parse_error(
                f'Lexical error at line 1, column {pos + 1}.  Encountered: "{snippet[:1]}"'
            )
        kind = match.lastgroup or ""
        raw = match.group()
        column = pos + 1
        pos = match.end()
        if kind == "ws":
            continue
        if kind == "string":
            tokens.append(_Token("string", raw, _unescape(raw[1:-1]), column))
        elif kind == "number":
            tokens.append(_Token("number", raw, raw, column))
        elif kind == "ident" and raw.lower() in _KEYWORDS:
            tokens.append(_Token("kw", raw, raw.lower(), column))
        else:
            tokens.append(_Token(kind, raw, raw, column))
    return tokens


# --- the parsed query ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """One ``field op value`` condition; ``values`` holds one value, or several for IN."""

    field: str
    op: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Query:
    """A parsed query."""

    entity: Entity
    count: bool = False
    fields: tuple[str, ...] = ()
    conditions: tuple[Condition, ...] = ()
    order: tuple[tuple[str, bool], ...] = ()
    start: int = 1
    max_results: int = DEFAULT_PAGE_SIZE


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.entity: Entity | None = None

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def fail(self, expecting: str) -> faults.SandboxFault:
        tok = self.peek()
        if tok is None:
            return faults.query_parse_error(
                f'Encountered "<EOF>" at line 1, column {len(self.text) + 1}.\n'
                f"Was expecting:\n    {expecting} ...\n    "
            )
        return faults.query_parse_error(
            f'Encountered " "{tok.text}" "{tok.text.upper()} "" at line 1, column {tok.column}.\n'
            f"Was expecting:\n    {expecting} ...\n    "
        )

    def take(self) -> _Token:
        tok = self.peek()
        if tok is None:
            raise self.fail("<IDENTIFIER>")
        self.i += 1
        return tok

    def accept_kw(self, *words: str) -> str | None:
        tok = self.peek()
        if tok is not None and tok.kind == "kw" and tok.value in words:
            self.i += 1
            return str(tok.value)
        return None

    def expect_kw(self, word: str) -> None:
        if self.accept_kw(word) is None:
            raise self.fail(f'"{word.upper()}"')

    def accept_punct(self, char: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == "punct" and tok.text == char:
            self.i += 1
            return True
        return False

    def expect_punct(self, char: str) -> None:
        if not self.accept_punct(char):
            raise self.fail(f'"{char}"')

    def ident(self) -> str:
        tok = self.peek()
        if tok is None or tok.kind != "ident":
            raise self.fail("<IDENTIFIER>")
        self.i += 1
        return tok.text

    def integer(self, clause: str) -> int:
        tok = self.peek()
        if tok is None or tok.kind != "number" or not tok.text.lstrip("-").isdigit():
            raise self.fail("<INTEGER>")
        self.i += 1
        return int(tok.text)

    def value(self) -> Any:
        tok = self.peek()
        if tok is None:
            raise self.fail("<STRING_LITERAL>")
        if tok.kind in ("string", "number"):
            self.i += 1
            return tok.value if tok.kind == "string" else _Number(tok.text)
        if tok.kind == "kw" and tok.value in ("true", "false"):
            self.i += 1
            return tok.value == "true"
        raise self.fail("<STRING_LITERAL>")

    def parse(self) -> Query:
        self.expect_kw("select")
        count = False
        fields: list[str] = []
        if self.accept_punct("*"):
            pass
        elif self.accept_kw("count"):
            self.expect_punct("(")
            self.expect_punct("*")
            self.expect_punct(")")
            count = True
        else:
            fields.append(self.ident())
            while self.accept_punct(","):
                fields.append(self.ident())
        self.expect_kw("from")
        name = self.ident()
        try:
            entity = entities.get(name)
        except entities.UnknownEntityError:
            raise faults.invalid_query(f"invalid context declaration: {name}") from None
        self.entity = entity
        conditions: list[Condition] = []
        if self.accept_kw("where"):
            conditions.append(self.condition())
            while True:
                if self.accept_kw("and"):
                    conditions.append(self.condition())
                    continue
                tok = self.peek()
                if tok is not None and tok.kind == "kw" and tok.value == "or":
                    raise self.fail('"AND"')
                break
        order: list[tuple[str, bool]] = []
        start: int | None = None
        max_results: int | None = None
        while self.peek() is not None:
            if self.accept_kw("orderby") or (self.accept_kw("order") and self._by()):
                if order:
                    raise self.fail("<EOF>")
                order.append(self.order_item())
                while self.accept_punct(","):
                    order.append(self.order_item())
            elif self.accept_kw("startposition"):
                if start is not None:
                    raise self.fail("<EOF>")
                start = self.integer("STARTPOSITION")
            elif self.accept_kw("maxresults"):
                if max_results is not None:
                    raise self.fail("<EOF>")
                max_results = self.integer("MAXRESULTS")
            else:
                raise self.fail("<EOF>")
        if max_results is not None and max_results > MAX_PAGE_SIZE:
            raise faults.invalid_query(
                f"value {max_results} is too large. Max allowed value is {MAX_PAGE_SIZE}"
            )
        if max_results is not None and max_results < 1:
            raise faults.invalid_query(f"MAXRESULTS value {max_results} must be at least 1")
        if start is not None and start < 1:
            raise faults.invalid_query(f"STARTPOSITION value {start} must be at least 1")
        return Query(
            entity=entity,
            count=count,
            fields=tuple(fields),
            conditions=tuple(conditions),
            order=tuple(order),
            start=start or 1,
            max_results=max_results or DEFAULT_PAGE_SIZE,
        )

    def _by(self) -> bool:
        self.expect_kw("by")
        return True

    def order_item(self) -> tuple[str, bool]:
        name = _canonical_field(self.ident())
        descending = self.accept_kw("asc", "desc") == "desc"
        return name, descending

    def condition(self) -> Condition:
        written = self.ident()
        name = _canonical_field(written)
        if self.entity is not None:
            known = queryable.canonical(self.entity.name, name)
            if known is None:
                raise faults.invalid_query(f"property '{written}' is not queryable")
            name = known
        tok = self.peek()
        if tok is not None and tok.kind == "kw" and tok.value == "in":
            self.i += 1
            self.expect_punct("(")
            values = [self.value()]
            while self.accept_punct(","):
                values.append(self.value())
            self.expect_punct(")")
            condition = Condition(name, "in", tuple(values))
        elif tok is not None and tok.kind == "kw" and tok.value == "like":
            self.i += 1
            pattern = self.value()
            if not isinstance(pattern, str):
                raise faults.invalid_query(f"LIKE on {name} needs a quoted string pattern")
            condition = Condition(name, "like", (pattern,))
        elif tok is not None and tok.kind == "op":
            if tok.text in ("!=", "<>"):
                raise self.fail('"="')
            self.i += 1
            condition = Condition(name, tok.text, (self.value(),))
        else:
            raise self.fail('"="')
        if name == "Id" and condition.op not in ("=", "in"):
            raise faults.invalid_query(
                f"operator {condition.op.upper()} is not supported for property Id; use = or IN"
            )
        if name in queryable.DATE_PROPERTIES and condition.op != "like":
            for value in condition.values:
                _date_literal(value, name)
        return condition


@dataclass(frozen=True)
class _Number:
    """A numeric literal, kept as written."""

    text: str


_CANONICAL = {
    "id": "Id",
    "active": "Active",
    "synctoken": "SyncToken",
    "metadata.lastupdatedtime": "MetaData.LastUpdatedTime",
    "metadata.createtime": "MetaData.CreateTime",
}


def _canonical_field(name: str) -> str:
    return _CANONICAL.get(name.lower(), name)


def parse(text: str) -> Query:
    """Parse a query.

    Raises:
        SandboxFault: 4000 when it cannot be parsed, 4001 when it asks for something invalid.
    """
    if not isinstance(text, str) or not text.strip():
        raise faults.query_parse_error('Encountered "<EOF>" at line 1, column 1.')
    return _Parser(text.strip().rstrip(";")).parse()


# --- evaluation -----------------------------------------------------------------------------

_COLUMNS = {"Id": "id_num", "MetaData.LastUpdatedTime": "updated", "MetaData.CreateTime": "created"}
_SQL_OP = {"=": "=", "<": "<", ">": ">", "<=": "<=", ">=": ">="}


def _json_path(name: str) -> str:
    parts = name.split(".")
    for part in parts:
        if not re.fullmatch(r"[A-Za-z_]\w*", part):
            raise faults.invalid_query(f"invalid property name: {name}")
    return "$." + ".".join(f'"{p}"' for p in parts)


def _value_sql(name: str) -> str:
    """SQL reading a field; a reference object (``{"value": ..}``) reads as its value."""
    path = _json_path(name)
    return (
        f"(CASE json_type(payload, '{path}') WHEN 'object' "
        f"THEN json_extract(payload, '{path}.value') ELSE json_extract(payload, '{path}') END)"
    )


def _time_literal(value: Any, name: str) -> str:
    text = value.text if isinstance(value, _Number) else value
    if not isinstance(text, str):
        raise faults.invalid_query(f"{name} needs a date-time value, not {value!r}")
    text = text.strip()
    if len(text) == 10:
        return f"{_date_literal(text, name)}T00:00:00Z"
    try:
        if not re.fullmatch(
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})", text
        ):
            raise ValueError(text)
        return utc_text(parse_qbo_time(text))
    except ValueError:
        raise faults.invalid_query(
            f"{name} value '{text}' is not a valid date-time; use YYYY-MM-DD or "
            "YYYY-MM-DDThh:mm:ss with a zone (-07:00 or Z)"
        ) from None


def _date_literal(value: Any, name: str) -> str:
    """A date literal as ``YYYY-MM-DD``: a real calendar date, nothing else (4001 otherwise)."""
    text = value.text if isinstance(value, _Number) else value
    if isinstance(text, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        try:
            return date.fromisoformat(text.strip()).isoformat()
        except ValueError:
            pass
    raise faults.invalid_query(
        f"{name} value '{text}' is not a valid date; use YYYY-MM-DD, such as 2024-06-01"
    )


def _compare_sql(name: str, op: str, value: Any, params: list[Any]) -> str:
    """One comparison of a JSON field with a literal, typed as QBO compares."""
    sql_op = _SQL_OP[op]
    expr = _value_sql(name)
    path = _json_path(name)
    if isinstance(value, bool):
        params.extend([1 if value else 0, "true" if value else "false"])
        return (
            f"(CASE WHEN json_type(payload, '{path}') IN ('true', 'false') "
            f"THEN {expr} {sql_op} ? ELSE lower({expr}) {sql_op} ? END)"
        )
    text = value.text if isinstance(value, _Number) else str(value)
    number: float | None
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        params.extend([number, text])
        return (
            f"(CASE WHEN typeof({expr}) IN ('integer', 'real') THEN {expr} {sql_op} ? "
            f"ELSE {expr} {sql_op} ? END)"
        )
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T.*", text):
        try:
            utc = utc_text(parse_qbo_time(text))
        except ValueError:
            utc = None
        if utc is not None:
            params.append(utc)
            return f"qbo_utc({expr}) {sql_op} ?"
    params.append(text)
    return f"{expr} {sql_op} ?"


def _like_pattern(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("_", "\\_")
    return escaped


def _condition_sql(entity: Entity, cond: Condition, params: list[Any]) -> str | None:
    """SQL for a condition, or None when it selects everything (``Active IN (true,false)``)."""
    name, op = cond.field, cond.op
    if name == "Id":
        ids: list[int | str] = []
        for value in cond.values:
            text = value.text if isinstance(value, _Number) else str(value)
            key = record_key(entity.name, text)
            if key is not None:  # an id no record can have matches nothing, as in QBO
                ids.append(key)
        if not ids:
            return "0"
        params.extend(ids)
        return f"id_num IN ({', '.join('?' * len(ids))})"
    if name == "Active":
        flags = set()
        for value in cond.values:
            if isinstance(value, bool):
                flags.add(value)
            elif str(getattr(value, "text", value)).lower() in ("true", "false"):
                flags.add(str(getattr(value, "text", value)).lower() == "true")
            else:
                raise faults.invalid_query(f"Active takes true or false, not {value!r}")
        if op == "in":
            if flags == {True, False}:
                return None
            op = "="
        if op != "=" or len(flags) != 1:
            raise faults.invalid_query("Active supports only = and IN")
        params.append(1 if flags.pop() else 0)
        return "active = ?"
    if name in _COLUMNS:
        column = _COLUMNS[name]
        if op == "like":
            raise faults.invalid_query(f"LIKE is not supported for {name}")
        literals = [_time_literal(v, name) for v in cond.values]
        if op == "in":
            params.extend(literals)
            return f"{column} IN ({', '.join('?' * len(literals))})"
        params.append(literals[0])
        return f"{column} {_SQL_OP[op]} ?"
    if op == "like":
        params.append(_like_pattern(str(cond.values[0])))
        return f"{_value_sql(name)} LIKE ? ESCAPE '\\'"
    if op == "in":
        parts = [_compare_sql(name, "=", v, params) for v in cond.values]
        return "(" + " OR ".join(parts) + ")"
    return _compare_sql(name, op, cond.values[0], params)


@dataclass
class QueryResult:
    """What a query returns, ready to be wrapped in its envelope.

    Attributes:
        json_key: The entity key of the envelope (``Invoice``).
        rows: The payloads as JSON text (or projected objects when fields were selected).
        start: The STARTPOSITION served.
        total: The COUNT(*) answer, when the query counted.
    """

    json_key: str
    rows: list[str] = field(default_factory=list)
    start: int = 1
    total: int | None = None

    def query_response(self) -> dict[str, Any]:
        """The ``QueryResponse`` object (parsing the payloads)."""
        if self.total is not None:
            return {"totalCount": self.total}
        if not self.rows:
            return {}
        return {
            self.json_key: [orjson.loads(r) for r in self.rows],
            "startPosition": self.start,
            "maxResults": len(self.rows),
        }

    def query_response_json(self) -> bytes:
        """The ``QueryResponse`` object as JSON, spliced without re-parsing the payloads."""
        if self.total is not None or not self.rows:
            return orjson.dumps(self.query_response())
        return (
            b'{"'
            + self.json_key.encode()
            + b'":['
            + ",".join(self.rows).encode()
            + b'],"startPosition":'
            + str(self.start).encode()
            + b',"maxResults":'
            + str(len(self.rows)).encode()
            + b"}"
        )


class QueryEngine:
    """Runs parsed queries against a store, remembering page ends for O(page) deep paging."""

    def __init__(self, store: SandboxStore, *, cache_size: int = 512) -> None:
        """Bind the engine to a store."""
        self.store = store
        self._cursors: OrderedDict[tuple[Any, ...], tuple[Any, int]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def run_text(self, realm_id: str, text: str) -> QueryResult:
        """Parse and run a query.

        Raises:
            SandboxFault: 4000 or 4001.
        """
        return self.run(realm_id, parse(text))

    def run(self, realm_id: str, query: Query) -> QueryResult:
        """Run a parsed query in a realm."""
        ent = query.entity
        params: list[Any] = [realm_id, ent.name]
        where = ["realm = ?", "entity = ?"]
        filters_active = False
        for cond in query.conditions:
            if cond.field == "Active":
                filters_active = True
            sql = _condition_sql(ent, cond, params)
            if sql is not None:
                where.append(sql)
        if ent.has_active and not filters_active:
            where.append("active = 1")
        where_sql = " AND ".join(where)
        if query.count:
            rows = self.store.select(f"WHERE {where_sql}", params, columns="count(*)")
            return QueryResult(ent.json_key, total=int(rows[0][0]))
        order_terms: list[str] = []
        keyset: tuple[str, bool] | None = None
        if not query.order:
            keyset = ("id_num", False)
        elif len(query.order) == 1 and query.order[0][0] in _COLUMNS:
            keyset = (_COLUMNS[query.order[0][0]], query.order[0][1])
        for name, descending in query.order:
            column = _COLUMNS.get(name) or _value_sql(name)
            order_terms.append(f"{column} {'DESC' if descending else 'ASC'}")
        if keyset is None or keyset[0] != "id_num":
            tiebreak_desc = keyset is not None and keyset[1]
            order_terms.append(f"id_num {'DESC' if tiebreak_desc else 'ASC'}")
        elif not order_terms:
            order_terms.append("id_num ASC")
        order_sql = ", ".join(order_terms)
        limit = query.max_results
        offset = query.start - 1
        cache_key = (realm_id, where_sql, tuple(params), order_sql, self.store.version(realm_id))
        continuation = None
        if keyset is not None and offset > 0:
            with self._lock:
                continuation = self._cursors.get((*cache_key, query.start))
        columns = "id_num, payload" if keyset is None else f"id_num, payload, {keyset[0]}"
        page_where = where_sql
        page_params = list(params)
        if continuation is not None and keyset is not None:
            column, descending = keyset
            last_value, last_id = continuation
            cmp = "<" if descending else ">"
            if column == "id_num":
                page_where += f" AND id_num {cmp} ?"
                page_params.append(last_id)
            else:
                page_where += f" AND ({column} {cmp} ? OR ({column} = ? AND id_num {cmp} ?))"
                page_params.extend([last_value, last_value, last_id])
            offset = 0
        rows = self.store.select(
            f"WHERE {page_where} ORDER BY {order_sql} LIMIT {limit} OFFSET {offset}",
            page_params,
            columns=columns,
        )
        if keyset is not None and rows:
            last = rows[-1]
            with self._lock:
                self._cursors[(*cache_key, query.start + len(rows))] = (last[2], last[0])
                while len(self._cursors) > self._cache_size:
                    self._cursors.popitem(last=False)
        payloads = [row[1] for row in rows]
        if query.fields:
            payloads = [_project(ent, p, query.fields) for p in payloads]
        return QueryResult(ent.json_key, rows=payloads, start=query.start)


_KEY_FIELDS = {"ExchangeRate": ("SourceCurrencyCode", "AsOfDate")}
"""What a projection always keeps besides ``Id``: the fields that name an Id-less record."""


def _project(entity: Entity, payload: str, fields: tuple[str, ...]) -> str:
    """The selected fields of a record (and what names it), marked ``sparse``.

    A recurring template is projected inside the transaction it wraps, where its fields are.
    """
    record = orjson.loads(payload)
    wrapped = shapes.template_key(record) if entity.name == shapes.RECURRING else None
    if wrapped is not None:
        return orjson.dumps({wrapped: _projected(record[wrapped], fields, ())}).decode()
    return orjson.dumps(_projected(record, fields, _KEY_FIELDS.get(entity.name, ()))).decode()


def _projected(
    record: dict[str, Any], fields: tuple[str, ...], key_fields: tuple[str, ...]
) -> dict[str, Any]:
    keep = {f.split(".")[0].lower() for f in fields} | {"id"} | {k.lower() for k in key_fields}
    projected: dict[str, Any] = {"domain": record.get("domain", "QBO"), "sparse": True}
    projected.update({key: value for key, value in record.items() if key.lower() in keep})
    return projected
