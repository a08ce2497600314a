"""QBO write rules: deactivation naming, references, deletes, voids, balance, required fields."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from qbo_pipeline.sandbox.faults import SandboxFault
from qbo_pipeline.sandbox.operations import Operations
from qbo_pipeline.sandbox.store import SandboxStore

REALM = "3003"


@pytest.fixture
def ops() -> Operations:
    store = SandboxStore(":memory:")
    store.create_realm(REALM, "Ops Co", clock_start=datetime(2024, 1, 1, tzinfo=UTC))
    return Operations(store, REALM)


def _code(call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(SandboxFault) as info:
        call(*args, **kwargs)  # type: ignore[operator]
    return info.value.code


def test_deactivate_and_reactivate_rename(ops: Operations) -> None:
    account = ops.create("Account", {"Name": "Fees Billed", "AccountType": "Income"})
    inactive = ops.deactivate("Account", account["Id"])
    assert inactive["Name"] == "Fees Billed (deleted)" and inactive["Active"] is False
    assert inactive["SyncToken"] == "1"
    again = ops.create("Account", {"Name": "Fees Billed", "AccountType": "Income"})
    assert _code(ops.reactivate, "Account", account["Id"]) == "6240"
    ops.deactivate("Account", again["Id"])
    assert ops.reactivate("Account", account["Id"])["Name"] == "Fees Billed"


def test_reference_to_inactive_or_missing_record_is_610(ops: Operations) -> None:
    customer = ops.create("Customer", {"DisplayName": "Gone Soon"})
    line = [{"Amount": 10, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}}]
    ops.deactivate("Customer", customer["Id"])
    assert _code(ops.create, "Invoice", {"CustomerRef": {"value": customer["Id"]}, "Line": line})
    assert _code(ops.create, "Invoice", {"CustomerRef": {"value": "777"}, "Line": line}) == "610"
    assert ops.store.count(REALM, "Invoice") == 0


def test_delete_rules_and_void(ops: Operations) -> None:
    customer = ops.create("Customer", {"DisplayName": "Payer"})
    assert _code(ops.delete, "Customer", customer["Id"], "0") == "500"
    invoice = ops.create(
        "Invoice",
        {
            "CustomerRef": {"value": customer["Id"]},
            "Line": [
                {
                    "Amount": 40,
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"Qty": 2, "UnitPrice": 20},
                },
            ],
        },
    )
    assert invoice["TotalAmt"] == 40 and invoice["Balance"] == 40
    assert _code(ops.void, "Invoice", invoice["Id"], "7") == "5010"
    voided = ops.void("Invoice", invoice["Id"], "0")
    assert voided["TotalAmt"] == 0 and voided["Line"][0]["SalesItemLineDetail"]["Qty"] == 0
    assert _code(ops.void, "Bill", "1", "0") == "500"
    assert ops.delete("Invoice", invoice["Id"], "1")["status"] == "Deleted"
    assert ops.store.get(REALM, "Invoice", invoice["Id"]) is None


def test_journal_entry_must_balance_and_required_fields(ops: Operations) -> None:
    account = ops.create("Account", {"Name": "Cash", "AccountType": "Bank"})

    def line(side: str, amount: float) -> dict[str, object]:
        return {
            "Amount": amount,
            "DetailType": "JournalEntryLineDetail",
            "JournalEntryLineDetail": {"PostingType": side, "AccountRef": {"value": account["Id"]}},
        }

    assert _code(ops.create, "JournalEntry", {"Line": [line("Debit", 5), line("Credit", 4)]})
    entry = ops.create("JournalEntry", {"Line": [line("Debit", 5), line("Credit", 5)]})
    assert entry["TotalAmt"] == 0  # as QBO answers (journalentry_create_response.json)
    assert _code(ops.create, "Account", {"AccountType": "Bank"}) == "2020"
    assert _code(ops.create, "TaxCode", {"Name": "X"}) == "500"
    assert _code(ops.update, "Account", {"Id": "1.5", "SyncToken": "0"}) == "2030"


def test_full_update_clears_omitted_fields_sparse_keeps_them(ops: Operations) -> None:
    customer = ops.create("Customer", {"DisplayName": "Keep", "Notes": "n", "CompanyName": "C"})
    sparse = ops.update(
        "Customer", {"Id": customer["Id"], "SyncToken": "0", "Notes": "m"}, sparse=True
    )
    assert sparse["CompanyName"] == "C" and sparse["Notes"] == "m"
    full = ops.update("Customer", {"Id": customer["Id"], "SyncToken": "1", "DisplayName": "Keep"})
    assert (
        "CompanyName" not in full
        and full["MetaData"]["CreateTime"] == customer["MetaData"]["CreateTime"]
    )


def test_party_display_names_are_unique_across_customer_vendor_employee(ops: Operations) -> None:
    customer = ops.create("Customer", {"DisplayName": "Pat Shared"})
    assert _code(ops.create, "Vendor", {"DisplayName": "pat shared"}) == "6240"
    assert _code(ops.create, "Employee", {"DisplayName": "Pat Shared"}) == "6240"
    vendor = ops.create("Vendor", {"DisplayName": "Vera Vendor"})
    assert _code(ops.create, "Customer", {"DisplayName": "Vera Vendor"}) == "6240"
    renamed = {"Id": customer["Id"], "SyncToken": "0", "sparse": True, "DisplayName": "Vera Vendor"}
    assert _code(ops.update, "Customer", renamed) == "6240"
    # A record may keep its own name, and an inactive record frees it for the others.
    same = {"Id": customer["Id"], "SyncToken": "0", "sparse": True, "DisplayName": "Pat Shared"}
    assert ops.update("Customer", same)["SyncToken"] == "1"
    ops.deactivate("Customer", customer["Id"])
    assert ops.create("Employee", {"DisplayName": "Pat Shared"})["DisplayName"] == "Pat Shared"
    assert _code(ops.reactivate, "Customer", customer["Id"]) == "6240"
    # Other name-lists keep their own name spaces.
    assert ops.create("Item", {"Name": "Vera Vendor", "Type": "Service"})["Name"] == "Vera Vendor"
    assert vendor["Active"] is True


def test_name_in_use_reports_the_shared_party_space(ops: Operations) -> None:
    vendor = ops.create("Vendor", {"DisplayName": "Acme Supply"})
    assert ops.name_in_use("Customer", "ACME SUPPLY")
    assert not ops.name_in_use("Vendor", "Acme Supply", vendor["Id"])
    assert not ops.name_in_use("Account", "Acme Supply")


def test_a_deposit_total_is_net_of_its_cash_back() -> None:
    from datetime import UTC, datetime

    from qbo_pipeline.sandbox.operations import Operations
    from qbo_pipeline.sandbox.store import SandboxStore

    store = SandboxStore(":memory:")
    store.create_realm("1", "Cash Back Co", clock_start=datetime(2026, 1, 5, tzinfo=UTC))
    ops = Operations(store, "1")
    for name, kind in (("Checking", "Bank"), ("Savings", "Bank"), ("Sales", "Income")):
        ops.create("Account", {"Name": name, "AccountType": kind})
    deposit = ops.create(
        "Deposit",
        {
            "DepositToAccountRef": {"value": "1"},
            "Line": [
                {
                    "Amount": 300,
                    "DetailType": "DepositLineDetail",
                    "DepositLineDetail": {"AccountRef": {"value": "3"}},
                },
            ],
            "CashBack": {"AccountRef": {"value": "2"}, "Amount": 122.5},
        },
    )
    assert deposit["TotalAmt"] == 177.5


def test_a_full_update_keeps_or_recalculates_the_fields_qbo_computes(ops: Operations) -> None:
    """A full update clears what it leaves out, but not what QBO computes: an item's quantity
    is kept, a customer's balance is recalculated from its open documents (#17)."""
    income = ops.create("Account", {"Name": "Sales", "AccountType": "Income"})
    item = ops.create(
        "Item",
        {
            "Name": "Rock",
            "Type": "Inventory",
            "QtyOnHand": 26,
            "IncomeAccountRef": {"value": income["Id"]},
        },
    )
    customer = ops.create("Customer", {"DisplayName": "Owes Us", "Balance": 85})
    assert customer["Balance"] == 0, "a client's balance is not taken"
    updated = ops.update(
        "Item",
        {
            "Id": item["Id"],
            "SyncToken": item["SyncToken"],
            "Name": "Rock",
            "Type": "Inventory",
            "IncomeAccountRef": {"value": income["Id"]},
            "Description": "now described",
        },
    )
    assert updated["QtyOnHand"] == 26 and updated["Description"] == "now described"
    ops.create(
        "Invoice",
        {
            "CustomerRef": {"value": customer["Id"]},
            "Line": [
                {
                    "Amount": 85,
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}},
                }
            ],
        },
    )
    renamed = ops.update(
        "Customer",
        {"Id": customer["Id"], "SyncToken": customer["SyncToken"], "DisplayName": "Still Owes"},
    )
    assert renamed["Balance"] == 85 and renamed["DisplayName"] == "Still Owes"
    assert renamed["BalanceWithJobs"] == 85
    cleared = ops.update(
        "Customer",
        {
            "Id": customer["Id"],
            "SyncToken": renamed["SyncToken"],
            "DisplayName": "Still Owes",
            "Balance": 1,
        },
    )
    assert "PrimaryEmailAddr" not in cleared and cleared["Balance"] == 85


