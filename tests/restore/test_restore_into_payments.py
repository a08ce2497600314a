"""Drill (#20): payments of taxed US invoices rebuilt in a Canadian company, whose tax is dropped.

The rebuilt invoice totals the snapshot's less its tax (QBO charges none there), so the plan caps
what its payments apply to it, the earliest first keeping their amount; the rest stays on the
payment unapplied, the customer's credit. Everything real: the sandbox over HTTP, the pinned
company with two new customers' taxed invoices and their payments, a lake in tmp_path, the
plan, the apply and its verification.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from qbo_pipeline import entities
from qbo_pipeline.backup import run_backup
from qbo_pipeline.config import Settings
from qbo_pipeline.lake.lake import Lake, RealmLake
from qbo_pipeline.qbo.http import QBOClient
from qbo_pipeline.restore.apply import approve
from qbo_pipeline.restore.into_applications import cap_applications
from qbo_pipeline.restore.model import Action, Plan
from qbo_pipeline.restore.plan_steps import Draft
from qbo_pipeline.restore.run import apply_restore, plan_restore_into
from qbo_pipeline.restore.store import PlanStore
from tests.restore.test_restore_into_canada import canadian, taxed_invoice

__all__ = ["canadian"]  # the fixture, used by name

INVOICE = entities.ENTITIES["Invoice"]
PAYMENT = entities.ENTITIES["Payment"]
CUSTOMER = entities.ENTITIES["Customer"]


def _customer(source: QBOClient, name: str) -> str:
    return source.create(CUSTOMER, {"DisplayName": name}, request_id=name)["Id"]


def _invoice(source: QBOClient, customer: str, n: int) -> dict[str, Any]:
    body = {**taxed_invoice(source, "2"), "CustomerRef": {"value": customer}}
    return source.create(INVOICE, body, request_id=f"capped-invoice-{n}")


def _pay(source: QBOClient, invoice: dict[str, Any], amount: Decimal, day: str) -> str:
    body = {
        "CustomerRef": invoice["CustomerRef"],
        "TotalAmt": float(amount),
        "TxnDate": day,
        "Line": [
            {
                "Amount": float(amount),
                "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}],
            }
        ],
    }
    return source.create(PAYMENT, body, request_id=f"pay-{invoice['Id']}-{amount}-{day}")["Id"]


def _money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def _applied(
    canadian: QBOClient, realm: RealmLake, plan: Plan
) -> tuple[Callable[[entities.Entity, str], dict[str, Any]], dict[str, Any]]:
    """Approve and apply ``plan`` (complete, verified without difference); a reader of a
    rebuilt record by its snapshot id, and the verification's report."""
    approve(PlanStore.for_realm(realm), plan.plan_id, name="drill")
    result, report = apply_restore(canadian, realm, plan.plan_id)
    assert result.complete, [s for s in result.steps if s.state == "failed"][:5]
    assert report is not None and report["different"] == 0, report["differences"][:3]
    status = PlanStore.for_realm(realm).status(plan.plan_id) or {}
    id_map = {**plan.id_map, **(status.get("id_map") or {})}

    def restored(entity: entities.Entity, old_id: str) -> dict[str, Any]:
        return canadian.read(entity, id_map[f"{entity.name}:{old_id}"])

    return restored, report


