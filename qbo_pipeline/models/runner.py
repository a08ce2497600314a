"""Discover the SQL models, find their references and order them.

A model is one ``SELECT`` in ``dbt_like_sql/<schema>/<table>.sql``: the folder is the schema and
the file name the table. References between models are the ``schema.table`` names the SQL uses;
they are found with sqlglot's tokenizer (so comments and string literals never count) and ordered
with :class:`graphlib.TopologicalSorter`. The header comment may say ``-- materialized: view`` for
a model that must stay live over the lake; every other model is a table.

``-- materialized: incremental`` (with ``-- incremental_key: col, ...``) is a table that a build
after new snapshots only appends to: its SQL reads what the build added (``lake.new_versions``,
the new version files; ``delta.<model>``, the rows this build added to an upstream incremental
model) and the runner deletes the rows of the same keys, then inserts the new rows whose
``#UNIQUE_BY`` key the table does not hold yet (see :mod:`qbo_pipeline.models.warehouse`);
``-- incremental_delete: <condition>`` also deletes the rows the condition names (a deleted
record's, which no new row replaces). ``lake.new_manifest_deltas`` is the new snapshots' deltas.
``-- incremental_rebuild_on: <schema.model>, ...`` names the tables it reads whose change
invalidates rows it already holds (the default accounts its postings fall back on): when one of
them changes, the build recomputes the model whole, each ``delta.<model>`` it reads taken as all
of the model (:attr:`Model.whole_sql`).
In a full build ``lake.new_versions`` is all of ``lake.versions`` and ``delta.<model>`` all of the
model, so the SQL means the same thing either way. The published warehouse keeps ``delta.<model>``
as all of the model (macros read it) and has no ``lake.new_versions``: only incremental models
may read it.

Table macros (``as_of``, ``sales_document_lines``, ...) live in ``dbt_like_sql/macros/*.sql``,
one ``create or replace macro <file name>`` per file. Models and macros are ordered in ONE graph:
a macro comes after the models it reads and the macros it calls, a model after the macros it
calls, so a model can be a thin call of a macro that holds a shape several models share. A
model's ``depends_on`` includes the models it reads through its macros.

The current-state views (``marts.invoices`` over ``staging.stg_invoice_versions``, ...) are not
files: they are generated from the entity catalogue (:mod:`qbo_pipeline.models.current`).
"""

from __future__ import annotations

import functools
import graphlib
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import TokenError
from sqlglot.tokens import Token, TokenType

from qbo_pipeline.errors import QboPipelineError
from qbo_pipeline.models.current import INTERVALS, current_models
from qbo_pipeline.models.sql_dir import SqlDirNotFoundError, find_sql_dir
from qbo_pipeline.models.sql_tests import ColumnTest, parse_tests

SOURCE_SCHEMAS: dict[str, tuple[str, ...]] = {
    "lake": (
        "commits",
        "versions",
        "new_versions",
        "manifest_deltas",
        "new_manifest_deltas",
        "reports",
    ),
    "catalogue": ("entities", "references"),
}
"""Relations the runner itself creates before any model: the lake views and catalogue seeds."""

LAYERS = ("staging", "intermediate", "marts")
"""The conventional model schemas: a reference into one of them must name a model."""

MACRO_FOLDER = "macros"
MATERIALIZATIONS = ("table", "view", "incremental")
DELTA_SCHEMA = "delta"
"""``delta.<model>``: the rows the running build added to an incremental model."""
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_NAMES = (TokenType.VAR, TokenType.IDENTIFIER)
_NO_TOKEN = Token(TokenType.SEMICOLON, ";")
_MATERIALIZED = re.compile(r"^\s*--\s*materiali[sz]ed\s*:\s*(\w+)", re.IGNORECASE | re.MULTILINE)
_INCREMENTAL_KEY = re.compile(r"^\s*--\s*incremental_key\s*:\s*(.+)$", re.IGNORECASE | re.MULTILINE)
_INCREMENTAL_DELETE = re.compile(
    r"^\s*--\s*incremental_delete\s*:\s*(.+)$", re.IGNORECASE | re.MULTILINE
)
_INCREMENTAL_REBUILD_ON = re.compile(
    r"^\s*--\s*incremental_rebuild_on\s*:\s*(.+)$", re.IGNORECASE | re.MULTILINE
)


