"""Backups against the embedded sandbox: complete, incremental, atomic, lossless.

The tests that only read a full backup of the untouched company share one (:func:`shared`);
those that back the same company up again do it into a copy of its lake (:func:`lake_copy`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from qbo_pipeline import backup as backup_module
from qbo_pipeline import entities
from qbo_pipeline.backup import BackupError, BackupResult, run_backup
from qbo_pipeline.config import Settings
from qbo_pipeline.lake import records
from qbo_pipeline.lake.errors import CountMismatchError, LockHeldError
from qbo_pipeline.lake.lake import Lake, RealmLake
from qbo_pipeline.qbo.connect import login_embedded, open_client
from qbo_pipeline.qbo.http import QBOClient
from qbo_pipeline.sandbox.server import SandboxServer
from qbo_pipeline.sources.qbo.settings import DLT_ENVIRONMENT, EXTRACT_BUFFER_ROWS
from tests.conftest import sandbox_on_copy


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env(
        {"QBO_DATA_DIR": str(tmp_path / "data"), "QBO_ENVIRONMENT": "embedded"}
    )


@pytest.fixture
def client(sandbox: SandboxServer, settings: Settings) -> Iterator[QBOClient]:
    realm_id = login_embedded(settings, sandbox.base_url, realm_hint=sandbox.realm_ids[0])[0]
    with open_client(settings, realm_id, api_base=sandbox.base_url) as qbo:
        yield qbo


@pytest.fixture
def realm(settings: Settings, client: QBOClient) -> RealmLake:
    return Lake(settings.lake_url).realm(client.realm_id)


@dataclass(frozen=True)
class SharedBackup:
    """A full backup of an untouched copy of the template company, with what took it."""

    sandbox: SandboxServer
    client: QBOClient
    lake_url: str
    realm: RealmLake
    result: BackupResult


@pytest.fixture(scope="module")
def shared(
    sandbox_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SharedBackup]:
    """One full backup, taken once for the tests that only read it or back the same company up
    again into a copy of its lake (:func:`lake_copy`): none of them changes the company."""
    folder = tmp_path_factory.mktemp("shared-backup")
    settings = Settings.from_env(
        {"QBO_DATA_DIR": str(folder / "data"), "QBO_ENVIRONMENT": "embedded"}
    )
    with sandbox_on_copy(sandbox_template, folder) as server:
        realm_id = login_embedded(settings, server.base_url, realm_hint=server.realm_ids[0])[0]
        with open_client(settings, realm_id, api_base=server.base_url) as qbo:
            realm = Lake(settings.lake_url).realm(realm_id)
            result = run_backup(qbo, realm, mode="full")
            yield SharedBackup(server, qbo, settings.lake_url, realm, result)


@pytest.fixture
def lake_copy(shared: SharedBackup, tmp_path: Path) -> RealmLake:
    """The shared backup's realm in a copy of its lake, for a test that writes to it."""
    lake = tmp_path / "lake"
    shutil.copytree(shared.lake_url, lake)
    return Lake(str(lake)).realm(shared.client.realm_id)


def _canonical(entity: entities.Entity, payload: dict[str, Any]) -> str:
    volatile = set(entity.volatile_fields)
    return records.canonical_json({k: v for k, v in payload.items() if k not in volatile})


def _sandbox_state(sandbox: SandboxServer, realm_id: str) -> dict[str, dict[str, str]]:
    assert sandbox.store is not None
    state: dict[str, dict[str, str]] = {}
    for entity in entities.CATALOGUE:
        rows = {
            records.record_id(entity, p): _canonical(entity, p)
            for p in sandbox.store.iter_records(realm_id, entity.name, include_inactive=True)
        }
        if rows:
            state[entity.name] = rows
    return state


