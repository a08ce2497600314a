"""Build ``data/warehouse.duckdb`` from the lake: write, audit, publish.

1. Write: the lake views, catalogue seeds, every model and macro (in the runner's one build order:
   a macro before the models that call it) are built into a NEW database file beside the warehouse
   (``<warehouse>.build``). A full build starts from an empty file; a selected build starts from a
   copy of the published warehouse, so the models it does not build stay as they were.
2. Audit: each model's column tests run right after it is built; the first failure stops the
   build with a :class:`BuildError` naming the model, the test and the offending row count.
3. Publish: only when everything passed, the new file is fsync'd and renamed over the warehouse
   (``os.replace``, atomic on one file system). A build never opens the published file for
   writing, so readers never block it: a notebook, DBeaver, ``duckdb -readonly`` or ``qbo-backup
   sql`` holding the warehouse open keeps its consistent view of the old file, and the next
   connection sees the new one. A failed or killed build leaves the published warehouse as it
   was. Builds of one warehouse take turns (``<warehouse>.lock``).

Incremental builds: the published warehouse records what it was built from
(:mod:`qbo_pipeline.models.build_state`). When the SQL project is unchanged and the lake only
gained snapshots, ``build_warehouse`` starts from a copy of the published file and, for each
``-- materialized: incremental`` model, computes its SQL over only what the build added
(``lake.new_versions``: the new snapshots' version files; ``delta.<model>``: the rows the build
added upstream), deletes the rows of the same ``incremental_key`` (a retried build is idempotent),
and inserts the new rows whose ``#UNIQUE_BY`` key the table does not hold yet. Tables and views
are rebuilt when something they read changed, and kept otherwise
(:mod:`qbo_pipeline.models.incremental`, which also says how such a build tests only what
changed). The result is the full build's, row for row (tests/models/test_models_incremental.py).
A prune, a gc, a rewritten commit record or a changed SQL file makes the build full, and the
result says why; ``full=True`` (``warehouse build --full``) forces it.

Compaction: an incremental build leaves the rows it deleted as tombstones and its appended rows
in row groups of their own, so the file grows night after night; a build that starts from a file
grown past a limit (``QBO_WAREHOUSE_COMPACT_GROWTH``), or asked to (``compact=True``,
``warehouse build --compact``), copies its database into a fresh file before publishing
(:mod:`qbo_pipeline.models.compaction`), and its result says so (``compacted``, ``file_bytes``,
``growth``).

Tables analysts create inside the warehouse file do not survive a full build: keep them in a
database of your own that attaches the warehouse (``attach 'warehouse.duckdb' (read_only)``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import filelock
import pyarrow as pa

from qbo_pipeline import config
from qbo_pipeline.errors import EXIT_USAGE
from qbo_pipeline.lake.fs import is_remote
from qbo_pipeline.models.build_state import BuildPlan, LakeState, build_hash, plan_build
from qbo_pipeline.models.compaction import CompactionPlan, compact_into, plan_compaction
from qbo_pipeline.models.incremental import (
    NEW_SOURCES,
    Fingerprint,
    drop_relation,
    fingerprint,
    keep_published,
    needs_build,
    new_manifest_deltas_sql,
    published_fingerprints,
    rebuild_whole_reason,
    record_fingerprints,
    run_tests,
)
from qbo_pipeline.models.lake_mirror import MirrorSync, mirror_folder, sync_mirror
from qbo_pipeline.models.runner import (
    DELTA_SCHEMA,
    Macro,
    Model,
    ModelError,
    Project,
    build_steps,
    load_project,
    select_models,
)
from qbo_pipeline.models.sources import (
    create_catalogue_seeds,
    create_lake_views,
    lake_root,
    new_versions_sql,
)
from qbo_pipeline.models.sql_tests import ColumnTest
from qbo_pipeline.restore.id_maps import create_id_map_table

log = logging.getLogger(__name__)


class BuildError(ModelError):
    """A model failed to build or failed a column test; nothing was published."""

    def __init__(self, message: str, *, model: str, failures: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.model = model
        self.failures = tuple(failures)


class WarehouseBusyError(ModelError):
    """Another process holds the warehouse file open."""


@dataclass(frozen=True)
class ModelResult:
    """What one model produced."""

    key: str
    materialized: str
    rows: int | None
    """Rows of the relation; None for a view in an incremental build (counting a view runs it
    over the whole history, which an incremental build otherwise avoids)."""
    tests: tuple[str, ...]
    seconds: float
    rows_inserted: int = 0
    """Rows the build wrote: all of a table's, only the new ones of an incremental model built
    incrementally (0 for a view)."""
    rows_deleted: int = 0
    """Rows an incremental build deleted before inserting (those of a retried build's keys)."""
    appended: bool = False
    """Whether the model was appended to rather than rebuilt."""
    skipped: bool = False
    """Whether an incremental build kept the published relation: nothing it reads changed."""
    unchanged: bool = False
    """Whether an incremental build rebuilt this table and found the published rows (the same
    fingerprint): what reads it was not rebuilt for it."""
    whole_reason: str = ""
    """Why an incremental build recomputed this incremental model whole instead of appending."""


@dataclass(frozen=True)
class BuildResult:
    """The outcome of a successful build."""

    warehouse: Path
    lake: str
    models: tuple[ModelResult, ...]
    macros: tuple[str, ...]
    seconds: float
    built_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    kind: str = "full"
    """``full``, ``incremental`` or ``selected``."""
    reason: str = ""
    """Why the build was of that kind, in one sentence."""
    new_snapshots: int = 0
    """Committed snapshots the build read that the previous one had not (all, when full)."""
    version_files_read: int | None = None
    """Version files the incremental models read (None: every one, a full build)."""
    files_downloaded: int | None = None
    """Lake files a build over a remote lake fetched into its mirror (None for a local lake)."""
    file_bytes: int = 0
    """The published file's size after the build."""
    baseline_bytes: int | None = None
    """The size the last full build or compaction left (None when this build was one)."""
    compacted: bool = False
    """Whether the build copied its database into a fresh file before publishing."""
    compaction_reason: str = ""
    """Why the build compacted or did not, in one sentence."""
    compact_seconds: float = 0.0
    """Time spent compacting."""

    @property
    def growth(self) -> float:
        """The published file's size over the size its last full build or compaction left.

        1.0 right after a full build or a compaction.
        """
        if not self.baseline_bytes or not self.file_bytes:
            return 1.0
        return self.file_bytes / self.baseline_bytes

    @property
    def tests_passed(self) -> int:
        """How many column tests ran and passed."""
        return sum(len(m.tests) for m in self.models)

    @property
    def models_rebuilt(self) -> int:
        """Models built whole: every one in a full build, those neither appended nor kept else."""
        return sum(not m.appended and not m.skipped for m in self.models)

    @property
    def models_appended(self) -> int:
        """Incremental models the build appended the new rows to."""
        return sum(m.appended for m in self.models)

    @property
    def models_kept(self) -> int:
        """Models kept as published: nothing they read changed."""
        return sum(m.skipped for m in self.models)

    @property
    def rows_appended(self) -> int:
        """Rows the build appended to incremental models (0 in a full build)."""
        return sum(m.rows_inserted for m in self.models if m.appended)

    def summary(self) -> str:
        """The build in one line: models rebuilt, appended and kept, tests, rows, seconds."""
        return (
            f"{len(self.models)} models: {self.models_rebuilt} rebuilt, "
            f"{self.models_appended} appended, {self.models_kept} kept unchanged; "
            f"{self.tests_passed} tests; {self.rows_appended:,} rows appended; "
            f"{self.seconds:.1f} s"
        )


def _ident(*parts: str) -> str:
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connect(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse with UTC as the session time zone.

    Raises:
        WarehouseBusyError: If another process has the file open for writing.
        ModelError: If a read-only open finds no warehouse.
    """
    if read_only and not Path(path).exists():
        raise ModelError(f"no warehouse at {path}: run `qbo-backup warehouse build` first")
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        raise WarehouseBusyError(
            f"the warehouse {path} is in use by another process ({exc})"
        ) from None
    con.execute("set TimeZone = 'UTC'")
    con.execute("set enable_progress_bar = false")
    return con


class QueryRefusedError(ModelError):
    """A query the analysts' connection does not run: not one statement, or not a read."""

    exit_code = EXIT_USAGE


QUERY_KINDS = "select, from, with, values, describe, show, summarize"
"""What :func:`read_statement` accepts, as analysts write it (all parse as SELECT statements)."""

_STATEMENT_NAMES = {
    "LOAD": "INSTALL/LOAD",
    "COPY_DATABASE": "COPY FROM DATABASE",
    "VARIABLE_SET": "SET VARIABLE",
    "CREATE_FUNC": "CREATE MACRO",
    "MERGE_INTO": "MERGE INTO",
}


def read_statement(sql: str) -> duckdb.Statement:
    """The one read-only statement ``sql`` holds, for :func:`connect_for_queries`.

    Only a SELECT statement passes (which includes ``from``, ``with``, ``values``, ``describe``,
    ``show`` and ``summarize``): the lake folder is readable and writable on that connection, so
    ``copy``, ``export``, ``attach``, ``install``, ``set``, ``pragma`` and ``explain analyze`` are
    refused before they reach it.

    Raises:
        QueryRefusedError: For no statement, several statements or one that is not a SELECT.
        duckdb.ParserException: For SQL that does not parse.
    """
    statements = duckdb.extract_statements(sql)
    if not statements:
        raise QueryRefusedError("no statement to run")
    if len(statements) > 1:
        raise QueryRefusedError(
            f"{len(statements)} statements given; `qbo-backup sql` runs one statement per call"
        )
    statement = statements[0]
    if statement.type != duckdb.StatementType.SELECT:
        name = statement.type.name
        kind = _STATEMENT_NAMES.get(name, name.replace("_", " "))
        raise QueryRefusedError(
            f"{kind} statements are not allowed; `qbo-backup sql` runs one read-only query "
            f"({QUERY_KINDS})"
        )
    return statement


def connect_for_queries(path: Path) -> duckdb.DuckDBPyConnection:
    """Open the warehouse read-only for analysts' SQL, locked down to the warehouse and its lake.

    The ``lake.*`` views read a local lake's files directly, so the lake folder the warehouse was
    built over (``build_info.lake_root``) is the one allowed directory (none for a remote lake,
    whose ``lake.*`` are tables); every other file, URL or extension is refused
    (``enable_external_access = false``, no extension autoloading or autoinstalling), and
    ``lock_configuration`` keeps any statement from undoing that. DuckDB
    lets an allowed directory be written too: run only what :func:`read_statement` accepts.

    Raises:
        WarehouseBusyError: If another process has the file open for writing.
        ModelError: If there is no warehouse.
    """
    con = connect(path, read_only=True)
    try:
        try:
            row = con.execute("select lake_root from main.build_info").fetchone()
        except duckdb.CatalogException:  # not built by this version: no lake views to serve
            row = None
        # A remote lake's relations are tables inside the warehouse: no directory to allow.
        lake = [row[0]] if row and row[0] and not is_remote(row[0]) else []
        con.execute("set autoinstall_known_extensions = false")
        con.execute("set autoload_known_extensions = false")
        con.execute("set allowed_directories = ?", [lake])
        con.execute("set enable_external_access = false")
        con.execute("set lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


BUILD_WAIT_SECONDS = 600.0
"""How long a build waits for another build of the same warehouse to finish."""

BUILD_MEMORY_LIMIT = "4GB"
"""What DuckDB may hold in memory while building; beyond it, it spills to ``<warehouse>.build.tmp``.
Without a limit DuckDB takes 80% of the machine (19.7 GiB for the 1M benchmark company)."""

VACUUM_TASKS = 0
"""DuckDB's ``max_vacuum_tasks`` during a build: none. At the final checkpoint DuckDB's vacuum
would rewrite (merge) the row groups an incremental build deleted rows from and the ones it
appended, which cost most of that checkpoint (100k company after a 1% nightly: checkpoint, copy
and publish took 5.4-9.1 s instead of 1.4-1.8 s) and left a bigger file (331 MiB, not 244 MiB).
The deleted rows stay as tombstones (scans skip them) until a full build (``warehouse build
--full``) writes every table anew or a compaction copies the database into a fresh file
(:mod:`qbo_pipeline.models.compaction`: by itself once the file has grown past a limit)."""


def build_memory_limit() -> str:
    """The build's memory limit: ``QBO_WAREHOUSE_MEMORY_LIMIT`` (``2GB``, ``512MB``...) or 4 GB.

    Raises:
        ModelError: If the variable is not a size DuckDB understands.
    """
    raw = config.warehouse_memory_limit() or BUILD_MEMORY_LIMIT
    if not re.fullmatch(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", raw, re.IGNORECASE):
        raise ModelError(f"QBO_WAREHOUSE_MEMORY_LIMIT={raw!r} is not a size such as 4GB or 512MB")
    return raw


def build_warehouse(
    lake: str | Path,
    warehouse: Path,
    *,
    sql_dir: Path | None = None,
    select: Sequence[str] = (),
    wait_seconds: float = BUILD_WAIT_SECONDS,
    full: bool = False,
    compact: bool | None = None,
) -> BuildResult:
    """Build every model (or the selected ones and what they read) and publish atomically.

    Args:
        lake: The lake's local folder or fsspec URL (``s3://bucket/prefix``).
        warehouse: The DuckDB file to publish (created when missing).
        sql_dir: The models folder; the packaged ``dbt_like_sql`` by default.
        select: Model names to build (with their upstream models); all by default. A partial
            build leaves the other published models as they were.
        wait_seconds: How long to wait for another build of the same warehouse to finish.
        full: Rebuild everything even when the lake only gained snapshots since the last build.
        compact: Copy the built database into a fresh file before publishing (True), never
            (False), or when the published file has grown past the limit (None, the default:
            ``QBO_WAREHOUSE_COMPACT_GROWTH``; see :mod:`qbo_pipeline.models.compaction`).

    Returns:
        What was built.

    Raises:
        BuildError: A model's SQL failed or a column test found offending rows; the published
            warehouse is untouched and the new file is kept for inspection.
        WarehouseBusyError: Another build of this warehouse ran longer than ``wait_seconds``.
        ModelError: For a malformed project (cycle, missing reference).
        ConfigError: If ``QBO_WAREHOUSE_COMPACT_GROWTH`` is neither a number above 1 nor off.
    """
    started = time.monotonic()
    project = load_project(sql_dir)
    models = select_models(project, select)
    root = lake_root(lake)
    warehouse = Path(warehouse)
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    memory_limit = build_memory_limit()
    growth_limit = config.warehouse_compact_growth()
    scratch = warehouse.with_name(warehouse.name + ".build")
    with _build_turn(warehouse, wait_seconds):
        mirror = sync_mirror(root, mirror_folder(warehouse)) if is_remote(root) else None
        plan, state = plan_build(
            root,
            warehouse,
            project,
            full=full,
            selected=bool(select),
            mirror=mirror.folder if mirror else None,
        )
        log.info("warehouse %s: %s build: %s", warehouse, plan.kind, plan.reason)
        compaction = plan_compaction(warehouse, plan.kind, compact, growth_limit)
        _remove(scratch)
        if plan.kind != "full" and warehouse.exists():
            _copy_published(warehouse, scratch)
        con = connect(scratch)
        try:
            con.execute(f"set memory_limit = {_literal(memory_limit)}")
            con.execute(f"set max_vacuum_tasks = {VACUUM_TASKS}")
            results = _write_and_audit(con, project, models, root, plan, mirror)
            _record_build(con, project, root, len(models), plan, state, compaction)
            con.execute("checkpoint")
            compact_seconds = _compact(con, scratch, compaction)
        except BuildError:
            con.close()
            raise
        except BaseException:
            con.close()
            _remove(scratch)
            raise
        con.close()
        if compaction.compact:
            os.replace(_compacted(scratch), scratch)
        _publish(scratch, warehouse)
    result = BuildResult(
        warehouse=warehouse,
        lake=root,
        models=tuple(results),
        macros=tuple(s.name for s in build_steps(project, models) if isinstance(s, Macro)),
        seconds=time.monotonic() - started,
        kind=plan.kind,
        reason=plan.reason,
        new_snapshots=len(plan.new_snapshots),
        version_files_read=None if plan.new_files is None else len(plan.new_files),
        files_downloaded=mirror.downloaded if mirror else None,
        file_bytes=warehouse.stat().st_size,
        baseline_bytes=compaction.recorded_baseline,
        compacted=compaction.compact,
        compaction_reason=compaction.reason,
        compact_seconds=compact_seconds,
    )
    log.info(
        "warehouse %s built (%s): %d models, %d tests passed in %.1fs; %.1f MiB (%.2fx the "
        "last full build or compaction)%s",
        warehouse,
        result.kind,
        len(result.models),
        result.tests_passed,
        result.seconds,
        result.file_bytes / 2**20,
        result.growth,
        f", compacted in {compact_seconds:.1f}s" if result.compacted else "",
    )
    return result


def _compacted(scratch: Path) -> Path:
    return scratch.with_name(scratch.name + ".compact")


def _compact(con: duckdb.DuckDBPyConnection, scratch: Path, plan: CompactionPlan) -> float:
    """Copy the build's database into ``<scratch>.compact`` when the plan says so."""
    if not plan.compact:
        return 0.0
    log.info("warehouse build %s: compacting: %s", scratch, plan.reason)
    try:
        return compact_into(con, _compacted(scratch))
    except BaseException:
        _remove(_compacted(scratch))
        raise


@contextmanager
def _build_turn(warehouse: Path, wait_seconds: float) -> Iterator[None]:
    """Hold ``<warehouse>.lock`` for one build; readers never take it."""
    lock = filelock.FileLock(str(warehouse) + ".lock")
    try:
        lock.acquire(timeout=wait_seconds)
    except filelock.Timeout:
        raise WarehouseBusyError(
            f"another build of the warehouse {warehouse} is still running after "
            f"{wait_seconds:.0f}s; try again when it has finished"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _copy_published(warehouse: Path, scratch: Path) -> None:
    """Start a selected build from the published warehouse (its WAL checkpointed first)."""
    if warehouse.with_name(warehouse.name + ".wal").exists():
        # Somebody wrote into the published file without a checkpoint: fold it in first, or the
        # copy would miss it.
        connect(warehouse).close()
    shutil.copyfile(warehouse, scratch)


def _publish(scratch: Path, warehouse: Path) -> None:
    """Rename the finished build over the warehouse, durably; open readers keep the old file."""
    with open(scratch, "rb") as handle:
        os.fsync(handle.fileno())
    # A WAL beside the old file would be replayed into the new one: it belongs to the file being
    # replaced (a full build does not read it; a selected build folded it in first).
    warehouse.with_name(warehouse.name + ".wal").unlink(missing_ok=True)
    try:
        os.replace(scratch, warehouse)
    except OSError as exc:  # e.g. Windows, where an open file cannot be replaced
        raise WarehouseBusyError(
            f"could not publish the new warehouse over {warehouse} ({exc}); the build is kept at "
            f"{scratch}: close the programs that have the warehouse open and build again"
        ) from None
    folder = os.open(warehouse.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _remove(scratch: Path) -> None:
    for path in (scratch, scratch.with_name(scratch.name + ".wal"), _compacted(scratch)):
        path.unlink(missing_ok=True)
    _compacted(scratch).with_name(_compacted(scratch).name + ".wal").unlink(missing_ok=True)


def _record_build(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    root: str,
    models: int,
    plan: BuildPlan,
    state: LakeState | None,
    compaction: CompactionPlan,
) -> None:
    """Write ``main.build_info`` and what the build read (see :mod:`.build_state`).

    A selected build records no project hash: the models it did not build may be older than the
    lake, so the next build is full. ``compact_bytes`` is the size the last full build or
    compaction left, NULL when this build is one (see :mod:`.compaction`).
    """
    con.execute(
        "create or replace table main.build_info as select now() as built_at, ? as lake_root, "
        "? as sql_dir, ? as models, ? as build_kind, ? as build_reason, ? as build_hash, "
        "?::bigint as compact_bytes",
        [
            root,
            str(project.root),
            models,
            plan.kind,
            plan.reason,
            None if plan.kind == "selected" else build_hash(project),
            compaction.recorded_baseline,
        ],
    )
    commits = sorted(state.commits.items()) if state else []
    files = sorted(state.files.items()) if state else []
    # One Arrow table each: executemany costs a statement a row (seconds for a few hundred files).
    snapshots = pa.table(
        {
            "realm_id": pa.array([r for (r, _s), _h in commits], pa.string()),
            "snapshot_id": pa.array([s for (_r, s), _h in commits], pa.string()),
            "commit_sha256": pa.array([h for _k, h in commits], pa.string()),
        }
    )
    version_files = pa.table(
        {
            "path": pa.array([p for p, _f in files], pa.string()),
            "bytes": pa.array([size for _p, (_r, _s, size) in files], pa.int64()),
        }
    )
    for name, rows in (("build_snapshots", snapshots), ("build_version_files", version_files)):
        con.register(f"{name}_rows", rows)
        try:
            con.execute(f"create or replace table main.{name} as select * from {name}_rows")
        finally:
            con.unregister(f"{name}_rows")


def _write_and_audit(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    models: Sequence[Model],
    root: str,
    plan: BuildPlan,
    mirror: MirrorSync | None = None,
) -> list[ModelResult]:
    create_lake_views(
        con,
        root,
        mirror=mirror.folder if mirror else None,
        new_snapshots=plan.new_snapshots if plan.kind == "incremental" else None,
    )
    con.execute(
        "create or replace view lake.new_versions as "
        + new_versions_sql(None if plan.new_files is None else list(plan.new_files))
    )
    con.execute(
        "create or replace view lake.new_manifest_deltas as "
        + new_manifest_deltas_sql(root, None if plan.new_files is None else plan.new_snapshots)
    )
    create_catalogue_seeds(con)
    create_id_map_table(con, root)  # every restore's old id -> new id (restore.id_map)
    for schema in (*project.schemas, DELTA_SCHEMA):
        con.execute(f"create schema if not exists {_ident(schema)}")
    incremental = plan.kind == "incremental"
    results = []
    built: list[Model] = []
    changed: set[str] = set()  # models this build rebuilt or whose rows it changed
    whole: set[str] = set()  # incremental models this build recomputed whole
    published = published_fingerprints(con) if incremental else {}
    prints: dict[str, Fingerprint] = {}
    lake_changed = not incremental or bool(plan.new_snapshots)
    for step in build_steps(project, models):
        if isinstance(step, Macro):
            try:
                con.execute(step.sql)
            except duckdb.Error as exc:
                raise BuildError(
                    f"macro {step.name} ({step.path}) failed: {exc}", model=step.name
                ) from None
            continue
        if step.materialized == "incremental":
            built.append(step)
        if incremental and not needs_build(step, changed, lake_changed=lake_changed):
            keep_published(con, step)
            if step.key in published:
                prints[step.key] = published[step.key]
            results.append(ModelResult(step.key, step.materialized, None, (), 0.0, skipped=True))
            continue
        reason = ""
        if incremental and step.materialized == "incremental":
            reason = rebuild_whole_reason(step, changed, whole)
        result = _build_model(con, step, incremental=incremental, whole=bool(reason))
        if step.materialized == "table":
            prints[step.key] = fingerprint(con, step)
            if incremental and published.get(step.key) == prints[step.key]:
                result = replace(result, unchanged=True)
        if reason:
            whole.add(step.key)
            result = replace(result, whole_reason=reason)
        results.append(result)
        appended_nothing = result.appended and not result.rows_inserted and not result.rows_deleted
        if not appended_nothing and not result.unchanged:
            changed.add(step.key)
        if step.materialized == "incremental" and not results[-1].appended:
            _delta_is_everything(con, step)
    record_fingerprints(con, prints)
    # Outside a build, delta.<model> is all of the model (the macros that read it stay right);
    # lake.new_versions only means something during a build, so the published warehouse has none.
    for model in built:
        _delta_is_everything(con, model)
    for name in NEW_SOURCES:
        con.execute(f"drop view if exists lake.{name}")
    return results


def _delta_is_everything(con: duckdb.DuckDBPyConnection, model: Model) -> None:
    """Make ``delta.<model>`` a view of all the model's rows (what a full build adds)."""
    drop_relation(con, DELTA_SCHEMA, model.name)
    con.execute(
        f"create view {_ident(DELTA_SCHEMA, model.name)} as "
        f"select * from {_ident(model.schema, model.name)}"
    )


def _append(con: duckdb.DuckDBPyConnection, model: Model, relation: str) -> tuple[int, int]:
    """Add an incremental model's new rows; returns (rows inserted, rows deleted).

    ``delta.<model>`` holds the rows the model's SQL gives over what the build added; the rows of
    the table with the same incremental key are deleted (a retried build's), and those meeting the
    model's ``incremental_delete`` condition (obsolete ones), the new rows whose
    ``#UNIQUE_BY`` key the table already holds are dropped (a version seen before keeps its first
    row), and the rest are inserted; ``delta.<model>`` is then what was inserted.
    """
    delta = _ident(DELTA_SCHEMA, model.name)
    drop_relation(con, DELTA_SCHEMA, model.name)
    con.execute(f"create table {delta} as {model.sql}")

    def match(columns: Sequence[str], left: str, right: str) -> str:
        return " and ".join(
            f"{left}.{_ident(c)} is not distinct from {right}.{_ident(c)}" for c in columns
        )

    obsolete = f" or ({model.incremental_delete})" if model.incremental_delete else ""
    deleted = con.execute(
        f"delete from {relation} as t where exists (select 1 from {delta} as n "
        f"where {match(model.incremental_key, 'n', 't')}){obsolete}"
    ).fetchone()
    if model.unique_by:
        con.execute(
            f"delete from {delta} as n where exists (select 1 from {relation} as t "
            f"where {match(model.unique_by, 't', 'n')})"
        )
    inserted = con.execute(f"insert into {relation} by name select * from {delta}").fetchone()
    return (inserted or (0,))[0], (deleted or (0,))[0]


def _build_model(
    con: duckdb.DuckDBPyConnection,
    model: Model,
    *,
    incremental: bool = False,
    whole: bool = False,
) -> ModelResult:
    t0 = time.monotonic()
    relation = _ident(model.schema, model.name)
    kind = "view" if model.materialized == "view" else "table"
    deleted = 0
    appended = False
    try:
        _drop_other_kind(con, model, kind)
        exists = con.execute(
            "select 1 from duckdb_tables() where database_name = current_database() "
            "and schema_name = ? and table_name = ?",
            [model.schema, model.name],
        ).fetchone()
        if model.materialized == "incremental" and incremental and exists and not whole:
            inserted, deleted = _append(con, model, relation)
            appended = True
        else:  # recomputed whole in an incremental build: every delta.<model> read as all of it
            sql = model.whole_sql if whole and model.whole_sql else model.sql
            con.execute(f"create or replace {kind} {relation} as {sql}")
            inserted = -1
        rows: int | None = None
        if kind == "table" or not incremental:
            rows = (con.execute(f"select count(*) from {relation}").fetchone() or (0,))[0]
        if inserted < 0:
            inserted = 0 if kind == "view" else rows or 0
    except duckdb.Error as exc:
        raise BuildError(
            f"model {model.key} ({model.path}) failed: {exc}", model=model.key
        ) from None
    failures = [
        f"{_where(model, test)} could not run: {bad}"
        if isinstance(bad, str)
        else f"{_where(model, test)}: {bad} offending row(s)"
        for test, bad in run_tests(con, model, relation, appended=appended, incremental=incremental)
        if bad
    ]
    if failures:
        raise BuildError(
            f"model {model.key} ({model.path}) failed its tests: {'; '.join(failures)}; "
            "nothing was published",
            model=model.key,
            failures=failures,
        )
    return ModelResult(
        key=model.key,
        materialized=model.materialized,
        rows=rows,
        tests=tuple(t.label for t in model.tests),
        seconds=time.monotonic() - t0,
        rows_inserted=inserted,
        rows_deleted=deleted,
        appended=appended,
    )


def _where(model: Model, test: ColumnTest) -> str:
    return f"{test.label} at {model.path.name}:{test.line}"


def _drop_other_kind(con: duckdb.DuckDBPyConnection, model: Model, kind: str) -> None:
    """Drop a relation of the model's name that is of the other kind (a view become a table)."""
    other = "table" if kind == "view" else "view"
    catalogue, column = (
        ("duckdb_tables()", "table_name") if other == "table" else ("duckdb_views()", "view_name")
    )
    found = con.execute(
        f"select 1 from {catalogue} where database_name = current_database() "
        f"and schema_name = ? and {column} = ?",
        [model.schema, model.name],
    ).fetchone()
    if found:
        con.execute(f"drop {other} {_ident(model.schema, model.name)}")