def test_a_sub_customer_gets_its_level_from_its_parent(ops: Operations) -> None:
    """QBO computes Level from the parent chain; a write that leaves it out still has it."""
    parent = ops.create("Customer", {"DisplayName": "Parent Co"})
    job = ops.create(
        "Customer", {"DisplayName": "Job", "Job": True, "ParentRef": {"value": parent["Id"]}}
    )
    sub = ops.create(
        "Customer", {"DisplayName": "Phase", "Job": True, "ParentRef": {"value": job["Id"]}}
    )
    assert "Level" not in parent and job["Level"] == 1 and sub["Level"] == 2
    again = ops.update(
        "Customer",
        {
            "Id": job["Id"],
            "SyncToken": job["SyncToken"],
            "DisplayName": "Job",
            "Job": True,
            "ParentRef": {"value": parent["Id"]},
        },
    )
    assert again["Level"] == 1 and again["FullyQualifiedName"] == "Parent Co:Job"


def test_a_credit_memo_always_has_its_remaining_credit(ops: Operations) -> None:
    """QBO computes RemainingCredit; a full update that leaves it out still gets it."""
    customer = ops.create("Customer", {"DisplayName": "Refunded"})
    line = [{"Amount": 200, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}}]
    memo = ops.create("CreditMemo", {"CustomerRef": {"value": customer["Id"]}, "Line": line})
    assert memo["RemainingCredit"] == 200
    body = {
        "Id": memo["Id"],
        "SyncToken": memo["SyncToken"],
        "CustomerRef": {"value": customer["Id"]},
        "Line": line,
        "PrivateNote": "edited",
    }
    assert ops.update("CreditMemo", body)["RemainingCredit"] == 200


def test_a_sub_account_has_no_level(ops: Operations) -> None:
    """As the captures show: Level is a customer's, a sub-account only has its ParentRef."""
    parent = ops.create("Account", {"Name": "Utilities", "AccountType": "Expense"})
    sub = ops.create(
        "Account",
        {
            "Name": "Gas",
            "AccountType": "Expense",
            "SubAccount": True,
            "ParentRef": {"value": parent["Id"]},
        },
    )
    assert "Level" not in sub and sub["FullyQualifiedName"] == "Utilities:Gas"
