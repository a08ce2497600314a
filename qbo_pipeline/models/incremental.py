"""What an incremental warehouse build may skip, and how it audits only what changed (#19).

An incremental build (:mod:`qbo_pipeline.models.warehouse`) starts from a copy of the published
warehouse. Three rules keep its work proportional to the change rather than to the history:

- **Skip what nothing changed under.** A model is rebuilt only when something it reads changed
  in this build: an upstream model that was rebuilt or had rows appended or deleted, or a lake
  source (``lake.*``) when the lake gained snapshots. The catalogue seeds cannot change (their
  content is part of the build hash). A skipped model keeps the published copy's relation, and a
  skipped incremental model's ``delta.<model>`` is empty. A build with nothing new thus builds
  no model at all.
- **A table rebuilt with the same rows is unchanged.** Each table model's fingerprint (its row
  count and an order-independent hash of all its rows) is kept in ``main.build_fingerprints``; a
  table an incremental build rebuilt whole whose fingerprint did not move counts as unchanged
  for what reads it (``int_accounts_latest`` is rebuilt whenever an account's balance moves, but
  the default accounts ``int_default_accounts`` derives from it rarely change).
- **Recompute an incremental model whole only when it must.** An incremental model is appended
  to, unless a table named in its ``-- incremental_rebuild_on`` changed, or an incremental model
  it reads was itself recomputed whole in this build: then its rows are recomputed from
  everything (:attr:`Model.whole_sql`), as a full build would.
- **Audit an appended model over its new rows.** Its ``#NO_NULLS`` and ``#ACCEPTED_VALUES``
  tests read only the rows the build inserted (``delta.<model>``); ``#UNIQUE`` and
  ``#UNIQUE_BY`` count, in the whole table, the rows whose key is among the new rows' (the old
  rows passed when they were written, and a duplicate needs a new row).
- **Audit a view over the rows that can have changed.** A view's tests run in one query over
  its rows materialised once (instead of once per test); a view whose model declares a test
  scope (the generated current-state views: the records whose intervals this build wrote,
  ``delta.int_record_intervals``) is tested over those rows only.

``warehouse build --full`` rebuilds and tests everything.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import duckdb

from qbo_pipeline.lake.fs import is_remote
from qbo_pipeline.models.runner import DELTA_SCHEMA, Model
from qbo_pipeline.models.sources import lake_view_sql
from qbo_pipeline.models.sql_tests import ColumnTest

NEW_SOURCES = ("new_versions", "new_manifest_deltas")
"""The ``lake.*`` relations that mean "what this build added" and exist only during a build."""


def _ident(*parts: str) -> str:
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def new_manifest_deltas_sql(root: str, new_snapshots: Collection[tuple[str, str]] | None) -> str:
    """The ``select`` of ``lake.new_manifest_deltas``: the deltas of the snapshots a build adds.

    None (a full build) means every committed snapshot's, all of ``lake.manifest_deltas``. Over
    a local lake only the new snapshots' manifest files are read; over a remote one
    ``lake.manifest_deltas`` is a table of the warehouse, filtered.
    """
    if new_snapshots is None:
        return "select * from lake.manifest_deltas"
    if not new_snapshots:
        return "select * from lake.manifest_deltas limit 0"
    if not is_remote(root):
        return lake_view_sql(root, sorted(new_snapshots))["manifest_deltas"]
    keys = ", ".join(f"({_literal(r)}, {_literal(s)})" for r, s in sorted(new_snapshots))
    return f"select * from lake.manifest_deltas where (realm_id, snapshot_id) in ({keys})"


def needs_build(model: Model, changed: Collection[str], *, lake_changed: bool) -> bool:
    """Whether an incremental build must build ``model``: something it reads changed.

    Args:
        model: The model.
        changed: The models (``schema.name``) this build rebuilt or appended rows to so far.
        lake_changed: Whether the lake gained snapshots since the published build.
    """
    if lake_changed and any(s.startswith("lake.") for s in model.sources):
        return True
    return bool(model.depends_on & set(changed))


FINGERPRINTS = "main.build_fingerprints"
"""Each table model's fingerprint as the warehouse holds it: ``model``, ``rows``, ``digest``."""

Fingerprint = tuple[int, str]
"""A table's row count and an order-independent digest of all its rows."""


