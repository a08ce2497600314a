"""The product's QBO client against QBO's own bytes: queries, paging, CDC, batch, reads, writes,
reports and every fault, replayed from the captures by a real HTTP server on loopback."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from qbo_pipeline import entities
from qbo_pipeline.qbo import faults
from qbo_pipeline.qbo import query as q
from qbo_pipeline.qbo.faults import fault_from_object
from qbo_pipeline.qbo.http import QBOClient
from tests.conftest import SAMPLES
from tests.contract.conftest import FAST, CountingTokens, client_for
from tests.contract.replay import INTUIT_TID, CaptureCompany, ReplayServer, reply_for


def load(capture: str) -> dict[str, Any]:
    return json.loads((SAMPLES / capture).read_bytes())


def only_record(capture: str) -> tuple[str, dict[str, Any]]:
    """The one entity object of a read/write answer: its key and the record."""
    doc = load(capture)
    [key] = [k for k in doc if k != "time"]
    return key, doc[key]


QUERY_CAPTURES = sorted(
    str(p.relative_to(SAMPLES))
    for p in SAMPLES.rglob("*.json")
    if isinstance(json.loads(p.read_bytes()).get("QueryResponse"), dict)
    and any(isinstance(v, list) for v in json.loads(p.read_bytes())["QueryResponse"].values())
)


def test_the_query_captures_are_all_found() -> None:
    assert len(QUERY_CAPTURES) == 20  # every SELECT * answer captured, RecurringTransaction too


@pytest.mark.parametrize("capture", QUERY_CAPTURES)
def test_a_query_answer_is_parsed_as_captured(
    replay: ReplayServer, client: QBOClient, capture: str
) -> None:
    captured = load(capture)["QueryResponse"]
    [key] = [k for k, v in captured.items() if isinstance(v, list)]
    entity = entities.get(key)
    statement = q.select(entity, where=q.with_inactive(entity, None), start=1, max_results=1000)
    replay.route_query(statement, capture)
    found = client.query(statement)
    assert found == captured
    assert found[entity.json_key] and len(found[entity.json_key]) == captured["maxResults"]
    [sent] = replay.received
    assert sent.method == "GET" and sent.params["query"] == statement
    assert sent.params["minorversion"] == str(entities.MINOR_VERSION)
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["Authorization"] == "Bearer token-1"
    assert client.last_server_time == datetime.fromisoformat(load(capture)["time"])


def test_a_long_query_is_posted_as_text(replay: ReplayServer, client: QBOClient) -> None:
    ids = [str(i) for i in range(1, 400)]
    statement = q.select("Invoice", where=[q.in_("Id", ids)])
    assert len(statement) > 1500
    replay.route_query(statement, "query_invoice_all.json")
    assert client.query(statement) == load("query_invoice_all.json")["QueryResponse"]
    [sent] = replay.received
    assert sent.method == "POST" and sent.headers["Content-Type"] == "application/text"
    assert sent.body.decode() == statement


def test_count_reads_total_count(replay: ReplayServer, client: QBOClient) -> None:
    replay.route_query(
        "SELECT COUNT(*) FROM Customer WHERE Active IN (true, false)", "query_count_customer.json"
    )
    assert client.count(entities.get("Customer")) == 41


def test_the_captured_pages_and_the_page_past_the_end(
    replay: ReplayServer, client: QBOClient
) -> None:
    where = "Id IN ('5', '6', '7', '8', '9', '10') AND Active IN ( true, false )"
    first = f"SELECT * FROM Customer WHERE {where} MAXRESULTS 2 STARTPOSITION 1"
    past = f"SELECT * FROM Customer WHERE {where} MAXRESULTS 2 STARTPOSITION 7"
    replay.route_query(first, "query_customer_paged.json")
    replay.route_query(past, "query_empty_past_end.json")
    page = client.query(first)
    assert [c["Id"] for c in page["Customer"]] == ["5", "6"]
    assert page["startPosition"] == 1 and page["maxResults"] == 2
    assert client.query(past) == {}


def craigs_customers(count_offset: int = 0) -> CaptureCompany:
    """The 2020 recording's 41 customers and its COUNT(*) of them (the same cassette)."""
    return CaptureCompany(
        {"Customer": "extra/query_customer_all.json"},
        counts={"Customer": "query_count_customer.json"},
        count_offset=count_offset,
    )


def test_paging_reads_every_captured_record_once(replay: ReplayServer, client: QBOClient) -> None:
    company = craigs_customers()
    replay.company(company)
    pages = list(client.iter_pages(entities.get("Customer")))
    assert pages == [company.records("Customer")]
    assert len(pages[0]) == 41
    # COUNT(*), the one page, the recount: each answered with a capture's exact bytes
    statements = [r.statement for r in replay.received]
    assert statements == [
        "SELECT COUNT(*) FROM Customer WHERE Active IN (true, false)",
        "SELECT * FROM Customer WHERE Active IN (true, false) STARTPOSITION 1 MAXRESULTS 1000",
        "SELECT COUNT(*) FROM Customer WHERE Active IN (true, false)",
    ]
    assert not replay.unmatched


