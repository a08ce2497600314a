"""DuckLake against the published file (issue #19): publish, isolation, queries, storage.

``make bench-ducklake`` (or ``.venv-ducklake/bin/python bench/ducklake.py WAREHOUSE``) copies a
warehouse built by the main venv into four stores and measures them in one run:

- ``file``: what ``qbo_pipeline.models.warehouse`` does. A full build writes a new DuckDB file; an
  incremental one starts from a byte copy of the published file; either is fsync'd and renamed
  over the published file (``os.replace``).
- ``ducklake-duckdb``: a DuckLake whose catalog is a DuckDB file, data in Parquet beside it.
- ``ducklake-sqlite``: a DuckLake whose catalog is a SQLite file, as DuckLake creates it
  (SQLite's rollback journal).
- ``ducklake-sqlite-wal``: the same with the SQLite file in WAL mode (set before DuckLake creates
  its tables), where SQLite's readers do not block its writer.
- ``ducklake-postgres`` (with ``--postgres``): a DuckLake whose catalog is a PostgreSQL database,
  on a throwaway server this script starts in the work directory (unix socket only) from the
  machine's PostgreSQL binaries, and stops at the end.

Each store gets the same objects (every table, view and table macro of the warehouse that
DuckLake can hold) in one transaction (the full publish), then ``--rounds`` incremental
publishes that append about 1% of the rows of every table of at least ``--big-rows`` rows, the
same rows to every store. Then the analyst queries (median of ``--repeat`` runs, results
compared across stores), the bytes on disk, DuckLake's own maintenance, and the isolation
scenarios, each a reader and a writer in two processes.

This runs in its own venv (``.venv-ducklake``: DuckDB 1.5.5 and the DuckLake and SQLite
extension wheels of the same version; the project's DuckDB is 1.5.6, which refuses them) and
imports nothing from ``qbo_pipeline``. Nothing is downloaded: the extensions are installed from
the wheels' files into a folder of the work directory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

STORES = ("file", "ducklake-duckdb", "ducklake-sqlite", "ducklake-sqlite-wal")
EXTENSIONS = ("ducklake", "sqlite_scanner")
OPTIONAL_EXTENSIONS = ("postgres_scanner",)
"""Installed when their wheel is (``--postgres`` needs it); DuckDB loads them on first use."""
CHILD_TIMEOUT_S = 60.0
"""How long a scenario waits for a child process before it records it as blocked."""

QUERIES: dict[str, str] = {
    "trial balance (aggregate over the ledger)": """
        select account_id, count(*) as postings,
            sum(greatest(amount, 0)) as debits, sum(greatest(-amount, 0)) as credits,
            sum(amount) as balance
        from intermediate.int_ledger_postings
        group by account_id order by account_id""",
    "record history of one invoice (point lookup)": """
        select version_number, content_hash, valid_from_snapshot_id, is_current
        from marts.record_history
        where entity = 'Invoice' and record_id = $record_id
        order by version_number, content_hash""",
    "postings of current versions by account type (join)": """
        select a.account_type, h.entity, count(*) as postings, sum(p.amount) as amount
        from intermediate.int_ledger_postings as p
        join marts.record_history as h
            on h.realm_id = p.realm_id and h.entity = p.entity and h.record_id = p.record_id
            and h.content_hash = p.content_hash and h.is_current
        join intermediate.int_accounts_latest as a
            on a.realm_id = p.realm_id and a.account_id = p.account_id
        group by all order by all""",
}
ISOLATION_TABLE = ("intermediate", "int_ledger_postings")
"""The table the isolation scenarios count and append to."""


# --- extensions and stores ------------------------------------------------------------------


def extension_file(name: str) -> Path:
    """The extension binary a ``duckdb-extension-<name>`` wheel installed for this DuckDB."""
    wheel = f"duckdb-extension-{name.replace('_', '-')}=={duckdb.__version__}"
    try:
        package = resources.files(f"duckdb_extension_{name}")
    except ModuleNotFoundError:
        raise SystemExit(f"the {name} extension is not installed: pip install {wheel}") from None
    path = Path(str(package)) / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.exists():
        raise SystemExit(f"no {name} extension for DuckDB {duckdb.__version__} at {path}: {wheel}")
    return path


def install_extensions(ext_dir: Path) -> None:
    """Copy the wheels' extensions into ``ext_dir``, where every connection loads them from."""
    con = duckdb.connect(config={"extension_directory": str(ext_dir)})
    for name in EXTENSIONS:
        con.execute(f"force install {_q(str(extension_file(name)))}")
    for name in OPTIONAL_EXTENSIONS:
        try:
            path = extension_file(name)
        except SystemExit:
            continue
        con.execute(f"force install {_q(str(path))}")
    con.close()


