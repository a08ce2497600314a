"""Write one snapshot: new and changed record versions, manifest deltas, reports, commit record.

A :class:`SnapshotWriter` writes its data files under their final paths, where nobody looks until
the commit record exists; :meth:`SnapshotWriter.commit` writes that record last, atomically. An
exception inside ``with realm.begin(...) as writer:`` aborts and removes what was written.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from qbo_pipeline import entities as catalogue
from qbo_pipeline.lake import records
from qbo_pipeline.lake.errors import CountMismatchError, InvalidRecordError, LakeError
from qbo_pipeline.lake.lake import (
    FORMAT_VERSION,
    LIVE,
    RealmLake,
    SnapshotInfo,
    check_name,
    snapshot_id_for,
    snapshot_time,
)

if TYPE_CHECKING:
    from types import TracebackType

MODES = ("full", "cdc")
KINDS = ("full", "incremental")
CHUNK_ROWS = 50_000
"""Rows buffered before a chunk is diffed against the parent and written (one row group)."""
CHUNK_BYTES = 64 << 20
"""Payload bytes buffered before a chunk is flushed, whatever its row count."""
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
_KEY_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string()),
        pa.field("content_hash", pa.string()),
        pa.field("deleted", pa.bool_()),
        pa.field("last_updated_at", pa.timestamp("us", tz="UTC")),
        pa.field("seq", pa.int64()),
    ]
)


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
        self._parent_cache: dict[str, pa.Table] = {}

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
    def parent_hashes(self, entity: str) -> pa.Table:
        """The parent's live ``id, content_hash`` of an entity, sorted by id (empty if none)."""
        name = _entity(entity).name
        cached = self._parent_cache.get(name)
        if cached is not None:
            return cached
        if self.parent is None or name not in self.parent.entities:
            table = pa.table(
                {"id": pa.array([], pa.string()), "content_hash": pa.array([], pa.string())}
            )
        else:
            chain = self.realm.chain(self.parent.snapshot_id)
            table = self.realm._fold(chain, name)
        self._parent_cache[name] = table
        return table

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

        Streams: the batches are diffed against the parent chunk by chunk, and only the keys and
        hashes are kept in memory, never the payloads.

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
            self.realm.report_path(self.snapshot_id, name), records.canonical_bytes(payload)
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
                ``extra`` overrides a reserved field (the snapshot is aborted).
        """
        self._check_open()
        try:
            record = self._record(api_calls, extra or {})
            self.realm.write_commit(record)
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
        totals = {
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
            for area in ("versions", "manifests", "reports"):
                self.realm.fs.remove_tree(self.realm._p(area, f"snapshot={self.snapshot_id}"))
        finally:
            self._lock_cm.__exit__(None, None, None)


class _EntityLanding:
    """The landing of one entity into a snapshot (one use)."""

    def __init__(self, writer: SnapshotWriter, entity: str, mode: str) -> None:
        self.writer = writer
        self.realm = writer.realm
        self.entity = entity
        self.mode = mode
        self.parent = writer.parent_hashes(entity)
        self.parent_keyed = self.parent.rename_columns(["id", "parent_hash"])
        self.versions_path = self.realm.versions_path(writer.snapshot_id, entity)
        self.manifest_path = self.realm.manifest_path(writer.snapshot_id, entity)
        self.keys: list[pa.Table] = []
        self.seq = 0
        self.written = 0
        self.fetched = 0
        self._pq: pq.ParquetWriter | None = None
        self._sink: Any = None

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
        finally:
            self._close_versions()
        return self._finish()

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
            out = out.set_column(0, "entity", pa.array([self.entity] * out.num_rows))
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
        chunk = pa.Table.from_batches(pending).combine_chunks()
        n = chunk.num_rows
        deleted = pc.fill_null(pc.equal(chunk["status"], records.DELETED), False)
        keys = pa.table(
            {
                "id": chunk["id"],
                "content_hash": chunk["content_hash"],
                "deleted": deleted,
                "last_updated_at": chunk["last_updated_at"],
                "seq": pa.array(range(self.seq, self.seq + n), pa.int64()),
            },
            schema=_KEY_SCHEMA,
        )
        self.seq += n
        self.keys.append(keys)
        self.fetched += n - int(pc.sum(deleted.cast(pa.int64())).as_py() or 0)
        parent_hash = self._parent_hash_of(keys.select(["id", "seq"]))
        same = pc.fill_null(pc.equal(parent_hash, chunk["content_hash"]), False)
        changed = pc.and_(pc.invert(deleted), pc.invert(same))
        rows = chunk.filter(changed)
        if rows.num_rows:
            self._write_versions(rows.sort_by("id"))

    def _parent_hash_of(self, keys: pa.Table) -> pa.ChunkedArray:
        """The parent's hash for each key (null when the id is new), in the keys' order."""
        if self.parent_keyed.num_rows == 0:
            return pa.chunked_array([pa.nulls(keys.num_rows, pa.string())])
        # The probe side (left) is the parent; the build side (right) is the small chunk.
        joined = self.parent_keyed.join(keys, keys="id", join_type="right outer")
        joined = joined.sort_by("seq")
        return joined["parent_hash"]

    def _write_versions(self, rows: pa.Table) -> None:
        n = rows.num_rows
        columns = {
            "realm_id": pa.array([self.realm.realm_id] * n, pa.string()),
            "snapshot_id": pa.array([self.writer.snapshot_id] * n, pa.string()),
        }
        table = pa.table(
            {
                name: columns[name] if name in columns else rows[name]
                for name in records.VERSION_SCHEMA.names
            },
            schema=records.VERSION_SCHEMA,
        )
        if self._pq is None:
            self._sink = self.realm.fs.open_write(self.versions_path)
            self._pq = pq.ParquetWriter(self._sink, records.VERSION_SCHEMA, compression="zstd")
        self._pq.write_table(table, row_group_size=CHUNK_ROWS)
        self.written += n

    def _close_versions(self) -> None:
        try:
            if self._pq is not None:
                self._pq.close()
        finally:
            self._pq = None
            if self._sink is not None:
                self._sink.close()
                self._sink = None

    # Diff, manifest delta, statistics --------------------------------------------------------
    def _finish(self) -> dict[str, Any]:
        keys = pa.concat_tables(self.keys) if self.keys else _KEY_SCHEMA.empty_table()
        parent_stats = (
            (self.writer.parent.entities.get(self.entity) or {}) if self.writer.parent else {}
        )
        if self.mode == "cdc" and keys.num_rows == 0:
            return {
                "mode": "unchanged",
                "live": self.parent.num_rows,
                "fetched": 0,
                "upserts": 0,
                "deletes": 0,
                "versions_written": 0,
                "bytes": 0,
                "digest": parent_stats.get("digest")
                or records.table_digest(self.parent["id"], self.parent["content_hash"]),
            }
        winners = _winners(keys)
        is_deleted = winners["deleted"]
        incoming = winners.filter(pc.invert(is_deleted)).select(["id", "content_hash"])
        gone = winners.filter(is_deleted).select(["id"])
        # Upserts: incoming keys whose hash differs from the parent's (or that are new).
        probe = incoming.join(self.parent_keyed, keys="id", join_type="left outer")
        same = pc.fill_null(pc.equal(probe["parent_hash"], probe["content_hash"]), False)
        upserts = probe.filter(pc.invert(same)).select(["id", "content_hash", "parent_hash"])
        # Deletes: parent keys that left.
        if self.mode == "full":
            delete_mask = pc.invert(pc.is_in(self.parent["id"], value_set=incoming["id"]))
        else:
            delete_mask = pc.is_in(self.parent["id"], value_set=gone["id"])
        deletes = self.parent.filter(delete_mask)
        live_count = (
            self.parent.num_rows
            + (upserts.num_rows - pc.count(upserts["parent_hash"]).as_py())
            - deletes.num_rows
        )
        digest = self._digest(parent_stats, upserts, deletes)
        stored = self._already_stored(upserts)
        expected_rows = upserts.num_rows - stored.num_rows
        if self.written != expected_rows or stored.num_rows:
            self._rewrite_versions(upserts, stored)
        else:
            self.written = expected_rows
        nbytes = self._write_delta(upserts, deletes)
        if self.written and self.realm.fs.isfile(self.versions_path):
            nbytes += self.realm.fs.size(self.versions_path)
        return {
            "mode": self.mode,
            "live": live_count,
            "fetched": self.fetched,
            "upserts": upserts.num_rows,
            "deletes": deletes.num_rows,
            "versions_written": self.written,
            "bytes": nbytes,
            "digest": digest,
        }

    def _digest(self, parent_stats: dict[str, Any], upserts: pa.Table, deletes: pa.Table) -> str:
        """Update the parent's digest by the delta (the digest is a sum)."""
        parent_digest = parent_stats.get("digest")
        if parent_digest is None:
            base = int(
                records.table_digest(self.parent["id"], self.parent["content_hash"]),
                16,
            )
        else:
            base = int(parent_digest, 16)
        replaced = upserts.filter(pc.is_valid(upserts["parent_hash"]))
        removed_ids = replaced["id"].to_pylist() + deletes["id"].to_pylist()
        removed_hashes = replaced["parent_hash"].to_pylist() + deletes["content_hash"].to_pylist()
        minus = int(records.key_digest(removed_ids, removed_hashes), 16)
        plus = int(records.table_digest(upserts["id"], upserts["content_hash"]), 16)
        return f"{(base - minus + plus) % (1 << 64):016x}"

    def _already_stored(self, upserts: pa.Table) -> pa.Table:
        """Upsert keys that a committed snapshot already stores (a record back to old content)."""
        empty = pa.table(
            {"id": pa.array([], pa.string()), "content_hash": pa.array([], pa.string())}
        )
        if self.writer.parent is None or upserts.num_rows == 0:
            return empty
        files = self.realm.version_files(self.writer.parent.snapshot_id, self.entity)
        if not files:
            return empty
        wanted = upserts.select(["id", "content_hash"])
        candidates = self.realm.fs.scan(
            files,
            records.VERSION_SCHEMA,
            ["id", "content_hash"],
            pc.field("id").isin(wanted["id"].combine_chunks()),
        ).read_all()
        found = candidates.filter(
            pc.is_in(_key_strings(candidates), value_set=_key_strings(wanted).combine_chunks())
        )
        found = found.group_by(["id", "content_hash"]).aggregate([])
        return found.cast(empty.schema)

    def _rewrite_versions(self, upserts: pa.Table, stored: pa.Table) -> None:
        """Keep exactly one row per upsert key not stored before (rare: duplicates, reverts)."""
        if self.written == 0:
            self.written = 0
            return
        fs = self.realm.fs
        wanted = upserts.select(["id", "content_hash"])
        if stored.num_rows:
            stored_keys = _key_strings(stored)
            wanted = wanted.filter(pc.invert(pc.is_in(_key_strings(wanted), value_set=stored_keys)))
        source = fs.parquet_file(self.versions_path)
        file_keys = source.read(columns=["id", "content_hash"])
        key_strings = _key_strings(file_keys)
        needed = pc.is_in(key_strings, value_set=_key_strings(wanted))
        positions = pa.table(
            {"k": key_strings, "pos": pa.array(range(file_keys.num_rows), pa.int64())}
        ).filter(needed)
        first = positions.group_by("k", use_threads=False).aggregate([("pos", "min")])
        keep = pc.is_in(pa.array(range(file_keys.num_rows), pa.int64()), value_set=first["pos_min"])
        tmp = f"{self.versions_path}.rewrite"
        kept = 0
        with (
            fs.open_write(tmp) as sink,
            pq.ParquetWriter(sink, records.VERSION_SCHEMA, compression="zstd") as out,
        ):
            offset = 0
            for group in range(source.num_row_groups):
                table = source.read_row_group(group)
                mask = pa.array(keep[offset : offset + table.num_rows])
                offset += table.num_rows
                selected = table.filter(mask)
                if selected.num_rows:
                    out.write_table(selected.cast(records.VERSION_SCHEMA))
                    kept += selected.num_rows
        if kept:
            fs.replace(tmp, self.versions_path)
        else:
            fs.remove(tmp)
            fs.remove(self.versions_path)
        self.written = kept

    def _write_delta(self, upserts: pa.Table, deletes: pa.Table) -> int:
        n_up, n_del = upserts.num_rows, deletes.num_rows
        if n_up + n_del == 0:
            return 0
        delta = pa.table(
            {
                "entity": pa.array([self.entity] * (n_up + n_del), pa.string()),
                "id": pa.concat_arrays(
                    [upserts["id"].combine_chunks(), deletes["id"].combine_chunks()]
                ),
                "op": pa.array([records.UPSERT] * n_up + [records.DELETE] * n_del, pa.string()),
                "content_hash": pa.concat_arrays(
                    [upserts["content_hash"].combine_chunks(), pa.nulls(n_del, pa.string())]
                ),
            },
            schema=records.MANIFEST_SCHEMA,
        ).sort_by("id")
        with self.realm.fs.open_write(self.manifest_path) as sink:
            pq.write_table(delta, sink, compression="zstd", row_group_size=1 << 20)
        return self.realm.fs.size(self.manifest_path)


def _winners(keys: pa.Table) -> pa.Table:
    """One key row per id: a deletion wins, then the newest ``LastUpdatedTime``, then arrival."""
    if keys.num_rows == 0:
        return keys
    epoch = pa.scalar(0, pa.timestamp("us", tz="UTC"))
    keys = keys.set_column(3, "updated", pc.fill_null(keys["last_updated_at"], epoch))
    ordered = keys.sort_by(
        [
            ("id", "ascending"),
            ("deleted", "descending"),
            ("updated", "descending"),
            ("seq", "descending"),
        ]
    )
    ids = ordered["id"].combine_chunks()
    if len(ids) == 1:
        return ordered
    first = pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1))
    keep = pa.concat_arrays([pa.array([True]), first])
    return ordered.filter(keep)


def _key_strings(table: pa.Table) -> pa.ChunkedArray:
    return pc.binary_join_element_wise(table["id"], table["content_hash"], "\x1f")


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
