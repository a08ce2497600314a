"""Apply against the embedded sandbox over real HTTP: approval, idempotency, faults, 5010.

The "snapshots" here are read from the sandbox into memory (DictLake), so that apply is tested on
its own; test_restore_drills.py runs the whole flow through run_backup and the lake.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qbo_pipeline import entities
from qbo_pipeline.config import Settings
from qbo_pipeline.qbo.connect import login_embedded, open_client
from qbo_pipeline.qbo.faults import ObjectNotFoundError
from qbo_pipeline.qbo.http import QBOClient, RetryPolicy
from qbo_pipeline.restore.apply import NotApproved, apply_plan, approve
from qbo_pipeline.restore.model import Action, Plan, request_id
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
ENTITIES = ("Account", "Term", "PaymentMethod", "Customer", "Vendor", "Item", "Invoice", "Payment")


@pytest.fixture
def client(sandbox: SandboxServer, tmp_path: Path) -> Iterator[QBOClient]:
    settings = Settings.from_env(
        {"QBO_DATA_DIR": str(tmp_path / "data"), "QBO_ENVIRONMENT": "embedded"}
    )
    realm_id = login_embedded(settings, sandbox.base_url, realm_hint=sandbox.realm_ids[0])[0]
    retry = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02, max_retry_after=0.05)
    with open_client(settings, realm_id, api_base=sandbox.base_url, retry=retry) as qbo:
        yield qbo


@pytest.fixture
def store(tmp_path: Path) -> PlanStore:
    return PlanStore(str(tmp_path / "lake" / "restore"))


def read_company(client: QBOClient) -> dict[tuple[str, str], dict[str, Any]]:
    live = ClientLive(client)
    out = {}
    for name in ENTITIES:
        entity = entities.ENTITIES[name]
        for payload in live.iter_records(entity):
            out[(name, str(payload["Id"]))] = payload
    return out


def count(client: QBOClient, name: str) -> int:
    return client.count(entities.ENTITIES[name])


def paid_invoice(company: dict) -> tuple[str, str]:
    """A payment applied to exactly one invoice: (payment id, invoice id).

    The sandbox company is generated from a fixed seed, and its generator applies each invoice
    payment to that one invoice, so such a payment is always there: not finding one is a failure.
    """
    pairs = []
    for (name, pid), payment in sorted(company.items()):
        if name != "Payment":
            continue
        links = [link for line in payment.get("Line") or [] for link in line.get("LinkedTxn") or []]
        if len(links) == 1 and links[0]["TxnType"] == "Invoice" and not payment.get("LinkedTxn"):
            pairs.append((pid, str(links[0]["TxnId"])))
    assert pairs, "the generated company has no payment applied to a single invoice"
    return pairs[0]


def delete(client: QBOClient, name: str, record_id: str) -> None:
    entity = entities.ENTITIES[name]
    current = client.read(entity, record_id)
    client.delete(
        entity, record_id, current["SyncToken"], request_id=f"incident-{name}-{record_id}"
    )


def plan_deleted_pair(client: QBOClient, store: PlanStore) -> tuple[Plan, str, str, dict]:
    before = read_company(client)
    payment_id, invoice_id = paid_invoice(before)
    delete(client, "Payment", payment_id)
    delete(client, "Invoice", invoice_id)
    lake = DictLake({BEFORE: before, AFTER: read_company(client)})
    request = PlanRequest(
        realm_id=client.realm_id,
        snapshot_id=BEFORE,
        latest_snapshot_id=AFTER,
        scope=Scope.parse(records=[f"Invoice:{invoice_id}", f"Payment:{payment_id}"]),
    )
    plan = build_plan(ClientLive(client), lake, request)
    store.save(plan)
    return plan, invoice_id, payment_id, before


def test_deleted_invoice_and_its_payment_come_back_linked_once(client, store):
    plan, invoice_id, payment_id, before = plan_deleted_pair(client, store)
    creates = [s for s in plan.steps if s.action is Action.CREATE]
    assert [(s.entity, s.old_id) for s in creates] == [
        ("Invoice", invoice_id),
        ("Payment", payment_id),
    ]
    invoices = count(client, "Invoice")

    with pytest.raises(NotApproved, match="not approved"):
        apply_plan(client, store, plan.plan_id)
    assert count(client, "Invoice") == invoices  # nothing written without approval

    approval = approve(store, plan.plan_id, name="Bookkeeper Bo")
    assert approval["approved_by"] == "Bookkeeper Bo"
    result = apply_plan(client, store, plan.plan_id)
    assert result.complete and result.counts["done"] == len(plan.steps)
    # Step status is appended, one line per step after the run's opening line, never rewritten.
    status_lines = Path(store.location(plan.plan_id, "status.jsonl")).read_bytes().splitlines()
    assert len(status_lines) == 1 + len(plan.steps)
    assert not Path(store.location(plan.plan_id, "status.json")).exists()
    new_invoice = result.id_map[f"Invoice:{invoice_id}"]
    new_payment = result.id_map[f"Payment:{payment_id}"]
    assert new_invoice != invoice_id
    payment = client.read(entities.ENTITIES["Payment"], new_payment)
    linked = [link["TxnId"] for line in payment["Line"] for link in line.get("LinkedTxn", [])]
    assert linked == [new_invoice]
    assert count(client, "Invoice") == invoices + 1

    # The restored records equal the snapshot, ids remapped.
    after = DictLake({BEFORE: before, CHECK: read_company(client)})
    report = verify_restore(plan, store.status(plan.plan_id), after, CHECK)
    assert report["ok"], [
        (d["entity"], d["problem"], d.get("changes")) for d in report["differences"]
    ]
    assert report["checked"] == 2

    # Rerunning the plan writes nothing again.
    again = apply_plan(client, store, plan.plan_id)
    assert again.id_map == result.id_map
    assert count(client, "Invoice") == invoices + 1 and count(client, "Payment") == count(
        client, "Payment"
    )

    # Even with the status lost (a crash before it was saved), the request ids replay.
    Path(store.location(plan.plan_id, "status.jsonl")).unlink()
    replayed = apply_plan(client, store, plan.plan_id)
    assert replayed.id_map == result.id_map
    assert count(client, "Invoice") == invoices + 1

    events = list(store.audit(plan.plan_id).read())
    kinds = [e["event"] for e in events]
    assert kinds[0] == "approved" and "request" in kinds and "response" in kinds
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    create_ids = {e["request_id"] for e in events if e["event"] == "request"}
    assert request_id(plan.plan_id, 1, "create") in create_ids
    assert len(create_ids) == 2  # the same two keys, whatever the number of runs


def test_faults_in_the_middle_of_an_apply_resume_to_the_same_end_state(client, store, sandbox):
    plan, invoice_id, _, _ = plan_deleted_pair(client, store)
    invoices, payments = count(client, "Invoice"), count(client, "Payment")
    approve(store, plan.plan_id)
    # The invoice answer is cut in half after the write (the retry replays it); the payment
    # gets more 500s than the client retries.
    sandbox.configure(
        faults=[
            {"kind": "truncate", "path": "/invoice", "rate": 1.0, "times": 1},
            {"kind": "500", "path": "/payment", "rate": 1.0, "times": 4, "format": "json"},
        ]
    )
    first = apply_plan(client, store, plan.plan_id)
    states = {s.entity: s for s in first.steps}
    assert states["Invoice"].state == "done"
    assert states["Payment"].state == "failed"
    assert states["Payment"].fault and states["Payment"].fault["status"] == 500
    assert not first.complete
    status = store.status(plan.plan_id)
    assert status["steps"]["2"]["state"] == "failed"
    sandbox.configure(faults=[])

    second = apply_plan(client, store, plan.plan_id)
    assert second.complete
    assert count(client, "Invoice") == invoices + 1
    assert count(client, "Payment") == payments + 1
    assert second.id_map[f"Invoice:{invoice_id}"] == first.id_map[f"Invoice:{invoice_id}"]


def test_a_record_changed_after_planning_becomes_a_conflict_not_an_overwrite(client, store):
    customer = entities.ENTITIES["Customer"]
    before = read_company(client)
    ids = sorted((rid for (e, rid) in before if e == "Customer"), key=int)
    first, second = ids[0], ids[1]
    for rid, label in ((first, "bad import A"), (second, "bad import B")):
        current = client.read(customer, rid)
        client.update(
            customer,
            {"Id": rid, "SyncToken": current["SyncToken"], "Notes": label},
            sparse=True,
            request_id=f"import-{rid}",
        )
    lake = DictLake({BEFORE: before, AFTER: read_company(client)})
    request = PlanRequest(
        realm_id=client.realm_id,
        snapshot_id=BEFORE,
        latest_snapshot_id=AFTER,
        scope=Scope.parse(records=[f"Customer:{first}", f"Customer:{second}"]),
    )
    plan = build_plan(ClientLive(client), lake, request)
    store.save(plan)
    assert [s.action for s in plan.steps] == [Action.UPDATE, Action.UPDATE]
    assert not any(s.conflict for s in plan.steps)
    # After planning: someone edits the first customer for real, and the second is saved
    # again without any change (SyncToken moves, content does not).
    current = client.read(customer, first)
    client.update(
        customer,
        {"Id": first, "SyncToken": current["SyncToken"], "Notes": "a later real edit"},
        sparse=True,
        request_id="later-1",
    )
    current = client.read(customer, second)
    client.update(
        customer,
        {"Id": second, "SyncToken": current["SyncToken"], "Notes": "bad import B"},
        sparse=True,
        request_id="later-2",
    )
    approve(store, plan.plan_id)
    result = apply_plan(client, store, plan.plan_id)
    by_id = {s.old_id: s for s in result.steps}
    assert by_id[first].state == "conflict" and "changed after the plan" in by_id[first].detail
    assert client.read(customer, first)["Notes"] == "a later real edit"
    assert by_id[second].state == "done"
    assert client.read(customer, second).get("Notes") == before[("Customer", second)].get("Notes")
    assert any(e["event"] == "replanned" for e in store.audit(plan.plan_id).read())


def test_plan_time_conflicts_are_written_only_when_approved_with_them(client, store):
    customer = entities.ENTITIES["Customer"]
    before = read_company(client)
    rid = sorted((r for (e, r) in before if e == "Customer"), key=int)[0]
    current = client.read(customer, rid)
    client.update(
        customer,
        {"Id": rid, "SyncToken": current["SyncToken"], "Notes": "uncaptured"},
        sparse=True,
        request_id="uncaptured-1",
    )
    lake = DictLake({BEFORE: before})  # no snapshot knows the edit
    request = PlanRequest(
        realm_id=client.realm_id,
        snapshot_id=BEFORE,
        latest_snapshot_id=BEFORE,
        scope=Scope.parse(records=[f"Customer:{rid}"]),
    )
    plan = build_plan(ClientLive(client), lake, request)
    store.save(plan)
    assert plan.steps[0].conflict
    approve(store, plan.plan_id)
    result = apply_plan(client, store, plan.plan_id)
    assert result.steps[0].state == "conflict"
    assert client.read(customer, rid)["Notes"] == "uncaptured"

    plan2 = build_plan(ClientLive(client), lake, request)
    plan2.plan_id = plan2.plan_id[:-8] + "ffffffff"
    store.save(plan2)
    approve(store, plan2.plan_id, include_conflicts=True)
    assert apply_plan(client, store, plan2.plan_id).steps[0].state == "done"
    assert client.read(customer, rid).get("Notes") == before[("Customer", rid)].get("Notes")


def test_apply_refuses_a_plan_whose_snapshot_is_gone_or_of_another_company(client, store):
    plan, *_ = plan_deleted_pair(client, store)
    approve(store, plan.plan_id)
    from qbo_pipeline.restore.store import RestoreError

    with pytest.raises(RestoreError, match="no longer in the lake"):
        apply_plan(client, store, plan.plan_id, snapshot_exists=lambda sid: False)

    class Other:
        realm_id = "999"

    with pytest.raises(RestoreError, match="not 999"):
        apply_plan(Other(), store, plan.plan_id)  # type: ignore[arg-type]
    assert store.status(plan.plan_id) is None


def test_client_errors_surface_as_step_faults_not_crashes(client, store):
    plan, *_ = plan_deleted_pair(client, store)
    approve(store, plan.plan_id)
    # Break the invoice's customer reference in the approved plan file? Plans are immutable, so
    # instead make the referenced item inactive: QBO answers 610 and the step fails with it.
    invoice_step = plan.steps[0]
    item_id = invoice_step.payload["Line"][0]["SalesItemLineDetail"]["ItemRef"]["value"]
    item = client.read(entities.ENTITIES["Item"], item_id)
    client.update(
        entities.ENTITIES["Item"],
        {"Id": item_id, "SyncToken": item["SyncToken"], "Active": False},
        sparse=True,
        request_id="deact-x",
    )
    result = apply_plan(client, store, plan.plan_id)
    assert result.steps[0].state == "failed"
    assert result.steps[0].fault["code"] == "610"
    assert result.steps[1].state == "skipped" and "waits for step 1" in result.steps[1].detail
    fault = result.steps[0].fault
    assert fault["type"] == ObjectNotFoundError.__name__ and fault["status"] == 400
    assert "made inactive" in fault["detail"] and fault["intuit_tid"]
