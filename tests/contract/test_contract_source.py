"""The dlt source lands a replayed company (QBO's captured answers) losslessly as Parquet."""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import dlt
import pyarrow.parquet as pq
import pytest

from qbo_pipeline import entities
from qbo_pipeline.lake import records
from qbo_pipeline.qbo import faults
from qbo_pipeline.qbo.http import QBOClient
from qbo_pipeline.restore.payloads import version_of
from qbo_pipeline.sources.qbo import qbo_source
from qbo_pipeline.sources.qbo.helpers import (
    ExtractionPlan,
    batched_reads,
    count_records,
    table_name,
)
from qbo_pipeline.sources.qbo.settings import STAGING_DATASET
from tests.conftest import SAMPLES
from tests.contract.replay import CaptureCompany, ReplayServer

ANSWERS = {
    "Account": "query_account_all.json",
    "Bill": "query_bill_all.json",
    "BillPayment": "query_billpayment_all.json",
    "CreditMemo": "query_creditmemo_all.json",
    "Customer": "query_customer_all_2026.json",
    "Deposit": "query_deposit_all.json",
    "Employee": "query_employee_incl_inactive.json",
    "Estimate": "query_estimate_all.json",
    "Invoice": "query_invoice_all.json",
    "Item": "query_item_all.json",
    "JournalEntry": "query_journalentry_all.json",
    "Payment": "query_payment_all.json",
    "Purchase": "query_purchase_all.json",
    "PurchaseOrder": "query_purchaseorder_all.json",
    "SalesReceipt": "query_salesreceipt_all.json",
    "Vendor": "extra/query_vendor_all_2026.json",
    "RecurringTransaction": "extra/recurringtransaction_doc.json",
}
"""One captured SELECT * answer per entity: the replayed company."""


def land(client: QBOClient, plan: ExtractionPlan, staging: Path) -> dict[str, list[dict[str, Any]]]:
    """Run the source through dlt into ``staging``; the landed rows per entity."""
    workdir = tempfile.mkdtemp(prefix="qbo-dlt-")
    try:
        pipeline = dlt.pipeline(
            pipeline_name=f"contract_{uuid.uuid4().hex[:8]}",
            pipelines_dir=workdir,
            destination=dlt.destinations.filesystem(bucket_url=staging.resolve().as_uri()),
            dataset_name=STAGING_DATASET,
        )
        pipeline.run(qbo_source(client, plan), loader_file_format="parquet")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    landed: dict[str, list[dict[str, Any]]] = {}
    for entity in entities.CATALOGUE:
        folder = staging / STAGING_DATASET / table_name(entity)
        for path in sorted(folder.glob("*.parquet")):
            landed.setdefault(entity.name, []).extend(pq.read_table(path).to_pylist())
    return landed


def captured(entity: str) -> list[dict[str, Any]]:
    doc = json.loads((SAMPLES / ANSWERS[entity]).read_bytes())
    return doc["QueryResponse"][entities.get(entity).json_key]


def test_a_full_read_lands_every_captured_record_exactly(
    replay: ReplayServer, client: QBOClient, tmp_path: Path
) -> None:
    replay.company(CaptureCompany(dict(ANSWERS)))
    replay.route("GET", "preferences", "preferences_read_response.json")
    replay.route("GET", f"companyinfo/{replay.realm_id}", "companyinfo_read_doc.json")
    plan = ExtractionPlan(
        full=[entities.get(name) for name in ANSWERS],
        singletons={"Preferences": client.preferences(), "CompanyInfo": client.company_info()},
    )
    landed = land(client, plan, tmp_path / "staging")
    assert not replay.unmatched
    assert set(landed) == set(ANSWERS) | {"Preferences", "CompanyInfo"}
    for name in ANSWERS:
        entity = entities.get(name)
        wire = captured(name)
        rows = landed[name]
        assert len(rows) == len(wire), name
        by_id = {row["id"]: row for row in rows}
        for record in wire:
            row = by_id[records.record_id(entity, record)]
            # lossless: the payload is the record exactly as QBO sent it, every nested field
            assert records.load_json(row["payload"]) == record, (name, row["id"])
            assert row["payload"] == records.canonical_json(record)
            assert row["content_hash"] == records.content_hash(entity, record)
            assert row["sync_token"] == version_of(entity, record)[1]  # a template's inside
            assert row["status"] is None
    for name, capture in (
        ("Preferences", "preferences_read_response.json"),
        ("CompanyInfo", "companyinfo_read_doc.json"),
    ):
        [row] = landed[name]
        assert (
            records.load_json(row["payload"]) == json.loads((SAMPLES / capture).read_bytes())[name]
        )


