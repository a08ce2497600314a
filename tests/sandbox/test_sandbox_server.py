"""The server end to end: shape parity with the captures, batch, attachments, persistence,
realm isolation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import requests

from qbo_pipeline.sandbox.server import SandboxServer
from tests.conftest import SAMPLES, sandbox_token


def _session(sandbox: SandboxServer, realm: str | None = None) -> tuple[str, dict[str, str]]:
    realm = realm or sandbox.realm_ids[0]
    headers = {
        "Authorization": f"Bearer {sandbox_token(sandbox, realm)}",
        "Accept": "application/json",
    }
    return f"{sandbox.base_url}/v3/company/{realm}", headers


def _keys(node: Any, prefix: str = "") -> set[str]:
    """Every key path of a JSON document (lists merged), for structure comparison."""
    out: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            out.add(prefix + key)
            out |= _keys(value, prefix + key + ".")
    elif isinstance(node, list):
        for item in node:
            out |= _keys(item, prefix + "[].")
    return out


def _envelope_keys(node: dict[str, Any]) -> set[str]:
    return {k for k in _keys(node) if k.count(".") <= 1 or k.startswith("Fault")}


def _sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text())


def test_shape_parity_with_captures(sandbox: SandboxServer) -> None:
    base, headers = _session(sandbox)

    def get(path: str, **params: str) -> dict[str, Any]:
        return requests.get(f"{base}/{path}", params=params, headers=headers, timeout=30).json()

    page = get("query", query="select * from Customer MAXRESULTS 2")
    assert _envelope_keys(page) == _envelope_keys(_sample("query_customer_paged.json"))
    count = get("query", query="select count(*) from Customer")
    assert _keys(count) == _keys(_sample("query_count_customer.json"))
    empty = get("query", query="select * from Customer STARTPOSITION 100000")
    assert _keys(empty) == _keys(_sample("query_empty_past_end.json"))
    bad = get("query", query="SELECT * FROM Custmoer")
    assert _keys(bad) == _keys(_sample("error_invalid_query_4001.json"))
    parse = get("query", query="SELECT * FROM Customer WHERE")
    assert _keys(parse) == _keys(_sample("extra/error_query_parser_4000.json")) | {"time"}
    missing = get("customer/999999")
    assert _keys(missing) == _keys(_sample("error_object_not_found_610.json"))
    dup_name = page["QueryResponse"]["Customer"][0]["DisplayName"]
    dup = requests.post(
        f"{base}/customer", json={"DisplayName": dup_name}, headers=headers, timeout=30
    ).json()
    assert _keys(dup) == _keys(_sample("error_duplicate_name_6240.json"))
    required = requests.post(
        f"{base}/account", json={"AccountType": "Bank"}, headers=headers, timeout=30
    ).json()
    assert _keys(required) == _keys(_sample("error_required_param_2020.json"))
    info = get(f"companyinfo/{sandbox.realm_ids[0]}")
    assert set(info) == {"CompanyInfo", "time"}
    unauth = requests.get(
        f"{base}/customer/1", headers={"Accept": "application/json"}, timeout=30
    ).json()
    assert _keys(unauth) == _keys(_sample("error_401_authentication_3200.json"))


def test_invoice_lifecycle_shapes(sandbox: SandboxServer) -> None:
    base, headers = _session(sandbox)
    invoices = requests.get(
        f"{base}/query", params={"query": "select * from Invoice"}, headers=headers, timeout=30
    ).json()["QueryResponse"]["Invoice"]
    first = invoices[0]
    void = requests.post(
        f"{base}/invoice",
        params={"operation": "void"},
        json={"Id": first["Id"], "SyncToken": first["SyncToken"]},
        headers=headers,
        timeout=30,
    ).json()
    assert void["Invoice"]["TotalAmt"] == 0 and void["Invoice"]["PrivateNote"] == "Voided"
    assert {"Invoice", "time"} == set(void)
    second = invoices[1]
    deleted = requests.post(
        f"{base}/invoice",
        params={"operation": "delete"},
        json={"Id": second["Id"], "SyncToken": second["SyncToken"]},
        headers=headers,
        timeout=30,
    ).json()
    assert _keys(deleted) == _keys(_sample("invoice_delete_response.json"))
    gone = requests.get(f"{base}/invoice/{second['Id']}", headers=headers, timeout=30)
    assert gone.json()["Fault"]["Error"][0]["code"] == "610"


def test_batch_mixed_items(sandbox: SandboxServer) -> None:
    base, headers = _session(sandbox)
    request = _sample("batch_request_mixed.json")
    response = requests.post(f"{base}/batch", json=request, headers=headers, timeout=30).json()
    items = {item["bId"]: item for item in response["BatchItemResponse"]}
    assert set(items) == {"bid1", "bid2", "bid3", "bid4"}
    assert items["bid1"]["Vendor"]["DisplayName"] == "Boraski Family Store"
    assert "QueryResponse" in items["bid4"]
    too_many = {
        "BatchItemRequest": [{"bId": str(i), "Query": "select * from Item"} for i in range(31)]
    }
    refused = requests.post(f"{base}/batch", json=too_many, headers=headers, timeout=30)
    error = refused.json()["Fault"]["Error"][0]
    assert refused.status_code == 400 and error["code"] == "1040" and "30" in error["Detail"]


def test_attachment_upload_and_download(sandbox: SandboxServer) -> None:
    base, headers = _session(sandbox)
    invoice_id = requests.get(
        f"{base}/query", params={"query": "select * from Invoice"}, headers=headers, timeout=30
    ).json()["QueryResponse"]["Invoice"][0]["Id"]
    meta = {
        "AttachableRef": [{"EntityRef": {"type": "Invoice", "value": invoice_id}}],
        "FileName": "receipt.txt",
        "ContentType": "text/plain",
    }
    files = {
        "file_metadata_01": (None, json.dumps(meta), "application/json"),
        "file_content_01": ("receipt.txt", b"paid in full \xe2\x9c\x93", "text/plain"),
    }
    up = requests.post(f"{base}/upload", files=files, headers=headers, timeout=30).json()
    sample = _sample("attachable_upload_response.json")
    assert _keys(up) == _keys(sample)
    attachable = up["AttachableResponse"][0]["Attachable"]
    link = requests.get(f"{base}/download/{attachable['Id']}", headers=headers, timeout=30).text
    assert requests.get(link, timeout=30).content == b"paid in full \xe2\x9c\x93"
    forged = link.rsplit("signature=", 1)[0] + "signature=0000"
    assert requests.get(forged, timeout=30).status_code == 403
    meta["AttachableRef"][0]["EntityRef"]["value"] = "99999999"
    files["file_metadata_01"] = (None, json.dumps(meta), "application/json")
    bad = requests.post(f"{base}/upload", files=files, headers=headers, timeout=30).json()
    assert bad["AttachableResponse"][0]["Fault"]["Error"][0]["code"] == "6000"


def test_state_persists_across_restart(sandbox_template: Path, tmp_path: Path) -> None:
    state = tmp_path / "s.sqlite3"
    shutil.copyfile(sandbox_template, state)
    with SandboxServer(state) as first:
        base, headers = _session(first)
        created = requests.post(
            f"{base}/customer", json={"DisplayName": "Persisted Ltd"}, headers=headers, timeout=30
        ).json()["Customer"]
        realms = first.realm_ids
    with SandboxServer(state) as second:
        assert second.realm_ids == realms
        base, headers = _session(second)
        again = requests.get(f"{base}/customer/{created['Id']}", headers=headers, timeout=30)
        assert again.json()["Customer"] == created


def test_two_realms_are_isolated(sandbox: SandboxServer) -> None:
    assert len(sandbox.realm_ids) == 2
    base_a, headers_a = _session(sandbox, sandbox.realm_ids[0])
    base_b, headers_b = _session(sandbox, sandbox.realm_ids[1])
    requests.post(
        f"{base_a}/customer", json={"DisplayName": "Only In A"}, headers=headers_a, timeout=30
    )
    query = {"query": "select * from Customer where DisplayName = 'Only In A'"}
    in_a = requests.get(f"{base_a}/query", params=query, headers=headers_a, timeout=30).json()
    in_b = requests.get(f"{base_b}/query", params=query, headers=headers_b, timeout=30).json()
    assert len(in_a["QueryResponse"]["Customer"]) == 1
    assert in_b["QueryResponse"] == {}
    cross = requests.get(f"{base_b}/customer/1", headers=headers_a, timeout=30)
    assert cross.status_code == 403
    fault = cross.json()["Fault"]
    assert fault["Error"][0]["code"] == "3100" and fault["type"] == "AuthorizationFault"
    assert "errorCode=003100" in fault["Error"][0]["Message"]
    nowhere = requests.get(f"{base_a[:-5]}99999/customer/1", headers=headers_a, timeout=30)
    assert nowhere.status_code == 403 and nowhere.json()["Fault"]["Error"][0]["code"] == "3100"
