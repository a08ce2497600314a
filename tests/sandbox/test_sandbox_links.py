"""Payments, bill payments and deposits update what they apply to, as QBO does."""

from __future__ import annotations

from typing import Any

from qbo_pipeline.sandbox import links
from qbo_pipeline.sandbox.operations import Operations
from tests.sandbox.conftest import Seen, stored


def _line(amount: float) -> list[dict[str, Any]]:
    return [{"Amount": amount, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}}]


def _payment(customer: str, *applied: tuple[str, str, float]) -> dict[str, Any]:
    lines = [
        {"Amount": amount, "LinkedTxn": [{"TxnId": txn_id, "TxnType": txn_type}]}
        for txn_type, txn_id, amount in applied
    ]
    total = sum(a for t, _, a in applied if t == "Invoice") - sum(
        a for t, _, a in applied if t == "CreditMemo"
    )
    return {"CustomerRef": {"value": customer}, "TotalAmt": total, "Line": lines}


def test_payment_lifecycle_moves_invoice_balance_and_backlink(ops: Operations, seen: Seen):
    customer = ops.create("Customer", {"DisplayName": "Payer"})["Id"]
    invoice = ops.create(
        "Invoice",
        {
            "CustomerRef": {"value": customer},
            "Line": _line(100),
            "Balance": 3,  # the server's field: ignored
            "LinkedTxn": [{"TxnId": "77", "TxnType": "Payment"}],  # a back-link: dropped
        },
    )
    assert invoice["Balance"] == 100 and invoice["LinkedTxn"] == []
    # The customer's running balance moves too: same version, a new LastUpdatedTime.
    assert seen == [("Customer", customer, "0")]
    seen.clear()
    payment = ops.create("Payment", _payment(customer, ("Invoice", invoice["Id"], 60)))
    paid = stored(ops, "Invoice", invoice["Id"])
    assert paid["Balance"] == 40 and paid["SyncToken"] == "1"
    assert paid["LinkedTxn"] == [{"TxnId": payment["Id"], "TxnType": "Payment"}]
    assert seen == [("Invoice", invoice["Id"], "1"), ("Customer", customer, "0")]
    assert stored(ops, "Customer", customer)["Balance"] == 40

    ops.update(
        "Payment",
        {**payment, "TotalAmt": 100, "Line": [{**payment["Line"][0], "Amount": 100}]},
    )
    paid = stored(ops, "Invoice", invoice["Id"])
    assert paid["Balance"] == 0 and len(paid["LinkedTxn"]) == 1

    # Editing the invoice keeps what is applied to it; a client cannot drop the back-link.
    edited = ops.update(
        "Invoice",
        {
            "Id": invoice["Id"],
            "SyncToken": paid["SyncToken"],
            "CustomerRef": {"value": customer},
            "Line": _line(150),
            "Balance": 150,
        },
    )
    assert edited["TotalAmt"] == 150 and edited["Balance"] == 50
    assert edited["LinkedTxn"] == [{"TxnId": payment["Id"], "TxnType": "Payment"}]

    current = stored(ops, "Payment", payment["Id"])
    ops.delete("Payment", payment["Id"], current["SyncToken"])
    restored = stored(ops, "Invoice", invoice["Id"])
    assert restored["Balance"] == 150 and restored["LinkedTxn"] == []


def test_void_payment_reopens_invoice_and_credit_memo(ops: Operations) -> None:
    customer = ops.create("Customer", {"DisplayName": "Credited"})["Id"]
    invoice = ops.create("Invoice", {"CustomerRef": {"value": customer}, "Line": _line(205)})
    memo = ops.create(
        "CreditMemo",
        {"CustomerRef": {"value": customer}, "Line": _line(100), "RemainingCredit": 100},
    )
    assert memo["Balance"] == 100 and memo["RemainingCredit"] == 100
    payment = ops.create(
        "Payment",
        _payment(customer, ("Invoice", invoice["Id"], 205), ("CreditMemo", memo["Id"], 100)),
    )
    assert payment["TotalAmt"] == 105
    used = stored(ops, "CreditMemo", memo["Id"])
    assert used["Balance"] == 0 and used["RemainingCredit"] == 0
    assert "LinkedTxn" not in used  # QBO shows no back-link on a used credit memo
    assert stored(ops, "Invoice", invoice["Id"])["Balance"] == 0
    ops.void("Payment", payment["Id"], payment["SyncToken"])
    assert stored(ops, "Invoice", invoice["Id"])["Balance"] == 205
    assert stored(ops, "Invoice", invoice["Id"])["LinkedTxn"] == []
    assert stored(ops, "CreditMemo", memo["Id"])["RemainingCredit"] == 100


