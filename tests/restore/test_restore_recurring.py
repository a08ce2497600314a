"""RecurringTransaction: re-created and reverted through the API, after what its template needs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qbo_pipeline import entities
from qbo_pipeline.config import Settings
from qbo_pipeline.qbo.connect import login_embedded, open_client
from qbo_pipeline.qbo.http import QBOClient, RetryPolicy
from qbo_pipeline.restore import payloads, remap
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
AFTER = "20260101T000100.000000Z"
CHECK = "20260101T000200.000000Z"
RECURRING = entities.ENTITIES["RecurringTransaction"]
VENDOR = entities.ENTITIES["Vendor"]
NAMES = ("RecurringTransaction", "Vendor")


@pytest.fixture
def client(sandbox: SandboxServer, tmp_path: Path) -> Iterator[QBOClient]:
    settings = Settings.from_env(
        {"QBO_DATA_DIR": str(tmp_path / "data"), "QBO_ENVIRONMENT": "embedded"}
    )
    realm_id = login_embedded(settings, sandbox.base_url, realm_hint=sandbox.realm_ids[0])[0]
    retry = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02, max_retry_after=0.05)
    with open_client(settings, realm_id, api_base=sandbox.base_url, retry=retry) as qbo:
        yield qbo


def read(client: QBOClient) -> dict[tuple[str, str], dict[str, Any]]:
    live = ClientLive(client)
    return {
        (name, str(payloads.version_of(entities.ENTITIES[name], p)[0])): p
        for name in NAMES
        for p in live.iter_records(entities.ENTITIES[name])
    }


def first_template(company: dict[tuple[str, str], dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The company's first recurring template: the generator always writes a recurring Bill."""
    templates = [
        (rid, payload)
        for (name, rid), payload in sorted(company.items())
        if name == "RecurringTransaction" and payloads.template_of(RECURRING, payload)
    ]
    assert templates, "the generated company has no recurring template"
    return templates[0]


def plan_and_apply(client: QBOClient, before: dict, tmp_path: Path, rid: str) -> tuple[Any, Any]:
    lake = DictLake({BEFORE: before, AFTER: read(client)})
    request = PlanRequest(
        realm_id=client.realm_id,
        snapshot_id=BEFORE,
        latest_snapshot_id=AFTER,
        scope=Scope.parse(records=[f"RecurringTransaction:{rid}"]),
    )
    plan = build_plan(ClientLive(client), lake, request)
    store = PlanStore(str(tmp_path / "restore"))
    store.save(plan)
    approve(store, plan.plan_id)
    return plan, (store, apply_plan(client, store, plan.plan_id))


def test_deleted_template_comes_back_after_its_vendor_is_reactivated(client, tmp_path):
    before = read(client)
    rid, snap = first_template(before)
    wrapped, key, template = payloads.template_of(RECURRING, snap)
    vendor_id = template["VendorRef"]["value"]
    current = client.read(RECURRING, rid)
    token = payloads.version_of(RECURRING, current)[1]
    client.delete(RECURRING, rid, token, request_id="gone-recurring")
    vendor = client.read(VENDOR, vendor_id)
    client.update(
        VENDOR,
        {"Id": vendor_id, "SyncToken": vendor["SyncToken"], "Active": False},
        sparse=True,
        request_id="gone-vendor",
    )

    plan, (store, result) = plan_and_apply(client, before, tmp_path, rid)
    steps = [(s.entity, s.action) for s in plan.steps]
    assert steps == [
        ("Vendor", Action.REACTIVATE),
        ("RecurringTransaction", Action.CREATE),
        ("Vendor", Action.DEACTIVATE),
    ]
    create = plan.steps[1]
    assert plan.steps[0].number in create.depends_on
    assert "Id" not in create.payload[key] and "RecurDataRef" not in create.payload[key]
    assert create.payload[key]["RecurringInfo"]["ScheduleInfo"]["NextDate"]
    assert result.complete, [(s.entity, s.state, s.detail) for s in result.steps]

    new_id = result.id_map[f"RecurringTransaction:{rid}"]
    assert new_id != rid
    restored = client.read(RECURRING, new_id)
    got = payloads.template_of(RECURRING, restored)
    assert got is not None and got[0] is wrapped
    assert got[2]["VendorRef"]["value"] == vendor_id
    assert got[2]["Line"][0]["Amount"] == template["Line"][0]["Amount"]
    assert got[2]["RecurringInfo"]["Name"] == template["RecurringInfo"]["Name"]
    assert client.read(VENDOR, vendor_id)["Active"] is False

    report = verify_restore(
        plan, store.status(plan.plan_id), DictLake({BEFORE: before, CHECK: read(client)}), CHECK
    )
    assert report["ok"], report["differences"]


def test_changed_template_is_reverted_without_moving_its_schedule(client, tmp_path):
    before = read(client)
    rid, snap = first_template(before)
    _, key, template = payloads.template_of(RECURRING, snap)
    current = client.read(RECURRING, rid)
    changed = payloads.strip(RECURRING, current)
    changed[key]["Line"][0]["Amount"] = 999.0
    changed[key]["RecurringInfo"]["ScheduleInfo"]["NextDate"] = "2099-01-01"
    payloads.set_version(RECURRING, changed, rid, payloads.version_of(RECURRING, current)[1])
    client.update(RECURRING, changed, request_id="bad-edit")

    plan, (_, result) = plan_and_apply(client, before, tmp_path, rid)
    (step,) = plan.steps
    assert step.action is Action.UPDATE
    assert any(c.path.endswith("Line[0].Amount") for c in step.changes)
    assert result.complete
    live = payloads.template_of(RECURRING, client.read(RECURRING, rid))[2]
    assert live["Line"][0]["Amount"] == template["Line"][0]["Amount"]
    assert live["RecurringInfo"]["ScheduleInfo"]["NextDate"] == "2099-01-01"


def test_template_references_are_remapped_and_are_dependencies():
    payload = {
        "Id": "7",
        "Invoice": {
            "CustomerRef": {"value": "24"},
            "Line": [{"SalesItemLineDetail": {"ItemRef": {"value": "5"}}}],
            "LinkedTxn": [{"TxnId": "3", "TxnType": "Payment"}],
        },
    }
    assert remap.dependencies(RECURRING, payload) == [("Customer", "24"), ("Item", "5")]
    id_map = remap.IdMap({"Customer:24": "240", "Item:5": "50"})
    out = remap.rewrite(RECURRING, remap.drop_backlinks(RECURRING, payload), id_map)
    assert out["Invoice"]["CustomerRef"] == {"value": "240"}
    assert out["Invoice"]["Line"][0]["SalesItemLineDetail"]["ItemRef"] == {"value": "50"}
    assert "LinkedTxn" not in out["Invoice"]
    assert payloads.version_of(RECURRING, {"Bill": {"Id": "20", "SyncToken": "4"}}) == ("20", "4")
