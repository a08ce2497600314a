from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from lake_helpers import day, samples, take

from qbo_pipeline.lake.errors import LakeError, SnapshotNotFound
from qbo_pipeline.lake.gc import collect_garbage
from qbo_pipeline.lake.lake import Lake, RealmLake
from qbo_pipeline.lake.retention import RetentionPolicy, apply_retention, select

REALM = "4620816365171123456"


def _payload_texts(realm: RealmLake, sid: str) -> dict[str, list[str]]:
    info = realm.info(sid)
    return {
        name: [
            t
            for b in realm.iter_versions(sid, name, columns=["payload"])
            for t in b.column(0).to_pylist()
        ]
        for name in info.entities
    }


def _history(realm: RealmLake, days: int) -> list[str]:
    data = samples()
    ids = []
    blob_data = {"Attachable": data.pop("Attachable")}
    for n in range(days):
        current = copy.deepcopy(data)
        for name in ("Invoice", "Customer"):
            current[name][n % len(current[name])]["PrivateNote"] = f"day {n}"
        if n % 3 == 1:
            current["Item"] = current["Item"][1:]
        info = take(realm, current | {"Attachable": blob_data["Attachable"]}, when=day(n))
        ids.append(info.snapshot_id)
    return ids


def test_select_keeps_newest_per_bucket() -> None:
    realm = Lake("memory://retention-select").realm(REALM)
    ids = _history(realm, 3)
    infos = realm.snapshots()
    kept, dropped, reasons = select(infos, RetentionPolicy(daily=1, weekly=0, monthly=0), day(5))
    assert [k.snapshot_id for k in kept] == [ids[-1]]
    assert [d.snapshot_id for d in dropped] == ids[:-1]
    assert set(reasons[ids[-1]]) == {"daily", "latest"}
    kept, dropped, _ = select(infos, RetentionPolicy(daily=0, weekly=0, monthly=0), day(1))
    assert ids[-1] in [k.snapshot_id for k in kept]  # newer than "now": kept
    with pytest.raises(LakeError, match="daily"):
        RetentionPolicy(daily=-1)


def test_retention_and_gc_keep_kept_snapshots_exact(tmp_path: Path) -> None:
    realm = Lake(tmp_path / "lake").realm(REALM)
    orphan_blob = realm.put_attachment(b"nobody points here")
    ids = _history(realm, 8)
    before = {sid: _payload_texts(realm, sid) for sid in ids}
    root = tmp_path / "lake" / f"realm={REALM}"
    rows_before = pq.read_table(root / "versions").num_rows

    result = apply_retention(
        realm, RetentionPolicy(daily=3, weekly=0, monthly=0), now=day(7) + timedelta(hours=1)
    )
    assert result.kept == ids[-3:]
    assert result.dropped == ids[:-3]
    assert [s.snapshot_id for s in realm.snapshots()] == ids[-3:]
    with pytest.raises(SnapshotNotFound, match="retired"):
        realm.manifest(ids[0])

    dry = collect_garbage(realm, dry_run=True)
    assert dry.rows_removed > 0
    assert pq.read_table(root / "versions").num_rows == rows_before

    gc = collect_garbage(realm)
    assert gc.rows_removed == dry.rows_removed
    assert any(orphan_blob in p for p in gc.files_removed)
    rows_after = pq.read_table(root / "versions").num_rows
    assert rows_after == rows_before - gc.rows_removed
    for sid in ids[-3:]:
        realm.verify(sid)
        assert _payload_texts(realm, sid) == before[sid]
    # Nothing more to collect, and the next snapshot builds on the kept ones.
    assert collect_garbage(realm).rows_removed == 0
    data = samples()
    nxt = take(realm, data, when=day(9))
    realm.verify(nxt.snapshot_id)
    for sid in ids[-3:]:
        assert _payload_texts(realm, sid) == before[sid]


def test_gc_removes_orphans_and_unreferenced_rows(tmp_path: Path) -> None:
    realm = Lake(tmp_path / "lake").realm(REALM)
    data = {"Invoice": samples()["Invoice"]}
    take(realm, data, when=day(0))
    changed = copy.deepcopy(data)
    changed["Invoice"][0]["PrivateNote"] = "second"
    take(realm, changed, when=day(1))
    orphan = tmp_path / "lake" / f"realm={REALM}" / "manifests" / "snapshot=20301010T000000.000000Z"
    orphan.mkdir(parents=True)
    (orphan / "Invoice.parquet").write_bytes(b"junk")
    apply_retention(realm, RetentionPolicy(daily=1, weekly=0, monthly=0), now=day(1))
    gc = collect_garbage(realm)
    assert gc.rows_removed == 1  # the first version of the edited invoice
    assert any("20301010T000000.000000Z" in p for p in gc.files_removed)
    assert not orphan.exists()


def test_gc_keeps_attachments_of_live_versions_and_reports_of_live_snapshots(
    tmp_path: Path,
) -> None:
    from qbo_pipeline import entities
    from qbo_pipeline.lake import records

    realm = Lake(tmp_path / "lake").realm(REALM)
    ent = entities.get("Attachable")
    (attachable,) = samples()["Attachable"]
    shas = []
    for n in range(2):
        sha = realm.put_attachment(f"file version {n}".encode())
        shas.append(sha)
        payload = dict(attachable, SyncToken=str(n))
        row = records.landing_row(ent, payload, blob_sha256=sha)
        with realm.begin(kind="full", server_time=day(n)) as writer:
            writer.write_entity(
                "Attachable", [records.rows_to_batch([row])], mode="full", qbo_count=1
            )
            writer.put_report("TrialBalance", {"n": n})
            writer.commit()
    first, second = (s.snapshot_id for s in realm.snapshots())
    apply_retention(realm, RetentionPolicy(daily=1, weekly=0, monthly=0), now=day(1))
    gc = collect_garbage(realm)
    assert any(shas[0] in p for p in gc.files_removed)
    assert realm.read_attachment(shas[1]) == b"file version 1"
    assert realm.report(second, "TrialBalance") == {"n": 1}
    assert any(f"snapshot={first}" in p and "reports" in p for p in gc.files_removed)
