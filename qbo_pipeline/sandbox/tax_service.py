"""``POST /v3/company/{realm}/taxservice/taxcode``: create a tax code with its rates (#20).

TaxCode and TaxRate are read-only entities; Intuit's TaxService creates them together. The
request names the code and, for each rate, either a new one (``TaxRateName``, ``RateValue`` in
percent, ``TaxAgencyId``, ``TaxApplicableOn`` Sales or Purchase) or an existing one
(``TaxRateId``)::

    {"TaxCode": "MyTaxCodeName",
     "TaxRateDetails": [{"TaxRateName": "myNewTaxRateName", "RateValue": "8",
                         "TaxAgencyId": "1", "TaxApplicableOn": "Sales"}]}

and the answer is the same object with ``TaxCodeId`` and each rate's ``TaxRateId`` filled in,
not wrapped in an entity envelope. Evidence: Intuit's TaxService reference and its Java SDK page
("The TaxService object provides a way to create tax codes and specify details such as tax
rates"); an Intuit engineer's example of the request with ids (QuickBooks-V3-PHP-SDK#75);
python-quickbooks and quickbooks-ruby read ``TaxCode``, ``TaxCodeId`` and ``TaxRateDetails``
at the top of the answer. A name already used is "Duplicate Name Exists Error"
(python-quickbooks#225), QBO's 6240.

Unverified, as no capture shows them: the fault for an unknown agency or rate (610 here, as
for any reference to a record that does not exist), for a rate outside 0-100 (2010 here), and
the exact shape of the records made (modelled on Intuit's TaxCode and TaxRate samples:
``TaxGroup`` true, rates ``TaxOnAmount`` in order, ``SpecialTaxType`` NONE, a rate's
``Description`` "Sales Tax" as in Intuit's TaxRate sample, which the request cannot set).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from qbo_pipeline.sandbox import faults
from qbo_pipeline.sandbox.clock import qbo_time
from qbo_pipeline.sandbox.completion import json_number
from qbo_pipeline.sandbox.operations import Operations

APPLICABLE_ON = {"sales": "Sales", "purchase": "Purchase"}
"""``TaxApplicableOn`` values, by their lower-case spelling; Sales when absent."""

_RATE_LISTS = {"Sales": "SalesTaxRateList", "Purchase": "PurchaseTaxRateList"}


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _rate_value(value: object) -> Decimal:
    """A ``RateValue`` in percent (a number, or text such as ``"8"`` or ``"8%"``)."""
    raw = str(value).strip().removesuffix("%") if value is not None else ""
    try:
        rate = Decimal(raw) if not isinstance(value, bool) else Decimal("NaN")
    except InvalidOperation:
        rate = Decimal("NaN")
    if not rate.is_finite() or not Decimal(0) <= rate <= Decimal(100):
        raise faults.unsupported_property(f"RateValue {value!r} is not a percentage from 0 to 100.")
    return rate


def _applicable(detail: dict[str, Any]) -> str:
    raw = detail.get("TaxApplicableOn")
    if raw in (None, ""):
        return "Sales"
    found = APPLICABLE_ON.get(str(raw).strip().lower())
    if found is None:
        raise faults.unsupported_property(
            f"TaxApplicableOn {raw!r} is not supported: use Sales or Purchase."
        )
    return found


def create_tax_code(ops: Operations, body: Any) -> dict[str, Any]:
    """Create the tax code and its new rates that ``body`` describes; returns the answer.

    Raises:
        SandboxFault: 2020 (no TaxCode name, no rates, a new rate without its name, value or
            agency), 6240 (a code or rate name in use), 610 (an unknown agency or rate), 2010
            (a rate outside 0-100, an unknown TaxApplicableOn).
    """
    if not isinstance(body, dict):
        raise faults.request_error("The TaxService body must be a JSON object.")
    name = _text(body.get("TaxCode"))
    if not name:
        raise faults.required_missing("TaxCode")
    details = body.get("TaxRateDetails")
    if not isinstance(details, list) or not details:
        raise faults.required_missing("TaxRateDetails")
    store, realm = ops.store, ops.realm_id
    with store.transaction():
        if ops.name_in_use("TaxCode", name):
            raise faults.duplicate_name(name)
        now = qbo_time(store.now(realm))
        meta = {"CreateTime": now, "LastUpdatedTime": now}
        answered: list[dict[str, Any]] = []
        lists: dict[str, list[dict[str, Any]]] = {"Sales": [], "Purchase": []}
        new_names: set[str] = set()
        for detail in details:
            if not isinstance(detail, dict):
                raise faults.request_error("Each of TaxRateDetails must be a JSON object.")
            applicable = _applicable(detail)
            rate_id = _text(str(detail.get("TaxRateId") or ""))
            if rate_id:
                rate = store.get(realm, "TaxRate", rate_id)
                if rate is None:
                    raise faults.not_found(f"Object Not Found : TaxRate {rate_id} does not exist")
                rate_name = str(rate.get("Name") or "")
                agency = str((rate.get("AgencyRef") or {}).get("value") or "")
                value = rate.get("RateValue")
            else:
                rate_name = _text(detail.get("TaxRateName"))
                agency = _text(str(detail.get("TaxAgencyId") or ""))
                for field, given in (
                    ("TaxRateName", rate_name),
                    ("RateValue", detail.get("RateValue")),
                    ("TaxAgencyId", agency),
                ):
                    if given in (None, ""):
                        raise faults.required_missing(field)
                value = json_number(_rate_value(detail.get("RateValue")))
                if ops.name_in_use("TaxRate", rate_name) or rate_name.casefold() in new_names:
                    raise faults.duplicate_name(rate_name)
                if store.get(realm, "TaxAgency", agency) is None:
                    raise faults.not_found(
                        f"Object Not Found : TaxAgencyId {agency} names no tax agency"
                    )
                new_names.add(rate_name.casefold())
                rate_id = store.next_id(realm, "TaxRate")
                store.put(
                    realm,
                    "TaxRate",
                    {
                        "RateValue": value,
                        "AgencyRef": {"value": agency},
                        "domain": "QBO",
                        "Name": rate_name,
                        "SyncToken": "0",
                        "SpecialTaxType": "NONE",
                        "DisplayType": "ReadOnly",
                        "sparse": False,
                        "Active": True,
                        "MetaData": dict(meta),
                        "Id": rate_id,
                        "Description": "Sales Tax",
                    },
                )
            lists[applicable].append(
                {
                    "TaxTypeApplicable": "TaxOnAmount",
                    "TaxRateRef": {"value": rate_id, "name": rate_name},
                    "TaxOrder": len(lists[applicable]),
                }
            )
            answered.append(
                {
                    "TaxRateName": rate_name,
                    "TaxRateId": rate_id,
                    "RateValue": value,
                    "TaxAgencyId": agency,
                    "TaxApplicableOn": applicable,
                }
            )
        code_id = store.next_id(realm, "TaxCode")
        store.put(
            realm,
            "TaxCode",
            {
                "SyncToken": "0",
                "domain": "QBO",
                "TaxGroup": True,
                "Name": name,
                "Taxable": True,
                "PurchaseTaxRateList": {"TaxRateDetail": lists["Purchase"]},
                "sparse": False,
                "Active": True,
                "Description": name,
                "MetaData": dict(meta),
                "Id": code_id,
                "SalesTaxRateList": {"TaxRateDetail": lists["Sales"]},
            },
        )
    return {"TaxCode": name, "TaxCodeId": code_id, "TaxRateDetails": answered}