def _lake_state(realm: RealmLake, snapshot_id: str) -> dict[str, dict[str, str]]:
    info = realm.resolve(snapshot_id)
    state: dict[str, dict[str, str]] = {}
    for name in info.entities:
        entity = entities.get(name)
        rows = {
            records.record_id(entity, p): _canonical(entity, p)
            for p in realm.iter_payloads(snapshot_id, name)
        }
        if rows:
            state[name] = rows
    return state


def test_full_snapshot_equals_the_sandbox_record_for_record(shared: SharedBackup) -> None:
    sandbox, client, realm, result = shared.sandbox, shared.client, shared.realm, shared.result
    expected = _sandbox_state(sandbox, client.realm_id)
    landed = _lake_state(realm, result.snapshot.snapshot_id)
    assert set(landed) == set(expected)
    for name, rows in expected.items():
        assert landed[name] == rows, name
    # Every entity of the catalogue that the company uses is there, inactive records included.
    assert {"Invoice", "Customer", "Attachable", "CompanyInfo", "Preferences"} <= set(landed)
    inactive = [
        (name, p["Id"])
        for name in landed
        if entities.get(name).has_active
        for p in realm.iter_payloads(result.snapshot.snapshot_id, name)
        if p.get("Active") is False
    ]
    assert inactive, "inactive name-list records must be captured"
    assert result.snapshot.kind == "full"
    for name, stats in result.snapshot.entities.items():
        assert stats["live"] == stats["qbo_count"], name
    realm.verify(result.snapshot.snapshot_id)


