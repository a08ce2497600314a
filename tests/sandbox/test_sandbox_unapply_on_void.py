"""Voiding or deleting a paid invoice or bill unapplies the payments that paid it."""

from __future__ import annotations

import pytest

from qbo_pipeline.sandbox.operations import Operations
from tests.sandbox.conftest import Seen, stored


def _paid_invoice(ops: Operations, total: float, paid: float) -> tuple[str, str, str]:
    """A customer, an invoice of ``total`` and a payment of ``paid`` applied to it (ids)."""
    customer = ops.create("Customer", {"DisplayName": "Payer"})["Id"]
    line = {"Amount": total, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}}
    invoice = ops.create("Invoice", {"CustomerRef": {"value": customer}, "Line": [line]})["Id"]
    payment = ops.create(
        "Payment",
        {
            "CustomerRef": {"value": customer},
            "TotalAmt": paid,
            "Line": [{"Amount": paid, "LinkedTxn": [{"TxnId": invoice, "TxnType": "Invoice"}]}],
        },
    )["Id"]
    assert stored(ops, "Payment", payment)["UnappliedAmt"] == 0
    return customer, invoice, payment


@pytest.mark.parametrize("how", ["void", "delete"])
def test_voiding_or_deleting_a_paid_invoice_leaves_the_payment_as_unapplied_credit(
    ops: Operations, seen: Seen, how: str
) -> None:
    customer, invoice, payment = _paid_invoice(ops, 1128, 1128)
    assert stored(ops, "Customer", customer)["Balance"] == 0
    before = stored(ops, "Payment", payment)
    seen.clear()
    if how == "void":
        voided = ops.void("Invoice", invoice, stored(ops, "Invoice", invoice)["SyncToken"])
        assert voided["Balance"] == 0 and voided["LinkedTxn"] == []
    else:
        ops.delete("Invoice", invoice, stored(ops, "Invoice", invoice)["SyncToken"])
    after = stored(ops, "Payment", payment)
    assert after["Line"] == []  # it links the invoice no more
    assert after["TotalAmt"] == 1128 and after["UnappliedAmt"] == 1128
    assert after["SyncToken"] == str(int(before["SyncToken"]) + 1)
    assert after["MetaData"]["LastUpdatedTime"] >= before["MetaData"]["LastUpdatedTime"]
    assert ("Payment", payment, after["SyncToken"]) in seen
    # The customer now has a credit of the whole payment.
    assert stored(ops, "Customer", customer)["Balance"] == -1128


def test_voiding_a_part_paid_invoice_moves_the_balance_by_its_total(ops: Operations) -> None:
    customer, invoice, payment = _paid_invoice(ops, 1128, 1100)
    assert stored(ops, "Customer", customer)["Balance"] == 28
    ops.void("Invoice", invoice, stored(ops, "Invoice", invoice)["SyncToken"])
    assert stored(ops, "Payment", payment)["UnappliedAmt"] == 1100
    assert stored(ops, "Customer", customer)["Balance"] == -1100


def test_a_payment_of_two_invoices_keeps_paying_the_other(ops: Operations) -> None:
    customer = ops.create("Customer", {"DisplayName": "Two"})["Id"]
    line = {"Amount": 50, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}}
    first, second = (
        ops.create("Invoice", {"CustomerRef": {"value": customer}, "Line": [line]})["Id"]
        for _ in range(2)
    )
    payment = ops.create(
        "Payment",
        {
            "CustomerRef": {"value": customer},
            "TotalAmt": 100,
            "Line": [
                {"Amount": 50, "LinkedTxn": [{"TxnId": first, "TxnType": "Invoice"}]},
                {"Amount": 50, "LinkedTxn": [{"TxnId": second, "TxnType": "Invoice"}]},
            ],
        },
    )["Id"]
    ops.void("Invoice", first, stored(ops, "Invoice", first)["SyncToken"])
    after = stored(ops, "Payment", payment)
    assert [line["LinkedTxn"][0]["TxnId"] for line in after["Line"]] == [second]
    assert after["UnappliedAmt"] == 50
    kept = stored(ops, "Invoice", second)
    assert kept["Balance"] == 0
    assert kept["LinkedTxn"] == [{"TxnId": payment, "TxnType": "Payment"}]
    assert stored(ops, "Customer", customer)["Balance"] == -50


def test_a_voided_payment_is_left_alone(ops: Operations) -> None:
    _, invoice, payment = _paid_invoice(ops, 80, 80)
    ops.void("Payment", payment, stored(ops, "Payment", payment)["SyncToken"])
    voided = stored(ops, "Payment", payment)
    ops.void("Invoice", invoice, stored(ops, "Invoice", invoice)["SyncToken"])
    assert stored(ops, "Payment", payment)["SyncToken"] == voided["SyncToken"]


def test_deleting_a_paid_bill_unlinks_its_bill_payment(ops: Operations) -> None:
    """A bill cannot be voided through the API (the catalogue's ``voidable``): only deleted."""
    vendor = ops.create("Vendor", {"DisplayName": "Supplier"})["Id"]
    expense = [{"Amount": 250, "DetailType": "AccountBasedExpenseLineDetail"}]
    bill = ops.create("Bill", {"VendorRef": {"value": vendor}, "Line": expense})["Id"]
    paid = ops.create(
        "BillPayment",
        {
            "VendorRef": {"value": vendor},
            "PayType": "Check",
            "TotalAmt": 250,
            "Line": [{"Amount": 250, "LinkedTxn": [{"TxnId": bill, "TxnType": "Bill"}]}],
        },
    )
    ops.delete("Bill", bill, stored(ops, "Bill", bill)["SyncToken"])
    after = stored(ops, "BillPayment", paid["Id"])
    assert after["Line"] == [] and after["TotalAmt"] == 250
    assert after["SyncToken"] == str(int(paid["SyncToken"]) + 1)


def test_a_payment_using_a_credit_memo_leaves_nothing_unapplied(ops: Operations) -> None:
    """As payment 74 of ``query_payment_all.json``: an invoice line of 100 and a credit memo line
    of 100, TotalAmt 0, UnappliedAmt 0 (it was -200, and the customer's Balance 200)."""
    customer = ops.create("Customer", {"DisplayName": "Credited"})["Id"]
    line = {"Amount": 100, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}}
    invoice = ops.create("Invoice", {"CustomerRef": {"value": customer}, "Line": [line]})["Id"]
    memo = ops.create("CreditMemo", {"CustomerRef": {"value": customer}, "Line": [line]})["Id"]
    payment = ops.create(
        "Payment",
        {
            "CustomerRef": {"value": customer},
            "TotalAmt": 0,
            "Line": [
                {"Amount": 100, "LinkedTxn": [{"TxnId": invoice, "TxnType": "Invoice"}]},
                {"Amount": 100, "LinkedTxn": [{"TxnId": memo, "TxnType": "CreditMemo"}]},
            ],
        },
    )
    assert payment["UnappliedAmt"] == 0
    assert stored(ops, "Invoice", invoice)["Balance"] == 0
    assert stored(ops, "CreditMemo", memo)["Balance"] == 0
    assert stored(ops, "Customer", customer)["Balance"] == 0
