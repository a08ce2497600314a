from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from qbo_pipeline import entities
from qbo_pipeline.config import Environment, Secret, Settings
from qbo_pipeline.qbo import query as q
from qbo_pipeline.qbo.auth import AppCredentials
from qbo_pipeline.qbo.connect import login_embedded, open_client, open_store
from qbo_pipeline.qbo.faults import (
    DuplicateNameError,
    ObjectNotFoundError,
    QueryError,
    StaleObjectError,
    TransportError,
    ValidationError,
)
from qbo_pipeline.qbo.http import QBOClient, RetryPolicy
from qbo_pipeline.qbo.limiter import RealmLimiter
from qbo_pipeline.sandbox.server import SandboxServer

PASS = Secret("test passphrase")
FAST = RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.05, max_retry_after=0.05)


def settings_for(tmp_path: Path) -> Settings:
    return Settings.from_env(
        {"QBO_DATA_DIR": str(tmp_path / "data"), "QBO_ENVIRONMENT": "embedded"}
    )


def connect(sandbox: SandboxServer, tmp_path: Path) -> tuple[Settings, list[str]]:
    settings = settings_for(tmp_path)
    realms = login_embedded(
        settings,
        sandbox.base_url,
        passphrase=PASS,
        credentials=AppCredentials(sandbox.client_id, Secret(sandbox.client_secret)),
    )
    return settings, realms


@pytest.fixture
def client(sandbox: SandboxServer, tmp_path: Path) -> Iterator[QBOClient]:
    settings, realms = connect(sandbox, tmp_path)
    with open_client(settings, realms[0], passphrase=PASS, limiter=RealmLimiter(), retry=FAST) as c:
        yield c


def ids(pages: Iterator[list[dict]]) -> list[str]:
    return [r["Id"] for page in pages for r in page]


def test_login_embedded_connects_every_realm(sandbox: SandboxServer, tmp_path: Path) -> None:
    settings, realms = connect(sandbox, tmp_path)
    assert realms == sandbox.realm_ids
    stored = open_store(settings, PASS).list()
    assert {t.realm_id for t in stored} == set(sandbox.realm_ids)
    for rec in stored:
        assert rec.environment == Environment.EMBEDDED.value
        assert rec.company_name == sandbox.store.company_name(rec.realm_id)
        assert rec.api_base == sandbox.base_url


def test_reads_and_server_time(client: QBOClient, sandbox: SandboxServer) -> None:
    info = client.company_info()
    assert info["CompanyName"] == sandbox.store.company_name(client.realm_id)
    assert client.last_server_time is not None
    assert client.last_server_time.tzinfo is not None
    assert client.preferences()["Id"]
    customer = client.read(entities.get("Customer"), "1")
    assert customer["Id"] == "1"
    assert client.count(entities.get("Customer")) == sandbox.store.count(
        client.realm_id, "Customer"
    )
    assert client.api_calls >= 4


def test_query_faults_are_typed(client: QBOClient) -> None:
    with pytest.raises(QueryError) as info:
        client.query("SELECT * FROM Custmoer")
    assert info.value.code == "4001"
    assert info.value.intuit_tid
    with pytest.raises(ObjectNotFoundError):
        client.read(entities.get("Customer"), "999999")


@pytest.mark.parametrize("entity_name", ["Customer", "Invoice", "Account"])
def test_iter_pages_every_record_once(
    client: QBOClient, sandbox: SandboxServer, entity_name: str
) -> None:
    entity = entities.get(entity_name)
    got = ids(client.iter_pages(entity, page_size=7, parallel=3))
    expected = [r["Id"] for r in sandbox.store.iter_records(client.realm_id, entity_name)]
    assert got == expected
    assert len(set(got)) == len(got)


def test_write_cycle(client: QBOClient) -> None:
    customer = entities.get("Customer")
    rid = uuid.uuid4().hex
    made = client.create(customer, {"DisplayName": f"Write Cycle {rid}"}, request_id=rid)
    again = client.create(customer, {"DisplayName": f"Write Cycle {rid}"}, request_id=rid)
    assert again == made  # the requestid replays the first answer
    changed = client.update(
        customer,
        {"Id": made["Id"], "SyncToken": made["SyncToken"], "Notes": "hello"},
        sparse=True,
        request_id=uuid.uuid4().hex,
    )
    assert changed["Notes"] == "hello"
    assert changed["SyncToken"] != made["SyncToken"]
    with pytest.raises(StaleObjectError):
        client.update(
            customer,
            {"Id": made["Id"], "SyncToken": made["SyncToken"], "Notes": "stale"},
            sparse=True,
            request_id=uuid.uuid4().hex,
        )


def test_delete_and_void(client: QBOClient) -> None:
    invoice = entities.get("Invoice")
    first, second = client.query(q.select(invoice, max_results=2))["Invoice"]
    gone = client.delete(invoice, first["Id"], first["SyncToken"], request_id=uuid.uuid4().hex)
    assert gone["status"] == "Deleted"
    assert float(second["TotalAmt"]) > 0
    voided = client.void(invoice, second["Id"], second["SyncToken"], request_id=uuid.uuid4().hex)
    assert voided["Id"] == second["Id"]
    # QBO's answer to a void (samples/invoice_void_response.json): amounts zeroed, noted "Voided".
    assert voided["TotalAmt"] == 0 and voided["Balance"] == 0
    assert "Voided" in voided["PrivateNote"]
    with pytest.raises(ValueError, match="cannot be deleted"):
        client.delete(entities.get("Customer"), "1", "0", request_id="x")


