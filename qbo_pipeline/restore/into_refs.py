"""References a restore into another company cannot map, and what its plan does instead.

Every reference of a payload a restore into another company sends must name a record of the
new company: one the plan maps by name (it is in the id map) or one it creates (its new id is
added to the map when it is written). Anything else would be sent with the source company's id,
which in the new company names an unrelated record or nothing (a US snapshot's TaxCode 3 is
Tucson; a Canadian company's TaxCode 3 is Out of Scope).

Tax codes and rates the new company lacks are created through QBO's TaxService
(:mod:`~qbo_pipeline.restore.into_taxes`); for one that cannot be rebuilt (a company in another
country, a rate whose value changed over time) the plan:

- sends it as the company's code without tax (a US company's ``NON``, a Canadian one's ``Out
  of Scope``), through the id map, so every line, customer and item keeps a valid code;
- leaves out of a transaction's ``TxnTaxDetail`` the tax code and the tax lines whose code or
  rate the new company lacks; QBO then charges no tax (it calculates the tax from the codes,
  not from the ``TotalTax`` sent), so the tax and the totals are among the step's departures;
  what the payments of such an invoice apply is capped at its new total
  (:mod:`~qbo_pipeline.restore.into_applications`);
- leaves out any other reference that does not have to exist first (a customer type);
- does not write a record that needs a record which is neither mapped nor created;
- writes the settings (Preferences' default terms) with the new company's ids: a mapped
  record's, else the company's own value (the settings go before any record is created).

Each record says so in its step, and the paths it leaves out are among the step's ``departs``,
which the verification reports as planned rather than as a difference.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from qbo_pipeline import entities
from qbo_pipeline.entities import Entity
from qbo_pipeline.restore import remap
from qbo_pipeline.restore.model import Action, Plan
from qbo_pipeline.restore.scope import id_sort_key

TXN_TAX_CODE = "TxnTaxDetail.TxnTaxCodeRef"
"""The path of a transaction's tax code."""

TAX_LINES = "TxnTaxDetail.TaxLine"
"""The path of a transaction's tax lines (each names a tax rate)."""

PURCHASE_FORMS = ("Bill", "Purchase", "PurchaseOrder", "VendorCredit")
SALES_FORMS = ("Invoice", "SalesReceipt", "Estimate", "CreditMemo", "RefundReceipt")
"""The forms QBO gives the customer's addresses when a create leaves them out."""
"""Purchase forms: a US company's have no ``TxnTaxDetail`` (none of the captured bills,
purchases or purchase orders has one); outside the US QBO gives each one a tax detail, the
purchase tax of its lines' codes."""

PURCHASE_TAX = "TxnTaxDetail"
"""The path of the tax detail QBO adds to a purchase outside the US."""

_TAX_RATE = TAX_LINES + "[].TaxLineDetail.TaxRateRef"

TAX_TOTALS = (
    "TxnTaxDetail.TotalTax",
    "TotalAmt",
    "Balance",
    "RemainingCredit",
    "HomeTotalAmt",
    "HomeBalance",
)
"""What a transaction's tax adds to (a credit memo's ``RemainingCredit`` too): different when its
code is left out (QBO charges none)."""

SETTING_REFERENCES: dict[str, str] = {
    "SalesFormsPrefs.DefaultTerms": "Term",
    "VendorAndPurchasesPrefs.DefaultTerms": "Term",
    "VendorAndPurchasesPrefs.DefaultMarkupAccount": "Account",
}
"""References inside Preferences' writable settings, by path: ids of the company, though not
catalogue references (QBO keeps them as settings, and the capture shows ``DefaultTerms``)."""


