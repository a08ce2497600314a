"""Garbage collection: free what no live snapshot needs, and the leftovers of crashed runs.

A version row is needed when its ``(entity, id, content_hash)`` is live in some live snapshot.
That is computed from the manifest deltas alone, in one vectorised pass per entity: an upsert at
chain position ``i`` stays live until the next op on the same id at position ``j``, so it is needed
exactly when a live snapshot sits in ``[i, j)``. Version files are then rewritten without the
other rows (temp file + replace), emptied ones deleted, as are the reports of retired snapshots,
unreferenced attachments and orphans. Runs under the backup lock.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from qbo_pipeline.lake import records
from qbo_pipeline.lake.errors import LakeError
from qbo_pipeline.lake.lake import DATA_AREAS, RETIRED, RealmLake, SnapshotInfo


@dataclass
class GCResult:
    """What garbage collection removed (or would remove, in a dry run).

    In a dry run ``bytes_removed`` estimates rewritten files' savings by their share of rows.
    """

    files_removed: list[str] = field(default_factory=list)
    files_rewritten: list[str] = field(default_factory=list)
    rows_removed: int = 0
    bytes_removed: int = 0
    dry_run: bool = False


def collect_garbage(
    realm: RealmLake, *, dry_run: bool = False, assume_retired: Collection[str] = ()
) -> GCResult:
    """Remove versions, reports, attachments and orphans that no live snapshot needs.

    Args:
        realm: The company.
        dry_run: Only report what would be removed.
        assume_retired: In a dry run, snapshots to count as retired (what a retention dry run
            would drop), so that the preview matches the real prune.

    Raises:
        LockHeldError: If a backup of the realm is running.
        LakeError: If ``assume_retired`` is given outside a dry run.
    """
    from qbo_pipeline.lake.lock import held_or_acquire

    if assume_retired and not dry_run:
        raise LakeError(
            f"realm {realm.realm_id}: assume_retired is only for dry runs; retire snapshots"
            " with apply_retention first"
        )
    result = GCResult(dry_run=dry_run)
    with held_or_acquire(realm):
        _orphans(realm, result)
        chain = [
            replace(info, status=RETIRED) if info.snapshot_id in assume_retired else info
            for info in realm.snapshots(include_retired=True)
        ]
        names = sorted({name for info in chain for name in info.entities})
        blobs: set[str] = set()
        for name in names:
            needed = needed_keys(realm, chain, name)
            _sweep_versions(realm, chain, name, needed, result)
            if name == "Attachable":
                blobs |= _blobs(realm, chain, name, needed)
        for info in chain:
            if not info.is_live:
                for path in realm.fs.find(realm._p("reports", f"snapshot={info.snapshot_id}")):
                    _remove(realm, path, result)
        _sweep_attachments(realm, blobs, result)
    return result


def needed_keys(realm: RealmLake, chain: list[SnapshotInfo], entity: str) -> pa.ChunkedArray:
    """The id and content hash keys of an entity that are live in at least one live snapshot."""
    parts = []
    for seq, info in enumerate(chain):
        delta = realm.manifests.read_delta(info, entity)
        if delta is not None and delta.num_rows:
            parts.append(delta.append_column("seq", pa.array([seq] * delta.num_rows, pa.int64())))
    if not parts:
        return pa.chunked_array([], pa.string())
    table = pa.concat_tables(parts).sort_by([("id", "ascending"), ("seq", "ascending")])
    ids = table["id"].combine_chunks()
    seqs = table["seq"].combine_chunks()
    n = len(ids)
    end = len(chain)
    if n > 1:
        same_next = pc.equal(ids.slice(1), ids.slice(0, n - 1))
        next_seq = pc.if_else(same_next, seqs.slice(1), pa.scalar(end, pa.int64()))
        next_seq = pa.concat_arrays([next_seq, pa.array([end], pa.int64())])
    else:
        next_seq = pa.array([end], pa.int64())
    # live_before[k]: live snapshots at chain positions < k.
    live_before = [0]
    for info in chain:
        live_before.append(live_before[-1] + (1 if info.is_live else 0))
    counts = pa.array(live_before, pa.int64())
    alive = pc.greater(pc.subtract(pc.take(counts, next_seq), pc.take(counts, seqs)), 0)
    keep = pc.and_(alive, pc.equal(table["op"].combine_chunks(), records.UPSERT))
    kept = table.filter(keep)
    return pc.unique(
        pc.binary_join_element_wise(kept["id"], kept["content_hash"], "\x1f").combine_chunks()
    )


def _keys(table: pa.Table) -> pa.ChunkedArray:
    return pc.binary_join_element_wise(table["id"], table["content_hash"], "\x1f")


def _sweep_versions(
    realm: RealmLake,
    chain: list[SnapshotInfo],
    entity: str,
    needed: pa.Array | pa.ChunkedArray,
    result: GCResult,
) -> None:
    fs = realm.fs
    for info in chain:
        path = realm.versions_path(info.snapshot_id, entity)
        if not (info.entities.get(entity) or {}).get("versions_written") or not fs.isfile(path):
            continue
        keys = fs.read_parquet(path, columns=["id", "content_hash"])
        mask = pc.is_in(_keys(keys), value_set=needed)
        kept = int(pc.sum(mask.cast(pa.int64())).as_py() or 0)
        if kept == keys.num_rows:
            continue
        result.rows_removed += keys.num_rows - kept
        if kept == 0:
            _remove(realm, path, result)
            continue
        before = fs.size(path)
        result.files_rewritten.append(path)
        if result.dry_run:  # estimate: the file's bytes in proportion to the rows removed
            result.bytes_removed += before * (keys.num_rows - kept) // max(1, keys.num_rows)
            continue
        tmp = f"{path}.rewrite"
        source = fs.parquet_file(path)
        offset = 0
        flags = mask.combine_chunks()
        with (
            fs.open_write(tmp) as sink,
            pq.ParquetWriter(
                sink,
                records.VERSION_SCHEMA,
                compression="zstd",
                write_statistics=records.VERSION_STATISTICS,
            ) as out,
        ):
            for group in range(source.num_row_groups):
                table = source.read_row_group(group)
                part = flags.slice(offset, table.num_rows)
                offset += table.num_rows
                selected = table.filter(part)
                if selected.num_rows:
                    out.write_table(selected.cast(records.VERSION_SCHEMA))
        fs.replace(tmp, path)
        result.bytes_removed += max(0, before - fs.size(path))


def _blobs(
    realm: RealmLake, chain: list[SnapshotInfo], entity: str, needed: pa.Array | pa.ChunkedArray
) -> set[str]:
    out: set[str] = set()
    for info in chain:
        path = realm.versions_path(info.snapshot_id, entity)
        if not realm.fs.isfile(path):
            continue
        table = realm.fs.read_parquet(path, columns=["id", "content_hash", "blob_sha256"])
        table = table.filter(pc.is_in(_keys(table), value_set=needed))
        out |= {b for b in table["blob_sha256"].to_pylist() if b}
    return out


def _sweep_attachments(realm: RealmLake, blobs: set[str], result: GCResult) -> None:
    for path in realm.fs.find(realm._p("attachments", "sha256")):
        if path.rsplit("/", 1)[-1] not in blobs:
            _remove(realm, path, result)


def _orphans(realm: RealmLake, result: GCResult) -> None:
    committed = {info.snapshot_id for info in realm.snapshots(include_retired=True)}
    for area in DATA_AREAS:
        for name in realm.fs.listdir(realm._p(area)):
            if name.startswith("snapshot=") and name.removeprefix("snapshot=") not in committed:
                for path in realm.fs.find(realm._p(area, name)):
                    _remove(realm, path, result)
    for path in realm.fs.find(realm._p("_staging")):
        _remove(realm, path, result)
    if not result.dry_run:
        realm.clean_orphans()


def _remove(realm: RealmLake, path: str, result: GCResult) -> None:
    try:
        size = realm.fs.size(path)
    except (FileNotFoundError, OSError):
        return
    result.files_removed.append(path)
    result.bytes_removed += size
    if not result.dry_run:
        realm.fs.remove(path)
