"""The landing's key diff: winners per id, and the range-by-range comparison with the parent."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from qbo_pipeline.lake import records
from qbo_pipeline.lake.key_diff import KeyDiff, winning_keys

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _rows(rows: list[tuple[str, str | None, datetime | None, int, str | None]]) -> pa.Table:
    ids, statuses, times, seqs, hashes = zip(*rows, strict=True) if rows else ([],) * 5
    return pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "status": pa.array(statuses, pa.string()),
            "last_updated_at": pa.array(times, pa.timestamp("us", tz="UTC")),
            "seq": pa.array(seqs, pa.int64()),
            "content_hash": pa.array(hashes, pa.string()),
        }
    )


def _pieces(table: pa.Table, rng: random.Random) -> list[pa.Table]:
    """An id-sorted table cut at random places, as the k-way merge hands it over."""
    table = table.sort_by("id")
    cuts = sorted(rng.sample(range(1, max(2, table.num_rows)), k=min(5, table.num_rows - 1)))
    bounds = [0, *cuts, table.num_rows]
    return [table.slice(a, b - a) for a, b in itertools.pairwise(bounds)]


def test_the_order_rule_picks_one_winner_per_id() -> None:
    rows = _rows(
        [
            ("1", None, T0, 0, "old"),
            ("1", None, T0 + timedelta(hours=1), 1, "newer"),
            ("1", None, T0, 2, "later but older"),
            ("2", None, T0 + timedelta(days=9), 3, "newest"),
            ("2", records.DELETED, None, 4, None),
            ("3", None, None, 5, "no time, first"),
            ("3", None, None, 6, "no time, last"),
            ("4", None, None, 7, "no time"),
            ("4", None, T0, 8, "a time"),
        ]
    )
    # Chunks of two rows: every id's rows straddle a chunk boundary somewhere.
    chunks = list(winning_keys([rows.slice(i, 2) for i in range(0, rows.num_rows, 2)], 2))
    won = pa.concat_tables(chunks).to_pylist()
    assert [(r["id"], r["deleted"], r["content_hash"]) for r in won] == [
        ("1", False, "newer"),
        ("2", True, None),
        ("3", False, "no time, last"),
        ("4", False, "a time"),
    ]
    assert all(len(set(c["id"].to_pylist())) == c.num_rows for c in chunks)


def _brute_force(
    parent: dict[str, str], incoming: list[tuple], *, full: bool
) -> tuple[dict[str, str], set[str], dict[str, str]]:
    """Upserts (id: hash), deletes (ids) and the live set after, the obvious way."""
    best: dict[str, tuple] = {}
    for row in incoming:
        rid, status, when, seq, _hash = row
        rank = (status == records.DELETED, when or datetime(1970, 1, 1, tzinfo=UTC), seq)
        if rid not in best or rank > best[rid][0]:
            best[rid] = (rank, row)
    live = {rid: row[4] for rid, (rank, row) in best.items() if not rank[0]}
    dead = {rid for rid, (rank, _row) in best.items() if rank[0]}
    upserts = {rid: h for rid, h in live.items() if parent.get(rid) != h}
    deletes = set(parent) - set(live) if full else set(parent) & dead
    after = {k: v for k, v in parent.items() if k not in deletes} | upserts
    return upserts, deletes, after


@pytest.mark.parametrize("full", [True, False])
@pytest.mark.parametrize("seed", range(6))
def test_the_range_by_range_diff_agrees_with_the_obvious_one(full: bool, seed: int) -> None:
    rng = random.Random(seed)
    ids = [str(rng.randrange(1, 400)) for _ in range(300)]
    parent = {i: f"h{rng.randrange(3)}" for i in set(ids[:150])}
    incoming = [
        (
            i,
            records.DELETED if rng.random() < 0.1 else None,
            None if rng.random() < 0.2 else T0 + timedelta(minutes=rng.randrange(50)),
            seq,
            f"h{rng.randrange(3)}",
        )
        for seq, i in enumerate(ids[100:])
    ]
    incoming = [(i, s, w, q, None if s else h) for i, s, w, q, h in incoming]
    parent_table = pa.table(
        {"id": sorted(parent), "content_hash": [parent[k] for k in sorted(parent)]}
    )
    diff = KeyDiff(parent_table, full=full)
    upserts: list[pa.Table] = []
    deletes: list[pa.Table] = []
    deltas: list[pa.Table] = []
    chunks = winning_keys(_pieces(_rows(incoming), rng), chunk_rows=rng.choice([1, 7, 50, 1000]))
    for winners in itertools.chain(chunks, [None]):
        change = diff.step(winners)
        upserts.append(change.upserts)
        deletes.append(change.deletes)
        deltas.append(change.delta("Invoice"))

    want_up, want_del, after = _brute_force(parent, incoming, full=full)
    got_up = pa.concat_tables(upserts).to_pylist()
    assert {r["id"]: r["content_hash"] for r in got_up} == want_up
    assert all(r["parent_hash"] == parent.get(r["id"]) for r in got_up)
    assert {r["id"] for r in pa.concat_tables(deletes).to_pylist()} == want_del
    assert (diff.upserts, diff.deletes, diff.live) == (len(want_up), len(want_del), len(after))
    assert diff.new == len(set(want_up) - set(parent))
    delta = pa.concat_tables(deltas)
    assert delta.schema == records.MANIFEST_SCHEMA
    assert delta["id"].to_pylist() == sorted(delta["id"].to_pylist())
    parent_digest = records.table_digest(parent_table["id"], parent_table["content_hash"])
    after_ids = sorted(after)
    expected = records.table_digest(
        pa.array(after_ids, pa.string()), pa.array([after[k] for k in after_ids], pa.string())
    )
    assert diff.digest(None) == diff.digest(parent_digest) == expected
