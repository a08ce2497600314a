from __future__ import annotations

import copy
import gzip
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lake_helpers import batch, canon, day, rebuilt, samples, take, visible_files

from qbo_pipeline import entities
from qbo_pipeline.lake import records
from qbo_pipeline.lake.errors import (
    CountMismatchError,
    InvalidRecordError,
    LakeError,
    LakeIntegrityError,
    LockHeldError,
    SnapshotNotFound,
)
from qbo_pipeline.lake.lake import Lake, RealmLake

REALM = "9341453908059321"


@pytest.fixture
def realm(tmp_path: Path) -> RealmLake:
    return Lake(tmp_path / "lake").realm(REALM)


def _edit(payload: dict, note: str) -> dict:
    out = copy.deepcopy(payload)
    out["PrivateNote"] = note
    out["SyncToken"] = str(int(out.get("SyncToken", "0")) + 1)
    return out


def test_round_trip_several_snapshots_rebuild_exactly(realm: RealmLake) -> None:
    data = samples()
    first = take(realm, data, when=day(0))
    second_data = copy.deepcopy(data)
    second_data["Invoice"][0] = _edit(second_data["Invoice"][0], "changed")
    removed = second_data["Customer"].pop(3)
    second = take(realm, second_data, when=day(1))
    for info, expected in ((first, data), (second, second_data)):
        for name, payloads in expected.items():
            assert rebuilt(realm, info.snapshot_id, name) == canon(payloads), name
        realm.verify(info.snapshot_id)
    assert str(removed["Id"]) not in rebuilt(realm, second.snapshot_id, "Customer")
    stats = second.entities
    assert stats["Invoice"]["versions_written"] == 1
    assert stats["Invoice"]["upserts"] == 1
    assert stats["Customer"]["deletes"] == 1
    assert stats["Customer"]["live"] == len(data["Customer"]) - 1
    assert second.parent_id == first.snapshot_id
    assert realm.get_payload(second.snapshot_id, "Invoice", data["Invoice"][0]["Id"])[
        "PrivateNote"
    ] == ("changed")
    assert realm.get_payload(first.snapshot_id, "Customer", removed["Id"]) == removed
    assert realm.get_payload(second.snapshot_id, "Customer", removed["Id"]) is None


def test_unchanged_records_are_not_written_again(realm: RealmLake, tmp_path: Path) -> None:
    data = samples()
    take(realm, data, when=day(0))
    again = take(realm, data, when=day(1))
    assert again.totals["versions_written"] == 0
    assert again.totals["upserts"] == 0
    assert again.totals["live"] == sum(len(v) for v in data.values())
    root = tmp_path / "lake" / f"realm={REALM}"
    assert not (root / "versions" / f"snapshot={again.snapshot_id}").exists()
    assert not (root / "manifests" / f"snapshot={again.snapshot_id}").exists()
    rows = pq.read_table(root / "versions").num_rows
    assert rows == sum(len(v) for v in data.values())
    realm.verify(again.snapshot_id)


def test_full_mode_detects_deletions(realm: RealmLake) -> None:
    data = {"Invoice": samples()["Invoice"]}
    take(realm, data, when=day(0))
    kept = data["Invoice"][2:]
    after = take(realm, {"Invoice": kept}, when=day(1))
    assert after.entities["Invoice"]["deletes"] == 2
    assert set(rebuilt(realm, after.snapshot_id, "Invoice")) == {p["Id"] for p in kept}
    manifest = realm.manifest(after.snapshot_id)
    assert manifest.column_names == ["entity", "id", "content_hash"]
    assert manifest["id"].to_pylist() == sorted(p["Id"] for p in kept)


def test_cdc_mode_applies_deleted_rows_and_carries_over(realm: RealmLake) -> None:
    data = samples()
    base = take(realm, data, when=day(0))
    invoices = data["Invoice"]
    changed = _edit(invoices[1], "cdc edit")
    others = [n for n in data if n != "Invoice"]
    after = take(
        realm,
        {"Invoice": [changed]},
        when=day(1),
        mode="cdc",
        deleted={"Invoice": [invoices[0]["Id"], "999999"]},
        carry=others,
    )
    got = rebuilt(realm, after.snapshot_id, "Invoice")
    expected = canon([changed, *invoices[2:]])
    assert got == expected
    assert after.entities["Invoice"]["deletes"] == 1
    assert after.entities["Invoice"]["mode"] == "cdc"
    for name in others:
        assert after.entities[name]["mode"] == "unchanged"
        assert rebuilt(realm, after.snapshot_id, name) == canon(data[name])
        assert after.entities[name]["digest"] == base.entities[name]["digest"]
    realm.verify(after.snapshot_id)