def test_paging_in_small_pages_keeps_the_order(replay: ReplayServer, client: QBOClient) -> None:
    company = craigs_customers()
    replay.company(company)
    pages = list(client.iter_pages(entities.get("Customer"), page_size=10, parallel=3))
    assert [len(p) for p in pages] == [10, 10, 10, 10, 1]
    assert [r for p in pages for r in p] == company.records("Customer")


def test_a_count_larger_than_the_pages_is_truncation(
    replay: ReplayServer, client: QBOClient
) -> None:
    replay.company(craigs_customers(count_offset=10))  # COUNT(*) says 51: page 6 is past the end
    with pytest.raises(faults.TruncationError) as caught:
        list(client.iter_pages(entities.get("Customer"), page_size=10))
    assert (caught.value.expected, caught.value.got) == (51, 41)
    past_the_end = [r for r in replay.received if "STARTPOSITION 51" in (r.statement or "")]
    assert len(past_the_end) == 1  # answered with query_empty_past_end.json's bytes


def test_cdc_answers(replay: ReplayServer, client: QBOClient) -> None:
    since = datetime.fromisoformat("2011-10-10T09:00:00-07:00")
    params = {"entities": "Estimate", "changedSince": "2011-10-10T09:00:00-07:00"}
    replay.route("GET", "cdc", "cdc_response_estimate.json", params=params)
    changes = client.cdc([entities.get("Estimate")], since)
    captured = load("cdc_response_estimate.json")["CDCResponse"][0]["QueryResponse"][0]
    assert changes == {"Estimate": captured["Estimate"]}
    assert len(changes["Estimate"]) == captured["maxResults"]


def test_cdc_with_a_deleted_record(replay: ReplayServer, client: QBOClient) -> None:
    since = datetime.fromisoformat("2015-12-22T00:00:00-08:00")
    params = {"entities": "Customer,Estimate", "changedSince": "2015-12-22T00:00:00-08:00"}
    replay.route("GET", "cdc", "cdc_response_with_deleted_doc.json", params=params)
    changes = client.cdc([entities.get("Customer"), entities.get("Estimate")], since)
    assert [c["Id"] for c in changes["Customer"]] == ["63", "99"]
    assert [c["Id"] for c in changes["Estimate"]] == ["34", "123", "979"]
    assert changes["Estimate"][2]["status"] == "Deleted"
    assert changes["Estimate"][2]["MetaData"] == {"LastUpdatedTime": "2015-12-23T12:55:50-08:00"}


def test_batch_of_mixed_operations(replay: ReplayServer, client: QBOClient) -> None:
    replay.route("POST", "batch", "batch_response_mixed.json")
    items = load("batch_request_mixed.json")["BatchItemRequest"]
    answers = client.batch(items, request_id="batch-1")
    assert answers == load("batch_response_mixed.json")["BatchItemResponse"]
    [sent] = replay.received
    assert sent.json() == load("batch_request_mixed.json")
    assert sent.params["requestid"] == "batch-1"
    by_id = {a["bId"]: a for a in answers}
    assert by_id["bid1"]["Vendor"]["DisplayName"] == "Boraski Family Store"
    not_found = fault_from_object(by_id["bid2"]["Fault"])
    stale = fault_from_object(by_id["bid3"]["Fault"])
    assert isinstance(not_found, faults.ObjectNotFoundError) and not_found.code == "610"
    assert isinstance(stale, faults.StaleObjectError) and "Christian" in (stale.detail or "")
    assert by_id["bid4"]["QueryResponse"]["SalesReceipt"]


READS = [
    ("Invoice", "130", "invoice_read_response.json"),
    ("Account", "5", "account_read_inactive.json"),
    ("Attachable", "5000000000000503624", "attachable_read_response.json"),
    ("Item", "11", "extra/item_read_inventory.json"),
    *(
        (only_record(c)[0], only_record(c)[1]["Id"], c)
        for c in sorted(str(p.relative_to(SAMPLES)) for p in SAMPLES.glob("extra/*_doc.json"))
        if "QueryResponse" not in load(c) and "Id" in only_record(c)[1]
    ),
]


@pytest.mark.parametrize(("name", "record_id", "capture"), READS)
def test_a_read_returns_the_captured_record(
    replay: ReplayServer, client: QBOClient, name: str, record_id: str, capture: str
) -> None:
    entity = entities.get(name)
    replay.route("GET", f"{entity.resource}/{record_id}", capture)
    assert client.read(entity, record_id) == only_record(capture)[1]