def test_cdc_batch_report(client: QBOClient, sandbox: SandboxServer) -> None:
    customer = entities.get("Customer")
    invoice = entities.get("Invoice")
    since = sandbox.store.now(client.realm_id) - timedelta(days=1)
    made = client.create(customer, {"DisplayName": "CDC Probe"}, request_id=uuid.uuid4().hex)
    changes = client.cdc([customer, invoice], since)
    assert set(changes) == {"Customer", "Invoice"}
    assert made["Id"] in {r["Id"] for r in changes["Customer"]}
    answers = client.batch(
        [
            {"bId": "n", "Query": q.select(customer, count=True)},
            {"bId": "bad", "Query": "SELECT * FROM Nope"},
        ]
    )
    by_id = {a["bId"]: a for a in answers}
    assert by_id["n"]["QueryResponse"]["totalCount"] >= 29
    assert "Fault" in by_id["bad"]
    report = client.report("TrialBalance", end_date="2030-12-31")
    assert report["Header"]["ReportName"] == "TrialBalance"
    assert report["Header"]["EndPeriod"] == "2030-12-31"
    rows = report["Rows"]["Row"]
    data = [row["ColData"] for row in rows if row.get("type") == "Data"]
    assert len(data) > 5, "a generated company's trial balance lists many accounts"
    debit = sum(float(cols[1]["value"] or 0) for cols in data)
    credit = sum(float(cols[2]["value"] or 0) for cols in data)
    total = rows[-1]["Summary"]["ColData"]
    assert total[0]["value"] == "TOTAL" and debit > 0
    assert float(total[1]["value"]) == float(total[2]["value"]) == round(debit, 2)
    assert round(credit, 2) == round(debit, 2)
    with pytest.raises(ValueError):
        client.batch([{"bId": str(i), "Query": "x"} for i in range(31)])


def test_upload_and_download(client: QBOClient) -> None:
    data = "a file with ünïcode\n".encode() * 100
    invoice = client.query(q.select("Invoice", max_results=1))["Invoice"][0]
    made = client.upload(
        "notes.txt",
        "text/plain",
        data,
        [{"type": "Invoice", "value": invoice["Id"]}],
        request_id=uuid.uuid4().hex,
    )
    assert made["FileName"] == "notes.txt"
    assert made["AttachableRef"][0]["EntityRef"]["value"] == invoice["Id"]
    assert client.download(made) == data
    with pytest.raises(ValidationError) as info:
        client.upload(
            "x.txt", "text/plain", b"x", [{"type": "Estimate", "value": "99999"}], request_id="u2"
        )
    assert info.value.code == "6000"


def test_write_without_requestid_is_not_retried(client: QBOClient, sandbox: SandboxServer) -> None:
    sandbox.configure(faults=[{"kind": "reset", "on": [1], "path": "/customer"}])
    with pytest.raises(TransportError):
        client.request("POST", "customer", json={"DisplayName": "No Retry"})
    assert client.count(entities.get("Customer"), [q.eq("DisplayName", "No Retry")]) == 0


def test_write_with_requestid_is_retried_once_only(
    client: QBOClient, sandbox: SandboxServer
) -> None:
    customer = entities.get("Customer")
    sandbox.configure(faults=[{"kind": "truncate", "on": [1], "path": "/customer"}])
    made = client.create(customer, {"DisplayName": "Retried Once"}, request_id=uuid.uuid4().hex)
    assert made["DisplayName"] == "Retried Once"
    assert client.count(customer, [q.eq("DisplayName", "Retried Once")]) == 1


def test_batches_spend_the_separate_batch_budget(sandbox: SandboxServer, tmp_path: Path) -> None:
    settings, realms = connect(sandbox, tmp_path)
    with open_client(settings, realms[0], passphrase=PASS, limiter=RealmLimiter()) as client:
        client.batch_limiter = RealmLimiter(per_minute=40)
        client.count(entities.get("Customer"))
        for _ in range(3):
            client.batch([{"bId": "c", "Query": q.select("Customer", count=True)}])
        assert client.batch_limiter.recent() == 3
        assert client.limiter.recent() == 4


def test_create_tax_code_through_the_tax_service(client: QBOClient) -> None:
    """TaxService (#20): a code with a new rate, ids in the answer; a replay and a name in use."""
    [agency] = client.query("select * from TaxAgency maxresults 1")["TaxAgency"]
    rate = {
        "TaxRateName": "Client test rate",
        "RateValue": 6.25,
        "TaxAgencyId": agency["Id"],
        "TaxApplicableOn": "Sales",
    }
    made = client.create_tax_code("Client test code", [rate], request_id="tax-1")
    assert made["TaxCode"] == "Client test code" and made["TaxCodeId"]
    [detail] = made["TaxRateDetails"]
    assert detail["TaxRateId"] and detail["RateValue"] == 6.25
    assert client.create_tax_code("Client test code", [rate], request_id="tax-1") == made
    code = client.read(entities.get("TaxCode"), made["TaxCodeId"])
    assert (
        code["SalesTaxRateList"]["TaxRateDetail"][0]["TaxRateRef"]["value"] == (detail["TaxRateId"])
    )
    with pytest.raises(DuplicateNameError):
        client.create_tax_code("Client test code", [rate], request_id="tax-2")
    with pytest.raises(ValueError, match="at least one rate"):
        client.create_tax_code("Empty", [], request_id="tax-3")
    assert client.calls_by_topic()["TaxCode"] >= 3