def test_unknown_fields_survive_byte_for_byte(realm: RealmLake) -> None:
    invoice = samples()["Invoice"][0]
    invoice["FutureField"] = {"nested": [1, 2.5, None, True, "ünïcødé ✓"], "z": {"b": 1, "a": 2}}
    invoice["HugeInt"] = 123456789012345678901234567890
    invoice["Precise"] = 0.1 + 0.2
    info = take(realm, {"Invoice": [invoice]}, when=day(0))
    (payload,) = list(realm.iter_payloads(info.snapshot_id, "Invoice"))
    assert payload == invoice
    assert payload["HugeInt"] == 123456789012345678901234567890
    (text,) = next(realm.iter_versions(info.snapshot_id, "Invoice", columns=["payload"]))[
        0
    ].to_pylist()
    assert text == records.canonical_json(invoice)
    assert "ünïcødé ✓" in text


def test_count_mismatch_fails_loudly_and_leaves_nothing(realm: RealmLake, tmp_path: Path) -> None:
    data = samples()
    take(realm, data, when=day(0))
    before = visible_files(tmp_path / "lake")
    changed = copy.deepcopy(data)
    changed["Invoice"][0] = _edit(changed["Invoice"][0], "x")
    with pytest.raises(CountMismatchError) as err:
        take(realm, changed, when=day(1), counts={"Invoice": 99})
    message = str(err.value)
    assert "Invoice" in message and "99" in message and REALM in message
    assert err.value.live == len(data["Invoice"])
    assert len(realm.snapshots()) == 1
    assert visible_files(tmp_path / "lake") == before


def test_missing_parent_entity_is_an_error_not_a_truncation(realm: RealmLake) -> None:
    data = samples()
    take(realm, data, when=day(0))
    with pytest.raises(LakeError, match="Customer"):
        take(realm, {"Invoice": data["Invoice"]}, when=day(1))
    assert len(realm.snapshots()) == 1


def test_duplicates_in_a_full_read_keep_one_version(realm: RealmLake) -> None:
    invoices = samples()["Invoice"]
    newer = _edit(invoices[0], "newer")
    newer["MetaData"]["LastUpdatedTime"] = "2030-01-01T00:00:00-08:00"
    ent = entities.get("Invoice")
    rows = [records.landing_row(ent, p) for p in [*invoices, invoices[1], newer]]
    with realm.begin(kind="full", server_time=day(0)) as writer:
        stats = writer.write_entity(
            "Invoice", [records.rows_to_batch(rows)], mode="full", qbo_count=len(invoices)
        )
        info = writer.commit()
    assert stats["versions_written"] == len(invoices)
    got = rebuilt(realm, info.snapshot_id, "Invoice")
    assert got == canon([newer, *invoices[1:]])
    realm.verify(info.snapshot_id)


def test_record_back_to_old_content_is_stored_once(realm: RealmLake, tmp_path: Path) -> None:
    invoices = samples()["Invoice"][:3]
    take(realm, {"Invoice": invoices}, when=day(0))
    take(realm, {"Invoice": invoices[1:]}, when=day(1))
    back = take(realm, {"Invoice": invoices}, when=day(2))
    assert back.entities["Invoice"]["upserts"] == 1
    assert back.entities["Invoice"]["versions_written"] == 0
    assert rebuilt(realm, back.snapshot_id, "Invoice") == canon(invoices)
    versions = pq.read_table(tmp_path / "lake" / f"realm={REALM}" / "versions")
    assert versions.num_rows == 3
    realm.verify(back.snapshot_id)


def test_snapshot_ids_strictly_increase(realm: RealmLake) -> None:
    data = {"Invoice": samples()["Invoice"][:1]}
    a = take(realm, data, when=day(1))
    b = take(realm, data, when=day(0))
    assert b.snapshot_id > a.snapshot_id
    assert b.snapshot_id == "20261102T053000.000001Z"