def test_payments_of_an_invoice_whose_tax_is_dropped_are_capped(
    source: QBOClient, canadian: QBOClient, settings: Settings
):
    realm: RealmLake = Lake(settings.lake_url).realm(source.realm_id)
    paid_up, partial = _customer(source, "Capped Payer"), _customer(source, "Partial Payer")
    full = _invoice(source, paid_up, 1)
    split = _invoice(source, paid_up, 2)
    open_one = _invoice(source, partial, 3)
    total, tax = _money(full["TotalAmt"]), _money(full["TxnTaxDetail"]["TotalTax"])
    assert tax > 0 and _money(split["TotalAmt"]) == total
    rebuilt = total - tax
    once = _pay(source, full, total, "2024-11-21")
    # Two payments of the second invoice: the later one is entered first (a lower id), yet
    # the earlier one keeps its amount and the later one gives up the tax.
    later = _pay(source, split, total - 200, "2024-11-25")
    earlier = _pay(source, split, Decimal(200), "2024-11-22")
    below = _pay(source, open_one, Decimal(100), "2024-11-22")
    snapshot = run_backup(source, realm, mode="full").snapshot.snapshot_id

    plan = plan_restore_into(
        canadian, realm, snapshot=snapshot, entities=("Invoice", "Payment")
    ).plan
    steps = {(s.entity, s.old_id): s for s in plan.steps}
    for old_id in (full["Id"], split["Id"], open_one["Id"]):
        assert "TxnTaxDetail.TotalTax" in steps[("Invoice", old_id)].departs

    def applied(payment: str) -> Decimal:
        payload = steps[("Payment", payment)].payload or {}
        return sum((_money(line["Amount"]) for line in payload["Line"]), Decimal(0))

    assert applied(once) == rebuilt
    assert applied(earlier) == 200 and applied(later) == rebuilt - 200
    assert applied(below) == 100
    step = steps[("Payment", once)]
    assert step.action is Action.CREATE
    assert (
        f"applies {rebuilt:,.2f} of its {total:,.2f} to invoice {full['DocNumber']}, whose tax "
        f"({tax:,.2f}) the new company does not charge; {tax:,.2f} stays unapplied as the "
        "customer's credit"
    ) in step.reason
    assert {"Line.Amount", "UnappliedAmt"} <= set(step.departs)
    assert (
        f"applies {rebuilt - 200:,.2f} of its {total - 200:,.2f}"
        in steps[("Payment", later)].reason
    )
    for untouched in (earlier, below):
        assert "stays unapplied" not in steps[("Payment", untouched)].reason
        assert "UnappliedAmt" not in steps[("Payment", untouched)].departs

    restored, report = _applied(canadian, realm, plan)

    # Paid in full: Balance 0, not negative; the payments keep their totals, the tax unapplied.
    for invoice in (full, split):
        now = restored(INVOICE, invoice["Id"])
        assert _money(now["TotalAmt"]) == rebuilt and _money(now["Balance"]) == 0
    first = restored(PAYMENT, once)
    assert _money(first["TotalAmt"]) == total and _money(first["UnappliedAmt"]) == tax
    assert _money(restored(PAYMENT, later)["UnappliedAmt"]) == tax
    assert _money(restored(PAYMENT, earlier)["UnappliedAmt"]) == 0
    # The partial payment is below the new total: left as it was.
    assert _money(restored(INVOICE, open_one["Id"])["Balance"]) == rebuilt - 100
    assert _money(restored(PAYMENT, below)["UnappliedAmt"]) == 0
    # The customer's balance shows the credit: both invoices paid, the two taxes unapplied.
    assert _money(restored(CUSTOMER, paid_up)["Balance"]) == -2 * tax
    assert _money(restored(CUSTOMER, partial)["Balance"]) == rebuilt - 100
    # The verification lists the capped payments' differences as planned, with their reason.
    planned = {(d["entity"], d["old_id"]): d for d in report["as_planned"]}
    for payment in (once, later):
        difference = planned[("Payment", payment)]
        assert difference["why"] == steps[("Payment", payment)].reason
        paths = {c["path"] for c in difference["changes"]}
        assert "UnappliedAmt" in paths and "Line[0].Amount" in paths
    assert ("Payment", earlier) not in planned or all(
        c["path"] != "UnappliedAmt" for c in planned[("Payment", earlier)]["changes"]
    )


