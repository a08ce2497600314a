"""QBO's XML wire format: answers to Accept: application/xml (and to no Accept at all), compared
with the XML captures, and XML request bodies for creates."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import pytest
import requests

from qbo_pipeline.sandbox.server import SandboxServer
from qbo_pipeline.sandbox.xml_wire import from_xml, to_xml, wants_xml
from tests.conftest import SAMPLES, sandbox_token

NS = "{http://schema.intuit.com/finance/v3}"
JSON = {"Accept": "application/json"}
XML = {"Accept": "application/xml"}


def _api(sandbox: SandboxServer) -> tuple[str, dict[str, str]]:
    realm = sandbox.realm_ids[0]
    token = sandbox_token(sandbox, realm)
    return f"{sandbox.base_url}/v3/company/{realm}", {"Authorization": f"Bearer {token}"}


def _xml(response: requests.Response) -> ElementTree.Element:
    assert response.headers["Content-Type"].startswith("application/xml"), response.text[:300]
    return ElementTree.fromstring(response.content)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _shape(node: ElementTree.Element) -> dict[str, Any]:
    """How an element is written: its attribute names, and text or children."""
    children: dict[str, Any] = {}
    for child in node:
        children.setdefault(_local(child.tag), _shape(child))
    text = bool((node.text or "").strip())
    return {
        "attributes": set(node.attrib),
        "children": children,
        "empty": not children and not text,
    }


def _assert_same_writing(ours: dict[str, Any], capture: dict[str, Any], path: str) -> None:
    """Every element both carry is written the same way (attributes, text vs children).

    An error's ``element`` attribute is the JSON captures' ``"element": ""`` (the 610 capture).
    """
    if ours["empty"]:
        return
    assert ours["attributes"] <= capture["attributes"] | {"domain", "sparse", "element"}, path
    assert bool(ours["children"]) == bool(capture["children"]), path
    for tag in ours["children"].keys() & capture["children"].keys():
        _assert_same_writing(ours["children"][tag], capture["children"][tag], f"{path}/{tag}")


@pytest.mark.parametrize(
    ("accept", "xml"),
    [
        (None, True),
        ("*/*", True),
        ("application/xml", True),
        ("text/xml", True),
        ("application/json", False),
        ("application/json, text/plain, */*", False),
        ("application/xml;q=0.5, application/json", False),
        ("application/json;q=0.2, application/xml", True),
        ("application/pdf", True),
    ],
)
def test_negotiation_prefers_xml_unless_json_is_asked_for(accept: str | None, xml: bool) -> None:
    assert wants_xml(accept) is xml


def test_read_without_accept_answers_xml_as_the_capture_writes_it(sandbox: SandboxServer) -> None:
    base, auth = _api(sandbox)
    realm = sandbox.realm_ids[0]
    as_json = requests.get(f"{base}/companyinfo/{realm}", headers={**auth, **JSON}, timeout=30)
    record = as_json.json()["CompanyInfo"]
    answer = requests.get(f"{base}/companyinfo/{realm}", headers=auth, timeout=30)
    assert answer.status_code == 200
    root = _xml(answer)
    assert root.tag == f"{NS}IntuitResponse" and root.get("time")
    info = root.find(f"{NS}CompanyInfo")
    assert info is not None
    assert info.get("domain") == "QBO" and info.get("sparse") == "false"
    assert info.findtext(f"{NS}CompanyName") == record["CompanyName"]
    assert info.findtext(f"{NS}MetaData/{NS}CreateTime") == record["MetaData"]["CreateTime"]
    names = [n.findtext(f"{NS}Name") for n in info.findall(f"{NS}NameValue")]
    assert names == [n["Name"] for n in record["NameValue"]]
    capture = ElementTree.parse(SAMPLES / "extra" / "companyinfo_read.xml").getroot()
    _assert_same_writing(_shape(info), _shape(capture), "CompanyInfo")


def test_query_and_count_in_xml(sandbox: SandboxServer) -> None:
    base, auth = _api(sandbox)
    page = _xml(
        requests.get(
            f"{base}/query",
            params={"query": "select * from Customer startposition 2 maxresults 3"},
            headers={**auth, **XML},
            timeout=30,
        )
    )
    response = page.find(f"{NS}QueryResponse")
    assert response is not None
    assert response.get("startPosition") == "2" and response.get("maxResults") == "3"
    customers = response.findall(f"{NS}Customer")
    assert len(customers) == 3 and all(c.get("domain") == "QBO" for c in customers)
    count = _xml(
        requests.get(
            f"{base}/query",
            params={"query": "select count(*) from Customer"},
            headers={**auth, **XML},
            timeout=30,
        )
    ).find(f"{NS}QueryResponse")
    as_json = requests.get(
        f"{base}/query",
        params={"query": "select count(*) from Customer"},
        headers={**auth, **JSON},
        timeout=30,
    ).json()
    assert count is not None
    assert count.get("totalCount") == str(as_json["QueryResponse"]["totalCount"])


def test_cdc_bill_in_xml_is_written_as_the_capture(sandbox: SandboxServer) -> None:
    base, auth = _api(sandbox)
    bill = requests.get(
        f"{base}/query",
        params={"query": "select * from Bill maxresults 1"},
        headers={**auth, **JSON},
        timeout=30,
    ).json()["QueryResponse"]["Bill"][0]
    updated = requests.post(
        f"{base}/bill",
        json={"Id": bill["Id"], "SyncToken": bill["SyncToken"], "sparse": True, "PrivateNote": "x"},
        headers={**auth, **JSON},
        timeout=30,
    ).json()["Bill"]
    since = datetime.fromisoformat(updated["MetaData"]["LastUpdatedTime"]) - timedelta(hours=1)
    root = _xml(
        requests.get(
            f"{base}/cdc",
            params={"entities": "Bill", "changedSince": since.isoformat()},
            headers={**auth, **XML},
            timeout=30,
        )
    )
    ours = root.find(f"{NS}CDCResponse/{NS}QueryResponse/{NS}Bill")
    assert ours is not None and ours.findtext(f"{NS}Id") == bill["Id"]
    vendor = ours.find(f"{NS}VendorRef")
    assert vendor is not None
    assert vendor.text == bill["VendorRef"]["value"] and vendor.get("name") == bill[
        "VendorRef"
    ].get("name")
    assert len(ours.findall(f"{NS}Line")) == len(bill["Line"])
    capture = ElementTree.parse(SAMPLES / "extra" / "cdc_response_bill.xml").getroot()
    bill_capture = capture.find(f"{NS}CDCResponse/{NS}QueryResponse/{NS}Bill")
    assert bill_capture is not None
    _assert_same_writing(_shape(ours), _shape(bill_capture), "Bill")
    query_response = root.find(f"{NS}CDCResponse/{NS}QueryResponse")
    capture_response = capture.find(f"{NS}CDCResponse/{NS}QueryResponse")
    assert query_response is not None and capture_response is not None
    assert set(query_response.attrib) <= set(capture_response.attrib)


def test_faults_in_xml_are_written_as_the_capture(sandbox: SandboxServer) -> None:
    base, auth = _api(sandbox)
    missing = requests.get(f"{base}/customer/99999999", headers=auth, timeout=30)
    assert missing.status_code == 400
    fault = _xml(missing).find(f"{NS}Fault")
    assert fault is not None and fault.get("type") == "ValidationFault"
    error = fault.find(f"{NS}Error")
    assert error is not None and error.get("code") == "610"
    assert error.findtext(f"{NS}Message") == "Object Not Found"
    capture = ElementTree.parse(SAMPLES / "extra" / "error_systemfault_10000.xml").getroot()
    capture_fault = capture.find(f"{NS}Fault")
    assert capture_fault is not None
    _assert_same_writing(_shape(fault), _shape(capture_fault), "Fault")
    unauthenticated = requests.get(f"{base}/customer/1", timeout=30)
    assert unauthenticated.status_code == 401
    error = _xml(unauthenticated).find(f"{NS}Fault/{NS}Error")
    assert error is not None and error.get("code") == "3200"


def test_json_still_answered_when_asked_for(sandbox: SandboxServer) -> None:
    base, auth = _api(sandbox)
    answer = requests.get(f"{base}/customer/1", headers={**auth, **JSON}, timeout=30)
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json()["Customer"]["Id"] == "1"


def test_create_with_an_xml_body(sandbox: SandboxServer) -> None:
    base, auth = _api(sandbox)
    customer = requests.get(f"{base}/customer/1", headers={**auth, **JSON}, timeout=30).json()
    item = requests.get(
        f"{base}/query",
        params={"query": "select * from Item where Type = 'Service' maxresults 1"},
        headers={**auth, **JSON},
        timeout=30,
    ).json()["QueryResponse"]["Item"][0]
    body = f"""<Invoice xmlns="http://schema.intuit.com/finance/v3">
      <DocNumber>XML-1</DocNumber>
      <TxnDate>2026-01-15</TxnDate>
      <Line>
        <Amount>150.00</Amount>
        <DetailType>SalesItemLineDetail</DetailType>
        <SalesItemLineDetail>
          <ItemRef name="{item["Name"]}">{item["Id"]}</ItemRef>
          <UnitPrice>50</UnitPrice>
          <Qty>3</Qty>
        </SalesItemLineDetail>
      </Line>
      <CustomerRef>{customer["Customer"]["Id"]}</CustomerRef>
      <CustomerMemo>Thank you &amp; goodbye</CustomerMemo>
    </Invoice>"""
    created = requests.post(
        f"{base}/invoice",
        data=body.encode(),
        headers={**auth, **JSON, "Content-Type": "application/xml"},
        timeout=30,
    )
    assert created.status_code == 200, created.text
    invoice = created.json()["Invoice"]
    assert invoice["DocNumber"] == "XML-1" and invoice["TotalAmt"] == 150
    assert invoice["CustomerRef"]["value"] == customer["Customer"]["Id"]
    assert invoice["CustomerMemo"] == {"value": "Thank you & goodbye"}
    line = invoice["Line"][0]
    assert line["SalesItemLineDetail"]["Qty"] == 3
    assert line["SalesItemLineDetail"]["ItemRef"]["value"] == item["Id"]
    bad = requests.post(
        f"{base}/invoice",
        data=b"<Invoice><Line></Invoice>",
        headers={**auth, **JSON, "Content-Type": "application/xml"},
        timeout=30,
    )
    assert bad.status_code == 400
    assert "not valid XML" in bad.json()["Fault"]["Error"][0]["Detail"]


def test_round_trip_of_a_capture_through_xml() -> None:
    import json

    body = json.loads((SAMPLES / "invoice_read_response.json").read_text())
    root = ElementTree.fromstring(to_xml(body))
    invoice = root.find(f"{NS}Invoice")
    assert invoice is not None
    again = from_xml(ElementTree.tostring(invoice))
    original = body["Invoice"]
    assert again["Id"] == original["Id"] and again["DocNumber"] == original["DocNumber"]
    assert again["CustomerRef"] == original["CustomerRef"]
    assert again["TotalAmt"] == original["TotalAmt"]
    assert len(again["Line"]) == len(original["Line"])
    assert (
        again["Line"][0]["SalesItemLineDetail"]["ItemRef"]
        == (original["Line"][0]["SalesItemLineDetail"]["ItemRef"])
    )