def _rates(code: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for key in ("SalesTaxRateList", "PurchaseTaxRateList"):
        out.extend((code.get(key) or {}).get("TaxRateDetail") or [])
    return out


def no_tax_code(codes: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The company's tax code that charges no tax: active, not taxable, without rates.

    A US company's ``NON``, a Canadian one's ``Out of Scope``; None if it has none.
    """
    found = [
        c
        for c in codes
        if c.get("Active") is not False and c.get("Taxable") is False and not _rates(c)
    ]
    found.sort(key=lambda c: (str(c.get("Id")) != "NON", id_sort_key(str(c.get("Id")))))
    return found[0] if found else None


@dataclass
class Carried:
    """What the plan does with one payload's references it cannot map.

    Attributes:
        departs: The paths of the snapshot's content the payload leaves out.
        tax_codes: Tax codes left out of its tax detail (old id -> name).
        tax_rates: Tax rates whose tax lines are left out (old ids).
        dropped: Other references left out (``Entity id``).
        needs: A record the payload needs that is neither mapped nor created, if any.
    """

    departs: list[str] = field(default_factory=list)
    tax_codes: dict[str, str] = field(default_factory=dict)
    tax_rates: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    needs: tuple[str, str] | None = None

    def _depart(self, path: str) -> None:
        if path not in self.departs:
            self.departs.append(path)


def carry(
    entity: Entity,
    payload: dict[str, Any],
    known: set[tuple[str, str]],
    substituted: dict[str, str],
) -> Carried:
    """Take out of ``payload`` (in place) the references that cannot be sent.

    Args:
        entity: The payload's entity.
        payload: What a step sends (references still in source ids).
        known: ``(entity, old id)`` of every record the new company will have: mapped or
            created by the plan.
        substituted: Tax codes the plan sends as the company's code without tax (old id ->
            name): a transaction's tax code among them is left out of its tax detail.
    """
    out = Carried()
    detail = payload.get("TxnTaxDetail")
    for site in list(remap.reference_sites(entity, payload)):
        if site.is_backlink or site.target == "CompanyCurrency":
            continue
        path = site.reference.path
        if path == TXN_TAX_CODE and site.target_id in substituted and isinstance(detail, dict):
            detail.pop("TxnTaxCodeRef", None)
            out.tax_codes[site.target_id] = substituted[site.target_id]
            out._depart(TXN_TAX_CODE)
            continue
        if (site.target, site.target_id) in known:
            continue
        if path == _TAX_RATE and isinstance(detail, dict):
            lines = [line for line in detail.get("TaxLine") or [] if site.holder not in _refs(line)]
            if lines:
                detail["TaxLine"] = lines
            else:
                detail.pop("TaxLine", None)
            out.tax_rates.append(site.target_id)
            out._depart(TAX_LINES)
        elif site.is_dependency:
            out.needs = out.needs or (site.target, site.target_id)
        else:
            for parent, key in list(remap.reference_holders(payload, path)):
                if parent.get(key) is site.holder:
                    del parent[key]
            out.dropped.append(f"{site.target} {site.target_id}")
            out._depart(path.replace("[]", ""))
    if out.tax_rates and isinstance(detail, dict) and "TxnTaxCodeRef" in detail:
        # Tax lines make up the code's tax: without them the code would be recalculated.
        code = str((detail.pop("TxnTaxCodeRef") or {}).get("value") or "")
        out.tax_codes.setdefault(code, substituted.get(code, code))
        out._depart(TXN_TAX_CODE)
    if (out.tax_codes or out.tax_rates) and isinstance(detail, dict) and detail.get("TotalTax"):
        # QBO calculates the tax from the codes it is sent, not from TotalTax: without them
        # it charges none, so the tax and what it adds to the totals are not the snapshot's.
        for path in TAX_TOTALS:
            out._depart(path)
    return out


def _refs(line: Any) -> list[Any]:
    detail = line.get("TaxLineDetail") if isinstance(line, dict) else None
    return [detail.get("TaxRateRef")] if isinstance(detail, dict) else []


def setting_references(payload: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], str]]:
    """``(path, entity, holder, id)`` of every id a Preferences payload's settings name.

    ``holder`` is the object holding the setting (``SalesFormsPrefs``); its key is the path's
    last part.
    """
    found: list[tuple[str, str, dict[str, Any], str]] = []
    for path, target in SETTING_REFERENCES.items():
        group, key = path.split(".")
        holder = payload.get(group)
        if not isinstance(holder, dict):
            continue
        ref = holder.get(key)
        if isinstance(ref, dict) and ref.get("value") not in (None, ""):
            found.append((path, target, holder, str(ref["value"])))
    return found


def rewrite_settings(payload: dict[str, Any], id_map: remap.IdMap) -> dict[str, Any]:
    """A copy of a Preferences payload whose settings name the mapped records' new ids."""
    out = dict(payload)
    for path, target, holder, old_id in setting_references(payload):
        group, key = path.split(".")
        new_id = id_map.get(target, old_id)
        if new_id is not None:
            out[group] = {**holder, key: {**holder[key], "value": new_id}}
    return out


def foreign_references(plan: Plan) -> list[str]:
    """Every reference a written payload of ``plan`` would send with a source company's id.

    A reference is fine when the id map maps it or a step of the plan creates its record (its
    new id joins the map then); a currency reference names a code, the same everywhere. The
    settings of Preferences are sent as they are: they must name a mapped record's new id, or
    keep the company's own (a departure of the step). An in-place plan is not checked (its ids
    are the company's own).

    Returns:
        ``"Entity:id step N at path"`` for each one; empty when the plan is sound.
    """
    if not plan.into:
        return []
    created = {(s.entity, s.old_id) for s in plan.steps if s.action is Action.CREATE}
    mapped = list(plan.id_map.items())
    found = []
    for step in plan.steps:
        if not step.action.writes or not step.payload:
            continue
        if step.entity == "Preferences":
            # Written as they are (before any record is created): the ids must be the new
            # company's, a mapped record's or the one it had (the step says so).
            for path, target, _, value in setting_references(step.payload):
                if path in step.departs:
                    continue
                if not any(k.startswith(f"{target}:") and v == value for k, v in mapped):
                    found.append(f"{target}:{value} step {step.number} at {path}")
            continue
        if step.sparse:
            continue
        for site in remap.reference_sites(entities.ENTITIES[step.entity], step.payload):
            if site.is_backlink or site.target == "CompanyCurrency":
                continue
            if f"{site.target}:{site.target_id}" in plan.id_map:
                continue
            if (site.target, site.target_id) in created:
                continue
            found.append(
                f"{site.target}:{site.target_id} step {step.number} at {site.reference.path}"
            )
    return found