def test_the_singletons(replay: ReplayServer, client: QBOClient) -> None:
    replay.route("GET", f"companyinfo/{replay.realm_id}", "companyinfo_read_doc.json")
    replay.route("GET", "preferences", "preferences_read_response.json")
    assert client.company_info()["CompanyName"] == "Larry's Bakery"
    assert client.preferences() == only_record("preferences_read_response.json")[1]


CREATES = [
    ("Invoice", "invoice_create_response.json"),
    ("JournalEntry", "journalentry_create_response.json"),
    ("Payment", "payment_create_response.json"),
    ("Customer", "extra/customer_create_response.json"),
    ("Account", "extra/account_create_response.json"),
    ("Item", "extra/item_create_response.json"),
]


@pytest.mark.parametrize(("name", "capture"), CREATES)
def test_a_create_returns_the_new_record(
    replay: ReplayServer, client: QBOClient, name: str, capture: str
) -> None:
    entity = entities.get(name)
    replay.route("POST", entity.resource, capture)
    created = client.create(entity, {"PrivateNote": "x"}, request_id=f"create-{name}")
    assert created == only_record(capture)[1]
    assert created["SyncToken"] == "0" and created["Id"]
    [sent] = replay.received
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.params["requestid"] == f"create-{name}"
    assert sent.json() == {"PrivateNote": "x"}


def test_full_and_sparse_updates(replay: ReplayServer, client: QBOClient) -> None:
    replay.route("POST", "customer", "customer_update_response.json")
    replay.route("POST", "invoice", "extra/invoice_sparse_update_response.json")
    customer = client.update(
        entities.get("Customer"),
        {"Id": "68", "SyncToken": "0", "DisplayName": "x"},
        request_id="u1",
    )
    assert customer == only_record("customer_update_response.json")[1]
    invoice = client.update(
        entities.get("Invoice"),
        {"Id": "130", "SyncToken": "2", "PrivateNote": "Test update from Nango action retry"},
        sparse=True,
        request_id="u2",
    )
    assert invoice["SyncToken"] == "3"
    assert invoice["PrivateNote"] == "Test update from Nango action retry"
    full, sparse = replay.received
    assert full.json()["sparse"] is False
    assert sparse.json() == {
        "Id": "130",
        "SyncToken": "2",
        "PrivateNote": "Test update from Nango action retry",
        "sparse": True,
    }


def test_void_and_delete(replay: ReplayServer, client: QBOClient) -> None:
    replay.route("POST", "invoice", "invoice_void_response.json", params={"operation": "void"})
    replay.route(
        "POST",
        "salesreceipt",
        "extra/salesreceipt_void_response.json",
        params={"operation": "update", "include": "void"},
    )
    replay.route("POST", "invoice", "invoice_delete_response.json", params={"operation": "delete"})
    voided = client.void(entities.get("Invoice"), "264", "0", request_id="v1")
    assert voided["PrivateNote"] == "Voided" and voided["TotalAmt"] == 0
    receipt = client.void(entities.get("SalesReceipt"), "6", "0", request_id="v2")
    assert receipt == only_record("extra/salesreceipt_void_response.json")[1]
    deleted = client.delete(entities.get("Invoice"), "266", "0", request_id="d1")
    assert deleted == {"domain": "QBO", "status": "Deleted", "Id": "266"}
    invoice_void, receipt_void, delete = replay.received
    assert invoice_void.json() == {"Id": "264", "SyncToken": "0"}
    assert receipt_void.json() == {"Id": "6", "SyncToken": "0", "sparse": True}
    assert delete.json() == {"Id": "266", "SyncToken": "0"}


def test_attachable_delete(replay: ReplayServer, client: QBOClient) -> None:
    replay.route(
        "POST",
        "attachable",
        "extra/attachable_delete_response.json",
        params={"operation": "delete"},
    )
    entity = entities.get("Attachable")
    deleted = client.delete(entity, "5000000000000503624", "0", request_id="d2")
    assert deleted["status"] == "Deleted" and deleted["Id"] == "5000000000000503624"


def test_upload_and_its_fault(replay: ReplayServer, client: QBOClient) -> None:
    replay.route("POST", "upload", "attachable_upload_response.json")
    made = client.upload(
        "no_detail.xml", "text/xml", b"<x/>", [{"type": "Invoice", "value": "75"}], request_id="a1"
    )
    assert made == load("attachable_upload_response.json")["AttachableResponse"][0]["Attachable"]
    [sent] = replay.received
    assert sent.headers["Content-Type"].startswith("multipart/form-data")
    assert b'name="file_metadata_01"' in sent.body and b"<x/>" in sent.body
    replay.route("POST", "upload", "extra/attachable_upload_error_6000.json", status=200)
    with pytest.raises(faults.ValidationError) as caught:
        client.upload(
            "a.txt", "text/plain", b"a", [{"type": "Estimate", "value": "75"}], request_id="a2"
        )
    assert caught.value.code == "6000" and "Estimate 75" in (caught.value.detail or "")