class ModelError(QboPipelineError):
    """A model project is malformed: the message names the file and the problem."""


class ModelCycleError(ModelError):
    """Models and macros reference each other in a cycle."""


class MissingReferenceError(ModelError):
    """A model references a relation that is neither a model nor a source."""


class UnknownMacroError(ModelError):
    """A model or macro reads from a table function that is neither a macro nor a DuckDB one."""


@dataclass(frozen=True)
class Model:
    """One SQL model.

    Attributes:
        schema: The folder name (``staging``, ``intermediate``, ``marts``).
        name: The file name without ``.sql``: the table or view name.
        path: Where the SQL lives.
        sql: The ``SELECT`` text (a trailing semicolon removed).
        materialized: ``table``, ``view`` or ``incremental``.
        incremental_key: An incremental model's key columns: a build deletes the rows whose key
            is among its new rows before inserting them (so a retried build is idempotent).
        incremental_delete: An incremental model's ``-- incremental_delete: <condition>``: the
            rows an incremental build also deletes, those the new snapshots made obsolete
            without replacing them (a deleted record's). A ``where`` condition over the table's
            own columns; it may read ``delta.<model>`` and other models.
        depends_on: Other models this one reads, as ``schema.name``, directly or through the
            macros it calls.
        sources: Source relations it reads (``lake.versions``, ``catalogue.entities``), directly
            or through its macros.
        tests: The column tests declared in its SQL.
        macros: The macros its SQL calls (by name).
        all_macros: The macros it runs: those it calls and, in turn, the ones they call.
        test_scope: A ``where`` condition over the relation's columns naming the rows an
            incremental build can have changed; its tests then read only those (see
            :mod:`qbo_pipeline.models.incremental`). Empty: every row.
        rebuild_on: An incremental model's ``-- incremental_rebuild_on``: the models it reads
            whose change makes an incremental build recompute it whole.
        whole_sql: The SQL with each ``delta.<model>`` it reads replaced by the model itself:
            what recomputes an incremental model whole in the middle of an incremental build.
    """

    schema: str
    name: str
    path: Path
    sql: str
    materialized: str = "table"
    depends_on: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()
    tests: tuple[ColumnTest, ...] = ()
    macros: frozenset[str] = frozenset()
    all_macros: frozenset[str] = frozenset()
    incremental_key: tuple[str, ...] = ()
    incremental_delete: str = ""
    test_scope: str = ""
    rebuild_on: tuple[str, ...] = ()
    whole_sql: str = ""

    @property
    def key(self) -> str:
        """``schema.name``, as the SQL refers to it."""
        return f"{self.schema}.{self.name}"

    @property
    def unique_by(self) -> tuple[str, ...]:
        """The columns of the model's first ``#UNIQUE_BY`` test (none when it has none)."""
        return next((t.columns for t in self.tests if t.kind == "UNIQUE_BY"), ())


@dataclass(frozen=True)
class Macro:
    """One table or scalar macro file (``create or replace macro <file name> ...``)."""

    name: str
    path: Path
    sql: str
    depends_on: frozenset[str] = frozenset()
    """Models the macro reads (``schema.name``), directly or through the macros it calls."""
    calls: frozenset[str] = frozenset()
    """Other macros it calls."""
    sources: frozenset[str] = frozenset()
    """Source relations it reads, directly or through the macros it calls."""
    all_macros: frozenset[str] = frozenset()
    """The macros it calls and, in turn, the ones they call."""

    @property
    def key(self) -> str:
        """``macros.name``: the macro's node in the build graph (no model schema is ``macros``)."""
        return f"{MACRO_FOLDER}.{self.name}"


Step = Model | Macro
"""One thing the build creates: a model's table or view, or a macro."""


