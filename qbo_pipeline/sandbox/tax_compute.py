"""The sales tax QBO computes for a transaction from its tax codes' rates (#20).

QBO does not take a transaction's tax from the client: "When creating or updating sales
transactions, QuickBooks Online automatically calculates tax and returns the amount in the
TxnTaxDetail.TotalTax attribute of the transaction based on the TaxCode assigned to each line"
(Intuit, "Manage sales tax for non-US locales"). Developers who tried to set another total
report it ignored (routablehq/python-quickbooks#301 "Cannot change total tax amount... It always
only calculates it based on tax percent"; intuit/QuickBooks-V3-PHP-SDK#422: an updated invoice
keeps its old tax until ``TxnTaxDetail`` is sent empty). So the sandbox computes
``TxnTaxDetail`` on every create and update through the API, whatever ``TotalTax`` was sent:

- a US company (Intuit, "Manage sales tax for US locales"): the rates of the transaction's
  ``TxnTaxDetail.TxnTaxCodeRef`` apply to the lines whose ``TaxCodeRef`` is ``TAX``; without a
  transaction code no tax is charged (invoices 65 and 129 of ``query_invoice_all.json``: TAX
  lines, no code, ``TotalTax`` 0). Purchases carry no sales tax (none of the captured bills,
  purchases or purchase orders has a ``TxnTaxDetail``);
- any other country: each line's code's rates (``SalesTaxRateList`` on a sales form,
  ``PurchaseTaxRateList`` on a purchase) apply to that line.

One ``TaxLine`` per rate, its ``NetAmountTaxable`` the sum of the lines it applies to and its
``Amount`` that times ``RateValue`` percent, rounded to the cent half up: invoice 93 of the
captures has 29.96 for 7.1% of 422 (29.962) and 8.44 for 2% of it; quickbooks-ruby#547 shows
QBO's 448.39 for 9.975% of 4495.16 (448.392). ``TotalTax`` is the sum of the tax lines.

Unverified (no capture shows them, so the sandbox does not model them): automated sales tax
(US companies created after November 2017 compute from addresses), discounts before tax
(``ApplyTaxAfterDiscount``), tax-inclusive amounts (``GlobalTaxCalculation``), ``TaxOnTax``
rates and rates that changed over time (each rate's current ``RateValue`` applies). A
transaction without a line that carries a tax code keeps the tax detail it was sent (invoice
42 of the captures has a total tax and only its subtotal line).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from qbo_pipeline.entities import Entity
from qbo_pipeline.sandbox.completion import decimal_amount, json_number
from qbo_pipeline.sandbox.store import SandboxStore

SALES = ("Invoice", "SalesReceipt", "Estimate", "CreditMemo", "RefundReceipt")
"""Sales forms: taxed on their lines' sales rates."""

PURCHASES = ("Bill", "Purchase", "PurchaseOrder", "VendorCredit")
"""Purchase forms: taxed on their lines' purchase rates, outside the US only."""

TAXED_DETAILS = (
    "SalesItemLineDetail",
    "AccountBasedExpenseLineDetail",
    "ItemBasedExpenseLineDetail",
)
"""The line details that carry a tax code."""

_CENT = Decimal("0.01")


def tax_amount(taxable: Decimal, percent: Decimal) -> Decimal:
    """``percent`` of ``taxable``, rounded to the cent half up, as QBO rounds a tax line."""
    return (taxable * percent / 100).quantize(_CENT, rounding=ROUND_HALF_UP)


def tax_line(rate_id: str, percent: Decimal, taxable: Decimal) -> dict[str, Any]:
    """One ``TaxLine`` of a transaction's ``TxnTaxDetail``, in the captures' shape."""
    return {
        "Amount": json_number(tax_amount(taxable, percent)),
        "DetailType": "TaxLineDetail",
        "TaxLineDetail": {
            "TaxRateRef": {"value": rate_id},
            "PercentBased": True,
            "TaxPercent": json_number(percent),
            "NetAmountTaxable": json_number(taxable),
        },
    }


def country(store: SandboxStore, realm_id: str) -> str:
    """The company's country code (``US`` when CompanyInfo names none)."""
    for info in store.iter_records(realm_id, "CompanyInfo"):
        return str(info.get("Country") or "US").upper()
    return "US"


def _code_of(line: dict[str, Any]) -> str | None:
    detail = line.get(line.get("DetailType") or "")
    ref = detail.get("TaxCodeRef") if isinstance(detail, dict) else None
    return str(ref["value"]) if isinstance(ref, dict) and ref.get("value") else None


def _rates(
    store: SandboxStore, realm_id: str, code_id: str | None, list_key: str
) -> list[tuple[str, Decimal]]:
    """``(rate id, percent)`` of a tax code's sales or purchase rates, in the code's order."""
    code = store.get(realm_id, "TaxCode", code_id) if code_id else None
    found = []
    for detail in ((code or {}).get(list_key) or {}).get("TaxRateDetail") or []:
        rate_id = str(((detail or {}).get("TaxRateRef") or {}).get("value") or "")
        rate = store.get(realm_id, "TaxRate", rate_id) if rate_id else None
        if rate is not None:
            found.append((rate_id, decimal_amount(rate.get("RateValue"))))
    return found


def compute_tax(store: SandboxStore, realm_id: str, ent: Entity, record: dict[str, Any]) -> bool:
    """Set ``record``'s ``TxnTaxDetail`` (flat, about to be saved) to the tax QBO computes.

    Returns:
        Whether ``TotalTax`` differs from what the record was sent with (its total then
        changes too).
    """
    if ent.name not in SALES + PURCHASES or not isinstance(record.get("Line"), list):
        return False
    lines = [
        line
        for line in record["Line"]
        if isinstance(line, dict) and line.get("DetailType") in TAXED_DETAILS
    ]
    if not lines:
        return False
    us = country(store, realm_id) == "US"
    if us and ent.name in PURCHASES:
        return False
    raw = record.get("TxnTaxDetail")
    sent: dict[str, Any] = raw if isinstance(raw, dict) else {}
    list_key = "SalesTaxRateList" if ent.name in SALES else "PurchaseTaxRateList"
    bases: dict[tuple[str, Decimal], Decimal] = {}
    if us:
        taxed = [line for line in lines if (_code_of(line) or "NON") == "TAX"]
        base = sum((decimal_amount(line.get("Amount")) for line in taxed), Decimal(0))
        code = (sent.get("TxnTaxCodeRef") or {}).get("value")
        if taxed:
            for rate in _rates(store, realm_id, str(code) if code else None, list_key):
                bases[rate] = bases.get(rate, Decimal(0)) + base
    else:
        for line in lines:
            for rate in _rates(store, realm_id, _code_of(line), list_key):
                bases[rate] = bases.get(rate, Decimal(0)) + decimal_amount(line.get("Amount"))
    tax_lines = [tax_line(rid, pct, base) for (rid, pct), base in bases.items()]
    total = sum((tax_amount(base, pct) for (_, pct), base in bases.items()), Decimal(0))
    detail: dict[str, Any] = {}
    if sent.get("TxnTaxCodeRef"):
        detail["TxnTaxCodeRef"] = sent["TxnTaxCodeRef"]
    detail["TotalTax"] = json_number(total)
    if tax_lines:
        detail["TaxLine"] = tax_lines
    record["TxnTaxDetail"] = detail
    return decimal_amount(sent.get("TotalTax")) != total
