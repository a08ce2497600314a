"""The relations the runner creates before any model: lake views and catalogue seeds.

``lake.*`` are views over the lake's files (FORMAT.md), so they see exactly the committed
snapshots: a file whose snapshot has no commit record is an orphan and never shows (over a lake
on object storage, tables filled from a local mirror of those files: :func:`create_lake_views`).
``catalogue.*`` are small tables written from :mod:`qbo_pipeline.entities`, so SQL never repeats an
entity fact.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Collection
from pathlib import Path

import duckdb
import pyarrow as pa

from qbo_pipeline import entities
from qbo_pipeline.lake.fs import is_remote
from qbo_pipeline.models.runner import ModelError

VERSION_COLUMNS: dict[str, str] = {
    "realm_id": "varchar",
    "snapshot_id": "varchar",
    "entity": "varchar",
    "id": "varchar",
    "sync_token": "varchar",
    "last_updated_at": "timestamptz",
    "content_hash": "varchar",
    "payload": "varchar",
    "active": "boolean",
    "txn_date": "date",
    "total_amt": "double",
    "display_name": "varchar",
    "blob_sha256": "varchar",
}
"""The columns of ``lake.versions`` (FORMAT.md "Record versions")."""

MANIFEST_COLUMNS: dict[str, str] = {
    "realm_id": "varchar",
    "snapshot_id": "varchar",
    "entity": "varchar",
    "id": "varchar",
    "op": "varchar",
    "content_hash": "varchar",
}

REPORT_COLUMNS: dict[str, str] = {
    "realm_id": "varchar",
    "snapshot_id": "varchar",
    "report_name": "varchar",
    "payload": "json",
}
"""The columns of ``lake.reports``."""


def lake_root(url: str | Path) -> str:
    """The lake's location for DuckDB globs: an absolute POSIX path, or a remote lake's URL.

    Raises:
        ModelError: For an empty location.
    """
    text = str(url).strip()
    if not text:
        raise ModelError("the lake location is empty; give a folder or an fsspec URL")
    if is_remote(text):
        return text.rstrip("/")
    if text.startswith("file://"):
        text = text[len("file://") :]
    return Path(text).expanduser().resolve().as_posix()


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _empty(columns: dict[str, str]) -> str:
    cols = ", ".join(f"null::{t} as {c}" for c, t in columns.items())
    return f"select {cols} limit 0"


def _has_files(pattern: str) -> bool:
    return next(glob.iglob(pattern), None) is not None


def _files(
    base: str, folder: str, name: str, snapshots: Collection[tuple[str, str]] | None
) -> str | None:
    """The DuckDB file list of one kind of snapshot file: a glob, or the files of ``snapshots``.

    None when there is no such file (DuckDB refuses a glob that matches nothing).
    """
    if snapshots is None:
        pattern = f"{base}/realm=*/{folder}/snapshot=*/{name}"
        return _literal(pattern) if _has_files(pattern) else None
    files = sorted(
        path
        for realm_id, sid in snapshots
        for path in glob.glob(
            f"{glob.escape(f'{base}/realm={realm_id}/{folder}/snapshot={sid}')}/{name}"
        )
    )
    return "[" + ", ".join(_literal(f) for f in files) + "]" if files else None


def lake_view_sql(
    root: str, snapshots: Collection[tuple[str, str]] | None = None
) -> dict[str, str]:
    """The ``select`` of each ``lake.*`` view over the lake at ``root`` (a local folder).

    Args:
        root: The lake folder.
        snapshots: ``(realm_id, snapshot_id)`` pairs to read the versions, manifests and reports
            of (all by default); ``commits`` are always all of them.
    """
    base = root.rstrip("/")
    commits_glob = f"{base}/realm=*/commits/[!.]*.json"
    versions_files = _files(base, "versions", "[!.]*.parquet", snapshots)
    manifests_files = _files(base, "manifests", "[!.]*.parquet", snapshots)
    reports_files = _files(base, "reports", "[!.]*.json.gz", snapshots)
    committed = "semi join lake.commits as c using (realm_id, snapshot_id)"

    commits = f"""
        select
            record->>'realm_id' as realm_id,
            record->>'snapshot_id' as snapshot_id,
            record->>'parent_id' as parent_id,
            record->>'kind' as kind,
            coalesce(record->>'status', 'live') as status,
            (record->>'server_time')::timestamptz as server_time,
            (record->>'committed_at')::timestamptz as committed_at,
            record->>'company_name' as company_name,
            record,
        from (
            select filename, content::json as record
            from read_text({_literal(commits_glob)})
        )
        where record->>'snapshot_id' = regexp_extract(filename, '([^/]+)\\.json$', 1)
    """
    if versions_files:
        cols = ", ".join(f"v.{c}::{t} as {c}" for c, t in VERSION_COLUMNS.items())
        versions = f"""
            select {cols}
            from read_parquet({versions_files}, union_by_name = true) as v
            {committed}
        """
    else:
        versions = _empty(VERSION_COLUMNS)
    if manifests_files:
        manifest_deltas = f"""
            select * from (
                select
                    regexp_extract(filename, 'realm=([^/]+)/manifests/', 1) as realm_id,
                    regexp_extract(filename, '/snapshot=([^/]+)/[^/]+$', 1) as snapshot_id,
                    entity::varchar as entity,
                    id::varchar as id,
                    op::varchar as op,
                    content_hash::varchar as content_hash,
                from read_parquet(
                    {manifests_files}, union_by_name = true, filename = true
                )
            )
            {committed}
        """
    else:
        manifest_deltas = _empty(MANIFEST_COLUMNS)
    if reports_files:
        # Reports are kept gzip-compressed (``.json.gz``).
        reports = f"""
            select * from (
                select
                    regexp_extract(filename, 'realm=([^/]+)/reports/', 1) as realm_id,
                    regexp_extract(filename, '/snapshot=([^/]+)/[^/]+$', 1) as snapshot_id,
                    regexp_extract(filename, '([^/]+)\\.json\\.gz$', 1) as report_name,
                    json as payload,
                from read_json_objects(
                    {reports_files}, format = 'unstructured', filename = true,
                    maximum_object_size = 268435456
                )
            )
            {committed}
        """
    else:
        reports = _empty(REPORT_COLUMNS)
    return {
        "commits": commits,
        "versions": versions,
        "manifest_deltas": manifest_deltas,
        "reports": reports,
    }


def new_versions_sql(files: list[str] | None) -> str:
    """The ``select`` of ``lake.new_versions``: the versions in ``files``, committed ones only.

    ``files`` are the version files a build has not read yet; None means all of ``lake.versions``.
    """
    if files is None:
        return "select * from lake.versions"
    if not files:
        return _empty(VERSION_COLUMNS)
    cols = ", ".join(f"v.{c}::{t} as {c}" for c, t in VERSION_COLUMNS.items())
    paths = ", ".join(_literal(f) for f in files)
    return f"""
        select {cols}
        from read_parquet([{paths}], union_by_name = true) as v
        semi join lake.commits as c using (realm_id, snapshot_id)
    """


def create_lake_views(
    con: duckdb.DuckDBPyConnection,
    root: str,
    *,
    mirror: Path | None = None,
    new_snapshots: Collection[tuple[str, str]] | None = None,
) -> None:
    """Create the ``lake`` schema's relations in the connection's current database.

    Over a local folder they are views, read at query time. Over a remote lake (``s3://...``)
    they are tables filled from the lake's local ``mirror`` (:mod:`.lake_mirror`), so the
    warehouse holds everything it serves and its readers (``qbo-backup sql``, notebooks, BI
    tools) need neither the store's credentials nor network access.

    Args:
        con: The build's connection.
        root: The lake's location (:func:`lake_root`).
        mirror: A remote lake's local mirror, synced for this build.
        new_snapshots: For an incremental build over a remote lake, the snapshots the tables do
            not hold yet: ``lake.commits`` is written again, and the other tables get only these
            snapshots' rows (any they already had of them are replaced). None writes every table
            whole.

    Raises:
        ModelError: For a remote lake without a mirror.
    """
    con.execute("create schema if not exists lake")
    if not is_remote(root):
        for name, sql in lake_view_sql(root).items():
            con.execute(f"create or replace view lake.{name} as {sql}")
        return
    if mirror is None:
        raise ModelError(f"the remote lake {root} is read through its local mirror: give one")
    local = mirror.as_posix()
    if new_snapshots is None or not _has_lake_tables(con):
        for name, sql in lake_view_sql(local).items():
            _drop_view(con, name)
            con.execute(f"create or replace table lake.{name} as {sql}")
        return
    relations = lake_view_sql(local, sorted(new_snapshots))
    con.execute(f"create or replace table lake.commits as {relations.pop('commits')}")
    if not new_snapshots:
        return
    keys = ", ".join(f"({_literal(r)}, {_literal(s)})" for r, s in sorted(new_snapshots))
    for name, sql in relations.items():
        con.execute(f"delete from lake.{name} where (realm_id, snapshot_id) in ({keys})")
        con.execute(f"insert into lake.{name} by name {sql}")


def _has_lake_tables(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the database holds the four ``lake.*`` tables (a remote lake's last build)."""
    row = con.execute(
        "select count(*) from duckdb_tables() where database_name = current_database() "
        "and schema_name = 'lake' and table_name in "
        "('commits', 'versions', 'manifest_deltas', 'reports')"
    ).fetchone()
    return bool(row and row[0] == 4)


def _drop_view(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop ``lake.<name>`` if it is a view (a selected build copied a local lake's warehouse)."""
    found = con.execute(
        "select 1 from duckdb_views() where database_name = current_database() "
        "and schema_name = 'lake' and view_name = ?",
        [name],
    ).fetchone()
    if found:
        con.execute(f"drop view lake.{name}")


def entities_table() -> pa.Table:
    """``catalogue.entities``: one row per catalogue entity."""
    order = {name: i for i, name in enumerate(entities.restore_order())}
    rows = [
        {
            "entity": e.name,
            "kind": e.kind.value,
            "json_key": e.json_key,
            "resource": e.resource,
            "cdc": e.cdc,
            "removal": e.removal.value,
            "has_active": e.has_active,
            "deletable": e.deletable,
            "void_operation": e.void_operation,
            "read_only": e.read_only,
            "name_field": e.name_field,
            "required": list(e.required),
            "multicurrency_only": e.multicurrency_only,
            "volatile_fields": list(e.volatile_fields),
            "posts_to_ledger": e.posts_to_ledger,
            "amount_field": e.amount_field,
            "restore_rank": order[e.name],
        }
        for e in entities.CATALOGUE
    ]
    return pa.Table.from_pylist(rows)


def split_reference_path(path: str) -> tuple[str, list[str]]:
    """A catalogue reference path as its top-level key and DuckDB JSON paths below it.

    The segments are one per array level, relative to the top-level value: every segment but the
    last reaches an array whose elements the next segment starts from. So ``Line[].Detail.ItemRef``
    gives ``("Line", ["$", "$.Detail.ItemRef"])`` and ``CustomerRef`` gives
    ``("CustomerRef", ["$"])``.
    """
    top = re.split(r"[.\[]", path, maxsplit=1)[0]
    parts = path[len(top) :].split("[]")
    return top, [f"${part}" for part in parts]


def references_table() -> pa.Table:
    """``catalogue.references``: one row per reference field of each entity."""
    rows = [
        {
            "entity": e.name,
            "path": ref.path,
            "targets": list(ref.targets),
            "id_key": ref.id_key,
            "type_key": ref.type_key,
            "dependency": ref.dependency,
            "is_self": ref.is_self,
            "top_key": split_reference_path(ref.path)[0],
            "json_segments": split_reference_path(ref.path)[1],
        }
        for e in entities.CATALOGUE
        for ref in e.references
    ]
    return pa.Table.from_pylist(rows)


def create_catalogue_seeds(con: duckdb.DuckDBPyConnection) -> None:
    """Write ``catalogue.entities`` and ``catalogue.references`` in the current database."""
    con.execute("create schema if not exists catalogue")
    for name, table in (("entities", entities_table()), ("references", references_table())):
        view = f"__seed_{name}_{os.getpid()}"
        con.register(view, table)
        try:
            con.execute(f'create or replace table catalogue."{name}" as select * from {view}')
        finally:
            con.unregister(view)
