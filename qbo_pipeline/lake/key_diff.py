"""An entity's landing compared with its parent snapshot on narrow keys, one id range at a time.

The landing's spilled runs are sorted by id, and so is the parent's live manifest. Both are
walked together in id order: :func:`winning_keys` picks each id's winning row from the merged
runs, a chunk at a time, and :class:`KeyDiff` compares each chunk with the parent's rows of the
same id range. Memory holds the parent's live keys (about 50 bytes a record) and one chunk,
never a hash table of every key.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from qbo_pipeline.lake import records

KEY_COLUMNS = ["id", "status", "last_updated_at", "seq", "content_hash"]
"""The columns of a spilled run the diff reads (never the payloads)."""

CHUNK_ROWS = 16_384
"""Merged rows gathered before their winners are picked and compared with the parent."""

_EPOCH = pa.scalar(0, pa.timestamp("us", tz="UTC"))
_WINNER_ORDER = [
    ("id", "ascending"),
    ("deleted", "descending"),
    ("updated", "descending"),
    ("seq", "descending"),
]
_UPSERT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string()),
        pa.field("content_hash", pa.string()),
        pa.field("seq", pa.int64()),
        pa.field("parent_hash", pa.string()),
    ]
)
_NO_WINNERS = pa.table(
    {
        "id": pa.array([], pa.string()),
        "deleted": pa.array([], pa.bool_()),
        "seq": pa.array([], pa.int64()),
        "content_hash": pa.array([], pa.string()),
    }
)


def winning_keys(merged: Iterable[pa.Table], chunk_rows: int = CHUNK_ROWS) -> Iterator[pa.Table]:
    """Each id's winning row of id-sorted merged rows (:data:`KEY_COLUMNS`), in id order.

    Per id, a Deleted row wins, then the newest ``last_updated_at`` (none counts as the
    oldest), then the last to arrive (the highest ``seq``): FORMAT.md's order rule. Yields
    chunks of ``id, deleted, seq, content_hash``, one row per id; an id never spans two chunks.
    """
    pending: list[pa.Table] = []
    held = 0
    for rows in merged:
        if not rows.num_rows:
            continue
        pending.append(rows)
        held += rows.num_rows
        if held < chunk_rows:
            continue
        table = pa.concat_tables(pending)
        # The rows of the last id are held back: the next merged rows may hold more of it.
        last = pc.equal(table["id"], table["id"][-1])
        tail = int(pc.sum(last.cast(pa.int64())).as_py() or 0)
        body = table.slice(0, table.num_rows - tail)
        pending, held = [table.slice(table.num_rows - tail)], tail
        if body.num_rows:
            yield _winners(body)
    if held:
        yield _winners(pa.concat_tables(pending))


def _winners(rows: pa.Table) -> pa.Table:
    deleted = pc.fill_null(pc.equal(rows["status"], records.DELETED), False)
    updated = pc.fill_null(rows["last_updated_at"], _EPOCH)
    ranked = pa.table(
        {
            "id": rows["id"],
            "deleted": deleted,
            "updated": updated,
            "seq": rows["seq"],
            "content_hash": rows["content_hash"],
        }
    )
    ranked = ranked.take(pc.sort_indices(ranked, sort_keys=_WINNER_ORDER))
    ids = ranked["id"].combine_chunks()
    first = pa.concat_arrays(
        [pa.array([True]), pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1))]
    )
    return ranked.filter(first).select(["id", "deleted", "seq", "content_hash"])


@dataclass
class RangeDiff:
    """What one id range changes.

    ``upserts``: ``id, content_hash, seq, parent_hash``; ``deletes``: the parent's
    ``id, content_hash``; both sorted by id.
    """

    upserts: pa.Table
    deletes: pa.Table

    def delta(self, entity: str) -> pa.Table:
        """The range's manifest delta rows (``records.MANIFEST_SCHEMA``), sorted by id."""
        ups, dels = self.upserts, self.deletes
        upserted = pa.table(
            {
                "id": ups["id"],
                "op": pa.array([records.UPSERT] * ups.num_rows, pa.string()),
                "content_hash": ups["content_hash"],
            }
        )
        deleted = pa.table(
            {
                "id": dels["id"],
                "op": pa.array([records.DELETE] * dels.num_rows, pa.string()),
                "content_hash": pa.nulls(dels.num_rows, pa.string()),
            }
        )
        rows = pa.concat_tables([upserted, deleted]).sort_by("id")
        constant = pa.array([entity] * rows.num_rows, pa.string())
        return rows.add_column(0, "entity", constant).cast(records.MANIFEST_SCHEMA)