def test_bill_payment_closes_bill_with_check_backlink(ops: Operations) -> None:
    vendor = ops.create("Vendor", {"DisplayName": "Supplier"})["Id"]
    expense = [{"Amount": 250, "DetailType": "AccountBasedExpenseLineDetail"}]
    bill = ops.create("Bill", {"VendorRef": {"value": vendor}, "Line": expense})
    assert bill["Balance"] == 250
    paid = ops.create(
        "BillPayment",
        {
            "VendorRef": {"value": vendor},
            "PayType": "CreditCard",
            "TotalAmt": 250,
            "Line": [{"Amount": 250, "LinkedTxn": [{"TxnId": bill["Id"], "TxnType": "Bill"}]}],
        },
    )
    closed = stored(ops, "Bill", bill["Id"])
    assert closed["Balance"] == 0
    assert closed["LinkedTxn"] == [{"TxnId": paid["Id"], "TxnType": "BillPaymentCheck"}]
    ops.delete("BillPayment", paid["Id"], paid["SyncToken"])
    reopened = stored(ops, "Bill", bill["Id"])
    assert reopened["Balance"] == 250 and reopened["LinkedTxn"] == []


def test_deposit_links_the_payments_it_banks(ops: Operations, seen: Seen) -> None:
    customer = ops.create("Customer", {"DisplayName": "Depositor"})["Id"]
    account = ops.create("Account", {"Name": "Checking", "AccountType": "Bank"})["Id"]
    invoice = ops.create("Invoice", {"CustomerRef": {"value": customer}, "Line": _line(80)})
    payment = ops.create("Payment", _payment(customer, ("Invoice", invoice["Id"], 80)))
    deposit = ops.create(
        "Deposit",
        {
            "DepositToAccountRef": {"value": account},
            "Line": [
                {
                    "Amount": 80,
                    "LinkedTxn": [{"TxnId": payment["Id"], "TxnType": "Payment", "TxnLineId": "0"}],
                }
            ],
        },
    )
    banked = stored(ops, "Payment", payment["Id"])
    assert banked["LinkedTxn"] == [{"TxnId": deposit["Id"], "TxnType": "Deposit"}]
    assert banked["SyncToken"] == "1"
    assert stored(ops, "Invoice", invoice["Id"])["Balance"] == 0  # a deposit moves no balance
    # A full update of the payment by a client keeps the deposit's back-link.
    kept = ops.update("Payment", {k: v for k, v in banked.items() if k != "LinkedTxn"})
    assert kept["LinkedTxn"] == banked["LinkedTxn"]
    assert stored(ops, "Invoice", invoice["Id"])["Balance"] == 0
    ops.delete("Deposit", deposit["Id"], deposit["SyncToken"])
    assert stored(ops, "Payment", payment["Id"])["LinkedTxn"] == []
    assert ("Payment", payment["Id"], "3") in seen


def test_applied_reads_lines_and_ignores_zero_amounts() -> None:
    payment = {
        "Line": [
            {"Amount": 10, "LinkedTxn": [{"TxnId": "1", "TxnType": "Invoice"}]},
            {"Amount": 5, "LinkedTxn": [{"TxnId": "1", "TxnType": "Invoice"}]},
            {"Amount": 0, "LinkedTxn": [{"TxnId": "2", "TxnType": "Invoice"}]},
            {"Amount": 3, "LinkedTxn": [{"TxnId": "9", "TxnType": "JournalEntry"}]},
            "junk",
        ]
    }
    found = links.applied("Payment", payment)
    assert set(found) == {("Invoice", "1")}
    assert found[("Invoice", "1")].amount == 15
    assert links.applied("Invoice", payment) == {} and links.applied("Payment", None) == {}
