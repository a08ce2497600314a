"""Sales tax rules QBO applies to a transaction's lines, by the company's country.

A US company's line without a tax code gets ``NON`` (:mod:`completion`). A Canadian company
has no such default: QBO refuses a sales or expense line without a GST/HST code, "Business
Validation Error: Make sure all your transactions have a GST/HST rate before you save." (fault
6000, as integrations report it against non-US companies, e.g. Autotask's knowledge base
KB360030193511; the reference captures are of US companies only). A line to which no tax
applies carries the code without tax, "Out of Scope".
"""

from __future__ import annotations

from typing import Any

from qbo_pipeline.entities import Entity, Kind
from qbo_pipeline.sandbox import faults
from qbo_pipeline.sandbox.store import SandboxStore

TAXED_DETAILS = (
    "SalesItemLineDetail",
    "AccountBasedExpenseLineDetail",
    "ItemBasedExpenseLineDetail",
)
"""The line details that carry a tax code."""

NO_RATE = "Make sure all your transactions have a GST/HST rate before you save."
"""QBO's words (after "Business Validation Error: ") for a line without a tax code."""


def _country(store: SandboxStore, realm_id: str) -> str:
    for info in store.iter_records(realm_id, "CompanyInfo"):
        return str(info.get("Country") or "US").upper()
    return "US"


def check_line_tax_codes(
    store: SandboxStore, realm_id: str, ent: Entity, record: dict[str, Any]
) -> None:
    """Refuse a non-US company's sales or expense line without a tax code (fault 6000).

    Raises:
        SandboxFault: 6000 naming the first line without a code.
    """
    if ent.kind is not Kind.TRANSACTION or not isinstance(record.get("Line"), list):
        return
    lines = [
        line
        for line in record["Line"]
        if isinstance(line, dict) and line.get("DetailType") in TAXED_DETAILS
    ]
    if not lines or _country(store, realm_id) == "US":
        return
    for line in lines:
        detail = line.get(line["DetailType"])
        code = (detail or {}).get("TaxCodeRef") if isinstance(detail, dict) else None
        if not (isinstance(code, dict) and code.get("value")):
            raise faults.business_validation(NO_RATE)
