"""A bill payment's freed amount is a credit with the vendor (#20).

QuickBooks' help on voiding or deleting a bill: "When you delete a bill that you've already
paid, QuickBooks creates a credit with the vendor." A bill payment has no ``UnappliedAmt``
(``query_billpayment_all.json``), yet what it no longer applies lowers the vendor's
``Balance``; the A/P account keeps the payment's debit (it posts ``TotalAmt``), so both move
by the bill taken away.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from qbo_pipeline.sandbox.completion import Completion
from qbo_pipeline.sandbox.new_company import create_new_company
from qbo_pipeline.sandbox.operations import Operations
from qbo_pipeline.sandbox.store import SandboxStore

_AP = "6"
"""A new US company's Accounts Payable (A/P) (:mod:`new_company_defaults`)."""


@pytest.fixture
def ops() -> Operations:
    store = SandboxStore(":memory:")
    company = create_new_company(store, clock_start=datetime(2024, 3, 1, tzinfo=UTC))
    return Operations(store, company.realm_id)


def _get(ops: Operations, entity: str, record_id: str) -> dict[str, Any]:
    record = ops.store.get(ops.realm_id, entity, record_id)
    assert record is not None
    return record


def _books(ops: Operations, vendor: str) -> tuple[Any, Any]:
    """The vendor's stored Balance and the A/P account's, after checking the vendor's against
    its open documents counted from scratch."""
    balance = _get(ops, "Vendor", vendor)["Balance"]
    assert balance == Completion(ops.store, ops.realm_id).open_balance("Vendor", vendor)
    assert _get(ops, "Account", _AP)["Name"] == "Accounts Payable (A/P)"
    return balance, _get(ops, "Account", _AP)["CurrentBalance"]


def _paid_bills(ops: Operations) -> tuple[str, list[str], dict[str, Any]]:
    """A vendor, two bills of 250 and 100 and one bill payment of 350 paying both."""
    bank = ops.create("Account", {"Name": "Checking", "AccountType": "Bank"})["Id"]
    vendor = ops.create("Vendor", {"DisplayName": "Supplier"})["Id"]
    bills = [
        ops.create(
            "Bill",
            {
                "VendorRef": {"value": vendor},
                "Line": [
                    {
                        "Amount": amount,
                        "DetailType": "AccountBasedExpenseLineDetail",
                        "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "27"}},
                    }
                ],
            },
        )["Id"]
        for amount in (250, 100)
    ]
    paid = ops.create(
        "BillPayment",
        {
            "VendorRef": {"value": vendor},
            "PayType": "Check",
            "CheckPayment": {"BankAccountRef": {"value": bank}},
            "TotalAmt": 350,
            "Line": [
                {"Amount": amount, "LinkedTxn": [{"TxnId": bill, "TxnType": "Bill"}]}
                for amount, bill in zip((250, 100), bills, strict=True)
            ],
        },
    )
    assert _books(ops, vendor) == (0, 0)
    return vendor, bills, paid


def test_deleting_a_paid_bill_leaves_a_credit_with_the_vendor(ops: Operations) -> None:
    vendor, bills, _ = _paid_bills(ops)
    ops.delete("Bill", bills[0], _get(ops, "Bill", bills[0])["SyncToken"])
    # The vendor is owed nothing and has been paid 250 more than its bills: a debit on A/P.
    assert _books(ops, vendor) == (-250, 250)


def test_a_bill_payment_line_taken_off_frees_its_amount(ops: Operations) -> None:
    vendor, bills, paid = _paid_bills(ops)
    kept = [line for line in paid["Line"] if line["LinkedTxn"][0]["TxnId"] == bills[0]]
    ops.update("BillPayment", {**paid, "Line": kept, "TotalAmt": 350})
    assert _get(ops, "Bill", bills[1])["Balance"] == 100
    # Bill 2 is owed again (100) and the payment's 100 is a credit: the vendor nets 0, and so
    # does A/P, but the vendor's balance counts the credit, not only its open bills.
    assert _books(ops, vendor) == (0, 0)
    ops.delete("Bill", bills[1], _get(ops, "Bill", bills[1])["SyncToken"])
    assert _books(ops, vendor) == (-100, 100)


def test_voiding_the_bill_payment_frees_nothing(ops: Operations) -> None:
    vendor, bills, paid = _paid_bills(ops)
    ops.delete("Bill", bills[0], _get(ops, "Bill", bills[0])["SyncToken"])
    ops.void("BillPayment", paid["Id"], _get(ops, "BillPayment", paid["Id"])["SyncToken"])
    assert _get(ops, "Bill", bills[1])["Balance"] == 100
    assert _books(ops, vendor) == (100, -100)
