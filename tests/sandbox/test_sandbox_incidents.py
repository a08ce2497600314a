from __future__ import annotations

from datetime import date

import pytest

from qbo_pipeline import entities
from qbo_pipeline.sandbox import shapes
from qbo_pipeline.sandbox.incidents import (
    bad_import_customers,
    bulk_delete_invoices,
    deactivate_item,
)
from qbo_pipeline.sandbox.reports import build_report
from qbo_pipeline.sandbox.simulate import flatten
from qbo_pipeline.sandbox.store import SandboxStore
from tests.conftest import pinned_company

REALM = "4620816365000000003"
ALIASES = {"BillPaymentCheck": "BillPayment", "BillPaymentCreditCard": "BillPayment"}


@pytest.fixture
def store() -> SandboxStore:
    store = SandboxStore(":memory:")
    pinned_company(store, REALM, seed=42, transactions=600)
    return store


def _dangling(store: SandboxStore) -> list[str]:
    missing = []
    for entity in entities.CATALOGUE:
        for record in store.iter_records(REALM, entity.name):
            for ref, target, target_id in entities.iter_reference_values(entity, record):
                target = ALIASES.get(target, target)
                if target in ("CompanyCurrency", "ReimburseCharge"):
                    continue
                if store.get(REALM, target, target_id) is None:
                    rid = shapes.record_id(entity.name, record)
                    missing.append(f"{entity.name} {rid} {ref.path} {target_id}")
    return missing


def test_bulk_delete_removes_the_range_and_the_payments_applied(store: SandboxStore) -> None:
    start, end = date(2024, 3, 1), date(2024, 5, 31)
    in_range = {
        i["Id"]
        for i in store.iter_records(REALM, "Invoice")
        if "2024-03-01" <= i["TxnDate"] <= "2024-05-31"
    }
    paid_by = {
        p["Id"]
        for p in store.iter_records(REALM, "Payment")
        for line in p["Line"]
        for link in line["LinkedTxn"]
        if link["TxnId"] in in_range
    }
    assert in_range and paid_by
    log = bulk_delete_invoices(store, REALM, start=start, end=end)
    for invoice_id in in_range:
        assert store.get(REALM, "Invoice", invoice_id) is None
        assert store.is_deleted(REALM, "Invoice", invoice_id)
    for payment_id in paid_by:
        assert store.get(REALM, "Payment", payment_id) is None
        assert store.is_deleted(REALM, "Payment", payment_id)
    counts = log.counts()
    assert counts[("Invoice", "deleted")] == len(in_range)
    assert counts[("Payment", "deleted")] == len(paid_by)
    left = [i["TxnDate"] for i in store.iter_records(REALM, "Invoice")]
    assert left and not [d for d in left if "2024-03-01" <= d <= "2024-05-31"]
    assert _dangling(store) == []
    report = build_report(store, REALM, "TrialBalance", {"date_macro": "all"})
    total = report["Rows"]["Row"][-1]["Summary"]["ColData"]
    assert total[1]["value"] == total[2]["value"]


def test_bulk_delete_of_an_empty_range_changes_nothing(store: SandboxStore) -> None:
    assert bulk_delete_invoices(store, REALM, start=date(1999, 1, 1), end=date(1999, 2, 1)) == []
    with pytest.raises(ValueError, match="after end"):
        bulk_delete_invoices(store, REALM, start=date(2024, 2, 1), end=date(2024, 1, 1))


def test_bad_import_rewrites_customers(store: SandboxStore) -> None:
    before = {c["Id"]: c for c in store.iter_records(REALM, "Customer")}
    log = bad_import_customers(store, REALM, count=12, seed=1)
    assert log.counts() == {("Customer", "updated"): 12}
    for change in log:
        after = store.get(REALM, "Customer", change.id)
        assert after["BillAddr"]["Line1"] == "1 Import Way"
        assert after["PrimaryPhone"]["FreeFormNumber"] == "000-000-0000"
        assert after["DisplayName"] != before[change.id]["DisplayName"]
        assert after["DisplayName"] == after["DisplayName"].upper()
        assert int(after["SyncToken"]) == int(before[change.id]["SyncToken"]) + 1
        assert {"DisplayName", "PrimaryEmailAddr.Address", "BillAddr.Line1"} <= set(change.fields)
        flat = flatten(after)
        assert all(flat.get(path) == new for path, (_, new) in change.fields.items())
    with pytest.raises(ValueError, match="at least 1"):
        bad_import_customers(store, REALM, count=0)


def test_deactivate_item(store: SandboxStore) -> None:
    log = deactivate_item(store, REALM, item_id="10")
    item = store.get(REALM, "Item", "10")
    assert item["Active"] is False
    assert item["Name"] == "Pest Control (deleted)"
    assert log.counts() == {("Item", "deactivated"): 1}
    assert log[0].fields["Active"] == (True, False)
    chosen = deactivate_item(store, REALM)
    assert chosen[0].id != "10"
    assert store.get(REALM, "Item", chosen[0].id)["Active"] is False
    with pytest.raises(ValueError, match="does not exist"):
        deactivate_item(store, REALM, item_id="99999")
