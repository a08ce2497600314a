"""Pure parts of restore: payloads, remapping, request ids, audit, store and review."""

from __future__ import annotations

import json

import pytest

from qbo_pipeline import entities
from qbo_pipeline.qbo.redact import register_secret
from qbo_pipeline.restore import payloads, remap
from qbo_pipeline.restore.audit import AuditLog
from qbo_pipeline.restore.model import REQUEST_ID_MAX, Action, Plan, Step, request_id
from qbo_pipeline.restore.review import plan_html, plan_table
from qbo_pipeline.restore.store import PlanNotFound, PlanStore, RestoreError
from tests.conftest import SAMPLES

E = entities.ENTITIES


def sample(name: str) -> dict:
    doc = json.loads((SAMPLES / name).read_text())
    return next(v for k, v in doc.items() if k != "time")


def test_create_payload_of_a_real_invoice_drops_what_qbo_owns():
    invoice = sample("invoice_read_response.json")
    body = payloads.create_payload(E["Invoice"], invoice)
    for gone in ("Id", "SyncToken", "MetaData", "domain", "sparse", "Balance", "InvoiceLink"):
        assert gone not in body
    assert "Id" not in body["BillAddr"] and "Id" not in body["ShipAddr"]
    assert all("Id" not in line for line in body["Line"])
    assert body["TotalAmt"] == invoice["TotalAmt"] and body["CustomerRef"] == invoice["CustomerRef"]
    assert invoice["Id"] == "130" and "Balance" in invoice  # the source is never modified


def test_update_payload_keeps_line_ids_and_sets_the_live_version():
    invoice = sample("invoice_read_response.json")
    body = payloads.update_payload(E["Invoice"], invoice, live_id="130", sync_token="7")
    assert body["Id"] == "130" and body["SyncToken"] == "7"
    assert [line.get("Id") for line in body["Line"]][:3] == ["1", "2", "3"]
    assert "MetaData" not in body and "Balance" not in body


def test_a_deactivated_record_is_created_active_under_its_own_name():
    account = sample("account_read_inactive.json")
    assert account["Active"] is False and account["Name"].endswith(" (deleted)")
    body = payloads.create_payload(E["Account"], account)
    assert body["Active"] is True and not body["Name"].endswith("(deleted)")
    assert "CurrentBalance" not in body and "FullyQualifiedName" not in body


def test_volatile_and_computed_fields_do_not_make_records_differ():
    attachable = sample("attachable_read_response.json")
    other = dict(attachable, TempDownloadUri="https://elsewhere", SyncToken="9")
    assert payloads.identical(E["Attachable"], attachable, other)
    assert not payloads.identical(E["Attachable"], attachable, dict(attachable, Note="x"))


def test_rewrite_remaps_every_catalogue_reference_and_drops_backlinks():
    payment = {
        "CustomerRef": {"value": "24"},
        "DepositToAccountRef": {"value": "4"},
        "LinkedTxn": [{"TxnId": "9", "TxnType": "Deposit"}],
        "Line": [
            {"Amount": 5, "LinkedTxn": [{"TxnId": "130", "TxnType": "Invoice"}]},
            {"Amount": 6, "LinkedTxn": [{"TxnId": "131", "TxnType": "CreditMemo"}]},
        ],
    }
    ids = remap.IdMap({"Invoice:130": "901", "Customer:24": "77", "CreditMemo:999": "1"})
    out = remap.rewrite(E["Payment"], remap.drop_backlinks(E["Payment"], payment), ids)
    assert out["CustomerRef"] == {"value": "77"}
    assert out["Line"][0]["LinkedTxn"][0]["TxnId"] == "901"
    assert out["Line"][1]["LinkedTxn"][0]["TxnId"] == "131"  # not mapped: unchanged
    assert "LinkedTxn" not in out  # the deposit's back-link
    assert payment["Line"][0]["LinkedTxn"][0]["TxnId"] == "130"  # the input is untouched
    assert remap.dependencies(E["Payment"], payment) == [
        ("Customer", "24"),
        ("Account", "4"),
        ("Invoice", "130"),
        ("CreditMemo", "131"),
    ]


def test_typed_entity_refs_remap_by_their_type():
    journal = {
        "Line": [
            {
                "JournalEntryLineDetail": {
                    "PostingType": "Debit",
                    "AccountRef": {"value": "1"},
                    "Entity": {"EntityRef": {"value": "5", "type": "Vendor"}},
                }
            },
            {
                "JournalEntryLineDetail": {
                    "PostingType": "Credit",
                    "AccountRef": {"value": "2"},
                    "Entity": {"EntityRef": {"value": "5", "type": "Customer"}},
                }
            },
        ]
    }
    out = remap.rewrite(E["JournalEntry"], journal, remap.IdMap({"Customer:5": "50"}))
    refs = [line["JournalEntryLineDetail"]["Entity"]["EntityRef"]["value"] for line in out["Line"]]
    assert refs == ["5", "50"]