def test_resolve(realm: RealmLake) -> None:
    data = {"Invoice": samples()["Invoice"][:1]}
    a = take(realm, data, when=day(0))
    b = take(realm, data, when=day(1))
    assert realm.resolve("latest") == b
    assert realm.resolve(a.snapshot_id) == a
    assert realm.resolve("20261101") == a
    assert realm.resolve("2026-11-01") == a
    assert realm.resolve("2026-11-02T05:30:00Z") == b
    assert realm.resolve("2026-11-02T05:29:59+00:00") == a
    with pytest.raises(SnapshotNotFound, match="ambiguous"):
        realm.resolve("2026")
    with pytest.raises(SnapshotNotFound, match=a.snapshot_id):
        realm.resolve("2025-01-01")
    with pytest.raises(SnapshotNotFound, match="no snapshot matches"):
        realm.resolve("1999")
    with pytest.raises(SnapshotNotFound):
        realm.manifest("20990101T000000.000000Z")


def test_resolve_previous_is_the_live_snapshot_before_the_latest(realm: RealmLake) -> None:
    data = {"Invoice": samples()["Invoice"][:1]}
    with pytest.raises(SnapshotNotFound, match="no snapshots yet"):
        realm.resolve("previous")
    a = take(realm, data, when=day(0))
    with pytest.raises(SnapshotNotFound, match=r"before the latest.*only one snapshot"):
        realm.resolve("previous")
    b = take(realm, data, when=day(1))
    assert realm.resolve("previous") == a
    assert realm.resolve(" Previous ") == a
    c = take(realm, data, when=day(2))
    assert realm.resolve("previous") == b
    assert realm.resolve("latest") == c


def test_exception_inside_the_writer_aborts(realm: RealmLake, tmp_path: Path) -> None:
    data = samples()

    def exploding():
        yield batch("Invoice", data["Invoice"][:3])
        raise RuntimeError("network gone")

    with (
        pytest.raises(RuntimeError, match="network gone"),
        realm.begin(kind="full", server_time=day(0)) as writer,
    ):
        writer.write_entity(
            "Customer", [batch("Customer", data["Customer"])], mode="full", qbo_count=None
        )
        writer.write_entity("Invoice", exploding(), mode="full", qbo_count=None)
    assert realm.snapshots() == []
    assert [f for f in visible_files(tmp_path / "lake") if "_lock" not in f] == []
    info = take(realm, data, when=day(0))
    realm.verify(info.snapshot_id)


@pytest.mark.parametrize(
    "stage",
    [
        "_flush",
        "_write_versions",
        "_finish",
        "_SortedFile.write",
        "_versions_to_write",
        "put_report",
        "write_commit",
    ],
)
def test_crash_at_each_stage_leaves_no_visible_snapshot(
    realm: RealmLake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    from qbo_pipeline.lake import writer as writer_mod

    data = samples()
    first = take(realm, data, when=day(0))
    changed = copy.deepcopy(data)
    changed["Invoice"][0] = _edit(changed["Invoice"][0], "x")

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError(f"disk failed in {stage}")

    owner: type = writer_mod._EntityLanding
    method = stage
    if stage == "write_commit":
        owner = RealmLake
    elif stage == "put_report":
        owner = writer_mod.SnapshotWriter
    elif "." in stage:
        owner, method = getattr(writer_mod, stage.split(".")[0]), stage.split(".")[1]
    with monkeypatch.context() as patch:
        patch.setattr(owner, method, boom)
        with pytest.raises(OSError, match=stage), realm.begin(kind="full", server_time=day(1)) as w:
            for name, payloads in changed.items():
                w.write_entity(name, [batch(name, payloads)], mode="full", qbo_count=None)
            w.put_report("TrialBalance", {"Header": {}})
            w.commit()
    assert [s.snapshot_id for s in realm.snapshots()] == [first.snapshot_id]
    root = tmp_path / "lake" / f"realm={REALM}"
    for area in ("versions", "manifests", "reports"):
        names = [p.name for p in (root / area).iterdir()] if (root / area).exists() else []
        assert names == ([] if area == "reports" else [f"snapshot={first.snapshot_id}"])
    again = take(realm, changed, when=day(1))
    assert rebuilt(realm, again.snapshot_id, "Invoice") == canon(changed["Invoice"])
    realm.verify(again.snapshot_id)


def test_orphans_of_a_dead_run_are_removed_by_the_next_begin(
    realm: RealmLake, tmp_path: Path
) -> None:
    data = {"Invoice": samples()["Invoice"]}
    take(realm, data, when=day(0))
    root = tmp_path / "lake" / f"realm={REALM}"
    orphan = root / "versions" / "snapshot=20261105T000000.000000Z"
    orphan.mkdir(parents=True)
    (orphan / "Invoice.parquet").write_bytes(b"PAR1 partial")
    (root / "_staging" / "run").mkdir(parents=True)
    removed = realm.clean_orphans()
    assert any("20261105T000000.000000Z" in p for p in removed)
    assert not orphan.exists()
    assert not (root / "_staging").exists()
    assert len(realm.snapshots()) == 1


def test_second_writer_is_refused_while_one_runs(realm: RealmLake) -> None:
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import sys, time
        from qbo_pipeline.lake.lake import Lake
        realm = Lake(sys.argv[1]).realm("{REALM}")
        with realm.lock():
            print("locked", flush=True)
            time.sleep(60)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, realm.fs.root], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(LockHeldError) as err:
            realm.begin(kind="full", server_time=day(0))
        assert f"qbo-backup unlock {REALM}" in str(err.value)
        assert f"pid {proc.pid}" in str(err.value)
    finally:
        proc.kill()
        proc.wait()
    info = take(realm, {"Invoice": samples()["Invoice"][:1]}, when=day(0))
    assert realm.latest() == info


