"""What one transaction does to the transactions it applies to, as QBO keeps it on the other side.

A payment's lines name the invoices (and credit memos) they pay; QBO then lowers each invoice's
``Balance`` and adds ``{"TxnId": <payment>, "TxnType": "Payment"}`` to the invoice's
``LinkedTxn``. A bill payment does the same to bills (the back-link type is ``BillPaymentCheck``
whatever the ``PayType``, as the captures show), and a deposit adds ``{"TxnType": "Deposit"}``
to the payments and sales receipts it banks, without moving their balances. Deleting or voiding
the applying transaction undoes exactly what it did; voiding or deleting the invoice or bill
takes its line parts out of the payments (:func:`payers`, :func:`unlinked`), and deleting a
credit memo or vendor credit a payment uses takes its line out and what it covered off the
documents paid (:func:`without_credit`).

The back-links are owned by the applying side: a client cannot write them on the target (they
are dropped from a create and kept from the current version on an update), which is also why
restore leaves them out of what it sends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Application:
    """How a line of one entity applies to a target transaction.

    Attributes:
        target: The catalogue name of the transaction applied to.
        backlink: The ``TxnType`` QBO writes in the target's ``LinkedTxn``, or None (a credit
            memo used by a payment shows no link).
        moves_balance: Whether the line's amount lowers the target's open balance.
    """

    target: str
    backlink: str | None
    moves_balance: bool


APPLICATIONS: dict[str, dict[str, Application]] = {
    "Payment": {
        "Invoice": Application("Invoice", "Payment", moves_balance=True),
        "CreditMemo": Application("CreditMemo", None, moves_balance=True),
    },
    "BillPayment": {
        "Bill": Application("Bill", "BillPaymentCheck", moves_balance=True),
        "VendorCredit": Application("VendorCredit", None, moves_balance=True),
    },
    "Deposit": {
        "Payment": Application("Payment", "Deposit", moves_balance=False),
        "SalesReceipt": Application("SalesReceipt", "Deposit", moves_balance=False),
        "RefundReceipt": Application("RefundReceipt", "Deposit", moves_balance=False),
    },
}
"""Applying entity -> the line ``LinkedTxn.TxnType`` it applies to -> what that does."""

BACKLINK_TYPES: dict[str, frozenset[str]] = {
    "Invoice": frozenset({"Payment"}),
    "Bill": frozenset({"BillPaymentCheck", "BillPaymentCreditCard"}),
    "Payment": frozenset({"Deposit"}),
    "SalesReceipt": frozenset({"Deposit"}),
    "RefundReceipt": frozenset({"Deposit"}),
}
"""Per target entity, the ``LinkedTxn`` types the server owns (older data may carry
``BillPaymentCreditCard``, which is recognised and removed like ``BillPaymentCheck``)."""

BALANCE_FIELDS = ("Balance", "RemainingCredit")
"""The open-amount fields an applied line lowers, where the target has them."""


@dataclass(frozen=True)
class Applied:
    """One target of a transaction: how much its lines apply and how."""

    application: Application
    amount: Decimal


def _decimal(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return Decimal(0)
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return Decimal(0)


def applied(entity: str, record: dict[str, Any] | None) -> dict[tuple[str, str], Applied]:
    """What ``record`` (an ``entity``) applies, by ``(target entity, target id)``.

    Lines of zero amount (a voided payment's) apply nothing; a record of an entity that applies
    nothing, or None (not yet created, deleted), gives an empty map.
    """
    table = APPLICATIONS.get(entity)
    if not table or not isinstance(record, dict):
        return {}
    out: dict[tuple[str, str], Applied] = {}
    for line in record.get("Line") or ():
        if not isinstance(line, dict):
            continue
        amount = _decimal(line.get("Amount"))
        for link in line.get("LinkedTxn") or ():
            if not isinstance(link, dict):
                continue
            application = table.get(str(link.get("TxnType")))
            target_id = link.get("TxnId")
            if application is None or target_id in (None, ""):
                continue
            key = (application.target, str(target_id))
            before = out.get(key)
            total = amount + (before.amount if before else Decimal(0))
            out[key] = Applied(application, total)
    if entity != "Deposit":
        out = {key: value for key, value in out.items() if value.amount}
    return out


def owned_links(entity: str, links: object) -> list[dict[str, Any]]:
    """The server-owned back-links among a record's ``LinkedTxn``."""
    owned = BACKLINK_TYPES.get(entity, frozenset())
    if not owned or not isinstance(links, list):
        return []
    return [link for link in links if isinstance(link, dict) and link.get("TxnType") in owned]


def client_links(entity: str, links: object) -> list[Any]:
    """A ``LinkedTxn`` without the server-owned back-links (what a client may write)."""
    owned = BACKLINK_TYPES.get(entity, frozenset())
    if not isinstance(links, list):
        return []
    return [link for link in links if not (isinstance(link, dict) and link.get("TxnType") in owned)]


def payers(target: str) -> list[tuple[str, str]]:
    """The ``(applying entity, line TxnType)`` pairs whose lines apply ``target``.

    ``target`` is a document paid (an invoice or bill, which a void or delete takes out with
    :func:`unlinked`) or a credit used (a credit memo or vendor credit, :data:`CREDITS`, which
    a delete takes out with :func:`without_credit`).
    """
    return [
        (applying, txn_type)
        for applying, table in APPLICATIONS.items()
        for txn_type, application in table.items()
        if application.target == target and application.moves_balance
    ]


def unlinked(record: dict[str, Any], txn_type: str, target_id: str) -> dict[str, Any]:
    """``record`` (a payment or bill payment, flat) without its line parts applying to a target.

    Each line's ``LinkedTxn`` loses the links to ``(txn_type, target_id)``; a line left linking
    nothing is dropped with its amount, which so becomes unapplied. Credits used beyond the
    documents still paid are released to their credit memos or vendor credits (their lines
    lowered, the last first, :func:`_released_credits`): a payment's unapplied amount is part of
    its own money, never above its ``TotalAmt`` (payment 74 of ``query_payment_all.json``, a
    credit linked to a charge, has ``TotalAmt`` 0 and ``UnappliedAmt`` 0).
    """
    lines = []
    for line in record.get("Line") or ():
        if not isinstance(line, dict):
            lines.append(line)
            continue
        kept = [
            link
            for link in line.get("LinkedTxn") or ()
            if not (
                isinstance(link, dict)
                and str(link.get("TxnType")) == txn_type
                and str(link.get("TxnId")) == target_id
            )
        ]
        if kept:
            lines.append({**line, "LinkedTxn": kept})
        elif not line.get("LinkedTxn"):
            lines.append(line)
    return {**record, "Line": _released_credits(lines)}


def _released_credits(lines: list[Any]) -> list[Any]:
    """``lines`` with the credit lines lowered (the last first) to what the documents use."""
    return _taken_off(
        lines,
        -net_applied({"Line": lines}),
        lambda line: bool(line.get("LinkedTxn")) and not _pays_documents(line),
    )


def _taken_off(
    lines: list[Any], amount: Decimal, lowered: Callable[[dict[str, Any]], bool]
) -> list[Any]:
    """``lines`` with ``amount`` taken off the lines ``lowered`` picks, the last first.

    A line lowered to zero is dropped; an ``amount`` of zero or less changes nothing.
    """
    out = list(lines)
    for index in range(len(out) - 1, -1, -1):
        line = out[index]
        if amount <= 0:
            break
        if not isinstance(line, dict) or not lowered(line):
            continue
        has = _decimal(line.get("Amount"))
        taken = min(has, amount)
        amount -= taken
        if has == taken:
            del out[index]
        else:
            out[index] = {**line, "Amount": _number(has - taken)}
    return out


CREDITS = frozenset({"CreditMemo", "VendorCredit"})
"""Line ``TxnType``s that bring credit into a payment rather than take its money."""


def net_applied(record: dict[str, Any]) -> Decimal:
    """What a payment's lines take of its money: the documents paid less the credits used.

    ``query_payment_all.json``'s payment 74 pays invoice lines of 100 with a credit memo line of
    100: ``TotalAmt`` 0 and ``UnappliedAmt`` 0, so a credit's line counts against the others.
    """
    total = Decimal(0)
    for line in record.get("Line") or ():
        if not isinstance(line, dict):
            continue
        amount = _decimal(line.get("Amount"))
        types = {
            str(link.get("TxnType"))
            for link in line.get("LinkedTxn") or ()
            if isinstance(link, dict)
        }
        total += -amount if types and types <= CREDITS else amount
    return total


def without_credit(record: dict[str, Any], txn_type: str, target_id: str) -> dict[str, Any]:
    """``record`` (a payment or bill payment, flat) without the credit ``(txn_type, target_id)``.

    The lines using the credit are dropped (as :func:`unlinked` drops them) and what they
    covered is taken off the lines paying documents, the last first, a line left at zero
    dropped: the payment keeps its money (``TotalAmt``, what is unapplied) and the documents
    are owed again what the credit paid. No capture shows a used credit deleted (QBO refuses
    to void one); Intuit's help on removing a credit from an invoice says "the credit memo is
    unapplied and the invoice balance is restored", which this is.
    """
    out = unlinked(record, txn_type, target_id)
    freed = net_applied(out) - net_applied(record)  # the credit lines dropped
    return {**out, "Line": _taken_off(list(out["Line"]), freed, _pays_documents)}


def _pays_documents(line: dict[str, Any]) -> bool:
    types = {
        str(link.get("TxnType")) for link in line.get("LinkedTxn") or () if isinstance(link, dict)
    }
    return bool(types) and not types & CREDITS


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def unapplied(record: dict[str, Any]) -> Decimal:
    """What a payment or bill payment has not applied: ``TotalAmt`` less :func:`net_applied`.

    A bill payment has no ``UnappliedAmt`` field (``query_billpayment_all.json``), yet what it
    no longer applies (its bill deleted) is still paid to the vendor: a credit with the vendor.
    """
    return _decimal(record.get("TotalAmt")) - net_applied(record)
