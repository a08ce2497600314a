"""Printable forms: ``GET .../<entity>/<id>/pdf`` answers a well-formed PDF naming the document."""

from __future__ import annotations

import re

import pytest
import requests

from qbo_pipeline.sandbox.pdf import write_pdf
from qbo_pipeline.sandbox.server import SandboxServer
from tests.conftest import sandbox_token


def check_well_formed(content: bytes) -> None:
    """Assert the PDF's structure: header, every xref offset on its object, trailer, %%EOF."""
    assert content.startswith(b"%PDF-1.")
    assert content.rstrip().endswith(b"%%EOF")
    startxref = int(re.findall(rb"startxref\s+(\d+)\s+%%EOF", content)[-1])
    assert content[startxref:].startswith(b"xref")
    table = re.match(rb"xref\s+0 (\d+)\s+", content[startxref:])
    assert table is not None
    size = int(table.group(1))
    entries = re.findall(rb"(\d{10}) (\d{5}) ([nf]) ", content[startxref + table.end() - 1 :])
    assert len(entries) >= size
    assert entries[0][2] == b"f"
    for number, (offset, _, kind) in enumerate(entries[1:size], start=1):
        assert kind == b"n"
        assert content[int(offset) :].startswith(f"{number} 0 obj".encode()), number
    trailer = content[content.rindex(b"trailer") :]
    assert f"/Size {size}".encode() in trailer and b"/Root 1 0 R" in trailer
    for stream in re.finditer(rb"/Length (\d+) >>\nstream\n", content):
        end = stream.end() + int(stream.group(1))
        assert content[end:].startswith(b"\nendstream")


def _first(sandbox: SandboxServer, headers: dict[str, str], entity: str) -> dict:
    realm = sandbox.realm_ids[0]
    answer = requests.get(
        f"{sandbox.base_url}/v3/company/{realm}/query",
        params={"query": f"select * from {entity} maxresults 1"},
        headers={**headers, "Accept": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["QueryResponse"][entity][0]


@pytest.mark.parametrize(
    "entity",
    ["Invoice", "Estimate", "SalesReceipt", "CreditMemo", "RefundReceipt", "PurchaseOrder"],
)
def test_form_pdf_is_well_formed_and_names_the_document(
    sandbox: SandboxServer, entity: str
) -> None:
    realm = sandbox.realm_ids[0]
    headers = {"Authorization": f"Bearer {sandbox_token(sandbox, realm)}"}
    record = _first(sandbox, headers, entity)
    answer = requests.get(
        f"{sandbox.base_url}/v3/company/{realm}/{entity.lower()}/{record['Id']}/pdf",
        headers={**headers, "Accept": "application/pdf"},
        timeout=30,
    )
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/pdf"
    check_well_formed(answer.content)
    number = record.get("DocNumber") or record["Id"]
    assert f"(No. {number})".encode() in answer.content
    assert f"Date: {record['TxnDate']}".encode() in answer.content
    assert f"{float(record['TotalAmt']):,.2f}".encode() in answer.content
    assert sandbox.store is not None
    company = sandbox.store.company_name(realm)
    assert company.encode("cp1252", "replace") in answer.content


def test_pdf_of_missing_record_is_610_and_of_a_customer_unsupported(
    sandbox: SandboxServer,
) -> None:
    realm = sandbox.realm_ids[0]
    headers = {
        "Authorization": f"Bearer {sandbox_token(sandbox, realm)}",
        "Accept": "application/json",
    }
    base = f"{sandbox.base_url}/v3/company/{realm}"
    missing = requests.get(f"{base}/invoice/99999999/pdf", headers=headers, timeout=30)
    assert missing.status_code == 400
    assert missing.json()["Fault"]["Error"][0]["code"] == "610"
    customer = requests.get(f"{base}/customer/1/pdf", headers=headers, timeout=30)
    assert customer.status_code == 400
    error = customer.json()["Fault"]["Error"][0]
    assert (
        error["code"] == "500"
        and "not supported" in error["Message"].lower() + error["Detail"].lower()
    )


def test_writer_escapes_text_and_spans_pages() -> None:
    lines = [f"line {n} (with parens) and \\ backslash" for n in range(120)]
    content = write_pdf(lines, title="T (1)")
    check_well_formed(content)
    assert content.count(b"/Type /Page ") == 3
    assert rb"(line 119 \(with parens\) and \\ backslash)" in content


def test_send_marks_the_form_emailed(sandbox: SandboxServer) -> None:
    realm = sandbox.realm_ids[0]
    headers = {
        "Authorization": f"Bearer {sandbox_token(sandbox, realm)}",
        "Accept": "application/json",
    }
    base = f"{sandbox.base_url}/v3/company/{realm}"
    invoice = _first(sandbox, headers, "Invoice")
    sent = requests.post(
        f"{base}/invoice/{invoice['Id']}/send",
        params={"sendTo": "books@example.com"},
        headers={**headers, "Content-Type": "application/octet-stream"},
        timeout=30,
    )
    assert sent.status_code == 200, sent.text
    after = sent.json()["Invoice"]
    assert after["EmailStatus"] == "EmailSent"
    assert after["BillEmail"] == {"Address": "books@example.com"}
    assert after["DeliveryInfo"]["DeliveryType"] == "Email"
    assert after["DeliveryInfo"]["DeliveryTime"][:10] == after["MetaData"]["LastUpdatedTime"][:10]
    assert int(after["SyncToken"]) == int(invoice["SyncToken"]) + 1
    read = requests.get(f"{base}/invoice/{invoice['Id']}", headers=headers, timeout=30).json()
    assert read["Invoice"]["EmailStatus"] == "EmailSent"
    bad = requests.post(
        f"{base}/invoice/{invoice['Id']}/send",
        params={"sendTo": "nobody"},
        headers=headers,
        timeout=30,
    )
    assert bad.status_code == 400 and "sendTo" in bad.json()["Fault"]["Error"][0]["Detail"]
    missing = requests.post(f"{base}/invoice/99999999/send", headers=headers, timeout=30)
    assert missing.json()["Fault"]["Error"][0]["code"] == "610"
    customer = requests.post(f"{base}/customer/1/send", headers=headers, timeout=30)
    assert customer.json()["Fault"]["Error"][0]["code"] == "500"
