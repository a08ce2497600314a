"""Version files are sorted by id and merged as they stream; unsorted files still read."""

from __future__ import annotations

import copy
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from lake_helpers import batch, canon, day, samples

from qbo_pipeline.lake import records
from qbo_pipeline.lake import versions as versions_mod
from qbo_pipeline.lake import writer as writer_mod
from qbo_pipeline.lake.lake import Lake, RealmLake

REALM = "9341453908059321"


def _invoices(n: int, note: str = "") -> list[dict]:
    base = samples()["Invoice"][0]
    out = []
    for i in range(n):
        payload = copy.deepcopy(base)
        payload["Id"] = str((i * 7919) % 1009)  # arrival order unlike id order
        payload["PrivateNote"] = note
        out.append(payload)
    return out


def _land(realm: RealmLake, payloads: list[dict], when: int) -> str:
    with realm.begin(kind="full", server_time=day(when)) as writer:
        batches = [batch("Invoice", payloads[s : s + 37]) for s in range(0, len(payloads), 37)]
        writer.write_entity("Invoice", batches, mode="full", qbo_count=len(payloads))
        return writer.commit().snapshot_id


def test_many_chunks_make_one_id_sorted_file_that_streams_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_mod, "CHUNK_ROWS", 50)
    monkeypatch.setattr(writer_mod, "VERSION_ROW_GROUP", 64)
    realm = Lake(tmp_path / "lake").realm(REALM)
    first = _invoices(400)
    sid0 = _land(realm, first, 0)
    second = _invoices(400)
    for payload in second[::9]:
        payload["PrivateNote"] = "changed"
    sid1 = _land(realm, second, 1)
    path = realm.versions_path(sid0, "Invoice")
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == 7  # 400 rows in groups of 64
    assert meta.row_group(0).sorting_columns[0].column_index == 3
    ids = pq.read_table(path, columns=["id"])["id"].to_pylist()
    assert ids == sorted(ids)
    assert versions_mod._sorted_by_id(realm.fs, path)
    streamed = [
        i
        for b in realm.iter_versions(sid1, "Invoice", columns=["id"], batch_size=25)
        for i in b.column(0).to_pylist()
    ]
    assert streamed == sorted(canon(second))
    got = canon(realm.iter_payloads(sid1, "Invoice"))
    assert got == canon(second)
    realm.verify(sid1)


def test_unsorted_version_files_are_still_read(tmp_path: Path) -> None:
    realm = Lake(tmp_path / "lake").realm(REALM)
    payloads = _invoices(120)
    sid = _land(realm, payloads, 0)
    path = realm.versions_path(sid, "Invoice")
    table = pq.read_table(path)
    pq.write_table(table.sort_by([("id", "descending")]), path)  # no sorting flag
    assert not versions_mod._sorted_by_id(realm.fs, path)
    streamed = [
        i
        for b in realm.iter_versions(sid, "Invoice", columns=["id"])
        for i in b.column(0).to_pylist()
    ]
    assert streamed == sorted(canon(payloads))
    realm.verify(sid)
    assert table.schema.equals(records.VERSION_SCHEMA)
