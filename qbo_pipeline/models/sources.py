"""The relations the runner creates before any model: lake views and catalogue seeds.

``lake.*`` are views over the lake's files (FORMAT.md), so they see exactly the committed
snapshots: a file whose snapshot has no commit record is an orphan and never shows. ``catalogue.*``
are small tables written from :mod:`qbo_pipeline.entities`, so SQL never repeats an entity fact.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

import duckdb
import pyarrow as pa

from qbo_pipeline import entities
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
    """The lake's local folder as an absolute POSIX path, for DuckDB globs.

    Raises:
        ModelError: For a remote fsspec URL (DuckDB here has no httpfs extension to read it).
    """
    text = str(url)
    if text.startswith("file://"):
        text = text[len("file://") :]
    elif "://" in text:
        raise ModelError(
            f"the warehouse reads a local lake folder; {text!r} is a remote URL "
            "(copy or mount the lake locally, or point QBO_LAKE_URL at a folder)"
        )
    return Path(text).expanduser().resolve().as_posix()


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _empty(columns: dict[str, str]) -> str:
    cols = ", ".join(f"null::{t} as {c}" for c, t in columns.items())
    return f"select {cols} limit 0"


def _has_files(pattern: str) -> bool:
    return next(glob.iglob(pattern), None) is not None


def lake_view_sql(root: str) -> dict[str, str]:
    """The ``select`` of each ``lake.*`` view over the lake at ``root`` (a local folder)."""
    base = root.rstrip("/")
    commits_glob = f"{base}/realm=*/commits/[!.]*.json"
    versions_glob = f"{base}/realm=*/versions/snapshot=*/[!.]*.parquet"
    manifests_glob = f"{base}/realm=*/manifests/snapshot=*/[!.]*.parquet"
    reports_glob = f"{base}/realm=*/reports/snapshot=*/[!.]*.json*"
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
    if _has_files(versions_glob):
        cols = ", ".join(f"v.{c}::{t} as {c}" for c, t in VERSION_COLUMNS.items())
        versions = f"""
            select {cols}
            from read_parquet({_literal(versions_glob)}, union_by_name = true) as v
            {committed}
        """
    else:
        versions = _empty(VERSION_COLUMNS)
    if _has_files(manifests_glob):
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
                    {_literal(manifests_glob)}, union_by_name = true, filename = true
                )
            )
            {committed}
        """
    else:
        manifest_deltas = _empty(MANIFEST_COLUMNS)
    if _has_files(reports_glob):
        # Reports are kept gzip-compressed (``.json.gz``); lakes before 0.2 kept plain ``.json``.
        reports = f"""
            select * from (
                select
                    regexp_extract(filename, 'realm=([^/]+)/reports/', 1) as realm_id,
                    regexp_extract(filename, '/snapshot=([^/]+)/[^/]+$', 1) as snapshot_id,
                    regexp_extract(filename, '([^/]+)\\.json(\\.gz)?$', 1) as report_name,
                    json as payload,
                from read_json_objects(
                    {_literal(reports_glob)}, format = 'unstructured', filename = true,
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


def create_lake_views(con: duckdb.DuckDBPyConnection, root: str) -> None:
    """Create the ``lake`` schema's views in the connection's current database."""
    con.execute("create schema if not exists lake")
    for name, sql in lake_view_sql(root).items():
        con.execute(f"create or replace view lake.{name} as {sql}")


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