def test_id_map_round_trips_and_rejects_bad_keys():
    ids = remap.IdMap()
    ids.set("Invoice", "130", "901")
    assert remap.IdMap(ids.to_json()).get("Invoice", "130") == "901"
    assert ids.resolve("Invoice", "7") == "7"
    with pytest.raises(ValueError, match="not 'Entity:id'"):
        remap.IdMap({"Invoice130": "1"})


def test_request_ids_are_stable_distinct_and_short_enough():
    a = request_id("20260101T000000.000000Z-abcdef12", 3, "create")
    assert a == request_id("20260101T000000.000000Z-abcdef12", 3, "create")
    others = {
        request_id("20260101T000000.000000Z-abcdef12", 4, "create"),
        request_id("20260101T000000.000000Z-abcdef13", 3, "create"),
        request_id("20260101T000000.000000Z-abcdef12", 3, "update@2"),
    }
    assert a not in others and len(others) == 3
    assert all(len(r) <= REQUEST_ID_MAX for r in [a, *others])


def test_audit_log_appends_masks_secrets_and_survives_a_torn_line(tmp_path):
    register_secret("s3cr3t-refresh-token-value")
    path = tmp_path / "audit.jsonl"
    log = AuditLog(str(path), plan_id="p")
    log.append(
        "request", body={"access_token": "abc12345678", "Note": "s3cr3t-refresh-token-value"}
    )
    with path.open("ab") as handle:
        handle.write(b'{"seq": 2, "event": "torn')  # a crash in the middle of a write
    AuditLog(str(path), plan_id="p").append("response", ok=True)
    text = path.read_text()
    assert "abc12345678" not in text and "s3cr3t-refresh-token-value" not in text
    events = list(log.read())
    assert [e["event"] for e in events] == ["request", "response"]
    assert events[0]["body"]["access_token"] == "********"


def make_plan(plan_id: str = "20260101T000000.000000Z-0badcafe") -> Plan:
    step = Step(
        number=1,
        entity="Customer",
        old_id="1",
        action=Action.UPDATE,
        reason="changed",
        name="<script>alert(1)</script>",
        payload={"Id": "1"},
    )
    return Plan(
        plan_id=plan_id,
        realm_id="1",
        snapshot_id="20260101T000000.000000Z",
        latest_snapshot_id=None,
        scope={"kind": "records"},
        live_read_at="t",
        created_at="t",
        steps=[step],
    )


def test_plans_are_written_once_and_approved_once(tmp_path):
    store = PlanStore(str(tmp_path / "restore"))
    plan = make_plan()
    store.save(plan)
    with pytest.raises(RestoreError, match="never rewritten"):
        store.save(plan)
    assert store.plan_ids() == [plan.plan_id]
    assert store.load(plan.plan_id).approval is None
    first = store.save_approval(plan.plan_id, {"approved_by": "a"})
    assert store.save_approval(plan.plan_id, {"approved_by": "b"}) == first
    assert store.load(plan.plan_id).approval == {"approved_by": "a"}
    with pytest.raises(PlanNotFound, match="not a plan id"):
        store.load("../../etc/passwd")
    with pytest.raises(PlanNotFound, match="no restore plan"):
        store.load("20260101T000000.000000Z-00000000")


def test_store_works_on_an_fsspec_memory_url():
    store = PlanStore("memory://lake/realm=1/restore")
    plan = make_plan("20260101T000000.000000Z-0000beef")
    store.save(plan)
    assert store.status(plan.plan_id) is None
    store.status_log(plan.plan_id).append(
        {"event": "run", "run": 1, "step_count": 1, "at": "t0"},
        {"event": "step", "number": 1, "state": "done", "attempts": 1, "at": "t1"},
    )
    store.audit(plan.plan_id).append("approved", approved_by="x")
    assert store.load(plan.plan_id).plan_id == plan.plan_id
    assert store.status(plan.plan_id)["steps"] == {
        "1": {"state": "done", "attempts": 1, "at": "t1"}
    }
    assert [e["event"] for e in store.audit(plan.plan_id).read()] == ["approved"]


def test_review_escapes_hostile_names():
    page = plan_html(make_plan())
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
    assert plan_table(make_plan()).row_count == 1
