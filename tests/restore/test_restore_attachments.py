"""A deleted attachment comes back with its file, its links and its Note (on the sandbox)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from qbo_pipeline import entities
from qbo_pipeline.config import Settings
from qbo_pipeline.qbo.connect import login_embedded, open_client
from qbo_pipeline.qbo.http import QBOClient, RetryPolicy
from qbo_pipeline.restore.apply import apply_plan, approve
from qbo_pipeline.restore.model import Action
from qbo_pipeline.restore.plan import PlanRequest, build_plan
from qbo_pipeline.restore.scope import Scope
from qbo_pipeline.restore.sources import ClientLive
from qbo_pipeline.restore.store import PlanStore
from qbo_pipeline.restore.verify import verify_restore
from qbo_pipeline.sandbox.server import SandboxServer
from tests.restore.conftest import DictLake

BEFORE = "20260101T000000.000000Z"
INCIDENT = "20260102T000000.000000Z"
CHECK = "20260101T000200.000000Z"
ATTACHABLE = entities.ENTITIES["Attachable"]
DATA = b"%PDF-1.4 a small receipt"


class BlobLake(DictLake):
    """A DictLake that also keeps attachment bytes, as the lake does."""

    def __init__(self, snapshots: dict, blobs: dict[str, str], data: dict[str, bytes]) -> None:
        super().__init__(snapshots)
        self.blobs, self.data = blobs, data

    def has_blob(self, sha256: str) -> bool:
        return sha256 in self.data

    def blob_of(self, snapshot_id: str, record_id: str) -> str | None:
        return self.blobs.get(record_id)


@pytest.fixture
def client(sandbox: SandboxServer, tmp_path: Path) -> Iterator[QBOClient]:
    settings = Settings.from_env(
        {"QBO_DATA_DIR": str(tmp_path / "data"), "QBO_ENVIRONMENT": "embedded"}
    )
    realm_id = login_embedded(settings, sandbox.base_url, realm_hint=sandbox.realm_ids[0])[0]
    retry = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02, max_retry_after=0.05)
    with open_client(settings, realm_id, api_base=sandbox.base_url, retry=retry) as qbo:
        yield qbo


def test_reuploaded_attachment_gets_its_note_back(client, tmp_path, sandbox):
    invoice = client.query("SELECT * FROM Invoice MAXRESULTS 1")["Invoice"][0]
    link = {"type": "Invoice", "value": invoice["Id"]}
    made = client.upload("receipt.pdf", "application/pdf", DATA, [link], request_id="att-1")
    noted = client.update(
        ATTACHABLE,
        {"Id": made["Id"], "SyncToken": made["SyncToken"], "Note": "Paid in cash at the counter"},
        sparse=True,
        request_id="att-2",
    )
    old_id = str(noted["Id"])
    sha = hashlib.sha256(DATA).hexdigest()
    # The nightly after the deletion (the incident snapshot) no longer has it.
    lake = BlobLake(
        {BEFORE: {("Attachable", old_id): noted}, INCIDENT: {}}, {old_id: sha}, {sha: DATA}
    )
    client.delete(ATTACHABLE, old_id, noted["SyncToken"], request_id="att-gone")

    request = PlanRequest(
        realm_id=client.realm_id,
        snapshot_id=BEFORE,
        latest_snapshot_id=INCIDENT,
        scope=Scope.parse(records=[f"Attachable:{old_id}"]),
    )
    plan = build_plan(ClientLive(client), lake, request)
    (step,) = plan.steps
    assert step.action is Action.CREATE and step.blob_sha256 == sha
    assert step.payload["Note"] == "Paid in cash at the counter"
    store = PlanStore(str(tmp_path / "restore"))
    store.save(plan)
    approve(store, plan.plan_id)
    # The note's update fails the first time: the rerun replays the upload, then annotates.
    sandbox.configure(
        faults=[{"kind": "500", "path": "/attachable", "rate": 1.0, "times": 4, "format": "json"}]
    )
    first = apply_plan(client, store, plan.plan_id, read_attachment=lake.data.__getitem__)
    assert first.steps[0].state == "failed"
    sandbox.configure(faults=[])
    result = apply_plan(client, store, plan.plan_id, read_attachment=lake.data.__getitem__)
    assert result.complete

    new_id = result.id_map[f"Attachable:{old_id}"]
    restored = client.read(ATTACHABLE, new_id)
    assert restored["Note"] == "Paid in cash at the counter"
    assert restored["AttachableRef"][0]["EntityRef"]["value"] == invoice["Id"]
    assert client.download(restored) == DATA
    found = client.query("SELECT * FROM Attachable WHERE FileName = 'receipt.pdf'")
    assert len(found["Attachable"]) == 1  # uploaded once, whatever the reruns
    operations = [
        e["operation"] for e in store.audit(plan.plan_id).read() if e["event"] == "request"
    ]
    assert operations == ["upload", "annotate@0", "upload", "annotate@0"]

    check = DictLake(
        {BEFORE: {("Attachable", old_id): noted}, CHECK: {("Attachable", new_id): restored}}
    )
    report = verify_restore(plan, store.status(plan.plan_id), check, CHECK)
    assert report["ok"], report["differences"]