def test_a_credit_memo_whose_tax_is_dropped_covers_less_of_the_invoice_it_paid(
    source: QBOClient, canadian: QBOClient, settings: Settings
):
    realm: RealmLake = Lake(settings.lake_url).realm(source.realm_id)
    customer = _customer(source, "Credited Customer")
    memo = source.create(
        entities.ENTITIES["CreditMemo"],
        {**taxed_invoice(source, "2"), "CustomerRef": {"value": customer}},
        request_id="taxed-memo",
    )
    credit, tax = _money(memo["TotalAmt"]), _money(memo["TxnTaxDetail"]["TotalTax"])
    assert tax > 0
    # An untaxed invoice of the memo's amount, paid with the memo's credit (TotalAmt 0, as the
    # capture's payment 74 pays invoice lines with a credit memo line).
    body = taxed_invoice(source, "2")
    item = body["Line"][0]["SalesItemLineDetail"]["ItemRef"]
    untaxed = {
        "CustomerRef": {"value": customer},
        "TxnDate": "2024-11-20",
        "Line": [
            {
                "Amount": float(credit),
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {
                    "ItemRef": item,
                    "Qty": 1,
                    "UnitPrice": float(credit),
                    "TaxCodeRef": {"value": "NON"},
                },
            }
        ],
    }
    invoice = source.create(INVOICE, untaxed, request_id="untaxed-invoice")
    assert _money(invoice["TotalAmt"]) == credit
    payment = source.create(
        PAYMENT,
        {
            "CustomerRef": {"value": customer},
            "TotalAmt": 0,
            "TxnDate": "2024-11-21",
            "Line": [
                {
                    "Amount": float(credit),
                    "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}],
                },
                {
                    "Amount": float(credit),
                    "LinkedTxn": [{"TxnId": memo["Id"], "TxnType": "CreditMemo"}],
                },
            ],
        },
        request_id="credit-payment",
    )["Id"]
    snapshot = run_backup(source, realm, mode="full").snapshot.snapshot_id

    plan = plan_restore_into(
        canadian, realm, snapshot=snapshot, entities=("Invoice", "Payment")
    ).plan
    steps = {(s.entity, s.old_id): s for s in plan.steps}
    assert "TxnTaxDetail.TotalTax" in steps[("CreditMemo", memo["Id"])].departs
    step = steps[("Payment", payment)]
    assert [line["Amount"] for line in (step.payload or {})["Line"]] == [
        float(credit - tax),
        float(credit - tax),
    ]
    assert (
        f"uses {credit - tax:,.2f} of the {credit:,.2f} credit it took from credit memo "
        f"{memo['DocNumber']}, whose tax ({tax:,.2f}) the new company does not charge; so it "
        f"pays {tax:,.2f} less of invoice {invoice['DocNumber']}"
    ) in step.reason
    assert "Balance" in steps[("Invoice", invoice["Id"])].departs
    assert f"owes {tax:,.2f} more" in steps[("Invoice", invoice["Id"])].reason

    restored, report = _applied(canadian, realm, plan)

    # The memo's whole (untaxed) credit is used, not more; the invoice owes the tax it covered.
    rebuilt_memo = restored(entities.ENTITIES["CreditMemo"], memo["Id"])
    assert _money(rebuilt_memo["TotalAmt"]) == credit - tax
    assert _money(rebuilt_memo["RemainingCredit"]) == 0
    assert _money(restored(INVOICE, invoice["Id"])["Balance"]) == tax
    assert _money(restored(PAYMENT, payment)["UnappliedAmt"]) == 0
    assert _money(restored(CUSTOMER, customer)["Balance"]) == tax
    planned = {(d["entity"], d["old_id"]) for d in report["as_planned"]}
    assert {("Payment", payment), ("Invoice", invoice["Id"])} <= planned


def test_a_payment_left_applying_nothing_loses_its_line():
    """Invoice 258 (8 tax) paid 250 then 8: the later payment's line goes, all its 8 unapplied."""
    invoice = Draft(
        INVOICE,
        "1",
        Action.CREATE,
        "created",
        target={"TotalAmt": 258, "TxnTaxDetail": {"TotalTax": 8}, "DocNumber": "1037"},
        payload={},
        departs=["TxnTaxDetail.TotalTax", "TotalAmt", "Balance"],
    )

    def payment(rid: str, amount: int, day: str) -> Draft:
        line = {"Amount": amount, "LinkedTxn": [{"TxnId": "1", "TxnType": "Invoice"}]}
        body = {"TotalAmt": amount, "TxnDate": day, "Line": [line]}
        return Draft(PAYMENT, rid, Action.CREATE, "created", target=body, payload=dict(body))

    late, early = payment("5", 8, "2024-12-02"), payment("9", 250, "2024-12-01")
    assert cap_applications([invoice, late, early]) == 1
    assert early.payload == early.target and early.departs == []
    assert late.payload is not None and late.payload["Line"] == []
    assert late.payload["TotalAmt"] == 8
    assert {"Line", "Line.Amount", "UnappliedAmt"} <= set(late.departs)
    assert "applies none of its 8.00 to invoice 1037, whose tax (8.00)" in late.reason
