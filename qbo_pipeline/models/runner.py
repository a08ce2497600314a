"""Discover the SQL models, find their references and order them.

A model is one ``SELECT`` in ``dbt_like_sql/<schema>/<table>.sql``: the folder is the schema and
the file name the table. References between models are the ``schema.table`` names the SQL uses;
they are found with sqlglot's tokenizer (so comments and string literals never count) and ordered
with :class:`graphlib.TopologicalSorter`. The header comment may say ``-- materialized: view`` for
a model that must stay live over the lake; every other model is a table.

Table macros (``as_of``, ``changes``, ...) live in ``dbt_like_sql/macros/*.sql``, one
``create or replace macro`` per file, and are created after the models.
"""

from __future__ import annotations

import graphlib
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

from qbo_pipeline.models.sql_dir import SqlDirNotFoundError, find_sql_dir
from qbo_pipeline.models.sql_tests import ColumnTest, parse_tests

SOURCE_SCHEMAS: dict[str, tuple[str, ...]] = {
    "lake": ("commits", "versions", "manifest_deltas", "reports"),
    "catalogue": ("entities", "references"),
}
"""Relations the runner itself creates before any model: the lake views and catalogue seeds."""

LAYERS = ("staging", "intermediate", "marts")
"""The conventional model schemas: a reference into one of them must name a model."""

MACRO_FOLDER = "macros"
MATERIALIZATIONS = ("table", "view")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_MATERIALIZED = re.compile(r"^\s*--\s*materiali[sz]ed\s*:\s*(\w+)", re.IGNORECASE | re.MULTILINE)


class ModelError(Exception):
    """A model project is malformed: the message names the file and the problem."""


class ModelCycleError(ModelError):
    """Models reference each other in a cycle."""


class MissingReferenceError(ModelError):
    """A model references a relation that is neither a model nor a source."""


@dataclass(frozen=True)
class Model:
    """One SQL model.

    Attributes:
        schema: The folder name (``staging``, ``intermediate``, ``marts``).
        name: The file name without ``.sql``: the table or view name.
        path: Where the SQL lives.
        sql: The ``SELECT`` text (a trailing semicolon removed).
        materialized: ``table`` or ``view``.
        depends_on: Other models this one reads, as ``schema.name``.
        sources: Source relations it reads (``lake.versions``, ``catalogue.entities``).
        tests: The column tests declared in its SQL.
    """

    schema: str
    name: str
    path: Path
    sql: str
    materialized: str = "table"
    depends_on: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()
    tests: tuple[ColumnTest, ...] = ()

    @property
    def key(self) -> str:
        """``schema.name``, as the SQL refers to it."""
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class Macro:
    """One table or scalar macro file (``create or replace macro ...``)."""

    name: str
    path: Path
    sql: str
    depends_on: frozenset[str] = frozenset()
    """Models the macro reads (``schema.name``)."""
    calls: frozenset[str] = frozenset()
    """Other macros it calls."""