def test_send_invoice(replay: ReplayServer, client: QBOClient) -> None:
    replay.route("POST", "invoice/103/send", "extra/invoice_send_response.json")
    sent = client.request("POST", "invoice/103/send", request_id="s1")
    assert sent["Invoice"] == only_record("extra/invoice_send_response.json")[1]


@pytest.mark.parametrize(
    ("name", "params", "capture"),
    [
        (
            "ProfitAndLoss",
            {
                "customer": "1",
                "start_date": "2015-01-01",
                "end_date": "2015-07-31",
                "summarize_column_by": "Customers",
            },
            "extra/report_profit_and_loss.json",
        ),
        ("GeneralLedger", {}, "extra/report_general_ledger.json"),
    ],
)
def test_reports(
    replay: ReplayServer, client: QBOClient, name: str, params: dict[str, str], capture: str
) -> None:
    replay.route("GET", f"reports/{name}", capture, params=params)
    report = client.report(name, **params)
    assert report == load(capture)
    assert report["Header"]["ReportName"] == name


ERRORS = [
    ("error_duplicate_name_6240.json", faults.DuplicateNameError, 1),
    ("error_invalid_query_4001.json", faults.QueryError, 1),
    ("error_object_not_found_610.json", faults.ObjectNotFoundError, 1),
    ("error_required_param_2020.json", faults.ValidationError, 1),
    ("error_stale_object_5010.json", faults.StaleObjectError, 1),
    ("extra/error_invalid_id_2030.json", faults.ValidationError, 1),
    ("extra/error_query_parser_4000.json", faults.QueryError, 1),
    ("extra/error_unsupported_operation_500.json", faults.ValidationError, 1),
    ("extra/error_unsupported_property_2010.json", faults.ValidationError, 1),
    ("error_429_throttle_3001.xml", faults.ThrottledError, FAST.max_attempts),
    ("extra/error_systemfault_10000.xml", faults.ServerError, FAST.max_attempts),
]


def test_every_error_capture_is_replayed() -> None:
    on_disk = {str(p.relative_to(SAMPLES)) for p in SAMPLES.rglob("error_*")}
    assert on_disk == {c for c, *_ in ERRORS} | {"error_401_authentication_3200.json"}


def _code_and_detail(capture: str) -> tuple[str, str | None]:
    err = faults.parse_fault(0, {}, (SAMPLES / capture).read_bytes())
    return str(err.code), err.detail


@pytest.mark.parametrize(("capture", "cls", "attempts"), ERRORS)
def test_an_error_is_its_typed_fault(
    replay: ReplayServer, client: QBOClient, capture: str, cls: type, attempts: int
) -> None:
    replay.route("GET", "customer/1", capture)
    with pytest.raises(faults.QBOError) as caught:
        client.read(entities.get("Customer"), "1")
    err = caught.value
    assert type(err) is cls
    assert err.status == reply_for(capture).status
    assert err.intuit_tid == INTUIT_TID
    code = capture.rsplit("_", 1)[-1].split(".")[0]
    assert err.code == code
    raw = (SAMPLES / capture).read_text()
    assert err.message and err.message in raw
    if err.detail:
        assert err.detail[:40] in raw.replace('\\"', '"')
    assert len(replay.received) == attempts  # only throttling and system faults are retried


def test_a_refused_token_is_refreshed_once(replay: ReplayServer) -> None:
    replay.route("GET", "customer/1", "error_401_authentication_3200.json")
    tokens = CountingTokens()
    with client_for(replay, tokens) as client, pytest.raises(faults.AuthenticationError) as caught:
        client.read(entities.get("Customer"), "1")
    assert caught.value.code == "3200" and caught.value.status == 401
    assert tokens.refreshes == 1
    auths = [r.headers["Authorization"] for r in replay.received]
    assert auths == ["Bearer token-1", "Bearer token-2"]


def test_xml_where_json_was_asked_for_is_not_taken_as_data(
    replay: ReplayServer, client: QBOClient
) -> None:
    # QBO answers XML to a client that asks for it (this capture); ours asks for JSON, and an
    # XML body that is not a fault is refused as unreadable rather than parsed as empty data.
    replay.route("GET", "companyinfo/" + replay.realm_id, "extra/companyinfo_read.xml")
    with pytest.raises(faults.TransportError, match="not JSON"):
        client.company_info()
    assert len(replay.received) == FAST.max_attempts
    assert all(r.headers["Accept"] == "application/json" for r in replay.received)
