"""Keep an incrementally built warehouse file near the size of a full build (issue #19).

An incremental build starts from a byte copy of the published file and checkpoints without
DuckDB's vacuum (``max_vacuum_tasks = 0``, see :data:`.warehouse.VACUUM_TASKS`), so the file only
grows: the rows a build deletes stay as tombstones, each build's appended rows go in row groups
of their own (at least one 256 KiB block per appended table, however few the rows), and the
blocks of the tables it rebuilt whole are reused only in part.

The policy, like a database's autovacuum: every published warehouse records in
``main.build_info.compact_bytes`` the size of the file its last full build or compaction left
(NULL: this file is such a file, its size is the baseline). A build that starts from a published
file grown past ``QBO_WAREHOUSE_COMPACT_GROWTH`` times that baseline (:data:`COMPACT_GROWTH` by
default; ``off`` never) compacts: after its final checkpoint,
the build's database is copied into a fresh file (``COPY FROM DATABASE``: every schema, table,
view and macro, rows in their order, no tombstone and no half-empty block), which is published in
its place. That costs one write of the live data (no model is computed again), a small share of
a full build. ``compact=True`` (``warehouse build --compact``) compacts whatever the growth;
``compact=False`` never does (the benchmark's measure of the growth).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from qbo_pipeline import config

log = logging.getLogger(__name__)

COMPACT_GROWTH = config.DEFAULT_COMPACT_GROWTH
"""By default, compact when the published file is this many times the size its last full build or
compaction left. The live data grows too (a nightly adds its new versions), so the baseline is
reset at each compaction rather than compared with a full build's size. The setting
``QBO_WAREHOUSE_COMPACT_GROWTH`` changes it (:func:`.config.warehouse_compact_growth`)."""


@dataclass(frozen=True)
class CompactionPlan:
    """Whether a build compacts its file before publishing, and why.

    Attributes:
        compact: Whether the build copies its database into a fresh file.
        reason: Why (or why not), in one sentence.
        baseline_bytes: The size the last full build or compaction left (None: unknown, as for
            a full build, whose own file is the next baseline).
        published_bytes: The published file's size when the build started (None: no file).
    """

    compact: bool
    reason: str
    baseline_bytes: int | None = None
    published_bytes: int | None = None

    @property
    def recorded_baseline(self) -> int | None:
        """What the built file records as its baseline: None when it is compact itself."""
        return None if self.compact else self.baseline_bytes


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def published_baseline(warehouse: Path) -> int | None:
    """The baseline the published warehouse records, or its own size when it records none.

    None when there is no published file.
    """
    if not warehouse.exists():
        return None
    size = warehouse.stat().st_size
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error:
        return size
    try:
        row = con.execute("select compact_bytes from main.build_info").fetchone()
    except duckdb.Error:  # no build_info, or built before the column existed
        row = None
    finally:
        con.close()
    return int(row[0]) if row and row[0] is not None else size


def plan_compaction(
    warehouse: Path,
    build_kind: str,
    compact: bool | None = None,
    growth_limit: float | None = COMPACT_GROWTH,
) -> CompactionPlan:
    """Decide whether a build of ``build_kind`` over the published ``warehouse`` compacts.

    Args:
        warehouse: The published warehouse file (it may not exist yet).
        build_kind: ``full``, ``incremental`` or ``selected`` (a full build writes a new file).
        compact: True to compact whatever the growth, False never, None by the growth policy.
        growth_limit: The growth over the baseline that makes the policy compact; None: the
            policy never compacts (``QBO_WAREHOUSE_COMPACT_GROWTH=off``).

    Raises:
        ValueError: If ``growth_limit`` is not above 1.
    """
    if growth_limit is not None and growth_limit <= 1:
        raise ValueError(f"growth_limit must be above 1 (got {growth_limit})")
    if build_kind == "full" or not warehouse.exists():
        return CompactionPlan(False, "a full build writes every table into a new file")
    published = warehouse.stat().st_size
    baseline = published_baseline(warehouse) or published
    growth = published / baseline
    state = (
        f"the published file ({_mib(published)}) is {growth:.2f}x the {_mib(baseline)} its "
        f"last full build or compaction left"
    )
    if compact is True:
        return CompactionPlan(True, f"compaction was asked for; {state}", baseline, published)
    if compact is False:
        return CompactionPlan(False, f"compaction is off; {state}", baseline, published)
    if growth_limit is None:
        return CompactionPlan(
            False,
            f"automatic compaction is off ({config.WAREHOUSE_COMPACT_GROWTH_VAR}=off); {state}",
            baseline,
            published,
        )
    if growth >= growth_limit:
        return CompactionPlan(True, f"{state} (limit {growth_limit:g}x)", baseline, published)
    return CompactionPlan(False, f"{state} (limit {growth_limit:g}x)", baseline, published)


def compact_into(con: duckdb.DuckDBPyConnection, target: Path) -> float:
    """Copy the database ``con`` has open into the new file ``target``; returns the seconds.

    ``target`` is replaced if it exists (a leftover of a killed build).
    """
    started = time.monotonic()
    for leftover in (target, target.with_name(target.name + ".wal")):
        leftover.unlink(missing_ok=True)
    source = (con.execute("select current_database()").fetchone() or ("",))[0]
    quoted = str(target).replace("'", "''")
    con.execute(f"attach '{quoted}' as qbo_compacted")
    try:
        name = source.replace('"', '""')
        con.execute(f'copy from database "{name}" to qbo_compacted')
    finally:
        con.execute("detach qbo_compacted")
    return time.monotonic() - started