@dataclass(frozen=True)
class Project:
    """Every model in build order, plus the macros."""

    root: Path
    models: tuple[Model, ...]
    macros: tuple[Macro, ...] = ()
    schemas: tuple[str, ...] = field(default=())

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
    """Discover every model and macro under ``root`` and order the models.

    Args:
        root: The ``dbt_like_sql`` folder; the packaged one by default.

    Returns:
        The project, models in an order where each comes after everything it reads.

    Raises:
        ModelError: For a badly named file, an unknown materialization, a missing reference
            (:class:`MissingReferenceError`) or a cycle (:class:`ModelCycleError`).
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
    models = [_read_model(path, schemas) for d in schema_dirs for path in sorted(d.glob("*.sql"))]
    _check_references(models)
    ordered = _order(models)
    model_schemas = (*schemas, *LAYERS)
    macros = _order_macros(
        [
            Macro(
                name=p.stem,
                path=p,
                sql=(sql := _strip(p.read_text(encoding="utf-8"))),
                depends_on=frozenset(
                    r
                    for r in find_references(sql, model_schemas, where=str(p))
                    if r in {m.key for m in ordered}
                ),
            )
            for p in sorted((root / MACRO_FOLDER).glob("*.sql"))
        ]
    )
    return Project(root=root, models=ordered, macros=macros, schemas=schemas)


def _strip(sql: str) -> str:
    return sql.strip().rstrip(";").strip()


def _read_model(path: Path, schemas: Sequence[str]) -> Model:
    if not _NAME.match(path.stem):
        raise ModelError(f"{path}: a model file name must be a lower-case SQL name (a-z, 0-9, _)")
    sql = _strip(path.read_text(encoding="utf-8"))
    if not sql:
        raise ModelError(f"{path}: the model is empty")
    match = _MATERIALIZED.search(sql)
    materialized = match.group(1).lower() if match else "table"
    if materialized not in MATERIALIZATIONS:
        raise ModelError(
            f"{path}: materialized {materialized!r} is not one of {', '.join(MATERIALIZATIONS)}"
        )
    model_schemas = {*schemas, *LAYERS}
    refs = find_references(sql, (*model_schemas, *SOURCE_SCHEMAS), where=str(path))
    key = f"{path.parent.name}.{path.stem}"
    return Model(
        schema=path.parent.name,
        name=path.stem,
        path=path,
        sql=sql,
        materialized=materialized,
        depends_on=frozenset(r for r in refs if r.split(".")[0] in model_schemas and r != key),
        sources=frozenset(r for r in refs if r.split(".")[0] in SOURCE_SCHEMAS),
        tests=parse_tests(sql, where=str(path)),
    )


def find_references(sql: str, schemas: Iterable[str], *, where: str = "<sql>") -> set[str]:
    """The ``schema.table`` names in ``sql`` whose schema is one of ``schemas``.

    Comments and string literals are skipped (the SQL is tokenized, not pattern-matched).

    Raises:
        ModelError: If the SQL cannot be tokenized (an unterminated string, say).
    """
    wanted = {s.lower() for s in schemas}
    try:
        tokens = DuckDB().tokenize(sql)
    except TokenError as exc:
        raise ModelError(f"{where}: the SQL cannot be tokenized: {exc}") from None
    names = (TokenType.VAR, TokenType.IDENTIFIER)
    refs: set[str] = set()
    for i in range(len(tokens) - 2):
        first, dot, second = tokens[i], tokens[i + 1], tokens[i + 2]
        if (
            first.token_type in names
            and first.text.lower() in wanted
            and dot.token_type is TokenType.DOT
            and (i == 0 or tokens[i - 1].token_type is not TokenType.DOT)
            and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", second.text)
        ):
            refs.add(f"{first.text.lower()}.{second.text.lower()}")
    return refs


def _check_references(models: Sequence[Model]) -> None:
    known = {m.key for m in models}
    sources = {f"{s}.{t}" for s, tables in SOURCE_SCHEMAS.items() for t in tables}
    for model in sorted(models, key=lambda m: m.key):
        missing = sorted((model.depends_on - known) | (model.sources - sources))
        if missing:
            raise MissingReferenceError(
                f"{model.path}: model {model.key} references {', '.join(missing)}, which is "
                "neither a model nor a source "
                f"(sources: {', '.join(sorted(sources))})"
            )


def _order(models: Sequence[Model]) -> tuple[Model, ...]:
    by_key = {m.key: m for m in models}
    try:
        return tuple(by_key[k] for k in graph_order({m.key: sorted(m.depends_on) for m in models}))
    except graphlib.CycleError as exc:
        cycle = exc.args[1]
        raise ModelCycleError(
            f"models reference each other in a cycle: {' -> '.join(cycle)}"
        ) from None


def _order_macros(macros: Sequence[Macro]) -> tuple[Macro, ...]:
    """Macros in an order where each comes after the macros it calls (DuckDB binds them early)."""
    names = {m.name for m in macros}
    graph: dict[str, list[str]] = {}
    for macro in macros:
        tokens = DuckDB().tokenize(macro.sql)
        graph[macro.name] = sorted(
            {
                tok.text.lower()
                for tok, nxt in itertools.pairwise(tokens)
                if tok.text.lower() in names
                and tok.text.lower() != macro.name
                and nxt.token_type is TokenType.L_PAREN
            }
        )
    by_name = {m.name: replace(m, calls=frozenset(graph[m.name])) for m in macros}
    try:
        return tuple(by_name[n] for n in graph_order(graph))
    except graphlib.CycleError as exc:
        raise ModelCycleError(
            f"macros call each other in a cycle: {' -> '.join(exc.args[1])}"
        ) from None


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


def buildable_macros(project: Project, models: Sequence[Model]) -> tuple[Macro, ...]:
    """The macros whose models (and called macros) are all among ``models``."""
    keys = {m.key for m in models}
    done: list[Macro] = []
    names: set[str] = set()
    for macro in project.macros:
        if macro.depends_on <= keys and macro.calls <= names:
            done.append(macro)
            names.add(macro.name)
    return tuple(done)


def _downstream(project: Project, keys: set[str]) -> set[str]:
    found = set(keys)
    for model in project.models:
        if model.depends_on & found:
            found.add(model.key)
    return found
