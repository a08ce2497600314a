"""Deleting a credit memo or vendor credit that a payment uses (#20).

The payment loses the credit's line and the documents it paid lose what the credit covered,
which so is owed again: the invoice's (bill's) Balance and the customer's (vendor's) Balance
rise by it; the payment keeps its money (TotalAmt, UnappliedAmt). QBO refuses to void either
credit (the catalogue's ``voidable``), so a delete is the only way.
"""

from __future__ import annotations

from typing import Any

import pytest

from qbo_pipeline.sandbox import faults
from qbo_pipeline.sandbox.operations import Operations
from tests.sandbox.conftest import Seen, stored


def _delete(ops: Operations, entity: str, record_id: str) -> None:
    ops.delete(entity, record_id, stored(ops, entity, record_id)["SyncToken"])


def _sales(amount: float) -> list[dict[str, Any]]:
    return [{"Amount": amount, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}}]


def _expense(amount: float) -> list[dict[str, Any]]:
    return [{"Amount": amount, "DetailType": "AccountBasedExpenseLineDetail"}]


def _link(amount: float, txn_id: str, txn_type: str) -> dict[str, Any]:
    return {"Amount": amount, "LinkedTxn": [{"TxnId": txn_id, "TxnType": txn_type}]}


def _credit_paying(
    ops: Operations, name: str, invoiced: float, credited: float, used: float, cash: float
) -> tuple[str, str, str, str]:
    """A customer's invoice paid by ``used`` of a credit memo and ``cash``, as payment 74 of
    ``query_payment_all.json`` links a credit to a charge (customer, invoice, memo, payment)."""
    customer = ops.create("Customer", {"DisplayName": name})["Id"]
    ref = {"value": customer}
    invoice = ops.create("Invoice", {"CustomerRef": ref, "Line": _sales(invoiced)})["Id"]
    memo = ops.create("CreditMemo", {"CustomerRef": ref, "Line": _sales(credited)})["Id"]
    payment = ops.create(
        "Payment",
        {
            "CustomerRef": ref,
            "TotalAmt": cash,
            "Line": [_link(used + cash, invoice, "Invoice"), _link(used, memo, "CreditMemo")],
        },
    )["Id"]
    return customer, invoice, memo, payment


def _credited_invoice(ops: Operations, cash: float) -> tuple[str, str, str, str]:
    """An invoice of 150 paid by a credit memo of 100 and ``cash``."""
    customer, invoice, memo, payment = _credit_paying(ops, "Credited", 150, 100, 100, cash)
    assert stored(ops, "Invoice", invoice)["Balance"] == 50 - cash
    assert stored(ops, "CreditMemo", memo)["Balance"] == 0
    assert stored(ops, "Customer", customer)["Balance"] == 50 - cash
    return customer, invoice, memo, payment


@pytest.mark.parametrize("cash", [0, 50])
def test_deleting_a_used_credit_memo_reopens_what_it_covered(
    ops: Operations, seen: Seen, cash: float
) -> None:
    customer, invoice, memo, payment = _credited_invoice(ops, cash)
    before = stored(ops, "Payment", payment)
    seen.clear()
    _delete(ops, "CreditMemo", memo)
    after = stored(ops, "Payment", payment)
    # The credit's line is gone; the invoice line keeps only what the money paid.
    assert after["Line"] == ([_link(cash, invoice, "Invoice")] if cash else [])
    assert after["TotalAmt"] == cash and after["UnappliedAmt"] == 0
    assert after["SyncToken"] == str(int(before["SyncToken"]) + 1)
    assert ("Payment", payment, after["SyncToken"]) in seen
    reopened = stored(ops, "Invoice", invoice)
    assert reopened["Balance"] == 150 - cash
    # The invoice is linked to the payment only while the payment still pays it.
    assert reopened.get("LinkedTxn", []) == (
        [{"TxnId": payment, "TxnType": "Payment"}] if cash else []
    )
    assert ("Invoice", invoice, reopened["SyncToken"]) in seen
    assert stored(ops, "Customer", customer)["Balance"] == 150 - cash