def test_bad_input_gets_clear_errors(realm: RealmLake) -> None:
    with realm.begin(kind="full", server_time=day(0)) as writer:
        with pytest.raises(LakeError, match="mode"):
            writer.write_entity("Invoice", [], mode="weekly", qbo_count=None)
        with pytest.raises(LakeError, match="unknown QBO entity"):
            writer.write_entity("Nope", [], mode="full", qbo_count=None)
        with pytest.raises(InvalidRecordError, match="Customer row"):
            writer.write_entity(
                "Invoice", [batch("Customer", samples()["Customer"])], mode="full", qbo_count=None
            )
        with pytest.raises(InvalidRecordError, match="record batches"):
            writer.write_entity("Item", [[{"id": "1"}]], mode="full", qbo_count=None)
        bad = pa.RecordBatch.from_pylist(
            [{"entity": "Account", "id": None, "content_hash": "x", "payload": "{}"}]
        )
        with pytest.raises(InvalidRecordError, match="no id"):
            writer.write_entity("Account", [bad], mode="full", qbo_count=None)
    with pytest.raises(LakeError, match="kind"):
        realm.begin(kind="weekly", server_time=day(0))
    with pytest.raises(LakeError, match="realm id"):
        Lake(realm.fs.root).realm("../etc")
    assert realm.snapshots() == []


def test_reports_and_attachments(realm: RealmLake) -> None:
    data = {"Attachable": samples()["Attachable"]}
    blob = b"%PDF-1.4 receipt"
    sha = realm.put_attachment(blob)
    assert realm.put_attachment(blob) == sha
    ent = entities.get("Attachable")
    row = records.landing_row(ent, data["Attachable"][0], blob_sha256=sha)
    with realm.begin(kind="full", server_time=day(0)) as writer:
        writer.write_entity("Attachable", [records.rows_to_batch([row])], mode="full", qbo_count=1)
        writer.put_report("TrialBalance", {"Header": {"ReportName": "TrialBalance"}, "Rows": {}})
        info = writer.commit()
    assert realm.report(info.snapshot_id, "TrialBalance")["Header"]["ReportName"] == "TrialBalance"
    assert realm.report(info.snapshot_id, "BalanceSheet") is None
    assert info.record["reports"] == ["TrialBalance"]
    (got,) = next(realm.iter_versions(info.snapshot_id, "Attachable", columns=["blob_sha256"]))[
        0
    ].to_pylist()
    assert realm.read_attachment(got) == blob
    with pytest.raises(LakeError, match="not stored"):
        realm.read_attachment("0" * 64)