def fingerprint(con: duckdb.DuckDBPyConnection, model: Model) -> Fingerprint:
    """The row count and the sum of the rows' hashes of ``model``'s table (order-independent)."""
    relation = _ident(model.schema, model.name)
    row = con.execute(
        f"select count(*), coalesce(sum(hash(t)::hugeint), 0)::varchar from {relation} as t"
    ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def published_fingerprints(con: duckdb.DuckDBPyConnection) -> dict[str, Fingerprint]:
    """The fingerprints the warehouse a build started from recorded (none: an older build)."""
    try:
        rows = con.execute(f"select model, rows, digest from {FINGERPRINTS}").fetchall()
    except duckdb.CatalogException:
        return {}
    return {model: (int(n), str(digest)) for model, n, digest in rows}


def record_fingerprints(con: duckdb.DuckDBPyConnection, prints: dict[str, Fingerprint]) -> None:
    """Write ``main.build_fingerprints`` (what the next incremental build compares with)."""
    con.execute(
        f"create or replace table {FINGERPRINTS} "
        "(model varchar primary key, rows bigint, digest varchar)"
    )
    if prints:
        con.executemany(
            f"insert into {FINGERPRINTS} values (?, ?, ?)",
            [(k, n, d) for k, (n, d) in sorted(prints.items())],
        )


def rebuild_whole_reason(model: Model, changed: Collection[str], whole: Collection[str]) -> str:
    """Why an incremental build must recompute the incremental ``model`` whole ('' if not).

    Args:
        model: An incremental model.
        changed: The models this build changed so far.
        whole: The incremental models this build recomputed whole so far.
    """
    named = sorted(set(model.rebuild_on) & set(changed))
    if named:
        return f"{', '.join(named)} changed (incremental_rebuild_on)"
    upstream = sorted(model.depends_on & set(whole))
    if upstream:
        return f"{', '.join(upstream)} was recomputed whole"
    return ""


def keep_published(con: duckdb.DuckDBPyConnection, model: Model) -> None:
    """Leave a skipped model as published; an incremental one adds no rows (``delta`` empty)."""
    if model.materialized != "incremental":
        return
    drop_relation(con, DELTA_SCHEMA, model.name)
    con.execute(
        f"create view {_ident(DELTA_SCHEMA, model.name)} as "
        f"select * from {_ident(model.schema, model.name)} limit 0"
    )


def drop_relation(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> None:
    """Drop ``schema.name`` whether it is a table or a view (no catalogue query: those cost)."""
    relation = _ident(schema, name)
    try:
        con.execute(f"drop view if exists {relation}")
    except duckdb.CatalogException:  # it is a table
        con.execute(f"drop table if exists {relation}")


def _match(columns: Sequence[str], left: str, right: str) -> str:
    return " and ".join(f"{left}.{_ident(c)} = {right}.{_ident(c)}" for c in columns)


def delta_test_sql(test: ColumnTest, relation: str, delta: str) -> str:
    """A query counting the rows that break ``test`` among those an append added.

    Row tests read the new rows only; uniqueness counts the whole table's rows of the new keys.
    """
    if test.kind not in ("UNIQUE", "UNIQUE_BY"):
        return test.failing_rows_sql(delta)
    cols = ", ".join(_ident(c) for c in test.columns)
    not_null = " and ".join(f"t.{_ident(c)} is not null" for c in test.columns)
    keys = f"(select distinct {cols} from {delta})"
    return (
        f"select coalesce(sum(n), 0) from (select count(*) as n from {relation} as t "
        f"semi join {keys} as d on {_match(test.columns, 'd', 't')} "
        f"where {not_null} group by {', '.join('t.' + _ident(c) for c in test.columns)} "
        "having count(*) > 1)"
    )


def view_tests_sql(tests: Sequence[ColumnTest], relation: str, scope: str = "") -> str:
    """One query giving the offending row count of each test, over the view's rows read once.

    ``scope`` is a ``where`` condition limiting the rows tested (those that can have changed).
    """
    where = f" where {scope}" if scope else ""
    counts = ", ".join(f"({t.failing_rows_sql('tested')})" for t in tests)
    return f"with tested as materialized (select * from {relation}{where}) select {counts}"


def run_tests(
    con: duckdb.DuckDBPyConnection,
    model: Model,
    relation: str,
    *,
    appended: bool,
    incremental: bool,
) -> list[tuple[ColumnTest, int | str]]:
    """Run ``model``'s tests as this build audits it (see the module's docstring).

    Returns:
        Each test with its offending row count, or the error that kept it from running.
    """
    if not model.tests:
        return []
    if appended:
        delta = _ident(DELTA_SCHEMA, model.name)
        return [_count(con, t, delta_test_sql(t, relation, delta)) for t in model.tests]
    if incremental and model.materialized == "view":
        sql = view_tests_sql(model.tests, relation, model.test_scope)
        try:
            row = con.execute(sql).fetchone() or ()
        except duckdb.Error as exc:
            return [(t, str(exc)) for t in model.tests]
        return list(zip(model.tests, (int(n or 0) for n in row), strict=True))
    return [_count(con, t, t.failing_rows_sql(relation)) for t in model.tests]


def _count(
    con: duckdb.DuckDBPyConnection, test: ColumnTest, sql: str
) -> tuple[ColumnTest, int | str]:
    try:
        return test, int((con.execute(sql).fetchone() or (0,))[0] or 0)
    except duckdb.Error as exc:
        return test, str(exc)
