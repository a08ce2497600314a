"""Running balances move live (#17/#20): customers, vendors and accounts, as QBO keeps them.

A generated company (copied from the session's template) is written through Operations; after
every write each customer's and vendor's Balance and each account's CurrentBalance (with jobs,
with sub-accounts) must equal what the books say from scratch, and a moved name keeps its
SyncToken but carries the write's LastUpdatedTime, as the captures show.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from qbo_pipeline.sandbox import reports
from qbo_pipeline.sandbox.completion import Completion, decimal_amount
from qbo_pipeline.sandbox.operations import Operations
from qbo_pipeline.sandbox.running_balances import account_balances
from qbo_pipeline.sandbox.server import realm_id_for
from qbo_pipeline.sandbox.store import SandboxStore
from tests.conftest import SAMPLES

REALM = realm_id_for(0)


@pytest.fixture
def store(sandbox_template: Path, tmp_path: Path) -> Iterator[SandboxStore]:
    state = tmp_path / "sandbox.sqlite3"
    shutil.copyfile(sandbox_template, state)
    opened = SandboxStore(state)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def ops(store: SandboxStore) -> Operations:
    return Operations(store, REALM)


def stale_balances(store: SandboxStore) -> list[tuple[str, str, Any, Any]]:
    """Every name whose stored running balance differs from its books, recomputed from scratch."""
    chart = reports.Chart.from_store(store, REALM)
    txns = [(e, t) for e in reports.posting_entities() for t in store.iter_records(REALM, e)]
    want = account_balances(chart, txns)
    stale = []
    for account in store.iter_records(REALM, "Account"):
        got = tuple(
            decimal_amount(account.get(f))
            for f in ("CurrentBalance", "CurrentBalanceWithSubAccounts")
        )
        if got != want[account["Id"]]:
            stale.append(("Account", account["Id"], got, want[account["Id"]]))
    completion = Completion(store, REALM)
    customers = {c["Id"]: c for c in store.iter_records(REALM, "Customer")}
    for party in ("Customer", "Vendor"):
        for record in store.iter_records(REALM, party):
            own = completion.open_balance(party, record["Id"])
            if decimal_amount(record.get("Balance")) != own:
                stale.append((party, record["Id"], record.get("Balance"), own))
    for customer in customers.values():
        jobs = sum(
            (
                decimal_amount(c.get("BalanceWithJobs"))
                for c in customers.values()
                if (c.get("ParentRef") or {}).get("value") == customer["Id"]
            ),
            Decimal(0),
        )
        want_with = decimal_amount(customer.get("Balance")) + jobs
        if decimal_amount(customer.get("BalanceWithJobs")) != want_with:
            stale.append(("Customer", customer["Id"], customer.get("BalanceWithJobs"), want_with))
    return stale


def _tick(store: SandboxStore) -> None:
    store.advance_clock(REALM, timedelta(minutes=1))


def _sales_line(item: dict[str, Any], amount: int) -> dict[str, Any]:
    return {
        "Amount": amount,
        "DetailType": "SalesItemLineDetail",
        "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "Qty": 1, "UnitPrice": amount},
    }


def _active(store: SandboxStore, entity: str, test: Any = lambda r: True) -> dict[str, Any]:
    return next(
        r for r in store.iter_records(REALM, entity) if r.get("Active") is not False and test(r)
    )


def test_the_generated_company_s_balances_are_its_books(store: SandboxStore) -> None:
    assert stale_balances(store) == []


def test_every_transaction_write_moves_customer_job_parent_and_account_balances(
    store: SandboxStore, ops: Operations
) -> None:
    job = _active(store, "Customer", lambda c: bool(c.get("ParentRef")))
    parent_id = job["ParentRef"]["value"]
    item = _active(store, "Item", lambda i: i.get("Type") == "Service")
    receivable = reports.Chart.from_store(store, REALM).receivable
    before = {
        "job": store.get(REALM, "Customer", job["Id"]),
        "parent": store.get(REALM, "Customer", parent_id),
        "ar": store.get(REALM, "Account", receivable),
    }
    _tick(store)
    invoice = ops.create(
        "Invoice", {"CustomerRef": {"value": job["Id"]}, "Line": [_sales_line(item, 250)]}
    )
    assert stale_balances(store) == []
    now = invoice["MetaData"]["LastUpdatedTime"]
    for key, entity, field in (
        ("job", "Customer", "Balance"),
        ("parent", "Customer", "BalanceWithJobs"),
        ("ar", "Account", "CurrentBalance"),
    ):
        was = before[key]
        moved = store.get(REALM, entity, was["Id"]) or {}
        assert decimal_amount(moved[field]) == decimal_amount(was[field]) + 250, key
        # QBO keeps the version and stamps the time of the write that moved the balance.
        assert moved["SyncToken"] == was["SyncToken"], key
        assert moved["MetaData"]["LastUpdatedTime"] == now, key
        assert moved["MetaData"]["CreateTime"] == was["MetaData"]["CreateTime"], key

    # A payment of part of it, an edit of the amount, a void, a delete: always the books.
    _tick(store)
    payment = ops.create(
        "Payment",
        {
            "CustomerRef": {"value": job["Id"]},
            "TotalAmt": 100,
            "Line": [
                {"Amount": 100, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}
            ],
        },
    )
    assert stale_balances(store) == []
    current = store.get(REALM, "Invoice", invoice["Id"]) or {}
    _tick(store)
    ops.update(
        "Invoice",
        {"Id": invoice["Id"], "SyncToken": current["SyncToken"], "Line": [_sales_line(item, 400)]},
        sparse=True,
    )
    assert stale_balances(store) == []
    _tick(store)
    other = ops.create(
        "Invoice", {"CustomerRef": {"value": job["Id"]}, "Line": [_sales_line(item, 75)]}
    )
    ops.void("Invoice", other["Id"], other["SyncToken"])
    assert stale_balances(store) == []
    ops.delete("Payment", payment["Id"], payment["SyncToken"])
    current = store.get(REALM, "Invoice", invoice["Id"]) or {}
    ops.delete("Invoice", invoice["Id"], current["SyncToken"])
    assert stale_balances(store) == []
    back = store.get(REALM, "Customer", parent_id) or {}
    assert decimal_amount(back["BalanceWithJobs"]) == decimal_amount(
        before["parent"]["BalanceWithJobs"]
    )


def test_vendor_and_ledger_only_transactions_move_their_balances(
    store: SandboxStore, ops: Operations
) -> None:
    vendor = _active(store, "Vendor")
    chart = reports.Chart.from_store(store, REALM)
    expense = next(a for a in chart.accounts.values() if a.classification == "Expense")
    bank = next(a for a in chart.accounts.values() if a.account_type == "Bank")
    bill = ops.create(
        "Bill",
        {
            "VendorRef": {"value": vendor["Id"]},
            "Line": [
                {
                    "Amount": 90,
                    "DetailType": "AccountBasedExpenseLineDetail",
                    "AccountBasedExpenseLineDetail": {"AccountRef": {"value": expense.id}},
                }
            ],
        },
    )
    moved = store.get(REALM, "Vendor", vendor["Id"]) or {}
    assert decimal_amount(moved["Balance"]) == decimal_amount(vendor["Balance"]) + 90
    ops.create(
        "BillPayment",
        {
            "VendorRef": {"value": vendor["Id"]},
            "PayType": "Check",
            "CheckPayment": {"BankAccountRef": {"value": bank.id}},
            "TotalAmt": 90,
            "Line": [{"Amount": 90, "LinkedTxn": [{"TxnId": bill["Id"], "TxnType": "Bill"}]}],
        },
    )
    assert stale_balances(store) == []
    paid = store.get(REALM, "Vendor", vendor["Id"]) or {}
    assert decimal_amount(paid["Balance"]) == decimal_amount(vendor["Balance"])
    was_bank = decimal_amount((store.get(REALM, "Account", bank.id) or {})["CurrentBalance"])
    entry = ops.create(
        "JournalEntry",
        {
            "Line": [
                {
                    "Amount": 30,
                    "DetailType": "JournalEntryLineDetail",
                    "JournalEntryLineDetail": {
                        "PostingType": side,
                        "AccountRef": {"value": account},
                    },
                }
                for side, account in (("Debit", bank.id), ("Credit", expense.id))
            ]
        },
    )
    bank_now = store.get(REALM, "Account", bank.id) or {}
    assert decimal_amount(bank_now["CurrentBalance"]) == was_bank + 30
    # An income or expense account's CurrentBalance stays 0, as every capture shows.
    assert decimal_amount((store.get(REALM, "Account", expense.id) or {})["CurrentBalance"]) == 0
    ops.delete("JournalEntry", entry["Id"], entry["SyncToken"])
    assert stale_balances(store) == []
    # A new account (and so a new chart) posts at once; its parent adds it up.
    petty = ops.create(
        "Account",
        {"Name": "Petty Cash", "AccountType": "Bank", "ParentRef": {"value": bank.id}},
    )
    ops.create(
        "Transfer",
        {
            "FromAccountRef": {"value": bank.id},
            "ToAccountRef": {"value": petty["Id"]},
            "Amount": 12,
        },
    )
    assert decimal_amount((store.get(REALM, "Account", petty["Id"]) or {})["CurrentBalance"]) == 12
    assert stale_balances(store) == []


def test_an_edit_that_moves_no_balance_leaves_the_names_alone(
    store: SandboxStore, ops: Operations
) -> None:
    invoice = _active(store, "Invoice", lambda i: decimal_amount(i.get("Balance")) > 0)
    customer_id = invoice["CustomerRef"]["value"]
    was = store.get(REALM, "Customer", customer_id)
    _tick(store)
    ops.update(
        "Invoice",
        {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"], "PrivateNote": "called"},
        sparse=True,
    )
    assert store.get(REALM, "Customer", customer_id) == was


def test_cdc_returns_a_customer_whose_balance_moved(store: SandboxStore, ops: Operations) -> None:
    customer = _active(store, "Customer", lambda c: not c.get("ParentRef"))
    item = _active(store, "Item", lambda i: i.get("Type") == "Service")
    _tick(store)
    since = store.now(REALM).astimezone(UTC)
    _tick(store)
    ops.create(
        "Invoice", {"CustomerRef": {"value": customer["Id"]}, "Line": [_sales_line(item, 10)]}
    )
    changed = {
        str(key): json.loads(text)
        for _, key, text, _ in store.changes_since(REALM, "Customer", since, 1000)
    }
    assert changed[customer["Id"]]["Balance"] == pytest.approx(float(customer["Balance"]) + 10)


def test_deactivation_keeps_print_on_check_name_and_a_tax_agency_has_no_active(
    ops: Operations,
) -> None:
    vendor = ops.create("Vendor", {"DisplayName": "United States Treasury"})
    inactive = ops.deactivate("Vendor", vendor["Id"])
    captured = next(
        v
        for v in json.loads((SAMPLES / "query_vendor_active_in_true_false.json").read_text())[
            "QueryResponse"
        ]["Vendor"]
        if v["Active"] is False
    )
    assert (inactive["DisplayName"], inactive["PrintOnCheckName"]) == (
        captured["DisplayName"],
        captured["PrintOnCheckName"],
    )
    again = ops.reactivate("Vendor", vendor["Id"])
    assert again["PrintOnCheckName"] == "United States Treasury"
    agency = ops.create("TaxAgency", {"DisplayName": "Utah State Tax Commission"})
    assert "Active" not in agency
    updated = ops.update(
        "TaxAgency", {"Id": agency["Id"], "SyncToken": "0", "DisplayName": "Utah STC"}
    )
    assert "Active" not in updated


def test_generated_invoices_name_their_writer_and_adjustments_their_currency(
    store: SandboxStore,
) -> None:
    invoice = next(iter(store.iter_records(REALM, "Invoice")))
    assert list(invoice["MetaData"]) == ["CreateTime", "LastModifiedByRef", "LastUpdatedTime"]
    assert invoice["MetaData"]["LastModifiedByRef"]["value"].isdigit()
    adjustment = next(iter(store.iter_records(REALM, "InventoryAdjustment")))
    assert adjustment["CurrencyRef"]["value"] == "USD"
    assert all(
        "LastModifiedByRef" not in c["MetaData"] for c in store.iter_records(REALM, "Payment")
    )


def test_a_job_or_sub_account_moved_to_another_parent_moves_both_parents_totals(
    store: SandboxStore, ops: Operations
) -> None:
    job = _active(
        store,
        "Customer",
        lambda c: bool(c.get("ParentRef")) and decimal_amount(c.get("BalanceWithJobs")) != 0,
    )
    old_parent = job["ParentRef"]["value"]
    new_parent = _active(store, "Customer", lambda c: not c.get("ParentRef"))["Id"]
    assert new_parent != old_parent
    was = {
        i: decimal_amount((store.get(REALM, "Customer", i) or {})["BalanceWithJobs"])
        for i in (old_parent, new_parent)
    }
    ops.update(
        "Customer",
        {"Id": job["Id"], "SyncToken": job["SyncToken"], "ParentRef": {"value": new_parent}},
        sparse=True,
    )
    moved = decimal_amount(job["BalanceWithJobs"])
    now = {
        i: decimal_amount((store.get(REALM, "Customer", i) or {})["BalanceWithJobs"])
        for i in (old_parent, new_parent)
    }
    assert now == {old_parent: was[old_parent] - moved, new_parent: was[new_parent] + moved}
    assert stale_balances(store) == []
    # An account with a balance moved under another parent: the same, with sub-accounts.
    chart = reports.Chart.from_store(store, REALM)
    bank = next(a for a in chart.accounts.values() if a.account_type == "Bank" and not a.parent)
    child = next(
        a
        for a in store.iter_records(REALM, "Account")
        if a.get("AccountType") == "Bank"
        and a["Id"] != bank.id
        and not a.get("ParentRef")
        and decimal_amount(a.get("CurrentBalance")) != 0
    )
    ops.update(
        "Account",
        {"Id": child["Id"], "SyncToken": child["SyncToken"], "ParentRef": {"value": bank.id}},
        sparse=True,
    )
    assert stale_balances(store) == []