def connect(ext_dir: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the DuckLake and SQLite extensions loaded (never downloaded)."""
    con = duckdb.connect(
        config={"extension_directory": str(ext_dir), "autoinstall_known_extensions": False}
    )
    for name in EXTENSIONS:
        con.execute(f"load {name}")
    return con


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(*parts: str) -> str:
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)


@dataclass(frozen=True)
class Store:
    """One of the four places a build is published to."""

    kind: str
    root: Path
    dsn: str | None = None
    """``ducklake-postgres``: the libpq connection string of its catalog database."""
    server: Postgres | None = None
    """``ducklake-postgres`` in the measuring process: the server, to size the catalog."""

    @property
    def published(self) -> Path:
        """The file analysts open (``file``) or the DuckLake catalog."""
        name = {"file": "warehouse.duckdb", "ducklake-duckdb": "catalog.ducklake"}
        return self.root / name.get(self.kind, "catalog.sqlite")

    @property
    def data(self) -> Path:
        """DuckLake's Parquet folder."""
        return self.root / "data"

    def attach(self, alias: str, *, read_only: bool = False, path: Path | None = None) -> str:
        """The ``attach`` statement that opens this store (or another file) as ``alias``."""
        options = ["read_only"] if read_only else []
        if self.kind == "file":
            target = str(path or self.published)
        elif self.kind == "ducklake-postgres":
            target = f"ducklake:postgres:{self.dsn}"
            options.append(f"data_path {_q(str(self.data) + '/')}")
        else:
            sqlite = self.kind.startswith("ducklake-sqlite")
            prefix = "ducklake:sqlite:" if sqlite else "ducklake:"
            target = prefix + str(self.published)
            options.append(f"data_path {_q(str(self.data) + '/')}")
        suffix = f" ({', '.join(options)})" if options else ""
        return f"attach {_q(target)} as {alias}{suffix}"

    def bytes_on_disk(self) -> dict[str, int]:
        """Bytes and files of everything the store keeps (catalog, WAL, Parquet)."""
        files = [p for p in self.root.rglob("*") if p.is_file()]
        catalog = [p for p in files if not p.is_relative_to(self.data)]
        catalog_bytes = sum(p.stat().st_size for p in catalog)
        if self.server is not None:
            catalog_bytes += self.server.catalog_bytes()
        return {
            "bytes": sum(p.stat().st_size for p in files if p not in catalog) + catalog_bytes,
            "files": len(files),
            "catalog_bytes": catalog_bytes,
        }

    def journal_mode(self) -> str | None:
        """The SQLite catalog's journal mode (None for the other stores)."""
        if not self.kind.startswith("ducklake-sqlite"):
            return None
        sqlite = sqlite3.connect(self.published)
        try:
            return str(sqlite.execute("pragma journal_mode").fetchone()[0])
        finally:
            sqlite.close()


@dataclass(frozen=True)
class Postgres:
    """A throwaway PostgreSQL server for a DuckLake catalog: unix socket only, in ``folder``."""

    bin_dir: Path
    folder: Path

    @property
    def dsn(self) -> str:
        """The catalog database's connection string (the socket folder is private: any port)."""
        return f"dbname=ducklake host={self.folder / 'sock'} port=5432 user=postgres"

    def _run(self, *command: str, as_owner: bool = False) -> str:
        # PostgreSQL's server refuses to run as root: run it as the postgres user then.
        prefix = ["runuser", "-u", "postgres", "--"] if as_owner and os.geteuid() == 0 else []
        done = subprocess.run(
            [*prefix, str(self.bin_dir / command[0]), *command[1:]],
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise SystemExit(f"{command[0]} failed: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def start(self) -> None:
        """Create the cluster and the ``ducklake`` database and start the server."""
        shutil.rmtree(self.folder, ignore_errors=True)
        (self.folder / "sock").mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
            shutil.chown(self.folder / "sock", "postgres")
        data = str(self.folder / "data")
        self._run("initdb", "-D", data, "-A", "trust", "-U", "postgres", as_owner=True)
        options = f"-k {self.folder / 'sock'} -p 5432 -c listen_addresses=''"
        log = str(self.folder / "server.log")
        self._run("pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "start", as_owner=True)
        self.reset()

    def psql(self, database: str, sql: str) -> str:
        """Run ``sql`` with psql; its unaligned output."""
        host = str(self.folder / "sock")
        return self._run(
            "psql",
            "-h",
            host,
            "-p",
            "5432",
            "-U",
            "postgres",
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-Atc",
            sql,
        )

    def reset(self) -> None:
        """An empty ``ducklake`` database."""
        self.psql("postgres", "drop database if exists ducklake")
        self.psql("postgres", "create database ducklake")

    def catalog_bytes(self) -> int:
        """Bytes of the DuckLake catalog's tables, indexes and TOAST in the database."""
        return int(
            self.psql(
                "ducklake",
                "select coalesce(sum(pg_total_relation_size(c.oid)), 0) from pg_class c "
                "join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = 'public' and c.relkind = 'r'",
            ).strip()
        )

    def stop(self) -> None:
        """Stop the server (its files stay in the work directory)."""
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "stop", as_owner=True)


def find_postgres(bin_dir: Path | None) -> Path:
    """The folder of ``initdb``, ``pg_ctl`` and ``psql``: given, else ``pg_config --bindir``."""
    if bin_dir is None:
        try:
            found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        except FileNotFoundError:
            raise SystemExit("--postgres needs PostgreSQL's server (no pg_config)") from None
        bin_dir = Path(found.stdout.strip())
    for tool in ("initdb", "pg_ctl", "psql"):
        if not (bin_dir / tool).exists():
            raise SystemExit(f"--postgres: no {tool} in {bin_dir} (give --pg-bin)")
    return bin_dir


# --- what the warehouse holds ---------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A table of the source warehouse and its row count."""

    schema: str
    name: str
    rows: int

    @property
    def ref(self) -> str:
        """Its quoted two-part name."""
        return _ident(self.schema, self.name)


@dataclass(frozen=True)
class Catalog:
    """What is copied into every store: schemas, tables, and views and macros in a working order."""

    schemas: tuple[str, ...]
    tables: tuple[Table, ...]
    definitions: tuple[tuple[str, str], ...]
    """(name, CREATE statement) of the views and table macros DuckLake accepted, in order."""
    refused: dict[str, str]
    """Objects DuckLake did not accept and why (left out of every store)."""
    constraints: tuple[str, ...]
    """Primary keys and unique constraints that the copies drop (DuckLake has none)."""


def read_catalog(con: duckdb.DuckDBPyConnection) -> tuple[list[Table], list[tuple[str, str]]]:
    """The tables of the attached ``src`` and its views and macros as CREATE statements."""
    tables = []
    for schema, name in con.execute(
        "select schema_name, table_name from duckdb_tables() where database_name = 'src' "
        "order by all"
    ).fetchall():
        (rows,) = con.execute(f"select count(*) from src.{_ident(schema, name)}").fetchone() or (0,)
        tables.append(Table(schema, name, int(rows)))
    objects = [
        (f"{schema}.{name}", sql)
        for schema, name, sql in con.execute(
            "select schema_name, view_name, sql from duckdb_views() "
            "where database_name = 'src' and not internal order by all"
        ).fetchall()
    ]
    for schema, name, kind, params, body in con.execute(
        "select schema_name, function_name, function_type, parameters, macro_definition "
        "from duckdb_functions() where database_name = 'src' and not internal "
        "and function_type in ('macro', 'table_macro') order by all"
    ).fetchall():
        table = " table" if kind == "table_macro" else ""
        create = f"create macro {_ident(schema, name)}({', '.join(params)}) as{table} {body}"
        objects.append((f"{schema}.{name}", create))
    return tables, objects


def plan_catalog(con: duckdb.DuckDBPyConnection, probe_dir: Path) -> Catalog:
    """Find an order in which a DuckLake accepts the views and macros, and what it refuses.

    A failed statement aborts DuckDB's transaction, so the order is found once, in autocommit,
    on a throwaway DuckLake holding the tables' definitions (no rows); the timed publishes then
    create the same objects in that order inside one transaction.
    """
    tables, objects = read_catalog(con)
    constraints = tuple(
        f"{schema}.{name}: {kind}"
        for schema, name, kind in con.execute(
            "select schema_name, table_name, constraint_type from duckdb_constraints() "
            "where database_name = 'src' and constraint_type in ('PRIMARY KEY', 'UNIQUE')"
        ).fetchall()
    )
    schemas = tuple(sorted({t.schema for t in tables} | {o.split(".")[0] for o, _ in objects}))
    probe = Store("ducklake-duckdb", probe_dir)
    shutil.rmtree(probe_dir, ignore_errors=True)
    probe_dir.mkdir(parents=True)
    con.execute(probe.attach("probe"))
    for schema in schemas:
        con.execute(f"create schema if not exists probe.{_ident(schema)}")
    for t in tables:
        con.execute(f"create table probe.{t.ref} as select * from src.{t.ref} limit 0")
    con.execute("use probe")
    ordered: list[tuple[str, str]] = []
    pending = dict(objects)
    errors: dict[str, str] = {}
    while pending:
        progressed = False
        for name, sql in list(pending.items()):
            try:
                con.execute(sql)
            except duckdb.Error as exc:
                errors[name] = str(exc).splitlines()[0]
                continue
            ordered.append((name, sql))
            del pending[name]
            progressed = True
        if not progressed:
            break
    con.execute("use memory")
    con.execute("detach probe")
    shutil.rmtree(probe_dir, ignore_errors=True)
    return Catalog(
        schemas=schemas,
        tables=tuple(tables),
        definitions=tuple(ordered),
        refused={name: errors[name] for name in pending},
        constraints=constraints,
    )


def copy_catalog(con: duckdb.DuckDBPyConnection, catalog: Catalog, target: str) -> None:
    """Create every schema, table (with its rows), view and macro of ``catalog`` in ``target``."""
    for schema in catalog.schemas:
        con.execute(f"create schema if not exists {target}.{_ident(schema)}")
    for t in catalog.tables:
        con.execute(f"create table {target}.{t.ref} as select * from src.{t.ref}")
    con.execute(f"use {target}")
    for _, sql in catalog.definitions:
        con.execute(sql)
    con.execute("use memory")


# --- publishing -----------------------------------------------------------------------------


def _fsync_and_replace(scratch: Path, published: Path) -> None:
    """What ``qbo_pipeline.models.warehouse._publish`` does: fsync, rename, fsync the folder."""
    with open(scratch, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(scratch, published)
    folder = os.open(published.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def publish_full(
    con: duckdb.DuckDBPyConnection, store: Store, catalog: Catalog
) -> dict[str, float]:
    """Write every object into ``store`` and make it visible; seconds per phase."""
    store.root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if store.kind == "file":
        scratch = store.published.with_name(store.published.name + ".build")
        con.execute(store.attach("tgt", path=scratch))
        con.execute("begin")
        copy_catalog(con, catalog, "tgt")
        con.execute("commit")
        con.execute("checkpoint tgt")
        con.execute("detach tgt")
        written = time.perf_counter()
        _fsync_and_replace(scratch, store.published)
    else:
        if store.kind == "ducklake-sqlite-wal":
            sqlite = sqlite3.connect(store.published)
            sqlite.execute("pragma journal_mode = wal")
            sqlite.close()
        con.execute(store.attach("tgt"))
        con.execute("begin")
        copy_catalog(con, catalog, "tgt")
        written = time.perf_counter()
        con.execute("commit")
        con.execute("detach tgt")
    done = time.perf_counter()
    return {"write_s": written - started, "publish_s": done - written, "total_s": done - started}


def publish_increment(
    con: duckdb.DuckDBPyConnection, store: Store, batches: dict[Table, str]
) -> dict[str, float]:
    """Append each batch (a temp table) to its table in ``store`` and make it visible."""
    started = time.perf_counter()
    copied = started
    if store.kind == "file":
        scratch = store.published.with_name(store.published.name + ".build")
        shutil.copyfile(store.published, scratch)
        copied = time.perf_counter()
        con.execute(store.attach("tgt", path=scratch))
    else:
        con.execute(store.attach("tgt"))
    con.execute("begin")
    for table, batch in batches.items():
        con.execute(f"insert into tgt.{table.ref} select * from {batch}")
    written = time.perf_counter()
    con.execute("commit")
    if store.kind == "file":
        con.execute("checkpoint tgt")
        con.execute("detach tgt")
        written = time.perf_counter()
        _fsync_and_replace(scratch, store.published)
    else:
        con.execute("detach tgt")
    done = time.perf_counter()
    return {
        "copy_s": copied - started,
        "write_s": written - copied,
        "publish_s": done - written,
        "total_s": done - started,
    }


def make_batches(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, big_rows: int, round_no: int
) -> dict[Table, str]:
    """About 1% of the rows of every big table as temp tables, different rows each round."""
    batches = {}
    for t in catalog.tables:
        if t.rows < big_rows:
            continue
        n = max(1, t.rows // 100)
        name = f"batch_{round_no}_{t.schema}_{t.name}"
        con.execute(
            f"create or replace temp table {_ident(name)} as select * from src.{t.ref} "
            f"limit {n} offset {(round_no * n) % max(1, t.rows - n)}"
        )
        batches[t] = _ident(name)
    return batches


# --- queries --------------------------------------------------------------------------------


def open_store(ext_dir: Path, store: Store) -> duckdb.DuckDBPyConnection:
    """A fresh connection on ``store`` (read-only), as an analyst's tool opens it."""
    con = connect(ext_dir)
    con.execute(store.attach("wh", read_only=True))
    con.execute("use wh")
    return con


def time_queries(
    ext_dir: Path, store: Store, params: dict[str, str], repeat: int
) -> dict[str, Any]:
    """Open time and each query's median seconds (after one warm-up run), with the results."""
    opens = []
    for _ in range(repeat):
        started = time.perf_counter()
        con = open_store(ext_dir, store)
        con.execute(f"select count(*) from {_ident(*ISOLATION_TABLE)}").fetchall()
        opens.append(time.perf_counter() - started)
        con.close()
    con = open_store(ext_dir, store)
    out: dict[str, Any] = {"open_s": statistics.median(opens), "queries": {}}
    for name, sql in QUERIES.items():
        args = {k: v for k, v in params.items() if f"${k}" in sql}
        rows = con.execute(sql, args).fetchall()
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            con.execute(sql, args).fetchall()
            times.append(time.perf_counter() - started)
        out["queries"][name] = {"median_s": statistics.median(times), "rows": rows}
    con.close()
    return out


# --- DuckLake maintenance -------------------------------------------------------------------


def maintain(con: duckdb.DuckDBPyConnection, store: Store) -> dict[str, Any]:
    """Merge DuckLake's small files, expire every older snapshot, delete the files freed."""
    con.execute(store.attach("tgt"))
    before = store.bytes_on_disk()
    out: dict[str, Any] = {"before": before}
    steps = {
        "merge_adjacent_files_s": "from ducklake_merge_adjacent_files('tgt')",
        "expire_snapshots_s": "from ducklake_expire_snapshots('tgt', older_than => now())",
        "cleanup_old_files_s": "from ducklake_cleanup_old_files('tgt', cleanup_all => true)",
    }
    for key, sql in steps.items():
        started = time.perf_counter()
        # Counted, not fetched: their rows hold timestamps, which Python would need pytz for.
        con.execute(f"select count(*) from ({sql})").fetchall()
        out[key] = time.perf_counter() - started
    (out["snapshots_left"],) = con.execute(
        "select count(*) from ducklake_snapshots('tgt')"
    ).fetchone() or (0,)
    con.execute("detach tgt")
    out["after"] = store.bytes_on_disk()
    return out


# --- isolation: a reader and a writer in two processes --------------------------------------


def _wait_for(path: Path, timeout: float = CHILD_TIMEOUT_S) -> bool:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:800]


def _count(con: duckdb.DuckDBPyConnection, alias: str = "") -> int:
    table = _ident(*ISOLATION_TABLE)
    (rows,) = con.execute(f"select count(*) from {alias + '.' if alias else ''}{table}").fetchone()
    return int(rows)


def child_reader(args: argparse.Namespace) -> dict[str, Any]:
    """Open the store read-only, hold a transaction across the writer's publish, then look again.

    Signals ``reader-ready`` once it holds its view and waits for ``reader-go``; with
    ``--once`` it only opens, counts and leaves; with ``--idle`` it holds the store open but no
    transaction (an analyst's tool between two queries).
    """
    store, sync = Store(args.store, Path(args.root), args.dsn), Path(args.sync)
    out: dict[str, Any] = {}
    try:
        started = time.perf_counter()
        con = connect(Path(args.ext_dir))
        con.execute(store.attach("wh", read_only=True))
        if not args.idle:
            con.execute("begin")
        out["before"] = _count(con, "wh")
        out["open_s"] = time.perf_counter() - started
    except duckdb.Error as exc:
        out["error"] = _error(exc)
        (sync / "reader-ready").touch()
        return out
    if args.once:
        return out
    (sync / "reader-ready").touch()
    if not _wait_for(sync / "reader-go"):
        out["error"] = "never told to go on"
        return out
    try:
        if args.idle:
            out["same_connection"] = _count(con, "wh")
        else:
            out["same_transaction"] = _count(con, "wh")
            con.execute("commit")
            out["same_connection_next_transaction"] = _count(con, "wh")
        con.close()
        fresh = connect(Path(args.ext_dir))
        fresh.execute(store.attach("wh", read_only=True))
        out["new_connection"] = _count(fresh, "wh")
        fresh.close()
    except duckdb.Error as exc:
        out["error_after"] = _error(exc)
    return out


def child_writer(args: argparse.Namespace) -> dict[str, Any]:
    """Append 1% of the table's rows and publish: by rename (``file``) or a DuckLake commit.

    ``--in-place`` writes into the published file itself (what builds did before the rename
    design). ``--hold`` signals ``writer-ready`` with the write done but not yet published and
    waits for ``writer-go`` before publishing.
    """
    store, sync = Store(args.store, Path(args.root), args.dsn), Path(args.sync)
    out: dict[str, Any] = {}
    started = time.perf_counter()
    try:
        con = connect(Path(args.ext_dir))
        con.execute(f"attach {_q(args.source)} as src (read_only)")
        table = _ident(*ISOLATION_TABLE)
        n = max(1, _count(con, "src") // 100)
        scratch = store.published.with_name(store.published.name + ".build")
        if store.kind == "file" and not args.in_place:
            shutil.copyfile(store.published, scratch)
            con.execute(store.attach("tgt", path=scratch))
        else:
            con.execute(store.attach("tgt"))
        out["attached_s"] = time.perf_counter() - started
        con.execute("begin")
        con.execute(f"insert into tgt.{table} select * from src.{table} limit {n}")
        out["appended"] = n
        if args.hold:
            (sync / "writer-ready").touch()
            _wait_for(sync / "writer-go")
        con.execute("commit")
        con.execute("detach tgt")
        if store.kind == "file" and not args.in_place:
            _fsync_and_replace(scratch, store.published)
        out["published"] = True
    except duckdb.Error as exc:
        out["published"] = False
        out["error"] = _error(exc)
        (sync / "writer-ready").touch()
    out["seconds"] = time.perf_counter() - started
    return out


def _spawn(args: argparse.Namespace, store: Store, sync: Path, role: str, *extra: str) -> Any:
    command = [sys.executable, __file__, "--child", role, "--store", store.kind]
    command += ["--root", str(store.root), "--sync", str(sync), "--ext-dir", str(args.ext_dir)]
    command += ["--source", str(args.warehouse), *extra]
    if store.dsn:
        command += ["--dsn", store.dsn]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def _collect(process: Any, timeout: float = CHILD_TIMEOUT_S) -> dict[str, Any]:
    try:
        stdout, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return {"blocked": f"still running after {timeout:.0f}s, killed"}
    try:
        result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": f"child exited {process.returncode} without a result"}
    return result


def isolation(args: argparse.Namespace, store: Store, sync_root: Path) -> dict[str, Any]:
    """The scenarios of issue #19 in real processes; what each side saw or the error it got."""
    out: dict[str, Any] = {}

    def fresh(name: str) -> Path:
        sync = sync_root / f"{store.kind}-{name}"
        shutil.rmtree(sync, ignore_errors=True)
        sync.mkdir(parents=True)
        return sync

    # A: a reader holds a transaction; a second reader opens; a writer publishes.
    sync = fresh("reader-holds")
    reader = _spawn(args, store, sync, "reader")
    _wait_for(sync / "reader-ready")
    second = _collect(_spawn(args, store, sync, "reader", "--once"))
    writer = _collect(_spawn(args, store, sync, "writer"))
    (sync / "reader-go").touch()
    out["reader_holds_writer_publishes"] = {
        "reader": _collect(reader),
        "second_reader": second,
        "writer": writer,
    }
    # A': the reader holds the store open between two queries (no transaction).
    sync = fresh("reader-idle")
    reader = _spawn(args, store, sync, "reader", "--idle")
    _wait_for(sync / "reader-ready")
    writer = _collect(_spawn(args, store, sync, "writer"))
    (sync / "reader-go").touch()
    out["reader_idle_writer_publishes"] = {"reader": _collect(reader), "writer": writer}
    if store.kind == "file":
        # The same with the writer writing into the published file, as builds did before.
        sync = fresh("reader-holds-in-place")
        reader = _spawn(args, store, sync, "reader")
        _wait_for(sync / "reader-ready")
        writer = _collect(_spawn(args, store, sync, "writer", "--in-place"))
        (sync / "reader-go").touch()
        out["reader_holds_writer_writes_in_place"] = {"reader": _collect(reader), "writer": writer}
    # B: a writer has written but not published; a reader arrives.
    sync = fresh("writer-holds")
    writer_process = _spawn(args, store, sync, "writer", "--hold")
    _wait_for(sync / "writer-ready")
    reader_result = _collect(_spawn(args, store, sync, "reader", "--once"))
    (sync / "writer-go").touch()
    out["writer_uncommitted_reader_arrives"] = {
        "reader": reader_result,
        "writer": _collect(writer_process),
    }
    return out


# --- the run --------------------------------------------------------------------------------


@contextmanager
def _phase(name: str) -> Iterator[None]:
    started = time.perf_counter()
    print(f"  {name}...", file=sys.stderr, flush=True)
    yield
    print(f"  {name}: {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)


def _point_lookup_id(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute(
        "select record_id from src.marts.record_history where entity = 'Invoice' "
        "group by record_id order by count(*) desc, record_id limit 1"
    ).fetchone()
    if row is None:
        raise SystemExit("the warehouse has no invoice in marts.record_history")
    return str(row[0])


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure every store (starting and stopping the PostgreSQL server for ``--postgres``)."""
    work: Path = args.work_dir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if not args.postgres:
        return measure(args, [Store(kind, work / kind) for kind in STORES])
    server = Postgres(find_postgres(args.pg_bin), work / "postgres")
    server.start()
    try:
        postgres = Store("ducklake-postgres", work / "ducklake-postgres", server.dsn, server)
        return measure(args, [*(Store(kind, work / kind) for kind in STORES), postgres])
    finally:
        server.stop()


def measure(args: argparse.Namespace, stores: list[Store]) -> dict[str, Any]:
    """Publish into every store, query it, size it, maintain it, and run the scenarios."""
    work: Path = args.work_dir
    args.ext_dir = work / "extensions"
    install_extensions(args.ext_dir)
    con = connect(args.ext_dir)
    con.execute(f"attach {_q(str(args.warehouse))} as src (read_only)")
    with _phase("reading the warehouse's catalogue"):
        catalog = plan_catalog(con, work / "probe")
    result: dict[str, Any] = {
        "input": {
            "warehouse": str(args.warehouse),
            "warehouse_bytes": args.warehouse.stat().st_size,
            "tables": len(catalog.tables),
            "rows": sum(t.rows for t in catalog.tables),
            "big_tables": {t.ref: t.rows for t in catalog.tables if t.rows >= args.big_rows},
            "views_and_macros": len(catalog.definitions),
            "refused_by_ducklake": catalog.refused,
            "constraints_dropped": list(catalog.constraints),
        },
        "publish": {s.kind: {"full": {}, "increments": []} for s in stores},
        "storage": {},
    }
    for store in stores:
        runs = []
        for attempt in range(args.full_repeat):
            shutil.rmtree(store.root, ignore_errors=True)
            if store.server is not None:
                store.server.reset()
            with _phase(f"full publish {attempt + 1} into {store.kind}"):
                runs.append(publish_full(con, store, catalog))
        result["publish"][store.kind]["full"] = {
            key: statistics.median(r[key] for r in runs) for key in runs[0]
        }
        result["publish"][store.kind]["full_runs"] = runs
        result["storage"][store.kind] = {"after_full": store.bytes_on_disk()}
    for round_no in range(1, args.rounds + 1):
        batches = make_batches(con, catalog, args.big_rows, round_no)
        for store in stores:
            with _phase(f"increment {round_no} into {store.kind}"):
                timing = publish_increment(con, store, batches)
            result["publish"][store.kind]["increments"].append(timing)
        for batch in batches.values():
            con.execute(f"drop table {batch}")
    for store in stores:
        result["storage"][store.kind]["after_increments"] = store.bytes_on_disk()
        result["storage"][store.kind]["journal_mode"] = store.journal_mode()
    params = {"record_id": _point_lookup_id(con)}
    result["queries"] = {}
    for store in stores:
        with _phase(f"queries on {store.kind}"):
            result["queries"][store.kind] = time_queries(args.ext_dir, store, params, args.repeat)
    result["maintenance"] = {}
    for store in stores[1:]:
        with _phase(f"maintenance of {store.kind}"):
            result["maintenance"][store.kind] = maintain(con, store)
        with _phase(f"queries on {store.kind} after maintenance"):
            result["queries"][store.kind + " (maintained)"] = time_queries(
                args.ext_dir, store, params, args.repeat
            )
    result["results_equal"] = _results_equal(result["queries"])
    for answers in result["queries"].values():
        for query in answers["queries"].values():
            query["rows"] = len(query["rows"])
    con.close()
    result["isolation"] = {}
    for store in stores:
        with _phase(f"isolation on {store.kind}"):
            result["isolation"][store.kind] = isolation(args, store, work / "sync")
    return result


def _results_equal(answers: dict[str, Any]) -> dict[str, bool]:
    """Whether every store answered each query with the same rows as the file."""
    reference = answers["file"]["queries"]
    return {
        name: all(a["queries"][name]["rows"] == reference[name]["rows"] for a in answers.values())
        for name in QUERIES
    }


# --- the table ------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table_rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    """The printed table: one line per measure, a column per store, ratios against the file."""
    kinds = list(result["publish"])
    rows: list[tuple[str, ...]] = [("measure", *kinds)]

    def line(label: str, values: list[float], unit: str = "s", ratio: bool = True) -> None:
        base = values[0]
        cells = []
        for i, value in enumerate(values):
            text = f"{value:.3f} {unit}" if unit == "s" else f"{value / 2**20:.1f} MiB"
            if ratio and i and base:
                text += f" ({value / base:.2f}x)"
            cells.append(text)
        rows.append((label, *cells))

    publish = result["publish"]
    line(
        "full publish: write + make visible (median)",
        [publish[k]["full"]["total_s"] for k in kinds],
    )
    line("  of which making it visible", [publish[k]["full"]["publish_s"] for k in kinds])
    incs = {k: publish[k]["increments"] for k in kinds}
    line(
        "~1% increment: copy + write + visible (median)",
        [_median([i["total_s"] for i in incs[k]]) for k in kinds],
    )
    line(
        "  of which copying the published file",
        [_median([i["copy_s"] for i in incs[k]]) for k in kinds],
    )
    line(
        "  of which making it visible", [_median([i["publish_s"] for i in incs[k]]) for k in kinds]
    )
    queries = result["queries"]
    line("open (connect, attach, first count)", [queries[k]["open_s"] for k in kinds])
    for name in QUERIES:
        line(name, [queries[k]["queries"][name]["median_s"] for k in kinds])
        line(
            "  after DuckLake maintenance",
            [queries["file"]["queries"][name]["median_s"]]
            + [queries[f"{k} (maintained)"]["queries"][name]["median_s"] for k in kinds[1:]],
        )
    storage = result["storage"]
    line("bytes after full", [storage[k]["after_full"]["bytes"] for k in kinds], unit="B")
    line(
        f"bytes after full + {len(incs['file'])} increments",
        [storage[k]["after_increments"]["bytes"] for k in kinds],
        unit="B",
    )
    line(
        "  of which the catalog and its journal",
        [storage[k]["after_increments"]["catalog_bytes"] for k in kinds],
        unit="B",
        ratio=False,
    )
    maintained = result["maintenance"]
    line(
        "  after DuckLake merge + expire + cleanup",
        [storage["file"]["after_increments"]["bytes"]]
        + [maintained[k]["after"]["bytes"] for k in kinds[1:]],
        unit="B",
    )
    rows.append(
        (
            "files on disk after increments / maintained",
            f"{storage['file']['after_increments']['files']}",
            *(
                f"{storage[k]['after_increments']['files']} / {maintained[k]['after']['files']}"
                for k in kinds[1:]
            ),
        )
    )
    return rows


def print_table(rows: list[tuple[str, ...]]) -> None:
    """Print ``rows`` as a Markdown table (pasted as is into bench/README.md)."""
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for row in rows[1:]:
        print("| " + " | ".join(row) + " |")


def print_isolation(result: dict[str, Any]) -> None:
    """Print what each side of each isolation scenario saw."""
    for kind, scenarios in result["isolation"].items():
        for scenario, sides in scenarios.items():
            print(f"{kind} / {scenario}:")
            for side, seen in sides.items():
                print(f"    {side}: {json.dumps(seen)}")


# --- command line ---------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line (``--child`` is the scenarios' own processes)."""
    parser = argparse.ArgumentParser(prog="bench/ducklake.py", description=__doc__)
    parser.add_argument("warehouse", type=Path, nargs="?", help="a warehouse.duckdb to copy")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/qbo-bench/ducklake"))
    parser.add_argument("--results-dir", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--rounds", type=int, default=5, help="incremental publishes")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each query")
    parser.add_argument("--full-repeat", type=int, default=3, help="full publishes (median)")
    parser.add_argument("--big-rows", type=int, default=10_000, help="tables that get appends")
    parser.add_argument("--child", choices=("reader", "writer"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--postgres", action="store_true", help="also a DuckLake with a PostgreSQL catalog"
    )
    parser.add_argument("--pg-bin", type=Path, help="PostgreSQL's binaries (pg_config --bindir)")
    for name in ("--store", "--root", "--sync", "--ext-dir", "--source", "--dsn"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    for name in ("--once", "--hold", "--in-place", "--idle"):
        parser.add_argument(name, action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the measurement (or one scenario's child process); print; save JSON."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.child:
        child: Callable[[argparse.Namespace], dict[str, Any]] = (
            child_reader if args.child == "reader" else child_writer
        )
        print(json.dumps(child(args)))
        return 0
    if args.warehouse is None or not args.warehouse.is_file():
        raise SystemExit(f"give a warehouse.duckdb to measure (not found: {args.warehouse})")
    args.warehouse = args.warehouse.resolve()
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    result = run(args)
    result["machine"] = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }
    result["started"] = started.isoformat()
    result["seconds"] = (datetime.now(UTC) - started).total_seconds()
    result["parameters"] = {
        "rounds": args.rounds,
        "repeat": args.repeat,
        "full_repeat": args.full_repeat,
        "big_rows": args.big_rows,
    }
    rows = table_rows(result)
    result["table"] = rows
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"ducklake-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print_table(rows)
    print()
    print(f"results equal across stores: {result['results_equal']}")
    print_isolation(result)
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
