"""The relations the runner creates before any model: lake views and catalogue seeds.

``lake.*`` are views over the lake's files (FORMAT.md), so they see exactly the committed
snapshots: a file whose snapshot has no commit record is an orphan and never shows (over a lake
on object storage, tables filled from a local copy of those files: :func:`create_lake_views`).
``catalogue.*`` are small tables written from :mod:`qbo_pipeline.entities`, so SQL never repeats an
entity fact.
"""

from __future__ import annotations

import glob
import os
import re
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa

from qbo_pipeline import entities
from qbo_pipeline.lake.fs import LakeFS, is_remote
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


def lake_view_sql(root: str) -> dict[str, str]:
    """The ``select`` of each ``lake.*`` view over the lake at ``root`` (a local folder)."""
    base = root.rstrip("/")
    commits_glob = f"{base}/realm=*/commits/[!.]*.json"
    versions_glob = f"{base}/realm=*/versions/snapshot=*/[!.]*.parquet"
    manifests_glob = f"{base}/realm=*/manifests/snapshot=*/[!.]*.parquet"
    reports_glob = f"{base}/realm=*/reports/snapshot=*/[!.]*.json.gz"
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
        # Reports are kept gzip-compressed (``.json.gz``).
        reports = f"""
            select * from (
                select
                    regexp_extract(filename, 'realm=([^/]+)/reports/', 1) as realm_id,
                    regexp_extract(filename, '/snapshot=([^/]+)/[^/]+$', 1) as snapshot_id,
                    regexp_extract(filename, '([^/]+)\\.json\\.gz$', 1) as report_name,
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


def create_lake_views(con: duckdb.DuckDBPyConnection, root: str) -> None:
    """Create the ``lake`` schema's relations in the connection's current database.

    Over a local folder they are views, read at query time. Over a remote lake (``s3://...``)
    they are tables: the files they read are copied from the store into a temporary folder
    beside the database (many files at once, through the lake's own fsspec filesystem and its
    settings), read once, and the copy removed. The warehouse then holds everything it serves,
    and its readers (``qbo-backup sql``, notebooks, BI tools) need neither the store's
    credentials nor network access.

    Raises:
        ModelError: If the remote lake's files could not be copied.
    """
    con.execute("create schema if not exists lake")
    if not is_remote(root):
        for name, sql in lake_view_sql(root).items():
            con.execute(f"create or replace view lake.{name} as {sql}")
        return
    with tempfile.TemporaryDirectory(prefix=".lake-copy-", dir=_database_folder(con)) as copy:
        copy_lake_files(root, copy)
        for name, sql in lake_view_sql(copy).items():
            _drop_view(con, name)
            con.execute(f"create or replace table lake.{name} as {sql}")


_LAKE_FILES = re.compile(
    r"realm=[^/]+/(commits/[^./][^/]*\.json"
    r"|(versions|manifests)/snapshot=[^/]+/[^./][^/]*\.parquet"
    r"|reports/snapshot=[^/]+/[^./][^/]*\.json\.gz)"
)
"""The lake files the ``lake.*`` relations read (FORMAT.md), relative to the lake's root."""


def copy_lake_files(root: str, folder: str | Path) -> int:
    """Copy the files the ``lake.*`` relations read from a remote lake into a local folder.

    The commit records are listed first: a snapshot's files are written before its commit
    record, so every committed snapshot listed has its files listed after it.

    Returns:
        How many files were copied.

    Raises:
        ModelError: If a listed file vanished (a garbage collection ran meanwhile) or the store
            refused a read.
    """
    lake_fs = LakeFS(root)
    base = lake_fs.root.rstrip("/") + "/"
    commits = sorted(lake_fs.fs.glob(base + "realm=*/commits/*.json"))
    rest = [p for p in lake_fs.find(lake_fs.root) if "/commits/" not in p[len(base) :]]
    wanted = [p for p in [*commits, *rest] if _LAKE_FILES.fullmatch(p[len(base) :])]
    local = [os.path.join(folder, p[len(base) :]) for p in wanted]
    for directory in {os.path.dirname(p) for p in local}:
        os.makedirs(directory, exist_ok=True)
    if wanted:
        try:
            lake_fs.fs.get(wanted, local)
        except FileNotFoundError as exc:
            raise ModelError(
                f"a file of the lake at {root} vanished while the warehouse copied it ({exc}); "
                "a garbage collection probably ran: build again"
            ) from None
        except OSError as exc:
            raise ModelError(f"could not read the lake at {root}: {exc}") from None
    return len(wanted)


def _database_folder(con: duckdb.DuckDBPyConnection) -> str | None:
    """The folder of the connection's database file (None for an in-memory one)."""
    row = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchone()
    return os.path.dirname(os.path.abspath(row[0])) if row and row[0] else None


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