class KeyDiff:
    """Compares winning incoming keys with the parent's live manifest, range after range.

    ``full`` (a full read of the entity): a parent id no live winner has is deleted.
    Otherwise (changes only), a parent id is deleted only by a Deleted winner.
    Keeps the counts and the digest's parts as it goes.
    """

    def __init__(self, parent: pa.Table, *, full: bool) -> None:
        self.parent = parent.select(["id", "content_hash"]).combine_chunks()
        self._ids = self.parent["id"].combine_chunks()
        self._at = 0
        self.full = full
        self.upserts = 0
        self.new = 0
        self.deletes = 0
        self.plus = 0
        self.minus = 0

    def step(self, winners: pa.Table | None) -> RangeDiff:
        """Compare the winners of one id range (None: every parent id not yet compared)."""
        if winners is None or winners.num_rows == 0:
            end = len(self._ids) if winners is None else self._at
            winners = _NO_WINNERS
        else:
            end = _bisect_right(self._ids, winners["id"][-1].as_py(), self._at)
        base = self.parent.slice(self._at, end - self._at)
        self._at = end
        deleted = winners["deleted"]
        live = winners.filter(pc.invert(deleted))
        base_ids = base["id"].combine_chunks()
        at = pc.index_in(live["id"], value_set=base_ids)
        parent_hash = base["content_hash"].take(at)
        differs = pc.fill_null(pc.not_equal(parent_hash, live["content_hash"]), True)
        upserts = pa.table(
            {
                "id": live["id"],
                "content_hash": live["content_hash"],
                "seq": live["seq"],
                "parent_hash": parent_hash,
            },
            schema=_UPSERT_SCHEMA,
        ).filter(differs)
        if self.full:
            gone = pc.invert(pc.is_in(base_ids, value_set=live["id"].combine_chunks()))
        else:
            dead = winners.filter(deleted)["id"].combine_chunks()
            gone = pc.is_in(base_ids, value_set=dead)
        deletes = base.filter(gone)
        self._count(upserts, deletes)
        return RangeDiff(upserts, deletes)

    def _count(self, upserts: pa.Table, deletes: pa.Table) -> None:
        replaced = upserts.filter(pc.is_valid(upserts["parent_hash"]))
        self.upserts += upserts.num_rows
        self.new += upserts.num_rows - replaced.num_rows
        self.deletes += deletes.num_rows
        self.plus += _digest(upserts["id"], upserts["content_hash"])
        self.minus += _digest(replaced["id"], replaced["parent_hash"])
        self.minus += _digest(deletes["id"], deletes["content_hash"])

    def digest(self, parent_digest: str | None) -> str:
        """The entity's digest after this diff (the parent's, updated by the changes)."""
        if parent_digest is None:
            base = _digest(self.parent["id"], self.parent["content_hash"])
        else:
            base = int(parent_digest, 16)
        return f"{(base - self.minus + self.plus) % (1 << 64):016x}"

    @property
    def live(self) -> int:
        """Live records after this diff."""
        return self.parent.num_rows + self.new - self.deletes


def _digest(ids: pa.Array | pa.ChunkedArray, hashes: pa.Array | pa.ChunkedArray) -> int:
    if not len(ids):
        return 0
    return int(records.table_digest(ids, hashes), 16)


def _bisect_right(ids: pa.Array, high: str, low: int) -> int:
    """The first position from ``low`` whose id sorts after ``high`` (ids sorted by bytes)."""
    top = len(ids)
    while low < top:
        middle = (low + top) // 2
        if ids[middle].as_py() <= high:
            low = middle + 1
        else:
            top = middle
    return low
