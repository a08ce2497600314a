"""Writes are completed the way QBO completes them (#17 item 1).

Each test posts the smallest body a client can send over HTTP and compares the answer, and the
record read back, with the real capture of the same write: the same field set, the same formats.
"""

from __future__ import annotations

import copy
import json
import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from qbo_pipeline import entities
from qbo_pipeline.sandbox import openid, shapes
from qbo_pipeline.sandbox.completion import SALES_FORMS, Completion
from qbo_pipeline.sandbox.new_company import create_new_company
from qbo_pipeline.sandbox.operations import Operations
from qbo_pipeline.sandbox.server import SandboxServer
from qbo_pipeline.sandbox.store import SandboxStore
from tests.conftest import SAMPLES, sandbox_token

_USD_REF = {"value": "USD", "name": "United States Dollar"}


def capture(name: str, key: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text())[key]


class Api:
    """A tiny QBO client over requests for the sandbox's realm."""

    def __init__(self, sandbox: SandboxServer) -> None:
        realm = sandbox.realm_ids[0]
        self.base = f"{sandbox.base_url}/v3/company/{realm}"
        self.headers = {
            "Authorization": f"Bearer {sandbox_token(sandbox, realm)}",
            "Accept": "application/json",
        }

    def get(self, path: str) -> dict[str, Any]:
        answer = requests.get(f"{self.base}/{path}", headers=self.headers, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def post(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = requests.post(
            f"{self.base}/{entity.lower()}", json=body, headers=self.headers, timeout=30
        )
        assert answer.status_code == 200, answer.text
        return answer.json()[entities.get(entity).json_key]

    def read(self, entity: str, record_id: str) -> dict[str, Any]:
        return self.get(f"{entity.lower()}/{record_id}")[entities.get(entity).json_key]

    def query(self, text: str) -> list[dict[str, Any]]:
        answer = requests.get(
            f"{self.base}/query", params={"query": text}, headers=self.headers, timeout=30
        )
        assert answer.status_code == 200, answer.text
        return next(iter(answer.json()["QueryResponse"].values()), [])


@pytest.fixture
def api(sandbox: SandboxServer) -> Api:
    return Api(sandbox)


def created_and_read(api: Api, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    """Create a record; the answer and the record read back must be the same."""
    created = api.post(entity, body)
    assert api.read(entity, created["Id"]) == created, "read back as answered"
    return created


def test_a_minimal_invoice_is_completed_as_the_capture_shows(api: Api) -> None:
    expected = capture("invoice_create_response.json", "Invoice")
    highest = max(int(r["DocNumber"]) for r in api.query("select * from Invoice"))
    customer = api.read("Customer", "1")
    item = api.read("Item", "1")
    invoice = created_and_read(
        api,
        "Invoice",
        {
            "CustomerRef": {"value": "1"},
            "Line": [
                {
                    "Amount": 100.0,
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": "1"}},
                }
            ],
        },
    )
    assert set(invoice) == set(expected)
    item_line, subtotal = invoice["Line"]
    assert set(item_line) == set(expected["Line"][0]) and item_line["Id"] == "1"
    assert item_line["LineNum"] == 1
    assert item_line["SalesItemLineDetail"] == {
        "ItemRef": {"value": "1", "name": item["Name"]},
        "TaxCodeRef": {"value": "NON"},
    }
    assert subtotal == {"Amount": 100, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}
    assert invoice["CustomerRef"] == {"value": "1", "name": customer["DisplayName"]}
    assert invoice["DocNumber"] == str(highest + 1), "the next number: no custom txn numbers"
    terms = api.read(
        "Term", api.get("preferences")["Preferences"]["SalesFormsPrefs"]["DefaultTerms"]["value"]
    )
    due = date.fromisoformat(invoice["TxnDate"]) + timedelta(days=terms["DueDays"])
    assert invoice["DueDate"] == due.isoformat(), "the company's default terms"
    assert invoice["BillAddr"] == customer["BillAddr"] and invoice["ShipAddr"]["Id"]
    assert invoice["TxnTaxDetail"] == {"TotalTax": 0} and invoice["LinkedTxn"] == []
    assert (invoice["PrintStatus"], invoice["EmailStatus"]) == ("NeedToPrint", "NotSet")
    assert invoice["TotalAmt"] == invoice["Balance"] == 100
    assert invoice["CustomField"] == [], "the generated company defines no custom field"


def test_sales_forms_share_the_completion(api: Api) -> None:
    line = {
        "Amount": 40,
        "DetailType": "SalesItemLineDetail",
        "SalesItemLineDetail": {"ItemRef": {"value": "1"}},
    }
    for entity in ("Estimate", "SalesReceipt", "CreditMemo"):
        record = created_and_read(
            api, entity, {"CustomerRef": {"value": "1"}, "Line": [copy.deepcopy(line)] * 2}
        )
        assert [x.get("Id") for x in record["Line"]] == ["1", "2", None], entity
        assert record["Line"][-1]["Amount"] == 80 and record["DocNumber"].isdigit(), entity
        assert record["PrintStatus"] == "NeedToPrint" and "BillAddr" in record, entity
        chosen = api.post(
            entity,
            {"CustomerRef": {"value": "1"}, "DocNumber": "90000", "Line": [copy.deepcopy(line)]},
        )
        following = api.post(entity, {"CustomerRef": {"value": "1"}, "Line": [line]})
        assert (chosen["DocNumber"], following["DocNumber"]) == ("90000", "90001"), entity


def test_a_foreign_currency_invoice_carries_its_home_amounts(api: Api) -> None:
    """Multicurrency: the company's rate for the currency, the total and the open balance in
    the home currency, moved when a payment is applied."""
    (eur,) = [
        r for r in api.query("select * from ExchangeRate") if r["SourceCurrencyCode"] == "EUR"
    ]
    line = {
        "Amount": 200,
        "DetailType": "SalesItemLineDetail",
        "SalesItemLineDetail": {"ItemRef": {"value": "1"}},
    }
    invoice = created_and_read(
        api,
        "Invoice",
        {
            "CustomerRef": {"value": "1"},
            "CurrencyRef": {"value": "EUR"},
            "TxnDate": eur["AsOfDate"],
            "Line": [line],
        },
    )
    assert invoice["CurrencyRef"] == {"value": "EUR", "name": "Euro"}
    assert invoice["ExchangeRate"] == eur["Rate"]
    home = round(200 * eur["Rate"], 2)
    assert invoice["HomeTotalAmt"] == invoice["HomeBalance"] == home
    api.post(
        "Payment",
        {
            "CustomerRef": {"value": "1"},
            "CurrencyRef": {"value": "EUR"},
            "TotalAmt": 50,
            "Line": [{"Amount": 50, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
        },
    )
    paid = api.read("Invoice", invoice["Id"])
    assert paid["Balance"] == 150 and paid["HomeBalance"] == round(150 * eur["Rate"], 2)
    usd = api.query("select * from Invoice")[0]
    assert "HomeBalance" not in usd and "ExchangeRate" not in usd, "home currency: none"


def test_a_minimal_payment_is_completed_as_the_capture_shows(api: Api) -> None:
    expected = capture("payment_create_response.json", "Payment")
    payment = created_and_read(api, "Payment", {"CustomerRef": {"value": "1"}, "TotalAmt": 100})
    assert set(payment) == set(expected)
    assert payment["DepositToAccountRef"] == {"value": "4"}, "Undeposited Funds, unnamed"
    assert payment["UnappliedAmt"] == 100 and payment["Line"] == []
    assert payment["ProcessPayment"] is False and payment["CustomerRef"]["name"]
    assert api.read("Account", "4")["AccountSubType"] == "UndepositedFunds"


def test_a_payment_s_unapplied_amount_is_recalculated_on_every_write(api: Api) -> None:
    (invoice, *_) = [
        i for i in api.query("select * from Invoice") if i["Balance"] and i["Balance"] > 10
    ]
    payment = api.post(
        "Payment",
        {
            "CustomerRef": invoice["CustomerRef"],
            "TotalAmt": 50,
            "UnappliedAmt": 50,
            "Line": [{"Amount": 10, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
        },
    )
    assert payment["UnappliedAmt"] == 40, "a client's value is not taken"
    body = {k: v for k, v in payment.items() if k not in ("UnappliedAmt", "MetaData")}
    updated = api.post("Payment", {**body, "TotalAmt": 70})
    assert updated["UnappliedAmt"] == 60, "a full update that leaves it out recalculates it"


def test_a_journal_entry_is_completed_as_the_capture_shows(api: Api) -> None:
    expected = capture("journalentry_create_response.json", "JournalEntry")
    body = {
        "DocNumber": "JE-001",
        "TxnDate": "2024-05-05",
        "PrivateNote": "Test journal entry",
        "Line": [
            {k: v for k, v in line.items() if k not in ("CustomExtensions",)}
            for line in copy.deepcopy(expected["Line"])
        ],
    }
    del body["Line"][1]["Id"]
    for line in body["Line"]:
        line["JournalEntryLineDetail"]["AccountRef"].pop("name")
    entry = created_and_read(api, "JournalEntry", body)
    assert set(entry) == set(expected)
    assert [line["Id"] for line in entry["Line"]] == ["0", "1"], "numbered from 0"
    assert all("LineNum" not in line for line in entry["Line"])
    for line in entry["Line"]:
        ref = line["JournalEntryLineDetail"]["AccountRef"]
        assert ref["name"] == api.read("Account", ref["value"])["FullyQualifiedName"]
    assert entry["TxnTaxDetail"] == {} and entry["Adjustment"] is False
    assert entry["TotalAmt"] == 0


def test_a_customer_is_completed_as_the_capture_shows(api: Api) -> None:
    expected = capture("extra/customer_create_response.json", "Customer")
    body = {
        k: expected[k]
        for k in ("GivenName", "FamilyName", "PrimaryEmailAddr", "PrimaryPhone", "Notes")
    }
    body["DisplayName"] = "A Customer Of Our Own"
    body["BillAddr"] = {k: v for k, v in expected["BillAddr"].items() if k != "Id"}
    customer = created_and_read(api, "Customer", body)
    assert set(customer) == set(expected)
    assert customer["PrintOnCheckName"] == "Test Customer", "the person's name, as captured"
    assert customer["BillAddr"]["Id"].isdigit(), "a new address gets an id"
    assert (customer["Balance"], customer["BalanceWithJobs"]) == (0, 0)
    assert customer["DefaultTaxCodeRef"] == expected["DefaultTaxCodeRef"]
    assert (customer["Job"], customer["IsProject"], customer["Taxable"]) == (False, False, True)


def test_a_customer_s_balance_is_recalculated_from_its_open_documents(api: Api) -> None:
    """Full and sparse updates that leave Balance out get it from the open documents."""
    parent = api.post("Customer", {"DisplayName": "Parent Of A Job"})
    job = api.post("Customer", {"DisplayName": "A Job", "ParentRef": {"value": parent["Id"]}})
    line = {
        "Amount": 120,
        "DetailType": "SalesItemLineDetail",
        "SalesItemLineDetail": {"ItemRef": {"value": "1"}},
    }
    api.post("Invoice", {"CustomerRef": {"value": job["Id"]}, "Line": [line]})
    api.post("Payment", {"CustomerRef": {"value": job["Id"]}, "TotalAmt": 20})
    full = {k: v for k, v in job.items() if k not in ("Balance", "BalanceWithJobs", "MetaData")}
    job = api.post("Customer", full)
    assert (job["Balance"], job["BalanceWithJobs"], job["Job"]) == (100, 100, True)
    parent = api.post(
        "Customer",
        {"Id": parent["Id"], "SyncToken": parent["SyncToken"], "sparse": True, "Notes": "n"},
    )
    assert (parent["Balance"], parent["BalanceWithJobs"]) == (0, 100), "with its job's"


def test_a_vendor_s_balance_is_recalculated_from_its_open_bills(api: Api) -> None:
    vendor = api.post("Vendor", {"DisplayName": "A Vendor Of Our Own", "Balance": 5})
    assert vendor["Balance"] == 0 and vendor["Vendor1099"] is False
    expense = {
        "Amount": 75,
        "DetailType": "AccountBasedExpenseLineDetail",
        "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "7"}},
    }
    bill = api.post("Bill", {"VendorRef": {"value": vendor["Id"]}, "Line": [expense]})
    assert bill["DueDate"] == bill["TxnDate"], "no terms: due at once"
    assert bill["Line"][0]["LineNum"] == 1 and bill["VendorRef"]["name"] == vendor["DisplayName"]
    vendor = api.post("Vendor", {k: v for k, v in vendor.items() if k != "Balance"})
    assert vendor["Balance"] == 75


def test_an_account_and_an_item_are_completed_as_the_captures_show(api: Api) -> None:
    expected = capture("extra/account_create_response.json", "Account")
    account = created_and_read(api, "Account", {"Name": "A Bank Of Our Own", "AccountType": "Bank"})
    assert set(account) == set(expected)
    assert (account["Classification"], account["AccountSubType"]) == ("Asset", "CashOnHand")
    assert (account["SubAccount"], account["CurrentBalance"]) == (False, 0)

    expected = capture("extra/item_create_response.json", "Item")
    item = created_and_read(
        api,
        "Item",
        {"Name": "A Service Of Our Own", "Type": "Service", "IncomeAccountRef": {"value": "79"}},
    )
    # The create capture alone carries DeferredRevenue; no item of query_item_all.json (the
    # same company, read back) has it, so the sandbox answers as the reads do.
    assert set(item) == set(expected) - {"DeferredRevenue"}
    income = api.read("Account", "79")
    assert item["IncomeAccountRef"] == {"value": "79", "name": income["FullyQualifiedName"]}
    assert (item["UnitPrice"], item["PurchaseCost"], item["TrackQtyOnHand"]) == (0, 0, False)


def test_an_attachment_s_file_fields_are_recalculated_on_a_full_update(
    api: Api, sandbox: SandboxServer
) -> None:
    invoice_id = api.query("select * from Invoice")[0]["Id"]
    meta = {
        "AttachableRef": [{"EntityRef": {"type": "Invoice", "value": invoice_id}}],
        "FileName": "note.txt",
        "ContentType": "text/plain",
    }
    files = {
        "file_metadata_01": (None, json.dumps(meta), "application/json"),
        "file_content_01": ("note.txt", b"twelve bytes", "text/plain"),
    }
    uploaded = requests.post(
        f"{api.base}/upload", files=files, headers=api.headers, timeout=30
    ).json()["AttachableResponse"][0]["Attachable"]
    expected = capture("attachable_read_response.json", "Attachable")
    assert set(api.read("Attachable", uploaded["Id"])) == set(expected)
    body = {
        k: v
        for k, v in uploaded.items()
        if k not in ("Size", "FileAccessUri", "TempDownloadUri", "MetaData")
    }
    updated = api.post("Attachable", {**body, "Note": "kept", "Size": 1})
    assert set(updated) == set(expected) | {"Note"}
    assert updated["Size"] == 12 and updated["FileAccessUri"] == uploaded["FileAccessUri"]


def test_the_generated_company_is_already_complete(sandbox_template: Path, tmp_path: Path) -> None:
    """Completing a seeded record changes nothing: the generator writes what QBO would."""
    state = tmp_path / "state.sqlite3"
    shutil.copyfile(sandbox_template, state)
    store = SandboxStore(state)
    try:
        realm = store.realm_ids()[0]
        completion = Completion(store, realm)
        checked = 0
        for ent in entities.CATALOGUE:
            if ent.is_singleton or ent.read_only:
                continue
            for record in store.iter_records(realm, ent.name):
                flat = shapes.flat(ent.name, record)
                completed = copy.deepcopy(flat)
                completion.complete(ent, completed, flat)
                assert completed == flat, (ent.name, record.get("Id"))
                checked += 1
        assert checked > 300
        assert set(SALES_FORMS) <= {e.name for e in entities.CATALOGUE}
    finally:
        store.close()


@pytest.mark.parametrize(
    ("country", "home", "sent", "line_code"),
    [
        # A Canadian line needs its GST/HST code (tax_rules): 3 is Out of Scope.
        ("CA", {"value": "CAD", "name": "Canadian Dollar"}, {"TaxCodeRef": {"value": "3"}}, "3"),
        ("US", _USD_REF, {}, "NON"),
    ],
)
def test_a_new_company_s_writes_default_to_its_home_currency_and_own_tax_codes(
    country: str, home: dict[str, str], sent: dict[str, Any], line_code: str
) -> None:
    store = SandboxStore(":memory:")
    realm = create_new_company(store, country=country).realm_id
    ops = Operations(store, realm)
    customer = ops.create("Customer", {"DisplayName": "Maple Leaf Supply"})
    vendor = ops.create("Vendor", {"DisplayName": "Northern Paper"})
    account = ops.create("Account", {"Name": "Petty Cash", "AccountType": "Bank"})
    item = next(store.iter_records(realm, "Item"))
    invoice = ops.create(
        "Invoice",
        {
            "CustomerRef": {"value": customer["Id"]},
            "Line": [
                {
                    "Amount": 100,
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, **sent},
                }
            ],
        },
    )
    for record in (customer, vendor, account, invoice):
        assert record["CurrencyRef"] == home
    # A home-currency invoice has no exchange rate or home amounts.
    assert "ExchangeRate" not in invoice and "HomeTotalAmt" not in invoice
    detail = invoice["Line"][0]["SalesItemLineDetail"]
    assert (detail.get("TaxCodeRef") or {}).get("value") == line_code
    codes = {str(r["Id"]) for r in store.iter_records(realm, "TaxCode")}
    assert line_code in codes


def test_writes_name_their_user_in_last_modified_by_ref_as_the_captures_do(
    sandbox: SandboxServer, api: Api
) -> None:
    realm = sandbox.realm_ids[0]
    api_user = {"value": openid.user_id(realm)}
    assert api_user["value"].isdigit() and len(api_user["value"]) == 16
    read_capture = capture("invoice_read_response.json", "Invoice")["MetaData"]
    line = {
        "Amount": 80,
        "DetailType": "SalesItemLineDetail",
        "SalesItemLineDetail": {"ItemRef": {"value": "1"}},
    }
    invoice = created_and_read(api, "Invoice", {"CustomerRef": {"value": "1"}, "Line": [line]})
    assert invoice["MetaData"]["LastModifiedByRef"] == api_user
    assert list(invoice["MetaData"]) == list(read_capture), "the capture's keys, in its order"
    vendor = api.query("select * from Vendor maxresults 1")[0]
    expense = api.query("select * from Account where AccountType = 'Expense' maxresults 1")[0]
    bill = api.post(
        "Bill",
        {
            "VendorRef": {"value": vendor["Id"]},
            "Line": [
                {
                    "Amount": 5,
                    "DetailType": "AccountBasedExpenseLineDetail",
                    "AccountBasedExpenseLineDetail": {"AccountRef": {"value": expense["Id"]}},
                }
            ],
        },
    )
    assert bill["MetaData"]["LastModifiedByRef"] == api_user
    # The entities whose captures carry no modifier get none; nothing carries CreatedByRef.
    customer = api.post("Customer", {"DisplayName": "Modifier Test"})
    assert set(customer["MetaData"]) == {"CreateTime", "LastUpdatedTime"}
    # The sandbox's own writes (simulation, incidents) are the app user's, API writes
    # after them the token's user again, and a payment's write to the invoice is its writer's.
    assert sandbox.store is not None
    ops = Operations(sandbox.store, realm)
    stored = ops.server_update("Invoice", invoice["Id"], {"PrivateNote": "by the app"})
    assert stored["MetaData"]["LastModifiedByRef"] == {"value": openid.APP_USER_ID}
    assert "CreatedByRef" not in stored["MetaData"]
    api.post(
        "Payment",
        {
            "CustomerRef": {"value": "1"},
            "TotalAmt": 30,
            "Line": [{"Amount": 30, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
        },
    )
    paid = api.read("Invoice", invoice["Id"])
    assert paid["Balance"] == 50 and paid["SyncToken"] == "2"
    assert paid["MetaData"]["LastModifiedByRef"] == api_user
    assert paid["MetaData"]["CreateTime"] == invoice["MetaData"]["CreateTime"]
