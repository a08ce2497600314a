"""Restore's payload builders turn QBO's captured records into writes QBO accepts.

Each captured record is made into a create, full update, reactivation or deactivation body by
``qbo_pipeline.restore.payloads``, sent by the product's client to the replay server, whose
:func:`~tests.contract.replay.write_check` answers QBO's own fault captures when a body sends
back a field QBO owns, misses the live SyncToken or carries a bad sparse flag; otherwise the
captured answer of that write. The tests assert on the bodies the server received.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from qbo_pipeline import entities
from qbo_pipeline.entities import Kind
from qbo_pipeline.qbo import faults
from qbo_pipeline.qbo.http import QBOClient
from qbo_pipeline.restore import payloads
from tests.conftest import SAMPLES
from tests.contract.replay import READ_ONLY_FIELDS, ReplayServer, record_reply, write_check


def wire(capture: str) -> list[dict[str, Any]]:
    """The records of a capture (a query answer, or one read record)."""
    doc = json.loads((SAMPLES / capture).read_bytes())
    if "QueryResponse" in doc:
        return [r for v in doc["QueryResponse"].values() if isinstance(v, list) for r in v]
    return [v for k, v in doc.items() if k != "time"]


# entity -> (captures of its records, the capture of QBO's answer to a create)
CREATES = {
    "Invoice": (
        ["query_invoice_all.json", "invoice_read_response.json"],
        "invoice_create_response.json",
    ),
    "JournalEntry": (["query_journalentry_all.json"], "journalentry_create_response.json"),
    "Payment": (["query_payment_all.json"], "payment_create_response.json"),
    "Customer": (
        ["query_customer_all_2026.json", "extra/query_customer_all.json"],
        "extra/customer_create_response.json",
    ),
    "Account": (
        ["query_account_all.json", "account_read_inactive.json"],
        "extra/account_create_response.json",
    ),
    "Item": (
        ["query_item_all.json", "extra/item_read_inventory.json"],
        "extra/item_create_response.json",
    ),
}


def _no_line_ids(body: dict[str, Any]) -> bool:
    return all("Id" not in line for line in body.get("Line") or [])


def assert_create_body(entity: entities.Entity, record: dict[str, Any], sent: Any) -> None:
    """A create body: nothing QBO owns or assigns, everything else exactly as captured."""
    assert not READ_ONLY_FIELDS & set(sent)
    assert "Id" not in sent and "SyncToken" not in sent and "sparse" not in sent
    assert _no_line_ids(sent)  # QBO numbers the lines of a new transaction
    for key, value in sent.items():  # nothing else is changed on the way
        if key in ("Active", "PrintOnCheckName") or key == entity.name_field:
            continue
        if key.endswith("Addr") and isinstance(value, dict):
            assert value == {k: v for k, v in record[key].items() if k != "Id"}, key
            continue
        if key == "Line":
            assert value == [{k: v for k, v in ln.items() if k != "Id"} for ln in record[key]]
            continue
        assert value == record[key], (entity.name, record.get("Id"), key)
    if entity.kind is Kind.NAME_LIST:
        assert sent["Active"] is True  # deactivated again by a last step
        assert not str(sent.get(entity.name_field, "")).endswith(" (deleted)")


@pytest.mark.parametrize("name", sorted(CREATES))
def test_create_bodies_of_captured_records_are_accepted(
    replay: ReplayServer, client: QBOClient, name: str
) -> None:
    entity = entities.get(name)
    captures, answer = CREATES[name]
    replay.route("POST", entity.resource, answer, check=write_check())
    records = [r for c in captures for r in wire(c)]
    assert len(records) >= 10
    for i, record in enumerate(records):
        body = payloads.create_payload(entity, record)
        created = client.create(entity, body, request_id=f"c-{name}-{i}")
        assert created["SyncToken"] == "0"
        sent = replay.received[-1].json()
        assert sent == body
        assert_create_body(entity, record, sent)
    assert not replay.unmatched


def captured_records() -> dict[str, list[dict[str, Any]]]:
    """Every captured record of the entities restore re-creates through a plain create."""
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(SAMPLES.rglob("*.json")):
        doc = json.loads(path.read_bytes())
        groups = (
            doc["QueryResponse"].items()
            if "QueryResponse" in doc
            else ((k, [v]) for k, v in doc.items() if isinstance(v, dict))
        )
        for key, items in groups:
            try:
                entity = entities.get(key)
            except entities.UnknownEntityError:
                continue
            if entity.read_only or entity.is_singleton or not isinstance(items, list):
                continue
            if entity.name in ("Attachable", "ExchangeRate", "RecurringTransaction"):
                continue  # uploaded; only ever updated; written by its transaction's rules
            found.setdefault(entity.name, []).extend(
                r for r in items if isinstance(r, dict) and r.get("status") != "Deleted"
            )
    return found


def test_every_captured_record_makes_a_create_qbo_accepts(
    replay: ReplayServer, client: QBOClient
) -> None:
    by_entity = captured_records()
    assert len(by_entity) >= 25 and sum(map(len, by_entity.values())) >= 400
    for name, records in by_entity.items():
        entity = entities.get(name)
        made = record_reply(
            entity.json_key, {"Id": "9999", "SyncToken": "0"}, "2026-05-05T00:00:00-07:00"
        )
        replay.route("POST", entity.resource, made, check=write_check())
        for i, record in enumerate(records):
            body = payloads.create_payload(entity, record)
            client.create(entity, body, request_id=f"all-{name}-{i}")
            assert_create_body(entity, record, replay.received[-1].json())
    assert not replay.unmatched


def test_the_inactive_account_is_created_active_under_its_own_name(
    replay: ReplayServer, client: QBOClient
) -> None:
    entity = entities.get("Account")
    replay.route("POST", "account", "extra/account_create_response.json", check=write_check())
    [record] = wire("account_read_inactive.json")
    assert record["Name"] == "Fees Billed (deleted)" and record["Active"] is False
    client.create(entity, payloads.create_payload(entity, record), request_id="c-acct")
    sent = replay.received[-1].json()
    assert sent["Name"] == "Fees Billed" and sent["Active"] is True
    assert "FullyQualifiedName" not in sent and "CurrentBalance" not in sent


def test_a_record_sent_back_as_read_is_refused(replay: ReplayServer, client: QBOClient) -> None:
    # the check is real: QBO's read answer, sent back unchanged, carries what QBO owns
    entity = entities.get("Invoice")
    replay.route("POST", "invoice", "invoice_create_response.json", check=write_check())
    [record] = wire("invoice_read_response.json")
    body = {k: v for k, v in record.items() if k not in ("Id", "SyncToken")}
    with pytest.raises(faults.ValidationError) as caught:
        client.create(entity, body, request_id="raw")
    assert caught.value.code == "2010"


UPDATES = [
    ("Customer", "query_customer_all_2026.json", "customer_update_response.json"),
    ("Invoice", "query_invoice_all.json", "extra/invoice_sparse_update_response.json"),
]


@pytest.mark.parametrize(("name", "capture", "answer"), UPDATES)
def test_full_updates_name_the_live_record_and_its_sync_token(
    replay: ReplayServer, client: QBOClient, name: str, capture: str, answer: str
) -> None:
    entity = entities.get(name)
    records = wire(capture)
    live = {r["Id"]: str(int(r["SyncToken"]) + 3) for r in records}  # changed since the snapshot
    replay.route("POST", entity.resource, answer, check=write_check(live=live))
    for i, record in enumerate(records):
        body = payloads.update_payload(
            entity, record, live_id=record["Id"], sync_token=live[record["Id"]]
        )
        client.update(entity, body, sparse=False, request_id=f"u-{name}-{i}")
        sent = replay.received[-1].json()
        assert sent["Id"] == record["Id"] and sent["SyncToken"] == live[record["Id"]]
        assert sent["sparse"] is False
        assert not READ_ONLY_FIELDS & set(sent)
        # a full update keeps the line ids: they name the lines it keeps
        assert [ln.get("Id") for ln in sent.get("Line", [])] == [
            ln.get("Id") for ln in record.get("Line", [])
        ]
    assert len(replay.received) == len(records)


def test_an_update_with_the_snapshot_sync_token_is_stale(
    replay: ReplayServer, client: QBOClient
) -> None:
    entity = entities.get("Customer")
    [record, *_] = wire("query_customer_all_2026.json")
    live = {record["Id"]: str(int(record["SyncToken"]) + 1)}
    replay.route("POST", "customer", "customer_update_response.json", check=write_check(live=live))
    body = payloads.update_payload(
        entity, record, live_id=record["Id"], sync_token=record["SyncToken"]
    )
    with pytest.raises(faults.StaleObjectError) as caught:
        client.update(entity, body, request_id="stale")
    assert caught.value.code == "5010"


def test_reactivate_and_deactivate(replay: ReplayServer, client: QBOClient) -> None:
    account = entities.get("Account")
    [record] = wire("account_read_inactive.json")
    replay.route(
        "POST",
        "account",
        "extra/account_create_response.json",
        check=write_check(live={"5": "2"}),
    )
    body = payloads.reactivate_payload(account, record, live_id="5", sync_token="2")
    client.update(account, body, request_id="react")
    sent = replay.received[-1].json()
    assert sent["Active"] is True and sent["Name"] == "Fees Billed"
    assert (sent["Id"], sent["SyncToken"], sent["sparse"]) == ("5", "2", False)
    assert not READ_ONLY_FIELDS & set(sent)

    customer = entities.get("Customer")
    replay.route(
        "POST", "customer", "customer_update_response.json", check=write_check(live={"68": "0"})
    )
    client.update(customer, payloads.deactivate_payload("68", "0"), sparse=True, request_id="deact")
    assert replay.received[-1].json() == {
        "Id": "68",
        "SyncToken": "0",
        "Active": False,
        "sparse": True,
    }