def test_nested_lines_custom_fields_and_metadata_survive(
    replay: ReplayServer, client: QBOClient, tmp_path: Path
) -> None:
    wanted = ("SalesReceipt", "Invoice", "JournalEntry", "Customer")
    replay.company(CaptureCompany({name: ANSWERS[name] for name in wanted}))
    plan = ExtractionPlan(full=[entities.get(name) for name in wanted])
    landed = land(client, plan, tmp_path / "staging")
    payloads = {
        name: {row["id"]: records.load_json(row["payload"]) for row in landed[name]}
        for name in wanted
    }
    receipt = payloads["SalesReceipt"]["11"]
    assert receipt["CustomField"] == [{"DefinitionId": "1", "Name": "Crew #", "Type": "StringType"}]
    wire_receipt = next(r for r in captured("SalesReceipt") if r["Id"] == "11")
    assert receipt["Line"] == wire_receipt["Line"]
    assert receipt["MetaData"] == wire_receipt["MetaData"]
    for invoice in captured("Invoice"):
        kept = payloads["Invoice"][invoice["Id"]]
        assert kept["Line"] == invoice["Line"]  # SalesItemLineDetail, SubTotalLineDetail...
        assert kept["MetaData"]["LastUpdatedTime"] == invoice["MetaData"]["LastUpdatedTime"]
        assert kept.get("TxnTaxDetail") == invoice.get("TxnTaxDetail")
    for entry in captured("JournalEntry"):
        kept_lines = payloads["JournalEntry"][entry["Id"]]["Line"]
        assert [line["JournalEntryLineDetail"] for line in kept_lines] == [
            line["JournalEntryLineDetail"] for line in entry["Line"]
        ]
    landed_times = {row["id"]: row["last_updated_at"] for row in landed["Customer"]}
    for customer in captured("Customer"):
        stamp = datetime.fromisoformat(customer["MetaData"]["LastUpdatedTime"])
        assert landed_times[customer["Id"]] == stamp


def test_cdc_changes_land_with_their_deletion(
    replay: ReplayServer, client: QBOClient, tmp_path: Path
) -> None:
    since = datetime.fromisoformat("2015-12-22T00:00:00-08:00")
    replay.route(
        "GET",
        "cdc",
        "cdc_response_with_deleted_doc.json",
        params={"entities": "Customer,Estimate", "changedSince": "2015-12-22T00:00:00-08:00"},
    )
    changes = client.cdc([entities.get("Customer"), entities.get("Estimate")], since)
    plan = ExtractionPlan(cdc=changes, since=since)
    landed = land(client, plan, tmp_path / "staging")
    assert sorted(row["id"] for row in landed["Customer"]) == ["63", "99"]
    estimates = {row["id"]: row for row in landed["Estimate"]}
    assert set(estimates) == {"34", "123", "979"}
    gone = estimates["979"]
    assert gone["status"] == records.DELETED
    assert gone["last_updated_at"] == datetime.fromisoformat("2015-12-23T12:55:50-08:00")
    assert records.load_json(estimates["34"]["payload"]) == {"Id": "34"}
    assert estimates["34"]["status"] is None


def test_small_entities_are_counted_and_read_in_batches_as_a_full_backup_does(
    replay: ReplayServer, client: QBOClient, tmp_path: Path
) -> None:
    replay.company(CaptureCompany(dict(ANSWERS)))
    wanted = [entities.get(name) for name in ANSWERS]
    counts = count_records(client, wanted)
    assert counts == {name: len(captured(name)) for name in ANSWERS}
    read, spilled = batched_reads(client, wanted, sizes=counts)
    assert spilled == []
    assert read == {name: captured(name) for name in ANSWERS}
    batches = replay.requests_to("POST", "batch")
    assert len(batches) == len(replay.received) == 2  # 17 counts in one, 17 pages in one
    assert all(len(b.json()["BatchItemRequest"]) == len(ANSWERS) for b in batches)
    landed = land(client, ExtractionPlan(complete=read), tmp_path / "staging")
    assert len(replay.received) == 2  # the records read while planning land without a request
    for name in ANSWERS:
        entity = entities.get(name)
        payloads = {row["id"]: row["payload"] for row in landed[name]}
        assert payloads == {
            records.record_id(entity, r): records.canonical_json(r) for r in captured(name)
        }


def test_a_query_the_company_cannot_answer_is_a_faulted_batch_item(
    replay: ReplayServer, client: QBOClient
) -> None:
    replay.company(CaptureCompany({"Invoice": ANSWERS["Invoice"]}))
    with pytest.raises(faults.QueryError) as caught:
        count_records(client, [entities.get("Invoice"), entities.get("Bill")])
    assert caught.value.code == "4001"
