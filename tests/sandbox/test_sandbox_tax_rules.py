"""A Canadian company's lines need a GST/HST code (#20); a US company's default to NON.

Over HTTP against the embedded sandbox, in companies created as QBO creates them.
"""

from __future__ import annotations

from typing import Any

import pytest

from qbo_pipeline.sandbox.server import SandboxServer
from qbo_pipeline.sandbox.tax_rules import NO_RATE
from tests.sandbox.test_sandbox_new_company import Company, _new


def _invoice(company: Company, tax_code: str | None) -> dict[str, Any]:
    items = {i["Name"]: i["Id"] for i in company.all("Item")}
    customer = company.post("customer", {"DisplayName": f"Customer {tax_code}"})
    assert customer.status_code == 200, customer.text
    detail: dict[str, Any] = {"ItemRef": {"value": items["Services"]}}
    if tax_code is not None:
        detail["TaxCodeRef"] = {"value": tax_code}
    return {
        "CustomerRef": {"value": customer.json()["Customer"]["Id"]},
        "TxnDate": "2026-03-02",
        "Line": [
            {"Amount": 150, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": detail}
        ],
    }


def test_a_canadian_line_without_a_tax_code_is_refused(sandbox: SandboxServer) -> None:
    company = _new(sandbox, "CA", False)
    answer = company.post("invoice", _invoice(company, None))
    assert answer.status_code == 400, answer.text
    [error] = answer.json()["Fault"]["Error"]
    assert error["code"] == "6000"
    assert error["Detail"] == f"Business Validation Error: {NO_RATE}"
    assert company.count("Invoice") == 0
    # An expense line too.
    accounts = {a["Name"]: a["Id"] for a in company.all("Account")}
    vendor = company.post("vendor", {"DisplayName": "Supplier"})
    assert vendor.status_code == 200, vendor.text
    bill = {
        "VendorRef": {"value": vendor.json()["Vendor"]["Id"]},
        "Line": [
            {
                "Amount": 20,
                "DetailType": "AccountBasedExpenseLineDetail",
                "AccountBasedExpenseLineDetail": {
                    "AccountRef": {"value": accounts["Job Supplies"]}
                },
            }
        ],
    }
    refused = company.post("bill", bill)
    assert refused.status_code == 400 and NO_RATE in refused.text
    assert company.count("Bill") == 0


@pytest.mark.parametrize("name", ["Out of Scope", "HST ON"])
def test_a_canadian_line_with_a_tax_code_is_saved(sandbox: SandboxServer, name: str) -> None:
    company = _new(sandbox, "CA", False)
    [code] = [c["Id"] for c in company.all("TaxCode") if c["Name"] == name]
    answer = company.post("invoice", _invoice(company, code))
    assert answer.status_code == 200, answer.text
    line = answer.json()["Invoice"]["Line"][0]
    assert line["SalesItemLineDetail"]["TaxCodeRef"]["value"] == code


def test_a_us_line_without_a_tax_code_gets_non(sandbox: SandboxServer) -> None:
    company = _new(sandbox, "US", False)
    answer = company.post("invoice", _invoice(company, None))
    assert answer.status_code == 200, answer.text
    line = answer.json()["Invoice"]["Line"][0]
    assert line["SalesItemLineDetail"]["TaxCodeRef"] == {"value": "NON"}
