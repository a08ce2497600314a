"""TaxService creates tax codes and rates, and QBO's tax is computed from them (#20).

Over HTTP against the embedded sandbox, in companies created as QBO creates them; the
generated company is checked in process against the same rule.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from qbo_pipeline import entities
from qbo_pipeline.sandbox.completion import decimal_amount
from qbo_pipeline.sandbox.server import SandboxServer
from qbo_pipeline.sandbox.store import SandboxStore
from qbo_pipeline.sandbox.tax_compute import SALES, compute_tax, tax_amount
from tests.conftest import pinned_company
from tests.sandbox.test_sandbox_new_company import Company, _new


def _agency(company: Company, name: str = "Arizona Dept. of Revenue") -> str:
    answer = company.post("taxagency", {"DisplayName": name})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["TaxAgency"]["Id"])


def _tucson(agency: str, name: str = "Tucson") -> dict[str, Any]:
    return {
        "TaxCode": name,
        "TaxRateDetails": [
            {
                "TaxRateName": f"{name} AZ State tax",
                "RateValue": 7.1,
                "TaxAgencyId": agency,
                "TaxApplicableOn": "Sales",
            },
            {
                "TaxRateName": f"{name} City",
                "RateValue": "2",
                "TaxAgencyId": agency,
                "TaxApplicableOn": "Sales",
            },
        ],
    }


def _fault(answer: Any) -> dict[str, Any]:
    assert answer.status_code == 400, answer.text
    [error] = answer.json()["Fault"]["Error"]
    return dict(error)


def test_taxservice_creates_a_code_with_its_rates(sandbox: SandboxServer) -> None:
    company = _new(sandbox, "US", False)
    agency = _agency(company)
    answer = company.post("taxservice/taxcode", _tucson(agency))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # The TaxService object itself, with the ids QBO gave the code and the rates.
    assert body["TaxCode"] == "Tucson" and body["TaxCodeId"]
    rates = body["TaxRateDetails"]
    assert [(r["TaxRateName"], r["RateValue"], r["TaxAgencyId"]) for r in rates] == [
        ("Tucson AZ State tax", 7.1, agency),
        ("Tucson City", 2, agency),
    ]
    assert all(r["TaxRateId"] and r["TaxApplicableOn"] == "Sales" for r in rates)
    # Both are records like the others: read by query.
    [code] = [c for c in company.all("TaxCode") if c["Id"] == body["TaxCodeId"]]
    assert code["Name"] == "Tucson" and code["Taxable"] is True and code["Active"] is True
    listed = code["SalesTaxRateList"]["TaxRateDetail"]
    assert [d["TaxRateRef"]["value"] for d in listed] == [r["TaxRateId"] for r in rates]
    assert code["PurchaseTaxRateList"]["TaxRateDetail"] == []
    stored = {r["Id"]: r for r in company.all("TaxRate")}
    assert stored[rates[0]["TaxRateId"]]["RateValue"] == 7.1
    assert stored[rates[1]["TaxRateId"]]["AgencyRef"] == {"value": agency}
    # An existing rate is reused by its id.
    again = company.post(
        "taxservice/taxcode",
        {"TaxCode": "City only", "TaxRateDetails": [{"TaxRateId": rates[1]["TaxRateId"]}]},
    )
    assert again.status_code == 200, again.text
    assert again.json()["TaxRateDetails"][0]["TaxRateName"] == "Tucson City"
    assert len(company.all("TaxRate")) == 2


@pytest.mark.parametrize(
    ("change", "code", "element"),
    [
        (lambda b, a: b.pop("TaxCode"), "2020", "TaxCode"),
        (lambda b, a: b.update(TaxCode="   "), "2020", "TaxCode"),
        (lambda b, a: b.update(TaxRateDetails=[]), "2020", "TaxRateDetails"),
        (lambda b, a: b["TaxRateDetails"][0].pop("TaxAgencyId"), "2020", "TaxAgencyId"),
        (lambda b, a: b["TaxRateDetails"][0].update(TaxAgencyId="99"), "610", None),
        (lambda b, a: b["TaxRateDetails"][0].update(RateValue=120), "2010", None),
        (lambda b, a: b["TaxRateDetails"][0].update(TaxApplicableOn="Payroll"), "2010", None),
        (lambda b, a: b.update(TaxCode="TAX"), "6240", None),
        (
            lambda b, a: b["TaxRateDetails"][1].update(TaxRateName="Tucson AZ State tax"),
            "6240",
            None,
        ),
    ],
    ids=[
        "no name",
        "blank name",
        "no rates",
        "no agency",
        "unknown agency",
        "rate over 100",
        "unknown applicable",
        "name in use",
        "rate name twice",
    ],
)
def test_taxservice_refuses_bad_requests_and_creates_nothing(
    sandbox: SandboxServer, change: Any, code: str, element: str | None
) -> None:
    company = _new(sandbox, "US", False)
    agency = _agency(company)
    body = _tucson(agency)
    change(body, agency)
    error = _fault(company.post("taxservice/taxcode", body))
    assert error["code"] == code, error
    if element:
        assert error["element"] == element
    assert {c["Name"] for c in company.all("TaxCode")} == {"TAX", "NON"}
    assert company.all("TaxRate") == []


def _invoice(
    company: Company, lines: list[tuple[float, str]], txn_code: str | None, total_tax: float
) -> dict[str, Any]:
    items = {i["Name"]: i["Id"] for i in company.all("Item")}
    customer = company.post("customer", {"DisplayName": f"Customer {len(lines)} {txn_code}"})
    assert customer.status_code == 200, customer.text
    body: dict[str, Any] = {
        "CustomerRef": {"value": customer.json()["Customer"]["Id"]},
        "TxnDate": "2026-03-02",
        "Line": [
            {
                "Amount": amount,
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": items["Services"]},
                    "TaxCodeRef": {"value": code},
                },
            }
            for amount, code in lines
        ],
        "TxnTaxDetail": {"TotalTax": total_tax},
    }
    if txn_code:
        body["TxnTaxDetail"]["TxnTaxCodeRef"] = {"value": txn_code}
    return body


def test_a_us_invoice_gets_the_tax_of_its_code_not_the_one_sent(sandbox: SandboxServer) -> None:
    """The captures' invoice 93: Tucson's 7.1% and 2% of the TAX lines (422), each rounded."""
    company = _new(sandbox, "US", False)
    code = company.post("taxservice/taxcode", _tucson(_agency(company))).json()
    body = _invoice(company, [(75, "TAX"), (72, "TAX"), (275, "TAX"), (30, "NON")], "x", 999)
    body["TxnTaxDetail"]["TxnTaxCodeRef"] = {"value": code["TaxCodeId"]}
    answer = company.post("invoice", body)
    assert answer.status_code == 200, answer.text
    invoice = answer.json()["Invoice"]
    detail = invoice["TxnTaxDetail"]
    assert detail["TotalTax"] == 38.4  # 29.96 + 8.44, as captured; not the 999 sent
    assert [
        (t["Amount"], t["TaxLineDetail"]["TaxPercent"], t["TaxLineDetail"]["NetAmountTaxable"])
        for t in detail["TaxLine"]
    ] == [(29.96, 7.1, 422), (8.44, 2, 422)]
    assert detail["TxnTaxCodeRef"]["value"] == code["TaxCodeId"]
    assert invoice["TotalAmt"] == 490.4 and invoice["Balance"] == 490.4
    # An update that changes the lines is taxed again, whatever it sends.
    invoice["Line"] = [line for line in invoice["Line"] if line.get("Amount") != 75]
    invoice["TxnTaxDetail"]["TotalTax"] = 1
    updated = company.post("invoice", invoice)
    assert updated.status_code == 200, updated.text
    again = updated.json()["Invoice"]
    expected = tax_amount(Decimal(347), Decimal("7.1")) + tax_amount(Decimal(347), Decimal(2))
    assert decimal_amount(again["TxnTaxDetail"]["TotalTax"]) == expected == Decimal("31.58")
    assert decimal_amount(again["TotalAmt"]) == Decimal(377) + expected


def test_a_us_invoice_without_a_tax_code_has_no_tax(sandbox: SandboxServer) -> None:
    """TAX lines without a transaction code are not taxed (invoices 65 and 129 captured)."""
    company = _new(sandbox, "US", False)
    answer = company.post("invoice", _invoice(company, [(100, "TAX")], None, 8))
    assert answer.status_code == 200, answer.text
    invoice = answer.json()["Invoice"]
    assert invoice["TxnTaxDetail"] == {"TotalTax": 0}
    assert invoice["TotalAmt"] == 100


def test_a_canadian_form_is_taxed_per_line_code(sandbox: SandboxServer) -> None:
    """HST ON (13%) and GST (5%) lines each taxed at their code's sales rate; a bill at the
    purchase rate; Out of Scope not at all."""
    company = _new(sandbox, "CA", False)
    body = _invoice(company, [(100, "7"), (40, "6"), (60, "3"), (10.05, "7")], None, 0)
    answer = company.post("invoice", body)
    assert answer.status_code == 200, answer.text
    invoice = answer.json()["Invoice"]
    lines = {
        t["TaxLineDetail"]["TaxRateRef"]["value"]: (t["Amount"], t["TaxLineDetail"])
        for t in invoice["TxnTaxDetail"]["TaxLine"]
    }
    assert lines["3"][0] == 14.31 and lines["3"][1]["NetAmountTaxable"] == 110.05  # 14.3065
    assert lines["1"][0] == 2 and lines["1"][1]["TaxPercent"] == 5
    assert invoice["TxnTaxDetail"]["TotalTax"] == 16.31
    assert invoice["TotalAmt"] == 226.36
    accounts = {a["Name"]: a["Id"] for a in company.all("Account")}
    vendor = company.post("vendor", {"DisplayName": "Supplier"}).json()["Vendor"]
    bill = {
        "VendorRef": {"value": vendor["Id"]},
        "Line": [
            {
                "Amount": 20,
                "DetailType": "AccountBasedExpenseLineDetail",
                "AccountBasedExpenseLineDetail": {
                    "AccountRef": {"value": accounts["Job Supplies"]},
                    "TaxCodeRef": {"value": "7"},
                },
            }
        ],
    }
    saved = company.post("bill", bill)
    assert saved.status_code == 200, saved.text
    [tax] = saved.json()["Bill"]["TxnTaxDetail"]["TaxLine"]
    assert tax["TaxLineDetail"]["TaxRateRef"]["value"] == "4" and tax["Amount"] == 2.6


REALM = "4620816365000000001"


def test_the_generated_company_is_taxed_as_the_api_would_tax_it() -> None:
    """Every generated sales form's tax detail is what the sandbox's API computes for it
    (same rates, same rounding), so rewriting one through the API keeps its tax."""
    store = SandboxStore(":memory:")
    pinned_company(store, REALM, seed=42, transactions=2000)
    checked = taxed = 0
    for name in SALES:
        entity = entities.ENTITIES[name]
        for record in store.iter_records(REALM, name):
            again = copy.deepcopy(record)
            compute_tax(store, REALM, entity, again)
            assert again["TxnTaxDetail"] == record["TxnTaxDetail"], (name, record["Id"])
            checked += 1
            taxed += bool(record["TxnTaxDetail"].get("TotalTax"))
    assert checked > 500 and taxed > 100, (checked, taxed)
