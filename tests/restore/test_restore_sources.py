"""LakeSnapshots on a real lake: one fold per entity, one scan per batch of records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qbo_pipeline.lake.errors import LakeIntegrityError
from qbo_pipeline.lake.lake import Lake, RealmLake
from qbo_pipeline.restore import sources
from qbo_pipeline.restore.scope import EntityDifference
from qbo_pipeline.restore.sources import LakeSnapshots
from tests.lake.lake_helpers import day, take


def invoice(i: int, version: int) -> dict[str, Any]:
    return {
        "Id": str(i),
        "SyncToken": str(version),
        "DocNumber": f"D{i}",
        "TxnDate": "2026-01-01",
        "TotalAmt": i + version,
        "CustomerRef": {"value": "1"},
        "Line": [],
        "MetaData": {
            "CreateTime": "2026-01-01T00:00:00Z",
            "LastUpdatedTime": f"2026-01-{1 + version:02d}T00:00:00Z",
        },
    }


@pytest.fixture
def history(tmp_path: Path) -> tuple[RealmLake, list[str]]:
    """Five snapshots of 40 invoices, a few changed in each; invoice 40 deleted in the last."""
    realm = Lake(tmp_path / "lake").realm("1")
    data = [invoice(i, 0) for i in range(1, 41)]
    ids = []
    for version in range(5):
        for i in range(version, 40, 7):
            data[i] = invoice(i + 1, version)
        if version == 4:
            data = data[:-1]
        ids.append(take(realm, {"Invoice": data}, when=day(version)).snapshot_id)
    return realm, ids


class ScanCounter:
    """Counts the lake's version scans (the reader's only I/O for a record)."""

    def __init__(self, realm: RealmLake, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = realm.fs.scan

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(realm.fs, "scan", counted)


def test_lookups_match_the_lake_and_a_batch_costs_one_scan(history, monkeypatch):
    realm, ids = history
    sid = ids[-1]
    scans = ScanCounter(realm, monkeypatch)
    reader = LakeSnapshots(realm)
    wanted = [str(i) for i in range(1, 30)]
    reader.prefetch(sid, "Invoice", wanted)
    assert scans.calls == 1
    for rid in wanted:
        assert reader.get(sid, "Invoice", rid) == realm.get_payload(sid, "Invoice", rid)
    assert reader.get(sid, "Invoice", "40") is None  # deleted in the last snapshot
    assert reader.get(sid, "Invoice", "999") is None
    assert reader.get(sid, "Customer", "1") is None
    assert scans.calls == 1 + len(wanted)  # only the comparisons above scanned again
    assert reader.get(ids[0], "Invoice", "40") == realm.get_payload(ids[0], "Invoice", "40")


def test_many_single_lookups_load_a_small_entity_once(history, monkeypatch):
    realm, ids = history
    sid = ids[2]
    reader = LakeSnapshots(realm)
    scans = ScanCounter(realm, monkeypatch)
    got = {str(i): reader.get(sid, "Invoice", str(i)) for i in range(1, 41)}
    assert scans.calls == sources._LOOKUPS_BEFORE_LOADING
    assert got == {str(p["Id"]): p for p in realm.iter_payloads(sid, "Invoice")}


def test_a_live_record_without_its_version_is_an_integrity_error(history):
    realm, ids = history
    reader = LakeSnapshots(realm)
    reader._files[(ids[-1], "Invoice")] = []  # as if the version files were lost
    with pytest.raises(LakeIntegrityError, match="versions are missing"):
        reader.get(ids[-1], "Invoice", "1")


def test_differences_compare_two_snapshots_by_content_hash_without_reading_payloads(
    history, monkeypatch
):
    realm, ids = history
    reader = LakeSnapshots(realm)
    scans = ScanCounter(realm, monkeypatch)
    first, last = ids[0], ids[-1]
    found = reader.differences(first, last, "Invoice")
    before = {str(p["Id"]): p for p in realm.iter_payloads(first, "Invoice")}
    after = {str(p["Id"]): p for p in realm.iter_payloads(last, "Invoice")}
    assert found.only_first == {"40"}
    assert found.only_second == frozenset()
    assert found.changed == {rid for rid in after if after[rid] != before[rid]}
    assert found.same == sum(1 for rid in after if after[rid] == before[rid])
    assert found.ids == sorted(found.only_first | found.changed, key=int)
    assert scans.calls == 0  # manifests only: no payload was read
    # An entity neither snapshot holds differs in nothing; an emptied one in every record.
    assert reader.differences(first, last, "Customer") == EntityDifference()
    emptied = take(realm, {"Invoice": []}, when=day(9)).snapshot_id
    gone = reader.differences(last, emptied, "Invoice")
    assert gone.only_first == set(after) and gone.same == 0
    assert reader.differences(last, last, "Invoice").ids == []
    assert reader.live_count(first, "Invoice") == len(before) == 40
    assert reader.live_count(last, "Invoice") == len(after) == 39
    assert reader.live_count(emptied, "Invoice") == reader.live_count(last, "Customer") == 0
