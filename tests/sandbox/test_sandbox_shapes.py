"""Wire shapes QBO departs from ``{"Id": ...}`` with: ExchangeRate, RecurringTransaction, TaxCode.

Each served record is compared with the real capture (``samples/extra``), over HTTP, through
query, read, write, batch and seeding.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from qbo_pipeline import entities
from qbo_pipeline.config import Settings
from qbo_pipeline.qbo.connect import login_embedded, open_client
from qbo_pipeline.sandbox import shapes
from qbo_pipeline.sandbox.seed import seed_from_folder
from qbo_pipeline.sandbox.server import SandboxServer
from qbo_pipeline.sandbox.store import SandboxStore
from tests.conftest import SAMPLES, sandbox_token

EXTRA = SAMPLES / "extra"
RATE_CAPTURE = json.loads((EXTRA / "exchangerate_doc.json").read_text())["ExchangeRate"]
RECURRING_CAPTURE = json.loads((EXTRA / "recurringtransaction_doc.json").read_text())[
    "QueryResponse"
]["RecurringTransaction"][0]


class Api:
    """A tiny QBO client over requests for one realm of a sandbox."""

    def __init__(self, sandbox: SandboxServer) -> None:
        realm = sandbox.realm_ids[0]
        self.base = f"{sandbox.base_url}/v3/company/{realm}"
        self.headers = {
            "Authorization": f"Bearer {sandbox_token(sandbox, realm)}",
            "Accept": "application/json",
        }

    def get(self, path: str, **params: str) -> dict[str, Any]:
        return requests.get(
            f"{self.base}/{path}", params=params, headers=self.headers, timeout=30
        ).json()

    def post(self, path: str, body: Any, **params: str) -> dict[str, Any]:
        return requests.post(
            f"{self.base}/{path}", params=params, json=body, headers=self.headers, timeout=30
        ).json()

    def query(self, text: str) -> dict[str, Any]:
        return self.get("query", query=text)["QueryResponse"]


@pytest.fixture
def api(sandbox: SandboxServer) -> Api:
    return Api(sandbox)


def error_code(document: dict[str, Any]) -> str:
    return str(document["Fault"]["Error"][0]["code"])


# --- ExchangeRate -----------------------------------------------------------------------------


def test_exchange_rates_are_served_as_captured_without_an_id(api: Api) -> None:
    assert api.query("select count(*) from ExchangeRate") == {"totalCount": 3}
    (eur,) = api.query("select * from exchangerate where SourceCurrencyCode = 'EUR'")[
        "ExchangeRate"
    ]
    assert set(eur) == set(RATE_CAPTURE) - {"time"}, "the capture's fields, and no Id"
    assert "Id" not in eur and eur["TargetCurrencyCode"] == "USD"
    everything = api.query("select * from ExchangeRate")["ExchangeRate"]
    assert sorted(r["SourceCurrencyCode"] for r in everything) == ["CAD", "EUR", "GBP"]
    assert all("Id" not in r for r in everything)
    picked = api.query("select Rate from ExchangeRate where SourceCurrencyCode = 'GBP'")
    (gbp,) = picked["ExchangeRate"]
    assert {"Rate", "SourceCurrencyCode", "AsOfDate"} <= set(
        gbp
    ) and "TargetCurrencyCode" not in gbp


def test_an_exchange_rate_is_read_and_updated_by_currency_and_date(api: Api) -> None:
    (eur,) = api.query("select * from ExchangeRate where SourceCurrencyCode = 'EUR'")[
        "ExchangeRate"
    ]
    read = api.get("exchangerate", sourcecurrencycode="EUR", asofdate=eur["AsOfDate"])
    assert read["ExchangeRate"] == eur
    assert api.get("exchangerate", sourcecurrencycode="EUR")["ExchangeRate"] == eur
    assert error_code(api.get("exchangerate", sourcecurrencycode="EUR", asofdate="1999-01-01"))
    assert error_code(api.get("exchangerate")) == "2020"

    body = {k: eur[k] for k in ("SourceCurrencyCode", "AsOfDate", "TargetCurrencyCode")}
    updated = api.post("exchangerate", {**body, "Rate": 1.11, "SyncToken": eur["SyncToken"]})
    rate = updated["ExchangeRate"]
    assert rate["Rate"] == 1.11 and rate["SyncToken"] == "1" and "Id" not in rate
    stale = api.post("exchangerate", {**body, "Rate": 1.2, "SyncToken": eur["SyncToken"]})
    assert error_code(stale) == "5010"
    moved = api.post(
        "exchangerate",
        {**body, "AsOfDate": "2030-01-02", "Rate": 1.5},
    )["ExchangeRate"]
    assert moved["SyncToken"] == "0" and moved["AsOfDate"] == "2030-01-02" and "Id" not in moved
    assert api.query("select count(*) from ExchangeRate") == {"totalCount": 4}
    assert api.query("select count(*) from ExchangeRate where SourceCurrencyCode = 'EUR'") == {
        "totalCount": 2
    }
    missing = api.post("exchangerate", {"SourceCurrencyCode": "EUR"})
    assert error_code(missing) == "2020", "Rate is required"


# --- RecurringTransaction ---------------------------------------------------------------------


def test_recurring_transactions_wrap_their_transaction_as_captured(api: Api) -> None:
    assert api.query("select count(*) from RecurringTransaction") == {"totalCount": 1}
    (template,) = api.query("select * from RecurringTransaction")["RecurringTransaction"]
    assert set(template) == set(RECURRING_CAPTURE) == {"Bill"}
    bill = template["Bill"]
    assert set(bill) == set(RECURRING_CAPTURE["Bill"])
    assert bill["RecurringInfo"]["Name"] == "Telephone Bill"
    read = api.get(f"recurringtransaction/{bill['Id']}")
    assert read["RecurringTransaction"] == template
    by_id = api.query(f"select * from RecurringTransaction where Id = '{bill['Id']}'")
    assert by_id["RecurringTransaction"] == [template]
    ids = api.query("select Id from RecurringTransaction")["RecurringTransaction"]
    assert ids == [{"Bill": {"domain": "QBO", "sparse": True, "Id": bill["Id"]}}]


def test_recurring_transaction_writes_keep_the_wrapped_shape(api: Api) -> None:
    (template,) = api.query("select * from RecurringTransaction")["RecurringTransaction"]
    bill = template["Bill"]
    # An update names the record inside the wrapper, as QBO's own payloads do.
    edited = {"Bill": {**bill, "Line": [{**bill["Line"][0], "Amount": 80.0}]}}
    edited["Bill"]["Line"][0]["AccountBasedExpenseLineDetail"] = bill["Line"][0][
        "AccountBasedExpenseLineDetail"
    ]
    updated = api.post("recurringtransaction", edited)["RecurringTransaction"]
    assert set(updated) == {"Bill"}
    assert updated["Bill"]["Id"] == bill["Id"] and updated["Bill"]["SyncToken"] == "1"
    assert updated["Bill"]["Line"][0]["Amount"] == 80.0
    assert updated["Bill"]["MetaData"]["LastUpdatedTime"] >= bill["MetaData"]["LastUpdatedTime"]
    assert api.get(f"recurringtransaction/{bill['Id']}")["RecurringTransaction"] == updated
    stale = api.post("recurringtransaction", edited)
    assert error_code(stale) == "5010"

    fresh = {"Bill": {k: v for k, v in bill.items() if k not in ("Id", "SyncToken", "MetaData")}}
    created = api.post("recurringtransaction", fresh)["RecurringTransaction"]
    assert set(created) == {"Bill"} and created["Bill"]["SyncToken"] == "0"
    new_id = created["Bill"]["Id"]
    assert new_id != bill["Id"]
    assert api.query("select count(*) from RecurringTransaction") == {"totalCount": 2}

    gone = api.post("recurringtransaction", {"Id": new_id, "SyncToken": "0"}, operation="delete")
    assert gone["RecurringTransaction"] == {"domain": "QBO", "status": "Deleted", "Id": new_id}
    assert error_code(api.get(f"recurringtransaction/{new_id}")) == "610"

    unwrapped = api.post("recurringtransaction", {"RecurringInfo": {"Name": "x"}})
    assert "Fault" in unwrapped, "a template must wrap one transaction"
    dangling = {"Bill": {**fresh["Bill"], "VendorRef": {"value": "999999"}}}
    assert error_code(api.post("recurringtransaction", dangling)) == "610"


def test_batch_serves_and_writes_the_wrapped_shape(api: Api) -> None:
    (template,) = api.query("select * from RecurringTransaction")["RecurringTransaction"]
    bill = template["Bill"]
    answer = api.post(
        "batch",
        {
            "BatchItemRequest": [
                {"bId": "q", "Query": "select * from RecurringTransaction"},
                {
                    "bId": "r",
                    "Query": "select * from ExchangeRate where SourceCurrencyCode = 'CAD'",
                },
                {
                    "bId": "u",
                    "operation": "update",
                    "RecurringTransaction": {"Bill": {**bill, "PrivateNote": "batched"}},
                },
            ]
        },
    )
    by_bid = {item["bId"]: item for item in answer["BatchItemResponse"]}
    assert by_bid["q"]["QueryResponse"]["RecurringTransaction"] == [template]
    assert "Id" not in by_bid["r"]["QueryResponse"]["ExchangeRate"][0]
    written = by_bid["u"]["RecurringTransaction"]
    assert set(written) == {"Bill"} and written["Bill"]["PrivateNote"] == "batched"


# --- TaxCode: the pseudo codes TAX and NON ----------------------------------------------------


def test_pseudo_tax_codes_are_records_with_text_ids(api: Api) -> None:
    codes = api.query("select * from TaxCode")["TaxCode"]
    assert [c["Id"] for c in codes] == ["2", "3", "NON", "TAX"], "numeric ids first, then text"
    backwards = api.query("select * from TaxCode orderby Id desc")["TaxCode"]
    assert [c["Id"] for c in backwards] == ["TAX", "NON", "3", "2"]
    assert api.query("select count(*) from TaxCode") == {"totalCount": 4}
    (tax,) = api.query("select * from TaxCode where Id = 'TAX'")["TaxCode"]
    assert tax["Taxable"] is True and tax["Name"] == "TAX"
    both = api.query("select * from TaxCode where Id in ('NON', '2', 'nope')")["TaxCode"]
    assert [c["Id"] for c in both] == ["2", "NON"]
    assert api.get("taxcode/NON")["TaxCode"]["Taxable"] is False
    assert api.get("taxcode/TAX")["TaxCode"] == tax
    assert error_code(api.get("taxcode/NOPE")) == "610"
    assert error_code(api.get("invoice/TAX")) == "2030", "transactions keep numeric ids"
    assert api.query("select * from Invoice where Id = 'TAX'") == {}
    paged = [
        c["Id"]
        for start in (1, 2, 3, 4)
        for c in api.query(f"select * from TaxCode startposition {start} maxresults 1")["TaxCode"]
    ]
    assert paged == ["2", "3", "NON", "TAX"]


def test_tax_code_refs_of_the_generated_company_resolve(sandbox: SandboxServer) -> None:
    store = sandbox.store
    assert store is not None
    realm = sandbox.realm_ids[0]
    seen = {
        target_id
        for entity in entities.CATALOGUE
        for record in store.iter_records(realm, entity.name)
        for _, target, target_id in entities.iter_reference_values(entity, record)
        if target == "TaxCode"
    }
    assert "NON" in seen and len(seen) > 1
    assert all(store.get(realm, "TaxCode", code) is not None for code in seen)


# --- the store and seeding --------------------------------------------------------------------


def test_store_keys_and_orders_text_ids_after_numbers() -> None:
    store = SandboxStore(":memory:")
    store.create_realm("1", "Keys", clock_start=datetime.now(UTC))
    meta = {"LastUpdatedTime": "2024-01-01T00:00:00-08:00"}
    codes = [{"Id": i, "SyncToken": "0", "MetaData": meta} for i in ("TAX", "10", "NON", "9")]
    store.bulk_load("1", "TaxCode", codes)
    assert [r["Id"] for r in store.iter_records("1", "TaxCode")] == ["9", "10", "NON", "TAX"]
    assert store.next_id("1", "TaxCode") == "11", "text ids never count as numbers"
    with pytest.raises(ValueError, match="not a valid QBO id"):
        store.put("1", "Invoice", {"Id": "TAX", "MetaData": meta})
    with pytest.raises(ValueError, match="not a valid QBO id"):
        store.put("1", "TaxCode", {"Id": "has space", "MetaData": meta})
    assert store.get("1", "Invoice", "TAX") is None
    assert shapes.sort_key("9") < shapes.sort_key("10") < shapes.sort_key("9x")


def test_seeding_keeps_the_captured_shapes(tmp_path: Path) -> None:
    folder = tmp_path / "seed"
    folder.mkdir()
    for name in ("exchangerate_doc.json", "recurringtransaction_doc.json", "taxcode_doc.json"):
        shutil.copyfile(EXTRA / name, folder / name)
    tax = {"Id": "TAX", "Name": "TAX", "SyncToken": "0", "Taxable": True, "MetaData": {}}
    tax["MetaData"]["LastUpdatedTime"] = "2015-07-27T12:37:22-07:00"
    (folder / "pseudo.json").write_text(json.dumps({"QueryResponse": {"TaxCode": [tax]}}))
    store = SandboxStore(":memory:")
    counts = seed_from_folder(store, "2", folder)
    assert counts == {"TaxCode": 2, "RecurringTransaction": 1, "ExchangeRate": 1}
    assert list(store.iter_records("2", "ExchangeRate")) == [RATE_CAPTURE]
    assert store.get("2", "ExchangeRate", "EUR@2015-07-07") == RATE_CAPTURE
    assert store.get("2", "RecurringTransaction", "20") == RECURRING_CAPTURE
    assert store.get("2", "TaxCode", "TAX") == tax


def test_a_qbo_client_pages_id_less_records_without_false_duplicates(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = Settings.from_env(
        {"QBO_DATA_DIR": str(tmp_path / "data"), "QBO_ENVIRONMENT": "embedded"}
    )
    realm = login_embedded(settings, sandbox.base_url, realm_hint=sandbox.realm_ids[0])[0]
    with open_client(settings, realm, api_base=sandbox.base_url) as client:
        rates = [
            record
            for page in client.iter_pages(entities.get("ExchangeRate"), page_size=1, parallel=1)
            for record in page
        ]
        templates = [
            record
            for page in client.iter_pages(entities.get("RecurringTransaction"), page_size=1)
            for record in page
        ]
    assert sorted(r["SourceCurrencyCode"] for r in rates) == ["CAD", "EUR", "GBP"]
    assert [set(t) for t in templates] == [{"Bill"}]
