"""Payments of an invoice whose tax a restore into another company drops (#20).

When the new company cannot charge a sales form's tax (:mod:`~qbo_pipeline.restore.into_refs`:
a US snapshot rebuilt in a Canadian company), the rebuilt invoice's total is the snapshot's less
its ``TotalTax``. The payments that paid it in the snapshot would still apply their original
``Line[].Amount`` to it: more than it owes. The plan caps those applications so that together
they do not exceed the rebuilt total, the earliest payment (``TxnDate``, then creation time,
then id) keeping its amount first; a line left applying nothing is dropped. A payment's
``TotalAmt`` is unchanged, so what it no longer applies stays on it unapplied: the customer's
credit, which is what QBO does with an overpayment (a payment's ``TotalAmt`` above its applied
lines is its ``UnappliedAmt``). Each capped payment's step says so, and the changed paths
(``Line.Amount`` or ``Line``, ``UnappliedAmt``) are among its ``departs``.

Evidence on what QBO does with an application above an invoice's balance: none found. Neither
the reference nor the captures (/work/shared/qbo-reference) show it, and searches of Intuit's
documentation, GitHub issues and web pages found no QBO error code or message for it (only
other products' errors, and an integration's warning that such a payment "would cause the
invoice balance to become negative" in QuickBooks). The sandbox is left as it is (it accepts the
application and the invoice's ``Balance`` goes negative); capping avoids both outcomes.

Only invoices are capped: QBO's payments apply to invoices (a bill's purchase tax is not
dropped: a US company's purchases have no tax detail). A payment's line using a credit memo
whose tax was dropped is not capped here.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from qbo_pipeline.restore.model import Action
from qbo_pipeline.restore.plan_steps import Draft
from qbo_pipeline.restore.scope import id_sort_key

CAPPED = ("Invoice",)
"""Sales forms a payment applies to whose rebuilt total can be lower than the snapshot's."""

TAX_DROPPED = "TxnTaxDetail.TotalTax"
"""The departure that says a form's tax is not charged in the new company."""

APPLIED_PATHS = ("Line.Amount", "UnappliedAmt")
"""What a capped payment departs in (``Line`` too when a line is left applying nothing)."""


def _money(value: Any) -> Decimal:
    if isinstance(value, bool) or value in (None, ""):
        return Decimal(0)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)


def _text(amount: Decimal) -> str:
    return f"{amount:,.2f}"


def _number(amount: Decimal) -> int | float:
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def rebuilt_total(snapshot: dict[str, Any]) -> Decimal:
    """What a form whose tax is dropped totals in the new company: ``TotalAmt - TotalTax``."""
    tax = _money((snapshot.get("TxnTaxDetail") or {}).get("TotalTax"))
    return _money(snapshot.get("TotalAmt")) - tax


def _order(draft: Draft) -> tuple[str, str, tuple[Any, ...]]:
    """A payment's place in the order payments were made: date, creation time, id."""
    snap = draft.target or {}
    created = str((snap.get("MetaData") or {}).get("CreateTime") or "")
    return str(snap.get("TxnDate") or "")[:10], created, id_sort_key(draft.old_id)


def _links_to(line: Any, entity: str, rid: str) -> bool:
    if not isinstance(line, dict):
        return False
    return any(
        isinstance(link, dict)
        and str(link.get("TxnType")) == entity
        and str(link.get("TxnId")) == rid
        for link in line.get("LinkedTxn") or ()
    )


def cap_applications(drafts: Iterable[Draft]) -> int:
    """Cap what created payments apply to created invoices whose tax is dropped.

    Args:
        drafts: The plan's drafts; the payments' payloads, reasons and departures change in
            place (references are still the snapshot's ids).

    Returns:
        How many payment lines were lowered or dropped.
    """
    drafts = list(drafts)
    forms = {
        (d.entity.name, d.old_id): d
        for d in drafts
        if d.entity.name in CAPPED
        and d.action is Action.CREATE
        and d.role == "main"
        and TAX_DROPPED in d.departs
        and d.target is not None
    }
    if not forms:
        return 0
    payments = sorted(
        (
            d
            for d in drafts
            if d.entity.name == "Payment" and d.action is Action.CREATE and d.payload is not None
        ),
        key=_order,
    )
    lowered = 0
    for (name, rid), form in forms.items():
        assert form.target is not None
        owed = rebuilt_total(form.target)
        tax = _money((form.target.get("TxnTaxDetail") or {}).get("TotalTax"))
        label = f"{name.lower()} {form.target.get('DocNumber') or rid}"
        for payment in payments:
            assert payment.payload is not None
            lines = payment.payload.get("Line") or []
            if not any(_links_to(line, name, rid) for line in lines):
                continue
            kept: list[Any] = []
            paid = applied = Decimal(0)
            for line in lines:
                if not _links_to(line, name, rid):
                    kept.append(line)
                    continue
                amount = _money(line.get("Amount"))
                share = max(Decimal(0), min(amount, owed))
                owed -= share
                paid += amount
                applied += share
                if share == amount:
                    kept.append(line)
                    continue
                lowered += 1
                if share:
                    kept.append({**line, "Amount": _number(share)})
                elif "Line" not in payment.departs:
                    payment.departs.append("Line")
            if applied == paid:
                continue
            payment.payload["Line"] = kept
            payment.departs += [p for p in APPLIED_PATHS if p not in payment.departs]
            left = paid - applied
            payment.reason += (
                f"; applies {_text(applied)} of its {_text(paid)} to {label}, whose tax "
                f"({_text(tax)}) the new company does not charge; {_text(left)} stays unapplied "
                "as the customer's credit"
            )
    return lowered