def test_reports_are_stored_compressed_and_a_missing_one_is_named(realm: RealmLake) -> None:
    report = {"Header": {"ReportName": "TrialBalance"}, "Rows": {"Row": [{"x": "é"}] * 50}}
    with realm.begin(kind="full", server_time=day(0)) as writer:
        writer.put_report("TrialBalance", report)
        info = writer.commit()
    stored = Path(realm.report_path(info.snapshot_id, "TrialBalance"))
    assert stored.name == "TrialBalance.json.gz"
    assert gzip.decompress(stored.read_bytes()) == records.canonical_bytes(report)
    assert stored.stat().st_size < len(records.canonical_bytes(report)) / 3
    assert realm.report(info.snapshot_id, "TrialBalance") == report
    realm.verify(info.snapshot_id)
    stored.unlink()
    assert realm.report(info.snapshot_id, "TrialBalance") is None
    with pytest.raises(LakeIntegrityError, match="report TrialBalance is missing"):
        realm.verify(info.snapshot_id)


def test_version_files_keep_statistics_but_not_for_payloads(realm: RealmLake) -> None:
    info = take(realm, {"Customer": samples()["Customer"]}, when=day(0))
    meta = pq.ParquetFile(realm.versions_path(info.snapshot_id, "Customer")).metadata
    group = meta.row_group(0)
    columns = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
    assert columns["id"].is_stats_set and columns["id"].statistics.has_min_max
    assert not columns["payload"].is_stats_set


def test_volatile_fields_do_not_make_a_new_version(realm: RealmLake) -> None:
    attachable = samples()["Attachable"]
    take(realm, {"Attachable": attachable}, when=day(0))
    fresh = copy.deepcopy(attachable)
    fresh[0]["TempDownloadUri"] = "https://example.invalid/new-presigned-url"
    again = take(realm, {"Attachable": fresh}, when=day(1))
    assert again.entities["Attachable"]["versions_written"] == 0


def test_memory_url_round_trip() -> None:
    realm = Lake("memory://lake-test-roundtrip").realm(REALM)
    data = samples()
    first = take(realm, data, when=day(0))
    changed = copy.deepcopy(data)
    changed["Item"][0] = _edit(changed["Item"][0], "m")
    second = take(realm, changed, when=day(1))
    assert second.entities["Item"]["versions_written"] == 1
    for info, expected in ((first, data), (second, changed)):
        for name, payloads in expected.items():
            assert rebuilt(realm, info.snapshot_id, name) == canon(payloads)
        realm.verify(info.snapshot_id)
    assert realm.path("restore", "p1").startswith("memory://")
    assert Lake("memory://lake-test-roundtrip").realms() == [REALM]


def test_duckdb_reads_the_format_sql_and_agrees(realm: RealmLake, tmp_path: Path) -> None:
    data = samples()
    take(realm, data, when=day(0))
    changed = copy.deepcopy(data)
    changed["Invoice"][0] = _edit(changed["Invoice"][0], "x")
    del changed["Customer"][0]
    second = take(realm, changed, when=day(1))
    take(realm, data, when=day(2))
    base = (tmp_path / "lake" / f"realm={REALM}").as_posix()
    sql = f"""
        with commits as (
            select snapshot_id from read_json('{base}/commits/*.json')
        ),
        manifest_deltas as (
            select regexp_extract(filename, 'snapshot=([^/]+)/', 1) as snapshot_id, entity, id,
                op, content_hash
            from read_parquet('{base}/manifests/*/*.parquet', filename = true)
        )
        select entity, id, content_hash from (
            select *, row_number() over (
                partition by entity, id order by snapshot_id desc) as rn
            from manifest_deltas
            where snapshot_id in (select snapshot_id from commits where snapshot_id <= $sid)
        ) where rn = 1 and op = 'upsert'
        order by entity, id
    """
    got = duckdb.execute(sql, {"sid": second.snapshot_id}).to_arrow_table()
    expected = realm.manifest(second.snapshot_id)
    assert got.to_pylist() == expected.to_pylist()
    payload_sql = f"""
        select v.payload from read_parquet('{base}/versions/*/*.parquet') as v
        where v.entity = 'Invoice' and v.id = $id and v.content_hash = $h
    """
    key = expected.filter(pa.compute.equal(expected["entity"], "Invoice")).slice(0, 1)
    rows = duckdb.execute(
        payload_sql, {"id": key["id"][0].as_py(), "h": key["content_hash"][0].as_py()}
    ).fetchall()
    assert len(rows) == 1
