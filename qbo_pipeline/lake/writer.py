"""Write one snapshot: new and changed record versions, manifest deltas, reports, commit record.

A :class:`SnapshotWriter` writes its data files under their final paths, where nobody looks until
the commit record exists; :meth:`SnapshotWriter.commit` writes that record last, atomically. An
exception inside ``with realm.begin(...) as writer:`` aborts and removes what was written.
Each entity is landed in bounded memory (see :class:`_EntityLanding`), and some snapshots also
keep a full-manifest checkpoint of an entity (FORMAT.md, "Checkpoints").
"""

from __future__ import annotations

import gzip
import itertools
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from qbo_pipeline import entities as catalogue
from qbo_pipeline.lake import records
from qbo_pipeline.lake.errors import CountMismatchError, InvalidRecordError, LakeError
from qbo_pipeline.lake.fs import streamed_parquet
from qbo_pipeline.lake.key_diff import KEY_COLUMNS, KeyDiff, winning_keys
from qbo_pipeline.lake.lake import (
    DATA_AREAS,
    FORMAT_VERSION,
    LIVE,
    RealmLake,
    SnapshotInfo,
    check_name,
    fold_deltas,
    snapshot_id_for,
    snapshot_time,
)

if TYPE_CHECKING:
    from types import TracebackType

MODES = ("full", "cdc")
KINDS = ("full", "incremental")
CHUNK_ROWS = 50_000
"""Rows buffered before a chunk is diffed against the parent and written (one row group)."""
CHUNK_BYTES = 8 << 20
"""Payload bytes buffered before a chunk is flushed, whatever its row count.

Sorting a chunk by id and writing it holds about three times the chunk in Arrow memory (at 64
MiB, 237 MiB for one chunk of the 1M company's Payments). Smaller chunks only mean more
spilled runs, which the merge reads one small row group at a time (MERGE_FAN_IN at most)."""
VERSION_ROW_GROUP = 10_000
"""Most rows per row group of a version file (small groups keep sorted merges and lookups lean)."""
VERSION_GROUP_BYTES = 8 << 20
"""Most bytes (in Arrow) per row group of a version file: the writer holds a row group and the
merge's output before it, so 10,000 of the 1M company's 2 KB Invoices (20 MB a group) raised
the landing's peak by 30 MiB."""
RUN_ROW_GROUP = 1_024
"""Most rows per row group of a spilled run (the merge holds about one group per run)."""
RUN_GROUP_BYTES = 256 << 10
"""Most bytes (in Arrow) per row group of a spilled run: with ~4 KB payloads 1,024 rows made
4 MB groups, and the merge of the 1M company's 57 Invoice runs held 57 of them at once."""
MERGE_FAN_IN = 64
"""Most runs merged at once. Beyond it, runs are first merged in groups into longer runs, so
the final merge holds at most this many row groups (16 MiB) whatever the entity's size. No
extra pass up to 64 x CHUNK_BYTES, 512 MiB of one entity's rows (the 1M company's Invoices,
the largest, are 440 MiB)."""
MANIFEST_ROW_GROUP = 65_536
"""Rows per row group of a manifest delta or checkpoint."""
STORED_FILTER_MAX = 100_000
"""Upserts looked for at once among the already-stored versions (a filter by their ids)."""
CHECKPOINT_FRACTION = 0.5
"""Keep a checkpoint when the deltas since the last one reach this fraction of the live set..."""
CHECKPOINT_MAX_LINKS = 50
"""...or when this many snapshots changed the entity since the last one."""
_RESERVED = frozenset(
    {
        "format",
        "realm_id",
        "snapshot_id",
        "parent_id",
        "kind",
        "status",
        "server_time",
        "changed_since",
        "started_at",
        "committed_at",
        "company_name",
        "entities",
        "reports",
        "totals",
    }
)
_ID_INDEX = records.VERSION_SCHEMA.get_field_index("id")
_RUN_SCHEMA = records.LANDING_SCHEMA.append(pa.field("seq", pa.int64()))
"""A spilled run: landing rows with their arrival order."""