def test_dlt_writes_each_extracted_batch_as_it_comes(
    client: QBOClient, realm: RealmLake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # dlt ignores a configuration key in the wrong section without a word: an earlier
    # EXTRACT__DATA_WRITER__... setting left dlt's 5,000-row buffers in place unnoticed.
    from dlt.common.data_writers.buffered import BufferedDataWriter

    for key in DLT_ENVIRONMENT:
        monkeypatch.delenv(key, raising=False)
    created: list[tuple[str, int]] = []
    original = BufferedDataWriter.__init__

    def spy(self: BufferedDataWriter, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        created.append((str(args[1]), self.buffer_max_items))

    monkeypatch.setattr(BufferedDataWriter, "__init__", spy)
    run_backup(client, realm, mode="full")
    # The extract's writers are dlt's normalize storage's new jobs.
    extract = [size for template, size in created if f"{os.sep}normalize{os.sep}" in template]
    assert len(extract) > 10
    assert set(extract) == {EXTRACT_BUFFER_ROWS}


def test_reports_and_attachments_are_kept_as_evidence(
    shared: SharedBackup, lake_copy: RealmLake
) -> None:
    realm, result = shared.realm, shared.result
    sid = result.snapshot.snapshot_id
    for name in entities.REPORTS:
        report = realm.report(sid, name)
        assert report is not None and report["Header"]["ReportName"] == name
    blobs = [
        row["blob_sha256"]
        for batch in realm.iter_versions(sid, "Attachable", columns=["blob_sha256"])
        for row in batch.to_pylist()
        if row["blob_sha256"]
    ]
    assert blobs and result.attachments_downloaded == len(blobs)
    assert realm.read_attachment(blobs[0])
    # A second snapshot does not download unchanged attachments again.
    again = run_backup(shared.client, lake_copy, mode="full")
    assert again.attachments_downloaded == 0


def test_unchanged_records_are_not_written_again(
    shared: SharedBackup, lake_copy: RealmLake
) -> None:
    first = shared.result
    second = run_backup(shared.client, lake_copy, mode="full")
    assert first.versions_written == first.live_records > 0
    assert second.versions_written == 0
    assert second.deletions == 0
    assert lake_copy.manifest(first.snapshot.snapshot_id).equals(
        lake_copy.manifest(second.snapshot.snapshot_id)
    )


def test_incremental_after_activity_equals_a_full_snapshot(
    sandbox: SandboxServer, client: QBOClient, realm: RealmLake
) -> None:
    run_backup(client, realm, mode="full")
    log = sandbox.simulate(3, realm_id=client.realm_id)
    assert len(log) > 0
    incremental = run_backup(client, realm, mode="incremental")
    assert incremental.kind == "incremental"
    assert incremental.api_calls > 0
    full = run_backup(client, realm, mode="full")
    assert full.versions_written == 0 and full.deletions == 0
    a = _lake_state(realm, incremental.snapshot.snapshot_id)
    b = _lake_state(realm, full.snapshot.snapshot_id)
    assert a == b
    assert a == _sandbox_state(sandbox, client.realm_id)
    deleted = {(c.entity, c.id) for c in log if c.action == "deleted"}
    for entity_name, record_id in deleted:
        assert record_id not in a.get(entity_name, {})


def test_incident_is_captured_by_an_incremental_snapshot(
    sandbox: SandboxServer, client: QBOClient, realm: RealmLake
) -> None:
    before = run_backup(client, realm, mode="full")
    assert sandbox.store is not None
    dates = sorted(p["TxnDate"] for p in sandbox.store.iter_records(client.realm_id, "Invoice"))
    log = sandbox.incident(
        "bulk_delete_invoices", realm_id=client.realm_id, start=dates[5], end=dates[12]
    )
    deleted = {c.id for c in log if c.entity == "Invoice" and c.action == "deleted"}
    assert deleted
    after = run_backup(client, realm, mode="incremental")
    assert after.entities["Invoice"]["deletes"] == len(deleted)
    old_ids = {p["Id"] for p in realm.iter_payloads(before.snapshot.snapshot_id, "Invoice")}
    new_ids = {p["Id"] for p in realm.iter_payloads(after.snapshot.snapshot_id, "Invoice")}
    assert old_ids - new_ids == deleted


def test_unknown_fields_survive(
    sandbox: SandboxServer, client: QBOClient, realm: RealmLake
) -> None:
    assert sandbox.store is not None
    customer = sandbox.store.get(client.realm_id, "Customer", "1")
    assert customer is not None
    customer["FutureField"] = {"nested": [1, 2.5, "Zoë's Café 🚀"], "flag": None}
    sandbox.store.put(client.realm_id, "Customer", customer)
    result = run_backup(client, realm, mode="full")
    stored = realm.get_payload(result.snapshot.snapshot_id, "Customer", "1")
    assert stored is not None
    assert stored["FutureField"] == {"nested": [1, 2.5, "Zoë's Café 🚀"], "flag": None}


def test_only_some_entities_refreshes_those_and_carries_the_rest(
    shared: SharedBackup, lake_copy: RealmLake
) -> None:
    first = shared.result
    partial = run_backup(shared.client, lake_copy, mode="full", only=["Customer"])
    assert partial.refreshed == ["Customer"]
    assert lake_copy.manifest(first.snapshot.snapshot_id).equals(
        lake_copy.manifest(partial.snapshot.snapshot_id)
    )
    with pytest.raises(BackupError, match="Custmer"):
        run_backup(shared.client, lake_copy, only=["Custmer"])


HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from qbo_pipeline.lake.lake import Lake

    with Lake(sys.argv[1]).realm(sys.argv[2]).lock():
        print("held", flush=True)
        time.sleep(60)
    """
)


def test_a_second_backup_of_the_realm_is_refused(
    client: QBOClient, realm: RealmLake, settings: Settings
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, settings.lake_url, client.realm_id],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeldError, match="unlock"):
            run_backup(client, realm, lock_wait=0)
        assert realm.snapshots() == []
    finally:
        holder.kill()
        holder.wait(timeout=30)
    # Once the holder is gone (killed: its lock is released), a backup runs.
    assert run_backup(client, realm, mode="full", lock_wait=10).snapshot.status == "live"


def test_a_count_mismatch_fails_loudly_and_leaves_nothing_visible(
    client: QBOClient, realm: RealmLake, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = backup_module.count_records

    def one_more_invoice(qbo: QBOClient, wanted: list[entities.Entity]) -> dict[str, int]:
        counts = real(qbo, wanted)
        counts["Invoice"] += 1
        return counts

    monkeypatch.setattr(backup_module, "count_records", one_more_invoice)
    with pytest.raises(CountMismatchError, match="Invoice"):
        run_backup(client, realm, mode="full")
    assert realm.snapshots() == []
    monkeypatch.setattr(backup_module, "count_records", real)
    assert run_backup(client, realm, mode="full").snapshot.status == "live"


def test_a_failure_inside_the_run_leaves_nothing_visible(
    client: QBOClient, realm: RealmLake, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_report(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise KeyboardInterrupt

    monkeypatch.setattr(backup_module, "_report", broken_report)
    with pytest.raises(KeyboardInterrupt):
        run_backup(client, realm, mode="full")
    assert realm.snapshots() == []
    monkeypatch.undo()
    assert run_backup(client, realm, mode="full").snapshot.status == "live"


KILLED_RUN = textwrap.dedent(
    """
    import sys
    from qbo_pipeline.backup import run_backup
    from qbo_pipeline.config import Settings
    from qbo_pipeline.lake.lake import Lake
    from qbo_pipeline.qbo.connect import open_client

    settings = Settings.from_env()
    realm_id, base_url = sys.argv[1], sys.argv[2]
    with open_client(settings, realm_id, api_base=base_url) as client:
        print("started", flush=True)
        run_backup(client, Lake(settings.lake_url).realm(realm_id), mode="full")
    print("committed", flush=True)
    """
)


def test_a_run_killed_at_random_points_leaves_no_visible_snapshot(
    sandbox: SandboxServer, client: QBOClient, realm: RealmLake, settings: Settings
) -> None:
    env = os.environ | {"QBO_DATA_DIR": str(settings.data_dir)}
    committed_before = 0
    for delay in (0.2, 0.6, 1.0, 1.6):
        child = subprocess.Popen(
            [sys.executable, "-c", KILLED_RUN, client.realm_id, sandbox.base_url],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "started"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        visible = realm.snapshots()
        # A killed run either committed completely (it was fast) or left nothing visible.
        assert len(visible) in (committed_before, committed_before + 1)
        for info in visible:
            realm.verify(info.snapshot_id)
        committed_before = len(visible)
    result = run_backup(client, realm, mode="full", lock_wait=10)
    assert result.snapshot.status == "live"
    realm.verify(result.snapshot.snapshot_id)


def test_deletions_in_entities_cdc_does_not_cover_are_found(
    sandbox: SandboxServer, client: QBOClient, realm: RealmLake
) -> None:
    from qbo_pipeline.sandbox.operations import Operations

    assert not entities.get("TimeActivity").cdc
    run_backup(client, realm, mode="full")
    assert sandbox.store is not None
    ops = Operations(sandbox.store, client.realm_id)
    activities = list(sandbox.store.iter_records(client.realm_id, "TimeActivity"))
    assert len(activities) >= 2
    gone, edited = activities[0], activities[1]
    ops.delete("TimeActivity", gone["Id"], gone["SyncToken"])
    ops.update(
        "TimeActivity",
        {"Id": edited["Id"], "SyncToken": edited["SyncToken"], "Description": "re-billed"},
        sparse=True,
    )
    result = run_backup(client, realm, mode="incremental")
    stats = result.entities["TimeActivity"]
    assert (stats["deletes"], stats["versions_written"]) == (1, 1)
    assert _lake_state(realm, result.snapshot.snapshot_id) == _sandbox_state(
        sandbox, client.realm_id
    )


def test_changes_beyond_the_cdc_cap_are_not_lost(
    sandbox: SandboxServer,
    client: QBOClient,
    realm: RealmLake,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from qbo_pipeline.sources.qbo import helpers

    run_backup(client, realm, mode="full")
    log = sandbox.simulate(2, realm_id=client.realm_id)
    assert len(log) > 6
    monkeypatch.setattr(helpers, "CDC_MAX_OBJECTS", 3)  # every entity overflows at once
    result = run_backup(client, realm, mode="incremental")
    assert result.kind == "incremental"
    assert _lake_state(realm, result.snapshot.snapshot_id) == _sandbox_state(
        sandbox, client.realm_id
    )
    deleted = {(c.entity, c.id) for c in log if c.action == "deleted"}
    assert sum(s["deletes"] for s in result.entities.values()) >= len(deleted)


def test_an_entity_qbo_will_not_filter_by_change_time_is_read_in_full(
    sandbox: SandboxServer,
    client: QBOClient,
    realm: RealmLake,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from qbo_pipeline.qbo.faults import QueryError

    run_backup(client, realm, mode="full")
    real_query = client.query

    def picky_query(statement: str, **kwargs: Any) -> Any:
        if "LastUpdatedTime" in statement and " TaxCode" in statement:
            raise QueryError("QueryValidationError: property LastUpdatedTime is not queryable")
        return real_query(statement, **kwargs)

    real_batch = client.batch

    def picky_batch(items: list[dict[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
        refused = [
            i for i in items if "LastUpdatedTime" in i.get("Query", "") and " TaxCode" in i["Query"]
        ]
        answers = real_batch([i for i in items if i not in refused], **kwargs)
        fault = {
            "Error": [
                {
                    "Message": "Invalid query",
                    "code": "4001",
                    "Detail": "QueryValidationError: LastUpdatedTime",
                }
            ],
            "type": "ValidationFault",
        }
        return answers + [{"bId": i["bId"], "Fault": fault} for i in refused]

    monkeypatch.setattr(client, "query", picky_query)
    monkeypatch.setattr(client, "batch", picky_batch)
    result = run_backup(client, realm, mode="incremental")
    assert result.entities["TaxCode"]["fetched"] == result.entities["TaxCode"]["live"] > 0
    assert result.entities["TaxRate"]["fetched"] == 0  # others still read only their changes
    assert _lake_state(realm, result.snapshot.snapshot_id) == _sandbox_state(
        sandbox, client.realm_id
    )


def test_api_calls_are_counted_per_entity(shared: SharedBackup) -> None:
    result = shared.result
    per_entity = {name: stats["api_calls"] for name, stats in result.entities.items()}
    topics = result.snapshot.record["api_calls_by_topic"]
    # Entities paged on their own count their own calls; small ones share batched requests.
    assert (
        sum(per_entity.values()) + sum(n for topic, n in topics.items() if topic not in per_entity)
        == result.api_calls
    )
    assert topics.get("batch", 0) > 0 and topics.get("reports", 0) == len(entities.REPORTS)


def test_an_incremental_backup_reads_each_commit_record_once(
    sandbox: SandboxServer, client: QBOClient, settings: Settings
) -> None:
    first = run_backup(client, Lake(settings.lake_url).realm(client.realm_id), mode="full")
    sandbox.simulate(1, realm_id=client.realm_id)
    second = run_backup(client, Lake(settings.lake_url).realm(client.realm_id), mode="incremental")
    lake = Lake(settings.lake_url)  # a new process: nothing cached
    reads: list[str] = []
    read_bytes = lake.fs.read_bytes

    def counting(path: str) -> bytes:
        if "/commits/" in path:
            reads.append(path.rsplit("/", 1)[-1])
        return read_bytes(path)

    lake.fs.read_bytes = counting  # type: ignore[method-assign]
    realm = lake.realm(client.realm_id)
    sandbox.simulate(1, realm_id=client.realm_id)
    third = run_backup(client, realm, mode="incremental")
    assert third.kind == "incremental"
    earlier = [f"{r.snapshot.snapshot_id}.json" for r in (first, second)]
    assert sorted(reads) == earlier  # each read once; the new one is kept as written
    assert [i.snapshot_id for i in realm.snapshots()] == [
        first.snapshot.snapshot_id,
        second.snapshot.snapshot_id,
        third.snapshot.snapshot_id,
    ]
    assert sorted(reads) == earlier
