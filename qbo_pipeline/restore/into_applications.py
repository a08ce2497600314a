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

A payment's line using a credit memo whose tax is dropped is capped the same way (the credit
memo's rebuilt credit is its total less its tax): the credit it no longer uses comes off the
payment's lines paying invoices, the last first, so the payment keeps its own money
(``TotalAmt`` and ``UnappliedAmt`` unchanged) and those invoices stay owing it, as the sandbox
does when a used credit is removed (:func:`qbo_pipeline.sandbox.links.without_credit`). Their
steps say so and add ``Balance`` to their departures. Credits are capped before payments, so an
invoice's cap sees what the credits left. A bill's purchase tax is not dropped (a US company's
purchases have no tax detail), so bill payments are left as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from qbo_pipeline.restore.model import Action
from qbo_pipeline.restore.plan_steps import Draft
from qbo_pipeline.restore.scope import id_sort_key

CAPPED = ("Invoice", "CreditMemo")
"""Sales forms a payment applies or uses whose rebuilt total can be lower than the snapshot's."""

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
    """Cap what created payments apply to (or use of) created forms whose tax is dropped.

    Args:
        drafts: The plan's drafts; the payments' payloads, the reasons and departures change
            in place (references are still the snapshot's ids).

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
    invoices = {d.old_id: d for d in drafts if d.entity.name == "Invoice" and d.role == "main"}
    lowered = 0
    # Credits first: what they no longer cover comes off invoices the payments then pay.
    for key in sorted(forms, key=lambda k: (k[0] != "CreditMemo", id_sort_key(k[1]))):
        form = forms[key]
        assert form.target is not None
        owed = rebuilt_total(form.target)
        for payment in payments:
            capped = _cap(payment, key, owed)
            if capped is None:
                continue
            share, amount, count = capped
            owed -= share
            lowered += count
            if key[0] == "CreditMemo":
                _owe_again(payment, form, share, amount, invoices)
            else:
                _leave_unapplied(payment, form, share, amount)
    return lowered


def _label(form: Draft) -> str:
    """``invoice 1037``, ``credit memo 12``: the form's number, else its id."""
    words = "credit memo" if form.entity.name == "CreditMemo" else form.entity.name.lower()
    return f"{words} {(form.target or {}).get('DocNumber') or form.old_id}"


def _tax(form: Draft) -> Decimal:
    return _money(((form.target or {}).get("TxnTaxDetail") or {}).get("TotalTax"))


def _cap(
    payment: Draft, key: tuple[str, str], owed: Decimal
) -> tuple[Decimal, Decimal, int] | None:
    """Lower ``payment``'s lines linked to form ``key`` to ``owed`` together, in line order.

    Returns:
        None if the payment has no line linked to it, else ``(kept, snapshot's, lines
        lowered)``: what its lines apply to the form now and in the snapshot.
    """
    assert payment.payload is not None
    name, rid = key
    lines = payment.payload.get("Line") or []
    if not any(_links_to(line, name, rid) for line in lines):
        return None
    kept: list[Any] = []
    amount = share = Decimal(0)
    count = 0
    for line in lines:
        if not _links_to(line, name, rid):
            kept.append(line)
            continue
        had = _money(line.get("Amount"))
        part = max(Decimal(0), min(had, owed - share))
        amount += had
        share += part
        if part == had:
            kept.append(line)
            continue
        count += 1
        if part:
            kept.append({**line, "Amount": _number(part)})
        elif "Line" not in payment.departs:
            payment.departs.append("Line")
    if count:
        payment.payload["Line"] = kept
    return share, amount, count


def _depart(draft: Draft, paths: Iterable[str]) -> None:
    draft.departs += [p for p in paths if p not in draft.departs]


def _leave_unapplied(payment: Draft, form: Draft, share: Decimal, amount: Decimal) -> None:
    """Say that ``payment`` applies ``share`` of its ``amount`` to invoice ``form``."""
    if share == amount:
        return
    _depart(payment, APPLIED_PATHS)
    tax = _text(_tax(form))
    payment.reason += (
        f"; applies {_text(share) if share else 'none'} of its {_text(amount)} to "
        f"{_label(form)}, whose tax ({tax}) "
        f"the new company does not charge; {_text(amount - share)} stays unapplied as the "
        "customer's credit"
    )


def _owe_again(
    payment: Draft, memo: Draft, share: Decimal, amount: Decimal, invoices: dict[str, Draft]
) -> None:
    """Take the credit ``payment`` no longer uses off its lines paying invoices, the last first.

    The payment keeps its money: the invoices it pays stay owing what the credit covered.
    """
    assert payment.payload is not None
    freed = amount - share
    if not freed:
        return
    lines = list(payment.payload.get("Line") or [])
    left = freed
    paid_less: dict[str, Decimal] = {}
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        ids = [
            str(link.get("TxnId"))
            for link in (line.get("LinkedTxn") or () if isinstance(line, dict) else ())
            if isinstance(link, dict) and str(link.get("TxnType")) == "Invoice"
        ]
        if left <= 0 or len(ids) != 1:
            continue
        had = _money(line.get("Amount"))
        taken = min(had, left)
        left -= taken
        paid_less[ids[0]] = paid_less.get(ids[0], Decimal(0)) + taken
        if taken == had:
            del lines[index]
            _depart(payment, ["Line"])
        else:
            lines[index] = {**line, "Amount": _number(had - taken)}
    payment.payload["Line"] = lines
    _depart(payment, ["Line.Amount"])
    tax = _text(_tax(memo))
    named = ", ".join(
        f"{_text(v)} less of {_label(invoices[k]) if k in invoices else f'invoice {k}'}"
        for k, v in sorted(paid_less.items())
    )
    payment.reason += (
        f"; uses {_text(share)} of the {_text(amount)} credit it took from {_label(memo)}, "
        f"whose tax ({tax}) the new company does not charge; so it pays {named or 'nothing less'}"
        ", which stays owing it"
    )
    for invoice_id, less in paid_less.items():
        invoice = invoices.get(invoice_id)
        if invoice is None:
            continue
        _depart(invoice, ["Balance"])
        invoice.reason += (
            f"; owes {_text(less)} more than in the snapshot: {_label(memo)}'s tax is not "
            f"charged in the new company, so payment {payment.old_id} takes that much less "
            "credit to it"
        )