class SnapshotWriter:
    """Writes one snapshot of a realm; use as a context manager from :meth:`RealmLake.begin`.

    Attributes:
        realm: The realm written to.
        snapshot_id: The new snapshot's id.
        parent: The snapshot the deltas are relative to (the newest committed), or None.
    """

    def __init__(
        self,
        realm: RealmLake,
        *,
        kind: str,
        server_time: datetime,
        changed_since: datetime | None = None,
        company_name: str | None = None,
    ) -> None:
        from qbo_pipeline.lake.lock import held_or_acquire

        if kind not in KINDS:
            raise LakeError(f"realm {realm.realm_id}: snapshot kind must be one of {KINDS}")
        if not isinstance(server_time, datetime):
            raise LakeError(f"realm {realm.realm_id}: server_time must be a datetime")
        self.realm = realm
        self.kind = kind
        self.server_time = _utc(server_time)
        self.changed_since = _utc(changed_since) if changed_since else None
        self.company_name = company_name
        self.started_at = datetime.now(UTC)
        self._lock_cm = held_or_acquire(realm)
        self._lock_cm.__enter__()
        try:
            realm.clean_orphans()
            self.parent: SnapshotInfo | None = realm.newest_committed()
            sid = snapshot_id_for(self.server_time)
            if self.parent is not None and sid <= self.parent.snapshot_id:
                bumped = snapshot_time(self.parent.snapshot_id) + timedelta(microseconds=1)
                sid = snapshot_id_for(bumped)
            self.snapshot_id = sid
        except BaseException:
            self._lock_cm.__exit__(None, None, None)
            raise
        self._guard = threading.Lock()
        self._entities: dict[str, dict[str, Any]] = {}
        self._busy: set[str] = set()
        self._reports: list[str] = []
        self._closed = False
        self._parent_chain: list[SnapshotInfo] | None = None

    def __repr__(self) -> str:
        return f"SnapshotWriter({self.realm.realm_id!r}, {self.snapshot_id!r})"

    def __enter__(self) -> SnapshotWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._closed:
            self.abort()

    @property
    def entities(self) -> dict[str, dict[str, Any]]:
        """The statistics of the entities written so far."""
        with self._guard:
            return {k: dict(v) for k, v in self._entities.items()}

    def _where(self, entity: str | None = None) -> str:
        base = f"realm {self.realm.realm_id} snapshot {self.snapshot_id}"
        return f"{base} {entity}" if entity else base

    def _check_open(self) -> None:
        if self._closed:
            raise LakeError(f"{self._where()}: the writer is already committed or aborted")

    # ---- parent -----------------------------------------------------------------------------
    def parent_chain(self) -> list[SnapshotInfo]:
        """The parent's chain (every committed snapshot up to it), read once per writer."""
        if self.parent is None:
            return []
        if self._parent_chain is None:
            self._parent_chain = self.realm.chain(self.parent.snapshot_id)
        return self._parent_chain

    def parent_hashes(self, entity: str) -> pa.Table:
        """The parent's live ``id, content_hash`` of an entity, sorted by id (empty if none).

        Built on each call (not kept): the landing itself never needs it whole.
        """
        name = _entity(entity).name
        if self.parent is None or name not in self.parent.entities:
            return pa.table(
                {"id": pa.array([], pa.string()), "content_hash": pa.array([], pa.string())}
            )
        return self.realm.manifests.fold(self.parent_chain(), name)

    # ---- entities ---------------------------------------------------------------------------
    def write_entity(
        self,
        entity: str,
        batches: Iterable[pa.RecordBatch | pa.Table],
        *,
        mode: str,
        qbo_count: int | None,
    ) -> dict[str, Any]:
        """Land an entity's records: write new and changed versions and the manifest delta.

        Streams in bounded memory: the batches are spilled chunk by chunk to a private
        temporary folder (``TMPDIR``), sorted by id, then diffed against the parent's live
        keys range by range (:mod:`qbo_pipeline.lake.key_diff`); the payloads are only ever
        held a small row group per spilled run.

        Args:
            entity: Catalogue name.
            batches: ``LANDING_SCHEMA`` batches. In ``full`` mode every live record of the
                entity; keys of the parent missing from them are deletes. In ``cdc`` mode only
                changed records and ``status = 'Deleted'`` rows; other keys carry over (no
                batches at all means the entity is unchanged).
            mode: ``full`` or ``cdc``.
            qbo_count: QBO's ``COUNT(*)`` for the entity, checked at commit (None: unchecked).

        Returns:
            The entity's statistics for the commit record.

        Raises:
            LakeError: For a bad mode, an entity written twice, or a closed writer.
            InvalidRecordError: For malformed rows (no id, no hash, another entity's rows).
        """
        self._check_open()
        name = _entity(entity).name
        if mode not in MODES:
            raise LakeError(f"{self._where(name)}: mode must be one of {MODES}, got {mode!r}")
        if qbo_count is not None and (isinstance(qbo_count, bool) or int(qbo_count) < 0):
            raise LakeError(f"{self._where(name)}: qbo_count must be a count, got {qbo_count!r}")
        with self._guard:
            if name in self._entities or name in self._busy:
                raise LakeError(f"{self._where(name)}: written twice in one snapshot")
            self._busy.add(name)
        try:
            stats = _EntityLanding(self, name, mode).run(batches)
        finally:
            with self._guard:
                self._busy.discard(name)
        stats["qbo_count"] = None if qbo_count is None else int(qbo_count)
        with self._guard:
            self._check_open()
            self._entities[name] = stats
        return dict(stats)

    def put_report(self, name: str, payload: dict[str, Any]) -> None:
        """Keep a report (TrialBalance, ProfitAndLoss, BalanceSheet) raw with the snapshot."""
        self._check_open()
        check_name("report", name)
        if not isinstance(payload, dict):
            raise LakeError(f"{self._where()}: report {name} must be a JSON object")
        self.realm.fs.write_bytes(
            self.realm.report_path(self.snapshot_id, name),
            gzip.compress(records.canonical_bytes(payload), mtime=0),
        )
        with self._guard:
            if name not in self._reports:
                self._reports.append(name)

    # ---- commit and abort -------------------------------------------------------------------
    def commit(self, *, api_calls: int = 0, extra: dict[str, Any] | None = None) -> SnapshotInfo:
        """Check the counts and write the commit record last: the snapshot becomes visible.

        Raises:
            CountMismatchError: If an entity's live count differs from its ``qbo_count``
                (the snapshot is aborted).
            LakeError: If an entity of the parent was neither written nor carried over, or
                ``extra`` overrides a reserved field (the snapshot is aborted), or another
                writer committed this snapshot id first (the commit record is written only if
                none exists).
        """
        self._check_open()
        try:
            record = self._record(api_calls, extra or {})
            self.realm.write_commit(record, exclusive=True)
        except FileExistsError:
            # Another writer committed this snapshot id (possible only if the lock was cleared
            # while a backup ran): its commit record stands, and the files under this id are
            # left for `verify` to judge, never deleted from under it.
            self._closed = True
            self._lock_cm.__exit__(None, None, None)
            raise LakeError(
                f"{self._where()}: another writer committed this snapshot first (was the lock "
                "cleared while a backup ran?); this run made nothing visible: run "
                "`qbo-backup verify` on the realm"
            ) from None
        except BaseException:
            self.abort()
            raise
        self._closed = True
        self._lock_cm.__exit__(None, None, None)
        return SnapshotInfo.from_record(record)

    def _record(self, api_calls: int, extra: dict[str, Any]) -> dict[str, Any]:
        with self._guard:
            if self._busy:
                raise LakeError(f"{self._where()}: still writing {sorted(self._busy)}")
            stats = {k: dict(v) for k, v in sorted(self._entities.items())}
        if self.parent is not None:
            missing = sorted(set(self.parent.entities) - set(stats))
            if missing:
                raise LakeError(
                    f"{self._where()}: entities of the parent snapshot were not written: "
                    f"{', '.join(missing)} (write them, or carry them over with "
                    "write_entity(name, [], mode='cdc', qbo_count=None))"
                )
        for name, entity_stats in stats.items():
            expected = entity_stats.get("qbo_count")
            if expected is not None and entity_stats["live"] != expected:
                raise CountMismatchError(
                    self.realm.realm_id, self.snapshot_id, name, entity_stats["live"], expected
                )
        clash = sorted(set(extra) & _RESERVED)
        if clash:
            raise LakeError(f"{self._where()}: extra fields may not override {clash}")
        committed_at = datetime.now(UTC)
        totals: dict[str, float] = {
            key: sum(int(s.get(key) or 0) for s in stats.values())
            for key in ("live", "fetched", "upserts", "deletes", "versions_written", "bytes")
        }
        totals["api_calls"] = int(api_calls)
        totals["duration_s"] = round((committed_at - self.started_at).total_seconds(), 3)
        record: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "realm_id": self.realm.realm_id,
            "snapshot_id": self.snapshot_id,
            "parent_id": self.parent.snapshot_id if self.parent else None,
            "kind": self.kind,
            "status": LIVE,
            "server_time": self.server_time.isoformat(),
            "changed_since": self.changed_since.isoformat() if self.changed_since else None,
            "started_at": self.started_at.isoformat(),
            "committed_at": committed_at.isoformat(),
            "company_name": self.company_name,
            "entities": stats,
            "reports": sorted(self._reports),
            "totals": totals,
        }
        record.update(extra)
        return record

    def abort(self) -> None:
        """Remove everything this writer wrote and release the lock (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            for area in DATA_AREAS:
                self.realm.fs.remove_tree(self.realm._p(area, f"snapshot={self.snapshot_id}"))
        finally:
            self._lock_cm.__exit__(None, None, None)


class _EntityLanding:
    """The landing of one entity into a snapshot (one use).

    Incoming rows are spilled chunk by chunk to a private temporary folder, each run sorted by
    id. The narrow keys of the runs (id, content hash, status, time, arrival ``seq``) are then
    merged in id order and compared with the parent's live keys one id range at a time, which
    writes the manifest delta; the chosen rows stream from the sorted runs into the version
    file by a k-way merge holding about one small row group per run. Memory holds the
    parent's live keys (about 50 bytes a record, in Arrow) and one range; never the payloads,
    and never a hash table of every key.
    """

    def __init__(self, writer: SnapshotWriter, entity: str, mode: str) -> None:
        self.writer = writer
        self.realm = writer.realm
        self.entity = entity
        self.mode = mode
        self.versions_path = self.realm.versions_path(writer.snapshot_id, entity)
        self.manifest_path = self.realm.manifest_path(writer.snapshot_id, entity)
        self.checkpoint_path = self.realm.checkpoint_path(writer.snapshot_id, entity)
        self.spill = tempfile.mkdtemp(prefix="qbo-landing-")
        self.runs: list[str] = []
        self._run_names = 0
        self.seq = 0
        self.written = 0
        self.fetched = 0
        self._pq: pq.ParquetWriter | None = None
        self._sink: Any = None
        self.versions_bytes = 0
        """The size of the version file written (0 when none was)."""

    # The work -----------------------------------------------------------------------------
    def run(self, batches: Iterable[pa.RecordBatch | pa.Table]) -> dict[str, Any]:
        try:
            pending: list[pa.RecordBatch] = []
            rows = size = 0
            for item in batches:
                for batch in _as_batches(item):
                    batch = self._conform(batch)
                    if not batch.num_rows:
                        continue
                    pending.append(batch)
                    rows += batch.num_rows
                    size += batch.nbytes
                    if rows >= CHUNK_ROWS or size >= CHUNK_BYTES:
                        self._flush(pending)
                        pending, rows, size = [], 0, 0
            if pending:
                self._flush(pending)
            self._narrow_runs()
            return self._finish()
        finally:
            self._close_versions()
            shutil.rmtree(self.spill, ignore_errors=True)

    def _where(self) -> str:
        return self.writer._where(self.entity)

    def _conform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        schema = records.LANDING_SCHEMA
        arrays = []
        for field_ in schema:
            if field_.name in batch.schema.names:
                column = batch.column(field_.name)
                if column.type != field_.type:
                    try:
                        column = column.cast(field_.type)
                    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                        raise InvalidRecordError(
                            f"{self._where()}: column {field_.name} is not {field_.type}: {exc}"
                        ) from None
                arrays.append(column)
            elif field_.name in ("entity", "id", "content_hash", "payload"):
                raise InvalidRecordError(f"{self._where()}: batches lack column {field_.name}")
            else:
                arrays.append(pa.nulls(batch.num_rows, type=field_.type))
        out = pa.RecordBatch.from_arrays(arrays, schema=schema)
        if out.num_rows == 0:
            return out
        entity_col = out.column("entity")
        wrong = pc.fill_null(pc.not_equal(entity_col, self.entity), False)
        if pc.any(wrong).as_py():
            other = entity_col.filter(wrong)[0].as_py()
            raise InvalidRecordError(f"{self._where()}: batch holds a {other} row")
        if entity_col.null_count:
            out = out.set_column(0, "entity", pa.array([self.entity] * out.num_rows, pa.string()))
        status = out.column("status")
        deleted = pc.fill_null(pc.equal(status, records.DELETED), False)
        bad_status = pc.and_(pc.invert(deleted), pc.is_valid(status))
        if pc.any(bad_status).as_py():
            value = status.filter(bad_status)[0].as_py()
            raise InvalidRecordError(f"{self._where()}: unknown row status {value!r}")
        if out.column("id").null_count or pc.any(pc.equal(out.column("id"), "")).as_py():
            raise InvalidRecordError(f"{self._where()}: a row has no id")
        live = pc.invert(deleted)
        for col in ("content_hash", "payload"):
            missing = pc.and_(live, pc.is_null(out.column(col)))
            if pc.any(missing).as_py():
                rid = out.column("id").filter(missing)[0].as_py()
                raise InvalidRecordError(f"{self._where()} {rid}: row has no {col}")
        return out

    def _flush(self, pending: list[pa.RecordBatch]) -> None:
        """Spill a chunk of conformed rows to a local run file, sorted by id.

        Each row keeps its arrival order (``seq``); the sorted runs are merged into the
        version file later without ever sorting payloads again.
        """
        chunk = pa.Table.from_batches(pending, schema=records.LANDING_SCHEMA)
        pending.clear()
        n = chunk.num_rows
        chunk = chunk.append_column("seq", pa.array(range(self.seq, self.seq + n), pa.int64()))
        self.seq += n
        deleted = pc.fill_null(pc.equal(chunk["status"], records.DELETED), False)
        self.fetched += n - int(pc.sum(deleted.cast(pa.int64())).as_py() or 0)
        chunk = chunk.sort_by("id")
        path = self._run_path()
        pq.write_table(chunk, path, compression="lz4", row_group_size=_group_rows(chunk))
        self.runs.append(path)

    def _run_path(self) -> str:
        self._run_names += 1
        return os.path.join(self.spill, f"run-{self._run_names:06d}.parquet")

    def _narrow_runs(self) -> None:
        """Merge the runs, :data:`MERGE_FAN_IN` at a time, until at most that many are left.

        Each merged run is id-sorted like its sources and keeps every row with its ``seq``, so
        the diff and the final merge see the same rows; the final merge then holds at most
        ``MERGE_FAN_IN`` small row groups, however many chunks the entity filled.
        """
        while len(self.runs) > MERGE_FAN_IN:
            narrowed: list[str] = []
            for first in range(0, len(self.runs), MERGE_FAN_IN):
                group = self.runs[first : first + MERGE_FAN_IN]
                if len(group) == 1:
                    narrowed.extend(group)
                    continue
                path = self._run_path()
                with pq.ParquetWriter(path, _RUN_SCHEMA, compression="lz4") as out:
                    pending: list[pa.Table] = []
                    held = 0
                    for rows in _merge_runs(group, None):
                        pending.append(rows)
                        held += rows.nbytes
                        if held >= RUN_GROUP_BYTES:
                            table = pa.concat_tables(pending)
                            out.write_table(table, row_group_size=_group_rows(table))
                            pending, held = [], 0
                    if pending:
                        table = pa.concat_tables(pending)
                        out.write_table(table, row_group_size=_group_rows(table))
                for done in group:
                    os.remove(done)
                narrowed.append(path)
            self.runs = narrowed

    def _write_versions(self, rows: pa.Table) -> None:
        n = rows.num_rows
        if n == 0:
            return
        if self._pq is None:
            self._sink = self.realm.fs.open_write(self.versions_path)
            self._pq = pq.ParquetWriter(
                self._sink,
                records.VERSION_SCHEMA,
                compression="zstd",
                write_statistics=records.VERSION_STATISTICS,
                sorting_columns=[pq.SortingColumn(_ID_INDEX)],
            )
        self._pq.write_table(rows.cast(records.VERSION_SCHEMA), row_group_size=VERSION_ROW_GROUP)
        self.written += n

    def _close_versions(self) -> None:
        try:
            if self._pq is not None:
                self._pq.close()
                # What was written is the file's size: no request to ask the store for it.
                self.versions_bytes = int(self._sink.tell())
        finally:
            self._pq = None
            if self._sink is not None:
                self._sink.close()
                self._sink = None

    # Diff, manifest delta, statistics --------------------------------------------------------
    def _finish(self) -> dict[str, Any]:
        parent = self.writer.parent
        parent_stats = (parent.entities.get(self.entity) or {}) if parent else {}
        if self.mode == "cdc" and not self.runs:
            live = int(parent_stats.get("live") or 0)
            digest = parent_stats.get("digest")
            if digest is None:
                table = self.writer.parent_hashes(self.entity)
                live = table.num_rows
                digest = records.table_digest(table["id"], table["content_hash"])
            return {
                "mode": "unchanged",
                "live": live,
                "fetched": 0,
                "upserts": 0,
                "deletes": 0,
                "versions_written": 0,
                "bytes": 0,
                "digest": digest,
            }
        stats, keep = self._diff(parent_stats)
        if keep is not None:
            self._write_new_versions(*keep)
        self._close_versions()
        stats["bytes"] += self.versions_bytes
        stats["versions_written"] = self.written
        return stats

    def _diff(
        self, parent_stats: dict[str, Any]
    ) -> tuple[dict[str, Any], tuple[pa.BooleanArray, int] | None]:
        """The entity's statistics (versions not yet written), and which rows to write.

        The winning incoming keys and the parent's live manifest are walked together in id
        order (:mod:`qbo_pipeline.lake.key_diff`); the manifest delta is written as they go,
        any checkpoint after. Returns, when new versions are due, the mask of the arrival
        orders (``seq``) to write and how many rows that is.
        """
        diff = KeyDiff(self.writer.parent_hashes(self.entity), full=self.mode == "full")
        # Without a parent nothing can be stored already: the upserts' seq is all it takes.
        kept = ["id", "content_hash", "seq"] if self.writer.parent is not None else ["seq"]
        upserts: list[pa.Table] = []
        delta = _SortedFile(self.realm.fs, self.manifest_path, records.MANIFEST_SCHEMA)
        try:
            merged = _merge_runs(self.runs, None, columns=KEY_COLUMNS)
            for winners in itertools.chain(winning_keys(merged), [None]):
                change = diff.step(winners)
                delta.write(change.delta(self.entity))
                upserts.append(change.upserts.select(kept))
        finally:
            nbytes = delta.close()
        keep = self._versions_to_write(pa.concat_tables(upserts))
        stats: dict[str, Any] = {
            "mode": self.mode,
            "live": diff.live,
            "fetched": self.fetched,
            "upserts": diff.upserts,
            "deletes": diff.deletes,
            "versions_written": 0,
            "bytes": nbytes,
            "digest": diff.digest(parent_stats.get("digest")),
        }
        if self._wants_checkpoint(diff.upserts + diff.deletes, diff.live):
            stats["bytes"] += self._write_checkpoint(diff.parent)
            stats["checkpoint"] = True
        return stats, keep

    def _stored(self, upserts: pa.Table) -> pa.BooleanArray | None:
        """Which upsert keys a committed snapshot already stores (reverts); None for none.

        The parent's version files are searched by id, :data:`STORED_FILTER_MAX` upserts at
        a time, one scanned batch at a time.
        """
        parent = self.writer.parent
        if parent is None or upserts.num_rows == 0:
            return None
        infos = self.realm.versions.version_file_infos(parent.snapshot_id, self.entity)
        if not infos:
            return None
        files = list(infos)
        found: list[pa.Array] = []
        for start in range(0, upserts.num_rows, STORED_FILTER_MAX):
            part = upserts.slice(start, STORED_FILTER_MAX)
            wanted = _keys(part["id"], part["content_hash"])
            hit = pa.array([False] * part.num_rows, pa.bool_())
            expr = pc.field("id").isin(part["id"].combine_chunks())
            columns = ["id", "content_hash"]
            for batch in self.realm.fs.scan(files, records.VERSION_SCHEMA, columns, expr, infos):
                if batch.num_rows:
                    old = _keys(batch.column(0), batch.column(1))
                    hit = pc.or_(hit, pc.is_in(wanted, value_set=old))
            found.append(hit)
        return pa.concat_arrays(found)

    def _versions_to_write(self, upserts: pa.Table) -> tuple[pa.BooleanArray, int] | None:
        """Which arrival orders (``seq``) to write: one per upsert key not stored before.

        None when there is nothing to write.
        """
        stored = self._stored(upserts)
        seqs = upserts["seq"].combine_chunks()
        if stored is not None:
            seqs = seqs.filter(pc.invert(stored))
        if not len(seqs):
            return None
        keep = pc.is_in(pa.array(range(self.seq), pa.int64()), value_set=seqs)
        return keep, len(seqs)

    def _write_new_versions(self, keep: pa.BooleanArray, expected: int) -> None:
        """Write the kept rows, sorted by id.

        The payloads stream from the id-sorted runs through a k-way merge, so memory holds
        about one small row group per run (at most MERGE_FAN_IN runs) whatever the entity's
        size.
        """
        constants = {"realm_id": self.realm.realm_id, "snapshot_id": self.writer.snapshot_id}
        pending: list[pa.Table] = []
        held = 0
        group = VERSION_ROW_GROUP
        for rows in _merge_runs(self.runs, keep):
            if not rows.num_rows:
                continue
            if not pending and not self.written:
                group = _rows_per_group(rows, VERSION_ROW_GROUP, VERSION_GROUP_BYTES)
            pending.append(rows)
            held += rows.num_rows
            while held >= group:
                table = pa.concat_tables(pending)
                self._write_versions(_as_versions(table.slice(0, group), constants))
                rest = table.slice(group)
                pending, held = [rest], rest.num_rows
        if held:
            self._write_versions(_as_versions(pa.concat_tables(pending), constants))
        if self.written != expected:
            raise LakeError(
                f"{self._where()}: wrote {self.written} record versions, expected {expected}"
            )

    def _write_checkpoint(self, parent: pa.Table) -> int:
        """Write the entity's whole live manifest: the parent's, folded with this delta."""
        base = parent.append_column("op", pa.array([records.UPSERT] * parent.num_rows, pa.string()))
        base = base.select(["id", "op", "content_hash"])
        delta = self.realm.fs.read_parquet(self.manifest_path, columns=["id", "op", "content_hash"])
        live = fold_deltas(
            [
                base.append_column("seq", pa.array([0] * base.num_rows, pa.int32())),
                delta.append_column("seq", pa.array([1] * delta.num_rows, pa.int32())),
            ]
        )
        entity = pa.array([self.entity] * live.num_rows, pa.string())
        out = _SortedFile(self.realm.fs, self.checkpoint_path, records.LIVE_MANIFEST_SCHEMA)
        try:
            out.write(live.add_column(0, "entity", entity))
        finally:
            nbytes = out.close()
        return nbytes

    def _wants_checkpoint(self, delta_rows: int, live: int) -> bool:
        """Whether this snapshot should keep a full manifest of the entity (FORMAT.md)."""
        if self.writer.parent is None or live == 0 or delta_rows == 0:
            return False
        rows, links = delta_rows, 1
        for link in reversed(self.writer.parent_chain()):
            stats = link.entities.get(self.entity) or {}
            if stats.get("checkpoint") or link.parent_id is None:
                break
            changed = int(stats.get("upserts") or 0) + int(stats.get("deletes") or 0)
            rows += changed
            links += 1 if changed else 0
        return rows >= CHECKPOINT_FRACTION * live or links >= CHECKPOINT_MAX_LINKS


class _SortedRun:
    """One id-sorted spilled run, read a row group at a time, keeping only the wanted rows."""

    def __init__(
        self, path: str, keep: pa.BooleanArray | None, columns: list[str] | None = None
    ) -> None:
        self._file = streamed_parquet(path)
        self._columns = columns
        self._groups = self._file.metadata.num_row_groups
        self._next = 0
        self._keep = keep
        self._kept: pa.Table | None = None
        self.read_through: str | None = None
        self.done = False

    def advance(self) -> None:
        """Read the next row group; remember the highest id read, hold the wanted rows.

        One row group at a time (``read_row_group``): ``iter_batches`` reads megabytes ahead
        per file, which across many runs would grow with the entity's size.
        """
        if self._next >= self._groups:
            self.done = True
            self._file.close()
            return
        group = self._file.read_row_group(self._next, columns=self._columns)
        self._next += 1
        if group.num_rows == 0:
            return
        self.read_through = group.column("id")[-1].as_py()
        if self._keep is None:
            wanted = group
        else:
            wanted = group.filter(self._keep.take(group.column("seq")))
        if wanted.num_rows:
            self._kept = wanted if self._kept is None else pa.concat_tables([self._kept, wanted])

    def take_through(self, high: str | None) -> pa.Table | None:
        """Remove and return the held rows with ``id <= high`` (all of them for None)."""
        kept = self._kept
        if kept is None or kept.num_rows == 0:
            return None
        if high is None:
            self._kept = None
            return kept
        ids = kept["id"]
        cut = int(pc.sum(pc.less_equal(ids, high).cast(pa.int64())).as_py() or 0)
        if cut == 0:
            return None
        self._kept = kept.slice(cut) if cut < kept.num_rows else None
        return kept.slice(0, cut)


def _merge_runs(
    paths: list[str], keep: pa.BooleanArray | None, *, columns: list[str] | None = None
) -> Iterator[pa.Table]:
    """The rows of the id-sorted runs whose ``seq`` is kept (all for None), in id order.

    ``columns`` reads only those (they must include ``id``, and ``seq`` with ``keep``).

    Every run is read up to a common frontier (the lowest id some unfinished run has read
    through); rows up to it can no longer be preceded by an unread row, so they go out.
    """
    runs = [_SortedRun(path, keep, columns) for path in paths]
    for run in runs:
        run.advance()
    while True:
        active = [run for run in runs if not run.done]
        unread = [run for run in active if run.read_through is None]
        if unread:
            for run in unread:
                run.advance()
            continue
        frontier = min(
            (run.read_through for run in active if run.read_through is not None), default=None
        )
        parts = [t for t in (run.take_through(frontier) for run in runs) if t is not None]
        if parts:
            rows = pa.concat_tables(parts)
            yield rows.sort_by("id") if len(parts) > 1 else rows
        if not active:
            return
        for run in active:
            if run.read_through == frontier:
                run.advance()


def _rows_per_group(rows: pa.Table, most_rows: int, most_bytes: int) -> int:
    """Rows per row group for rows like these: up to ``most_rows``, about ``most_bytes`` each."""
    if rows.num_rows == 0:
        return most_rows
    per_row = max(1, rows.nbytes // rows.num_rows)
    return max(1, min(most_rows, most_bytes // per_row))


def _group_rows(rows: pa.Table) -> int:
    """Rows per row group of a spilled run: up to RUN_ROW_GROUP, about RUN_GROUP_BYTES each."""
    return _rows_per_group(rows, RUN_ROW_GROUP, RUN_GROUP_BYTES)


def _as_versions(rows: pa.Table, constants: dict[str, str]) -> pa.Table:
    """Spilled landing rows as ``VERSION_SCHEMA`` rows of this snapshot."""
    n = rows.num_rows
    columns = [pa.array([constants[name]] * n, pa.string()) for name in ("realm_id", "snapshot_id")]
    columns += [rows[name] for name in records.VERSION_SCHEMA.names[2:]]
    return pa.Table.from_arrays(columns, schema=records.VERSION_SCHEMA)


def _keys(ids: pa.Array | pa.ChunkedArray, hashes: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``id``, unit separator, ``content_hash``: one comparable key per version."""
    joined = pc.binary_join_element_wise(ids, hashes, "\x1f")
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