def code_version(model: Model, macros: Iterable[Macro]) -> str:
    """A digest of the SQL a model runs: its own and that of every macro it calls, transitively.

    A change to a shared macro thus changes the version of every model that calls it.
    """
    by_name = {m.name: m for m in macros}
    digest = hashlib.sha256(model.sql.encode())
    for name in sorted(model.all_macros):
        digest.update(b"\0" + name.encode() + b"\0" + by_name[name].sql.encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Project:
    """Every model and macro in build order.

    Attributes:
        root: The ``dbt_like_sql`` folder.
        models: The models, each after everything it reads.
        macros: The macros, each after the macros it calls.
        schemas: The model folders.
        steps: Models and macros interleaved in one build order: each macro after the models it
            reads and the macros it calls, each model after the models and macros it uses.
    """

    root: Path
    models: tuple[Model, ...]
    macros: tuple[Macro, ...] = ()
    schemas: tuple[str, ...] = field(default=())
    steps: tuple[Step, ...] = ()

    def get(self, key: str) -> Model:
        """The model named ``schema.name``.

        Raises:
            KeyError: If there is no such model.
        """
        for model in self.models:
            if model.key == key:
                return model
        raise KeyError(f"no model {key!r}; known: {', '.join(m.key for m in self.models)}")


def default_sql_dir() -> Path:
    """The ``dbt_like_sql`` folder: ``QBO_SQL_DIR``, else the checkout's, else the installed one.

    See :mod:`qbo_pipeline.models.sql_dir` for where an installed wheel keeps it.

    Raises:
        ModelError: If ``QBO_SQL_DIR`` names no folder or no folder can be found.
    """
    try:
        return find_sql_dir()
    except SqlDirNotFoundError as exc:
        raise ModelError(str(exc)) from None


def load_project(root: Path | None = None) -> Project:
    """Discover every model and macro under ``root`` and order them in one graph.

    Args:
        root: The ``dbt_like_sql`` folder; the packaged one by default.

    Returns:
        The project: models and macros in an order where each comes after everything it reads
        or calls.

    Raises:
        ModelError: For a badly named or empty file, an unknown materialization, a macro file
            that does not define the macro it is named after, a missing reference
            (:class:`MissingReferenceError`), a table function that is no macro
            (:class:`UnknownMacroError`) or a cycle (:class:`ModelCycleError`).
    """
    root = Path(root) if root is not None else default_sql_dir()
    if not root.is_dir():
        raise ModelError(f"the SQL models folder {root} does not exist")
    schema_dirs = sorted(
        p for p in root.iterdir() if p.is_dir() and p.name != MACRO_FOLDER and _NAME.match(p.name)
    )
    schemas = tuple(p.name for p in schema_dirs)
    clash = set(schemas) & set(SOURCE_SCHEMAS)
    if clash:
        raise ModelError(f"model folders {sorted(clash)} clash with the runner's source schemas")
    macro_paths = sorted((root / MACRO_FOLDER).glob("*.sql"))
    macro_names = frozenset(p.stem for p in macro_paths)
    macros = [_read_macro(path, schemas, macro_names) for path in macro_paths]
    models = [
        _read_model(path, schemas, macro_names)
        for d in schema_dirs
        for path in sorted(d.glob("*.sql"))
    ]
    models.extend(_current_models(models, schemas, macro_names))
    models, macros = _resolve_deltas(models, macros)
    _check_references(models, macros)
    steps = _order(models, macros)
    _check_whole_rebuilds(steps)
    return Project(
        root=root,
        models=tuple(s for s in steps if isinstance(s, Model)),
        macros=tuple(s for s in steps if isinstance(s, Macro)),
        schemas=schemas,
        steps=steps,
    )


def _current_models(
    models: Sequence[Model], schemas: Sequence[str], macro_names: frozenset[str]
) -> list[Model]:
    """The current-state views the entity catalogue asks for (see :mod:`.current`)."""
    keys = {
        m.key: next(
            (t.columns for t in m.tests if t.kind == "UNIQUE_BY" and "content_hash" in t.columns),
            (),
        )
        for m in models
    }
    by_key = {m.key: m for m in models}
    intervals = by_key.get(INTERVALS)
    try:
        wanted = current_models(
            keys,
            set(keys),
            scoped=intervals is not None and intervals.materialized == "incremental",
        )
    except ValueError as exc:
        raise ModelError(str(exc)) from None
    return [
        replace(
            _model(c.schema, c.name, by_key[c.versions].path, c.sql, schemas, macro_names),
            test_scope=c.test_scope,
        )
        for c in wanted
    ]


def _check_whole_rebuilds(steps: Sequence[Step]) -> None:
    """A model rebuilt whole through ``incremental_rebuild_on`` must name its deltas itself.

    Its whole rebuild reads each ``delta.<model>`` of its own SQL as all of the model; one read
    inside a macro would still give only the build's new rows.
    """
    by_name = {s.name: s for s in steps if isinstance(s, Macro)}
    for model in steps:
        if not isinstance(model, Model) or not model.rebuild_on:
            continue
        for name in sorted(model.all_macros):
            if find_references(by_name[name].sql, [DELTA_SCHEMA], where=str(by_name[name].path)):
                raise ModelError(
                    f"{model.path}: a model with `-- incremental_rebuild_on` cannot call macro "
                    f"{name}, which reads {DELTA_SCHEMA}.*: read the delta in the model itself"
                )


def _strip(sql: str) -> str:
    return sql.strip().rstrip(";").strip()


def _read_sql(path: Path, what: str) -> str:
    if not _NAME.match(path.stem):
        raise ModelError(f"{path}: a {what} file name must be a lower-case SQL name (a-z, 0-9, _)")
    sql = _strip(path.read_text(encoding="utf-8"))
    if not sql:
        raise ModelError(f"{path}: the {what} is empty")
    return sql


def _read_model(path: Path, schemas: Sequence[str], macro_names: frozenset[str]) -> Model:
    return _model(path.parent.name, path.stem, path, _read_sql(path, "model"), schemas, macro_names)


def _model(
    schema: str,
    name: str,
    path: Path,
    sql: str,
    schemas: Sequence[str],
    macro_names: frozenset[str],
) -> Model:
    match = _MATERIALIZED.search(sql)
    materialized = match.group(1).lower() if match else "table"
    if materialized not in MATERIALIZATIONS:
        raise ModelError(
            f"{path}: materialized {materialized!r} is not one of {', '.join(MATERIALIZATIONS)}"
        )
    key_match = _INCREMENTAL_KEY.search(sql)
    incremental_key = (
        tuple(c.strip().lower() for c in key_match.group(1).split(",") if c.strip())
        if key_match
        else ()
    )
    if materialized == "incremental" and not incremental_key:
        raise ModelError(
            f"{path}: an incremental model needs a `-- incremental_key: column, ...` header line"
        )
    delete_match = _INCREMENTAL_DELETE.search(sql)
    incremental_delete = delete_match.group(1).strip() if delete_match else ""
    rebuild_match = _INCREMENTAL_REBUILD_ON.search(sql)
    rebuild_on = (
        tuple(c.strip().lower() for c in rebuild_match.group(1).split(",") if c.strip())
        if rebuild_match
        else ()
    )
    for header, given in (
        ("incremental_key", incremental_key),
        ("incremental_delete", bool(incremental_delete)),
        ("incremental_rebuild_on", rebuild_on),
    ):
        if given and materialized != "incremental":
            raise ModelError(
                f"{path}: `-- {header}` is only for `-- materialized: incremental` models"
            )
    model_schemas = {*schemas, *LAYERS}
    tokens = _tokenize(sql, str(path))
    wanted = (*model_schemas, *SOURCE_SCHEMAS, DELTA_SCHEMA)
    refs = _references(tokens, wanted)
    if incremental_delete:  # a comment to the tokenizer: what it reads is found on its own
        refs |= _references(_tokenize(incremental_delete, f"{path} incremental_delete"), wanted)
    key = f"{schema}.{name}"
    return Model(
        schema=schema,
        name=name,
        path=path,
        sql=sql,
        materialized=materialized,
        incremental_key=incremental_key,
        incremental_delete=incremental_delete,
        rebuild_on=rebuild_on,
        depends_on=frozenset(
            r
            for r in refs
            if (r.split(".")[0] in model_schemas and r != key) or r.startswith(DELTA_SCHEMA + ".")
        ),
        sources=frozenset(r for r in refs if r.split(".")[0] in SOURCE_SCHEMAS),
        tests=parse_tests(sql, where=str(path)),
        macros=_macro_calls(tokens, macro_names, where=f"{path}: model {key}"),
    )


def _read_macro(path: Path, schemas: Sequence[str], macro_names: frozenset[str]) -> Macro:
    sql = _read_sql(path, "macro")
    tokens = _tokenize(sql, str(path))
    defined = [
        name.text.lower()
        for create, word, name in _triples(tokens)
        if word.text.lower() == "macro"
        and create.token_type in (TokenType.CREATE, TokenType.REPLACE, TokenType.TEMPORARY)
    ]
    if defined != [path.stem]:
        raise ModelError(
            f"{path}: a macro file holds exactly one `create or replace macro {path.stem}(...)`, "
            f"named as the file; it defines {', '.join(defined) or 'none'}"
        )
    model_schemas = {*schemas, *LAYERS, DELTA_SCHEMA}
    refs = _references(tokens, (*model_schemas, *SOURCE_SCHEMAS))
    return Macro(
        name=path.stem,
        path=path,
        sql=sql,
        depends_on=frozenset(r for r in refs if r.split(".")[0] in model_schemas),
        sources=frozenset(r for r in refs if r.split(".")[0] in SOURCE_SCHEMAS),
        calls=_macro_calls(
            tokens, macro_names, where=f"{path}: macro {path.stem}", itself=path.stem
        ),
    )


def _tokenize(sql: str, where: str) -> Sequence[Token]:
    try:
        return _tokens_of(sql)
    except TokenError as exc:
        raise ModelError(f"{where}: the SQL cannot be tokenized: {exc}") from None


@functools.lru_cache(maxsize=4096)
def _tokens_of(sql: str) -> tuple[Token, ...]:
    """``sql``'s tokens, kept by its text (they are only read).

    Every build loads the project again, and sqlglot's tokenizer (pure Python) took most of
    that: 1.2 s of 1.35 s for the packaged project.
    """
    return tuple(DuckDB().tokenize(sql))


def _triples(tokens: Sequence[Token]) -> Iterable[tuple[Token, Token, Token]]:
    return zip(tokens, tokens[1:], tokens[2:], strict=False)


def find_references(sql: str, schemas: Iterable[str], *, where: str = "<sql>") -> set[str]:
    """The ``schema.table`` names in ``sql`` whose schema is one of ``schemas``.

    Comments and string literals are skipped (the SQL is tokenized, not pattern-matched).

    Raises:
        ModelError: If the SQL cannot be tokenized (an unterminated string, say).
    """
    return _references(_tokenize(sql, where), schemas)


def _references(tokens: Sequence[Token], schemas: Iterable[str]) -> set[str]:
    wanted = {s.lower() for s in schemas}
    refs: set[str] = set()
    for i, (first, dot, second) in enumerate(_triples(tokens)):
        if (
            first.token_type in _NAMES
            and first.text.lower() in wanted
            and dot.token_type is TokenType.DOT
            and (i == 0 or tokens[i - 1].token_type is not TokenType.DOT)
            and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", second.text)
        ):
            refs.add(f"{first.text.lower()}.{second.text.lower()}")
    return refs


def _macro_calls(
    tokens: Sequence[Token], macro_names: frozenset[str], *, where: str, itself: str = ""
) -> frozenset[str]:
    """The macros called in ``tokens`` (a name followed by ``(``, not after a dot).

    A table function read right after ``from`` or ``join`` must be a macro of the project or a
    DuckDB table function: anything else is a typo that would only fail mid-build.

    Raises:
        UnknownMacroError: For a table function that is neither.
    """
    calls: set[str] = set()
    for before, name, paren in _triples([_NO_TOKEN, *tokens]):
        if paren.token_type is not TokenType.L_PAREN or before.token_type is TokenType.DOT:
            continue
        text = name.text.lower()
        if text == itself:  # the macro's own definition
            continue
        if name.token_type in _NAMES and text in macro_names:
            calls.add(text)
        elif (
            name.token_type is TokenType.VAR
            and before.token_type in (TokenType.FROM, TokenType.JOIN)
            and text not in duckdb_table_functions()
        ):
            known = ", ".join(sorted(macro_names)) or "none"
            raise UnknownMacroError(
                f"{where} reads from {name.text}(...), which is neither a macro of the project "
                f"(known: {known}) nor a DuckDB table function"
            )
    return frozenset(calls)


@functools.cache
def duckdb_table_functions() -> frozenset[str]:
    """The names of DuckDB's own table functions and table macros (``range``, ``unnest``...)."""
    con = duckdb.connect()
    try:
        rows = con.execute(
            "select distinct function_name from duckdb_functions() "
            "where function_type in ('table', 'table_macro')"
        ).fetchall()
    finally:
        con.close()
    return frozenset(r[0].lower() for r in rows)


def _resolve_deltas(
    models: Sequence[Model], macros: Sequence[Macro]
) -> tuple[list[Model], list[Macro]]:
    """Replace each ``delta.<name>`` reference by the incremental model it reads the new rows of.

    Raises:
        MissingReferenceError: If ``delta.<name>`` names no incremental model (or several).
    """
    incremental: dict[str, list[str]] = {}
    for model in models:
        if model.materialized == "incremental":
            incremental.setdefault(model.name, []).append(model.key)
    prefix = DELTA_SCHEMA + "."

    def resolve(step: Step) -> frozenset[str]:
        deps = set()
        for ref in step.depends_on:
            if not ref.startswith(prefix):
                deps.add(ref)
                continue
            keys = incremental.get(ref[len(prefix) :], [])
            if len(keys) != 1:
                raise MissingReferenceError(
                    f"{step.path}: {ref} must name one incremental model "
                    f"(incremental models: {', '.join(sorted(incremental)) or 'none'})"
                )
            deps.add(keys[0])
        return frozenset(deps)

    def whole(model: Model) -> str:
        if model.materialized != "incremental":
            return ""
        return _read_deltas_whole(model.sql, {f"{prefix}{n}": k[0] for n, k in incremental.items()})

    return (
        [replace(m, depends_on=resolve(m), whole_sql=whole(m)) for m in models],
        [replace(m, depends_on=resolve(m)) for m in macros],
    )


def _read_deltas_whole(sql: str, names: dict[str, str]) -> str:
    """``sql`` with each ``delta.<name>`` replaced by the incremental model it stands for."""
    tokens = _tokenize(sql, "<sql>")
    parts: list[str] = []
    at = 0
    for i, (first, dot, second) in enumerate(_triples(tokens)):
        ref = f"{first.text.lower()}.{second.text.lower()}"
        if (
            first.token_type in _NAMES
            and dot.token_type is TokenType.DOT
            and ref in names
            and (i == 0 or tokens[i - 1].token_type is not TokenType.DOT)
        ):
            parts.append(sql[at : first.start])
            parts.append(names[ref])
            at = second.end + 1
    parts.append(sql[at:])
    return "".join(parts)


def incremental_names(project: Project) -> dict[str, str]:
    """``delta.<name>`` -> the incremental model it stands for (``staging.stg_...``)."""
    return {
        f"{DELTA_SCHEMA}.{m.name}": m.key for m in project.models if m.materialized == "incremental"
    }


def project_hash(project: Project) -> str:
    """A digest of the project's SQL: every model's and macro's, with its materialization.

    The generated current-state views are included.
    """
    digest = hashlib.sha256()
    for step in project.steps:
        kind = step.materialized if isinstance(step, Model) else "macro"
        digest.update(f"\0{step.key}\0{kind}\0".encode() + step.sql.encode())
    return digest.hexdigest()


def _check_references(models: Sequence[Model], macros: Sequence[Macro]) -> None:
    known = {m.key for m in models}
    sources = {f"{s}.{t}" for s, tables in SOURCE_SCHEMAS.items() for t in tables}
    steps: list[tuple[str, Model | Macro]] = [
        *((f"model {m.key}", m) for m in sorted(models, key=lambda m: m.key)),
        *((f"macro {m.name}", m) for m in macros),
    ]
    for label, step in steps:
        missing = sorted((step.depends_on - known) | (step.sources - sources))
        if missing:
            raise MissingReferenceError(
                f"{step.path}: {label} references {', '.join(missing)}, which is "
                "neither a model nor a source "
                f"(sources: {', '.join(sorted(sources))})"
            )
        unread = [r for r in getattr(step, "rebuild_on", ()) if r not in step.depends_on]
        if unread:
            raise ModelError(
                f"{step.path}: `-- incremental_rebuild_on` names {', '.join(unread)}, which "
                f"{label} does not read; it reads {', '.join(sorted(step.depends_on)) or 'nothing'}"
            )


def _order(models: Sequence[Model], macros: Sequence[Macro]) -> tuple[Step, ...]:
    """Models and macros in one build order; each then reads (and runs) what its macros do."""
    steps: list[Step] = [*models, *macros]
    nodes = {step.key: step for step in steps}
    graph = {
        step.key: sorted(step.depends_on | {f"{MACRO_FOLDER}.{c}" for c in _called(step)})
        for step in nodes.values()
    }
    try:
        order = graph_order(graph)
    except graphlib.CycleError as exc:
        raise ModelCycleError(
            f"models and macros reference each other in a cycle: {' -> '.join(exc.args[1])}"
        ) from None
    done: dict[str, Step] = {}
    for key in order:
        step = nodes[key]
        called = _called(step)
        via = [done[f"{MACRO_FOLDER}.{c}"] for c in sorted(called)]
        done[key] = replace(
            step,
            depends_on=step.depends_on.union(*(m.depends_on for m in via)),
            sources=step.sources.union(*(m.sources for m in via)),
            all_macros=called.union(*(m.all_macros for m in via)),
        )
    return tuple(done[key] for key in order)


def _called(step: Step) -> frozenset[str]:
    return step.macros if isinstance(step, Model) else step.calls


def graph_order(graph: dict[str, list[str]]) -> list[str]:
    """A stable topological order of ``graph`` (node -> what it needs), ties by name."""
    sorter = graphlib.TopologicalSorter(graph)
    sorter.prepare()
    ordered: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        ordered.extend(ready)
        sorter.done(*ready)
    return ordered


def select_models(project: Project, selectors: Sequence[str]) -> tuple[Model, ...]:
    """The models named by ``selectors`` plus everything they read, in build order.

    A selector is ``schema.name`` or ``name``; a trailing ``+`` adds the models downstream too.

    Raises:
        ModelError: For a selector naming no model.
    """
    if not selectors:
        return project.models
    wanted: set[str] = set()
    for selector in selectors:
        downstream = selector.endswith("+")
        name = selector.rstrip("+").lower()
        hits = [m.key for m in project.models if name in (m.key, m.name)]
        if not hits:
            raise ModelError(f"no model matches {selector!r}")
        wanted.update(hits)
        if downstream:
            wanted.update(_downstream(project, set(hits)))
    closure = set(wanted)
    for model in reversed(project.models):
        if model.key in closure:
            closure.update(model.depends_on)
    return tuple(m for m in project.models if m.key in closure)


def build_steps(project: Project, models: Sequence[Model]) -> tuple[Step, ...]:
    """What a build of ``models`` creates, in order: those models and the macros they allow.

    A macro is built when every model it reads (directly or through the macros it calls) is among
    ``models``; :func:`select_models` includes everything a selected model reads through its
    macros, so the macros a selected model calls are always built before it.
    """
    keys = {m.key for m in models}
    steps: list[Step] = []
    names: set[str] = set()
    for step in project.steps:
        if isinstance(step, Model):
            if step.key in keys:
                steps.append(step)
        elif step.depends_on <= keys and step.calls <= names:
            steps.append(step)
            names.add(step.name)
    return tuple(steps)


def _downstream(project: Project, keys: set[str]) -> set[str]:
    found = set(keys)
    for model in project.models:
        if model.depends_on & found:
            found.add(model.key)
    return found