def test_deleting_a_part_used_credit_memo_takes_all_of_it_from_the_customer(
    ops: Operations,
) -> None:
    customer, invoice, memo, _ = _credit_paying(ops, "Partly", 60, 100, 60, 0)
    assert stored(ops, "Customer", customer)["Balance"] == -40  # the credit left over
    _delete(ops, "CreditMemo", memo)
    assert stored(ops, "Invoice", invoice)["Balance"] == 60
    assert stored(ops, "Customer", customer)["Balance"] == 60


def test_deleting_a_used_vendor_credit_reopens_the_bill(ops: Operations) -> None:
    vendor = ops.create("Vendor", {"DisplayName": "Supplier"})["Id"]
    ref = {"value": vendor}
    bill = ops.create("Bill", {"VendorRef": ref, "Line": _expense(250)})["Id"]
    credit = ops.create("VendorCredit", {"VendorRef": ref, "Line": _expense(100)})["Id"]
    paid = ops.create(
        "BillPayment",
        {
            "VendorRef": ref,
            "PayType": "Check",
            "TotalAmt": 150,
            "Line": [_link(250, bill, "Bill"), _link(100, credit, "VendorCredit")],
        },
    )
    assert stored(ops, "Bill", bill)["Balance"] == 0
    assert stored(ops, "Vendor", vendor)["Balance"] == 0
    _delete(ops, "VendorCredit", credit)
    after = stored(ops, "BillPayment", paid["Id"])
    assert after["Line"] == [_link(150, bill, "Bill")] and after["TotalAmt"] == 150
    assert after["SyncToken"] == str(int(paid["SyncToken"]) + 1)
    assert stored(ops, "Bill", bill)["Balance"] == 100
    assert stored(ops, "Vendor", vendor)["Balance"] == 100


@pytest.mark.parametrize("entity", ["CreditMemo", "VendorCredit"])
def test_a_credit_cannot_be_voided(ops: Operations, entity: str) -> None:
    """intuit/QuickBooks-V3-PHP-SDK#133: 'Operation Void for CreditMemo is not supported'."""
    party = "Customer" if entity == "CreditMemo" else "Vendor"
    name = ops.create(party, {"DisplayName": "Nobody"})["Id"]
    lines = _sales(10) if entity == "CreditMemo" else _expense(10)
    credit = ops.create(entity, {f"{party}Ref": {"value": name}, "Line": lines})
    with pytest.raises(faults.SandboxFault):
        ops.void(entity, credit["Id"], credit["SyncToken"])


@pytest.mark.parametrize("how", ["void", "delete"])
def test_the_invoice_a_credit_paid_going_gives_the_credit_back(
    ops: Operations, seen: Seen, how: str
) -> None:
    """The other way round: the invoice goes, and the credit that paid it is released to its
    credit memo (Balance back), not left on the payment as an UnappliedAmt above its TotalAmt
    (QBO's unapplied amount is part of the payment's money: 100 unapplied of a payment of 0)."""
    customer, invoice, memo, payment = _credited_invoice(ops, 50)
    seen.clear()
    current = stored(ops, "Invoice", invoice)
    if how == "void":
        ops.void("Invoice", invoice, current["SyncToken"])
    else:
        ops.delete("Invoice", invoice, current["SyncToken"])
    after = stored(ops, "Payment", payment)
    assert after["Line"] == [] and after["TotalAmt"] == 50 and after["UnappliedAmt"] == 50
    released = stored(ops, "CreditMemo", memo)
    assert released["Balance"] == released["RemainingCredit"] == 100
    assert ("CreditMemo", memo, released["SyncToken"]) in seen
    # The customer has the credit memo back and the payment's money unapplied.
    assert stored(ops, "Customer", customer)["Balance"] == -150