class _SortedFile:
    """A Parquet file of rows that arrive in id order, written a large row group at a time.

    Nothing is created until the first row arrives: no rows, no file (``close`` returns 0).
    """

    def __init__(self, fs: Any, path: str, schema: pa.Schema) -> None:
        self._fs = fs
        self._path = path
        self._schema = schema
        self._pending: list[pa.Table] = []
        self._held = 0
        self._sink: Any = None
        self._out: pq.ParquetWriter | None = None

    def write(self, rows: pa.Table) -> None:
        if not rows.num_rows:
            return
        self._pending.append(rows.cast(self._schema))
        self._held += rows.num_rows
        if self._held >= MANIFEST_ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if not self._held:
            return
        if self._out is None:
            self._sink = self._fs.open_write(self._path)
            self._out = pq.ParquetWriter(
                self._sink,
                self._schema,
                compression="zstd",
                sorting_columns=[pq.SortingColumn(self._schema.get_field_index("id"))],
            )
        table = pa.concat_tables(self._pending)
        self._pending, self._held = [], 0
        self._out.write_table(table, row_group_size=MANIFEST_ROW_GROUP)

    def close(self) -> int:
        """Write what is left and close; the file's size (0 when there was nothing)."""
        size = 0
        try:
            self._flush()
        finally:
            if self._out is not None:
                self._out.close()
                size = int(self._sink.tell())  # the bytes written: no request to ask them
            if self._sink is not None:
                self._sink.close()
        return size


def _as_batches(item: pa.RecordBatch | pa.Table) -> list[pa.RecordBatch]:
    if isinstance(item, pa.Table):
        return item.to_batches()
    if isinstance(item, pa.RecordBatch):
        return [item]
    raise InvalidRecordError(
        "write_entity takes Arrow record batches (records.rows_to_batch), "
        f"got {type(item).__name__}"
    )


def _entity(name: str) -> catalogue.Entity:
    try:
        return catalogue.get(name)
    except catalogue.UnknownEntityError as exc:
        raise LakeError(str(exc)) from None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
