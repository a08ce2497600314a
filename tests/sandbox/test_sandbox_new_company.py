"""A new company as QBO creates it (#20): defaults only, read over HTTP like any other company.

Each company is created through the admin endpoint of a running sandbox (``POST
/_sandbox/realms``) or the CLI, connected through the real OAuth flow, and read with QBO's
query language; its records are compared with the real captures' shapes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from typer.testing import CliRunner

from qbo_pipeline import entities
from qbo_pipeline.backup import run_backup
from qbo_pipeline.cli import app
from qbo_pipeline.config import Settings
from qbo_pipeline.lake.lake import Lake
from qbo_pipeline.qbo.connect import login_embedded, open_client
from qbo_pipeline.sandbox.new_company import FIRST_NEW_REALM_ID, create_new_company
from qbo_pipeline.sandbox.server import SandboxServer
from qbo_pipeline.sandbox.store import SandboxStore
from tests.conftest import SAMPLES, sandbox_token

TRANSACTIONS = [e.name for e in entities.of_kind(entities.Kind.TRANSACTION)]

US_ACCOUNTS = {
    # Name: (AccountType, AccountSubType, Classification), as query_account_all.json has them.
    "Accounts Receivable (A/R)": ("Accounts Receivable", "AccountsReceivable", "Asset"),
    "Accounts Payable (A/P)": ("Accounts Payable", "AccountsPayable", "Liability"),
    "Undeposited Funds": ("Other Current Asset", "UndepositedFunds", "Asset"),
    "Inventory Asset": ("Other Current Asset", "Inventory", "Asset"),
    "Uncategorized Asset": ("Other Current Asset", "OtherCurrentAssets", "Asset"),
    "Opening Balance Equity": ("Equity", "OpeningBalanceEquity", "Equity"),
    "Retained Earnings": ("Equity", "RetainedEarnings", "Equity"),
    "Sales of Product Income": ("Income", "SalesOfProductIncome", "Revenue"),
    "Services": ("Income", "ServiceFeeIncome", "Revenue"),
    "Billable Expense Income": ("Income", "ServiceFeeIncome", "Revenue"),
    "Uncategorized Income": ("Income", "ServiceFeeIncome", "Revenue"),
    "Cost of Goods Sold": ("Cost of Goods Sold", "SuppliesMaterialsCogs", "Expense"),
    "Uncategorized Expense": ("Expense", "OtherMiscellaneousServiceCost", "Expense"),
    "Sales Tax Payable": ("Other Current Liability", "SalesTaxPayable", "Liability"),
    "Payroll Liabilities": ("Other Current Liability", "PayrollTaxPayable", "Liability"),
}
TERMS = {"Due on receipt": 0, "Net 15": 15, "Net 30": 30, "Net 60": 60}
PAYMENT_METHODS = {
    "Cash": "NON_CREDIT_CARD",
    "Check": "NON_CREDIT_CARD",
    "Visa": "CREDIT_CARD",
    "MasterCard": "CREDIT_CARD",
    "Discover": "CREDIT_CARD",
    "American Express": "CREDIT_CARD",
    "Diners Club": "CREDIT_CARD",
}


def _capture(name: str) -> dict[str, Any]:
    document = json.loads((SAMPLES / name).read_text())
    return {k: v for k, v in document.items() if k != "time"}


class Company:
    """A QBO client over requests for one realm of a running sandbox."""

    def __init__(self, sandbox: SandboxServer, realm: str) -> None:
        self.realm = realm
        self.base = f"{sandbox.base_url}/v3/company/{realm}"
        self.headers = {
            "Authorization": f"Bearer {sandbox_token(sandbox, realm)}",
            "Accept": "application/json",
        }

    def get(self, path: str, **params: str) -> requests.Response:
        return requests.get(f"{self.base}/{path}", params=params, headers=self.headers, timeout=30)

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return requests.post(f"{self.base}/{path}", json=body, headers=self.headers, timeout=30)

    def count(self, entity: str) -> int:
        answer = self.get("query", query=f"select count(*) from {entity}")
        assert answer.status_code == 200, answer.text
        return int(answer.json()["QueryResponse"]["totalCount"])

    def all(self, entity: str) -> list[dict[str, Any]]:
        answer = self.get("query", query=f"select * from {entity} maxresults 1000")
        assert answer.status_code == 200, answer.text
        return list(answer.json()["QueryResponse"].get(entity, []))

    def read(self, path: str, key: str) -> dict[str, Any]:
        answer = self.get(path)
        assert answer.status_code == 200, answer.text
        return dict(answer.json()[key])


def _create(sandbox: SandboxServer, **body: Any) -> requests.Response:
    return requests.post(f"{sandbox.base_url}/_sandbox/realms", json=body, timeout=60)


def _new(sandbox: SandboxServer, country: str, multicurrency: bool) -> Company:
    answer = _create(sandbox, kind="new", country=country, multicurrency=multicurrency)
    assert answer.status_code == 200, answer.text
    return Company(sandbox, answer.json()["realmId"])


@pytest.mark.parametrize("multicurrency", [False, True])
def test_a_new_us_company_has_qbo_defaults_and_no_transactions(
    sandbox: SandboxServer, multicurrency: bool
) -> None:
    company = _new(sandbox, "US", multicurrency)
    listed = requests.get(f"{sandbox.base_url}/_sandbox/realms", timeout=30).json()
    assert company.realm in [r["realmId"] for r in listed]
    assert company.realm not in sandbox.realm_ids, "a realm of its own beside the generated one"

    for name in [*TRANSACTIONS, "Customer", "Vendor", "Employee", "Class", "Department"]:
        assert company.count(name) == 0, name
    accounts = {a["Name"]: a for a in company.all("Account")}
    for name, (account_type, sub_type, classification) in US_ACCOUNTS.items():
        account = accounts[name]
        assert (account["AccountType"], account["AccountSubType"]) == (account_type, sub_type)
        assert account["Classification"] == classification
        assert account["CurrentBalance"] == 0 and account["Active"] is True
        assert account["CurrencyRef"] == {"value": "USD", "name": "United States Dollar"}
    assert sorted(int(a["Id"]) for a in accounts.values()) == list(range(1, len(accounts) + 1))
    assert {t["Name"]: t["DueDays"] for t in company.all("Term")} == TERMS
    assert {m["Name"]: m["Type"] for m in company.all("PaymentMethod")} == PAYMENT_METHODS
    codes = {c["Id"]: c for c in company.all("TaxCode")}
    assert set(codes) == {"TAX", "NON"}
    assert codes["TAX"]["Taxable"] is True and codes["NON"]["Taxable"] is False
    assert company.count("TaxRate") == 0 and company.count("TaxAgency") == 0
    items = {i["Name"]: i for i in company.all("Item")}
    assert set(items) == {"Services", "Hours"}
    assert items["Services"]["IncomeAccountRef"] == {
        "value": accounts["Services"]["Id"],
        "name": "Services",
    }

    prefs = company.read("preferences", "Preferences")
    assert prefs["CurrencyPrefs"] == {
        "MultiCurrencyEnabled": multicurrency,
        "HomeCurrency": {"value": "USD"},
    }
    assert prefs["TaxPrefs"]["UsingSalesTax"] is False
    other = {p["Name"]: p["Value"] for p in prefs["OtherPrefs"]["NameValue"]}
    assert other["UncategorizedIncomeAccountId"] == accounts["Uncategorized Income"]["Id"]
    currencies = company.all("CompanyCurrency")
    assert [c["Code"] for c in currencies] == (["USD"] if multicurrency else [])
    info = company.read(f"companyinfo/{company.realm}", "CompanyInfo")
    assert info["Country"] == "US" and info["CompanyAddr"]["Country"] == "US"
    assert info["CompanyName"] == "New Company US"
    assert info["DefaultTimeZone"] == "America/Los_Angeles"
    assert info["SupportedLanguages"] == "en" and info["FiscalYearStartMonth"] == "January"


@pytest.mark.parametrize("multicurrency", [False, True])
def test_a_new_canadian_company_has_cad_and_gst_hst_tax_codes(
    sandbox: SandboxServer, multicurrency: bool
) -> None:
    company = _new(sandbox, "CA", multicurrency)
    for name in [*TRANSACTIONS, "Customer", "Vendor", "Employee"]:
        assert company.count(name) == 0, name
    accounts = {a["Name"]: a for a in company.all("Account")}
    for name in ("Accounts Receivable (A/R)", "Undeposited Funds", "Retained Earnings"):
        assert name in accounts
    payable = accounts["GST/HST Payable"]
    assert (payable["AccountType"], payable["AccountSubType"]) == (
        "Other Current Liability",
        "GlobalTaxPayable",
    )
    assert "Sales Tax Payable" not in accounts
    assert {a["CurrencyRef"]["value"] for a in accounts.values()} == {"CAD"}
    assert {t["Name"] for t in company.all("Term")} == set(TERMS)
    assert {m["Name"] for m in company.all("PaymentMethod")} == set(PAYMENT_METHODS)

    codes = {c["Name"]: c for c in company.all("TaxCode")}
    assert set(codes) == {"Out of Scope", "Exempt", "Zero-rated", "GST", "HST ON"}
    assert "TAX" not in {c["Id"] for c in codes.values()}, "TAX and NON are a US company's"
    rates = {r["Id"]: r for r in company.all("TaxRate")}
    (agency,) = company.all("TaxAgency")
    assert agency["DisplayName"] == "Canada Revenue Agency"
    for name, percent in (("GST", 5), ("HST ON", 13)):
        for detail_list in ("SalesTaxRateList", "PurchaseTaxRateList"):
            (detail,) = codes[name][detail_list]["TaxRateDetail"]
            rate = rates[detail["TaxRateRef"]["value"]]
            assert rate["RateValue"] == percent and rate["Name"] == detail["TaxRateRef"]["name"]
            assert rate["AgencyRef"]["value"] == agency["Id"]
    assert codes["Out of Scope"]["Taxable"] is False

    prefs = company.read("preferences", "Preferences")
    assert prefs["CurrencyPrefs"] == {
        "MultiCurrencyEnabled": multicurrency,
        "HomeCurrency": {"value": "CAD"},
    }
    assert [c["Code"] for c in company.all("CompanyCurrency")] == (["CAD"] if multicurrency else [])
    info = company.read(f"companyinfo/{company.realm}", "CompanyInfo")
    assert info["Country"] == "CA" and info["CompanyAddr"]["CountrySubDivisionCode"] == "ON"
    assert info["DefaultTimeZone"] == "America/Toronto"


def test_default_records_have_the_captured_shapes(sandbox: SandboxServer) -> None:
    us = _new(sandbox, "US", True)
    ca = _new(sandbox, "CA", False)
    term = _capture("extra/term_doc.json")["Term"]
    served = {t["Name"]: t for t in us.all("Term")}
    assert set(served["Net 60"]) == set(term) and served["Net 60"]["Id"] == term["Id"]
    method = _capture("extra/paymentmethod_doc.json")["PaymentMethod"]
    served = {m["Name"]: m for m in us.all("PaymentMethod")}
    assert set(served["Diners Club"]) == set(method) and served["Diners Club"]["Id"] == "7"
    currency = _capture("extra/companycurrency_doc.json")["CompanyCurrency"]
    assert [set(c) for c in us.all("CompanyCurrency")] == [set(currency)]
    captured = _capture("query_account_all.json")["QueryResponse"]["Account"]
    top_level = next(a for a in captured if a["Name"] == "Undeposited Funds")
    assert all(set(a) == set(top_level) for a in us.all("Account"))
    agency = _capture("extra/taxagency_doc.json")["TaxAgency"]
    assert [set(a) for a in ca.all("TaxAgency")] == [set(agency)]
    rate = _capture("extra/taxrate_doc.json")["TaxRate"]
    assert all(set(r) == set(rate) for r in ca.all("TaxRate"))
    code = _capture("extra/taxcode_doc.json")["TaxCode"]
    assert all(set(code) <= set(c) for c in ca.all("TaxCode"))
    info = _capture("companyinfo_read_doc.json")["CompanyInfo"]
    assert set(info) - {"EmployerId"} <= set(us.read(f"companyinfo/{us.realm}", "CompanyInfo"))
    prefs = _capture("preferences_read_response.json")["Preferences"]
    assert set(prefs) == set(us.read("preferences", "Preferences"))


@pytest.mark.parametrize(
    ("entity", "body"),
    [
        ("account", {"Name": "Undeposited Funds", "AccountType": "Other Current Asset"}),
        ("account", {"Name": "accounts receivable (a/r)", "AccountType": "Bank"}),
        ("term", {"Name": "Net 30", "DueDays": 30}),
        ("paymentmethod", {"Name": "Visa", "Type": "CREDIT_CARD"}),
        ("item", {"Name": "Services", "Type": "Service", "IncomeAccountRef": {"value": "13"}}),
    ],
)
def test_a_default_record_s_name_is_taken(
    sandbox: SandboxServer, entity: str, body: dict[str, Any]
) -> None:
    company = _new(sandbox, "US", False)
    answer = company.post(entity, body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["Fault"]["Error"][0]
    assert error["code"] == "6240" and "Duplicate Name Exists Error" in error["Message"]


def test_an_invoice_can_be_created_against_the_defaults(sandbox: SandboxServer) -> None:
    company = _new(sandbox, "US", False)
    items = {i["Name"]: i["Id"] for i in company.all("Item")}
    customer = company.post("customer", {"DisplayName": "First Customer"})
    assert customer.status_code == 200, customer.text
    customer_id = customer.json()["Customer"]["Id"]
    answer = company.post(
        "invoice",
        {
            "CustomerRef": {"value": customer_id},
            "TxnDate": "2026-03-02",
            "Line": [
                {
                    "Amount": 150,
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": items["Services"]}},
                }
            ],
        },
    )
    assert answer.status_code == 200, answer.text
    invoice = answer.json()["Invoice"]
    assert invoice["CustomerRef"] == {"value": customer_id, "name": "First Customer"}
    assert invoice["Line"][0]["SalesItemLineDetail"]["ItemRef"]["name"] == "Services"
    assert invoice["Line"][0]["SalesItemLineDetail"]["TaxCodeRef"] == {"value": "NON"}
    assert invoice["DocNumber"] == "1001"
    assert invoice["DueDate"] == "2026-04-01", "the company's default terms: Net 30"
    assert invoice["TotalAmt"] == 150 and invoice["Balance"] == 150
    assert company.count("Invoice") == 1


def test_a_backup_of_a_new_company_lands_its_defaults(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    answer = _create(sandbox, kind="new", country="CA", multicurrency=True)
    realm_id = answer.json()["realmId"]
    settings = Settings.from_env(
        {"QBO_DATA_DIR": str(tmp_path / "data"), "QBO_ENVIRONMENT": "embedded"}
    )
    assert login_embedded(settings, sandbox.base_url, realm_hint=realm_id) == [realm_id]
    with open_client(settings, realm_id, api_base=sandbox.base_url) as client:
        realm = Lake(settings.lake_url).realm(realm_id)
        result = run_backup(client, realm, mode="full")
    snapshot = result.snapshot.snapshot_id
    landed = {
        name: {p["Id"]: p for p in realm.iter_payloads(snapshot, name)}
        for name in result.snapshot.entities
    }
    assert sorted(n for n, rows in landed.items() if rows) == sorted(
        [
            "Account",
            "CompanyCurrency",
            "CompanyInfo",
            "Item",
            "PaymentMethod",
            "Preferences",
            "TaxAgency",
            "TaxCode",
            "TaxRate",
            "Term",
        ]
    )
    assert sandbox.store is not None
    for name, rows in landed.items():
        expected = {p["Id"]: p for p in sandbox.store.iter_records(realm_id, name)}
        assert set(rows) == set(expected), name
    assert {p["Name"] for p in landed["TaxCode"].values()} >= {"GST", "HST ON"}
    assert landed["Preferences"]["1"]["CurrencyPrefs"]["HomeCurrency"] == {"value": "CAD"}
    for name, stats in result.snapshot.entities.items():
        assert stats["live"] == stats["qbo_count"], name
    realm.verify(snapshot)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "new", "country": "FR"}, "country 'FR' is not one"),
        ({"kind": "copy"}, "kind must be 'new'"),
        ({"kind": "new", "multicurrency": "yes"}, "multicurrency must be true or false"),
        ({"kind": "new", "realmId": "abc"}, "realm"),
        ({"kind": "new", "realmId": "9341450000000001"}, "already exists"),
        ({"kind": "new", "currency": "EUR"}, "unknown fields currency"),
    ],
)
def test_a_bad_new_company_request_is_refused_and_says_why(
    sandbox: SandboxServer, body: dict[str, Any], message: str
) -> None:
    def realms() -> list[str]:
        listed = requests.get(f"{sandbox.base_url}/_sandbox/realms", timeout=30).json()
        return [r["realmId"] for r in listed]

    before = realms()
    answer = _create(sandbox, **body)
    assert answer.status_code == 400
    assert message in answer.json()["error"]
    assert realms() == before, "nothing created"


def test_realm_ids_and_names_of_new_companies(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path / "state.sqlite3")
    try:
        first = create_new_company(store, country="us")
        second = create_new_company(store, country="CA", company_name="Maple Books Ltd.")
        assert (first.realm_id, second.realm_id) == (
            str(FIRST_NEW_REALM_ID),
            str(FIRST_NEW_REALM_ID + 1),
        )
        assert store.company_name(second.realm_id) == "Maple Books Ltd."
        info = next(iter(store.iter_records(second.realm_id, "CompanyInfo")))
        assert info["CompanyName"] == info["LegalName"] == "Maple Books Ltd."
        with pytest.raises(ValueError, match="must not be blank"):
            create_new_company(store, company_name="  ")
    finally:
        store.close()


def test_cli_new_company_into_a_state_file_and_a_running_sandbox(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    runner = CliRunner()
    state = tmp_path / "new" / "state.sqlite3"
    made = runner.invoke(
        app, ["sandbox", "new-company", "--country", "CA", "--multicurrency", "--state", str(state)]
    )
    assert made.exit_code == 0, made.output
    summary = json.loads(made.output)
    assert summary["country"] == "CA" and summary["multicurrency"] is True
    assert summary["counts"]["CompanyCurrency"] == 1 and "Invoice" not in summary["counts"]
    store = SandboxStore(state)
    try:
        assert store.realm_ids() == [summary["realmId"]]
        assert store.count(summary["realmId"], "TaxCode") == 5
    finally:
        store.close()

    remote = runner.invoke(
        app, ["sandbox", "new-company", "--url", sandbox.base_url, "--name", "Remote Co"]
    )
    assert remote.exit_code == 0, remote.output
    realm_id = json.loads(remote.output)["realmId"]
    company = Company(sandbox, realm_id)
    assert company.read(f"companyinfo/{realm_id}", "CompanyInfo")["CompanyName"] == "Remote Co"
    assert company.read("preferences", "Preferences")["CurrencyPrefs"]["MultiCurrencyEnabled"] is (
        False
    )

    bad = runner.invoke(app, ["sandbox", "new-company", "--country", "GB", "--state", str(state)])
    assert bad.exit_code != 0 and "country 'GB' is not one" in bad.output
