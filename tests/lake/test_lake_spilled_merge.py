"""The landing's spilled runs: sorted by id, merged into the version file without a payload sort.

Tiny chunks and row groups make every entity span many runs, so duplicates of one id land in
different runs and the k-way merge has to pick the right row across them.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lake_helpers import canon, day, rebuilt, samples

from qbo_pipeline import entities
from qbo_pipeline.lake import records
from qbo_pipeline.lake import writer as writer_mod
from qbo_pipeline.lake.lake import Lake, RealmLake
from qbo_pipeline.lake.versions import _sorted_by_id

REALM = "9341453908059321"


@pytest.fixture(params=[32, 2], ids=["one-merge", "narrowed-runs"])
def realm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> RealmLake:
    """Runs of 23 rows; with a fan-in of 2 they are merged pairwise, pass after pass, first."""
    monkeypatch.setattr(writer_mod, "CHUNK_ROWS", 23)
    monkeypatch.setattr(writer_mod, "RUN_ROW_GROUP", 4)
    monkeypatch.setattr(writer_mod, "VERSION_ROW_GROUP", 16)
    monkeypatch.setattr(writer_mod, "MERGE_FAN_IN", request.param)
    return Lake(tmp_path / "lake").realm(REALM)


def _invoice(rid: int, note: str, updated: str = "2026-01-01T00:00:00Z") -> dict:
    payload = copy.deepcopy(samples()["Invoice"][0])
    payload["Id"] = str(rid)
    payload["PrivateNote"] = note
    payload["MetaData"]["LastUpdatedTime"] = updated
    return payload


def _land(realm: RealmLake, payloads: list[dict], when: int, count: int) -> tuple[str, dict]:
    ent = entities.get("Invoice")
    rows = [records.landing_row(ent, p) for p in payloads]
    batches = [records.rows_to_batch(rows[s : s + 7]) for s in range(0, len(rows), 7)]
    with realm.begin(kind="full", server_time=day(when)) as writer:
        stats = writer.write_entity("Invoice", batches, mode="full", qbo_count=count)
        return writer.commit().snapshot_id, stats


def test_duplicates_in_different_runs_keep_the_newest_then_the_last(realm: RealmLake) -> None:
    n = 150
    first = [_invoice((i * 37) % n, "first") for i in range(n)]  # arrival unlike id order
    newer = [_invoice(i, "newer", "2026-02-01T00:00:00Z") for i in range(0, n, 5)]
    stale = [_invoice(i, "stale", "2025-12-01T00:00:00Z") for i in range(1, n, 5)]
    last = [_invoice(i, "last") for i in range(2, n, 5)]
    # newer arrives first (runs 0-1), then the bulk, stale and equal-time rows after it.
    sid, stats = _land(realm, [*newer, *first, *stale, *last], 0, n)
    assert stats["versions_written"] == n
    assert stats["live"] == n
    expected = {str(i): "first" for i in range(n)}
    expected.update({str(i): "newer" for i in range(0, n, 5)})
    expected.update({str(i): "last" for i in range(2, n, 5)})
    got = {p["Id"]: p["PrivateNote"] for p in realm.iter_payloads(sid, "Invoice")}
    assert got == expected
    path = realm.versions_path(sid, "Invoice")
    ids = pq.read_table(path, columns=["id"])["id"].to_pylist()
    assert ids == sorted(ids)
    assert len(ids) == len(set(ids))
    assert {g.num_rows for g in _groups(path)[:-1]} == {16}
    assert _sorted_by_id(realm.fs, path)
    realm.verify(sid)


def test_churn_writes_only_the_changed_rows_from_many_runs(realm: RealmLake) -> None:
    n = 120
    base = [_invoice(i, "v0") for i in range(n)]
    sid0, _ = _land(realm, base, 0, n)
    changed = [_invoice(i, "v1") if i % 11 == 3 else p for i, p in enumerate(base)]
    sid1, stats = _land(realm, list(reversed(changed)), 1, n)
    assert stats["upserts"] == len(range(3, n, 11))
    assert stats["versions_written"] == stats["upserts"]
    rows = pq.read_table(realm.versions_path(sid1, "Invoice"))
    assert sorted(rows["id"].to_pylist()) == rows["id"].to_pylist()
    assert set(rows["id"].to_pylist()) == {str(i) for i in range(3, n, 11)}
    assert set(rows["snapshot_id"].to_pylist()) == {sid1}
    assert rebuilt(realm, sid1, "Invoice") == canon(sorted(changed, key=lambda p: p["Id"]))
    assert rebuilt(realm, sid0, "Invoice") == canon(sorted(base, key=lambda p: p["Id"]))
    realm.verify(sid1)


def _groups(path: str) -> list:
    meta = pq.ParquetFile(path).metadata
    return [meta.row_group(i) for i in range(meta.num_row_groups)]


def test_run_row_groups_are_bounded_in_bytes_and_rows() -> None:
    wide = pa.table({"id": ["a"] * 100, "payload": ["x" * 4000] * 100})
    narrow = pa.table({"id": ["a"] * 5000})
    assert writer_mod._group_rows(wide) * 4000 <= writer_mod.RUN_GROUP_BYTES
    assert writer_mod._group_rows(wide) >= 1
    assert writer_mod._group_rows(narrow) == writer_mod.RUN_ROW_GROUP
    assert writer_mod._group_rows(wide.slice(0, 0)) == writer_mod.RUN_ROW_GROUP


def test_narrowing_keeps_every_row_in_id_order(tmp_path: Path) -> None:
    runs = []
    for n in range(5):
        ids = sorted(f"{i:03d}" for i in range(n, 60, 5))
        table = pa.table({"id": ids, "seq": list(range(n * 100, n * 100 + len(ids)))})
        path = tmp_path / f"run-{n}.parquet"
        pq.write_table(table, path, row_group_size=3)
        runs.append(str(path))
    merged = pa.concat_tables(writer_mod._merge_runs(runs, None))
    assert merged["id"].to_pylist() == [f"{i:03d}" for i in range(60)]
    assert sorted(merged["seq"].to_pylist()) == sorted(
        s for n in range(5) for s in range(n * 100, n * 100 + 12)
    )
