"""The sandbox's QBO API over HTTP: reads, writes, SyncToken, idempotency, faults."""

from __future__ import annotations

import requests

from qbo_pipeline.sandbox.server import SandboxServer
from tests.conftest import sandbox_token


def _api(sandbox: SandboxServer) -> tuple[str, dict[str, str]]:
    realm = sandbox.realm_ids[0]
    token = sandbox_token(sandbox, realm)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    return f"{sandbox.base_url}/v3/company/{realm}", headers


def test_query_read_and_headers(sandbox: SandboxServer) -> None:
    base, headers = _api(sandbox)
    r = requests.get(
        f"{base}/query",
        params={"query": "select * from Customer", "minorversion": "75"},
        headers=headers,
        timeout=30,
    )
    assert r.status_code == 200
    assert r.headers["intuit_tid"]
    body = r.json()
    customers = body["QueryResponse"]["Customer"]
    assert body["QueryResponse"]["startPosition"] == 1
    assert body["QueryResponse"]["maxResults"] == len(customers)
    assert "time" in body
    one = requests.get(f"{base}/customer/{customers[0]['Id']}", headers=headers, timeout=30)
    assert one.json()["Customer"] == customers[0]


def test_create_update_stale_and_idempotent(sandbox: SandboxServer) -> None:
    base, headers = _api(sandbox)
    created = requests.post(
        f"{base}/customer",
        params={"requestid": "req-1"},
        json={"DisplayName": 'Zed\'s "Quoted" Café'},
        headers=headers,
        timeout=30,
    )
    assert created.status_code == 200, created.text
    again = requests.post(
        f"{base}/customer",
        params={"requestid": "req-1"},
        json={"DisplayName": 'Zed\'s "Quoted" Café'},
        headers=headers,
        timeout=30,
    )
    assert again.content == created.content
    record = created.json()["Customer"]
    assert record["SyncToken"] == "0"
    upd = requests.post(
        f"{base}/customer",
        json={"Id": record["Id"], "SyncToken": "0", "sparse": True, "Notes": "hi"},
        headers=headers,
        timeout=30,
    )
    assert upd.json()["Customer"]["SyncToken"] == "1"
    stale = requests.post(
        f"{base}/customer",
        json={"Id": record["Id"], "SyncToken": "0", "sparse": True, "Notes": "again"},
        headers=headers,
        timeout=30,
    )
    assert stale.status_code == 400
    assert stale.json()["Fault"]["Error"][0]["code"] == "5010"
    dup = requests.post(
        f"{base}/customer",
        json={"DisplayName": 'Zed\'s "Quoted" Café'},
        headers=headers,
        timeout=30,
    )
    assert dup.json()["Fault"]["Error"][0]["code"] == "6240"


def test_missing_token_is_401_lowercase(sandbox: SandboxServer) -> None:
    realm = sandbox.realm_ids[0]
    r = requests.get(
        f"{sandbox.base_url}/v3/company/{realm}/customer/1",
        headers={"Accept": "application/json"},
        timeout=30,
    )
    assert r.status_code == 401
    assert r.json()["fault"]["error"][0]["code"] == "3200"


def test_bad_minorversion_and_unqueryable_property_are_faults(sandbox: SandboxServer) -> None:
    # Issue #17 item 7: minorversion=abc was accepted, an unqueryable property answered 200.
    base, headers = _api(sandbox)
    for minor in ("abc", "75.1", "-1"):
        r = requests.get(
            f"{base}/query",
            params={"query": "select * from Customer", "minorversion": minor},
            headers=headers,
            timeout=30,
        )
        assert r.status_code == 400
        error = r.json()["Fault"]["Error"][0]
        assert error["code"] == "2010" and f"minorversion={minor}" in error["Detail"]
    r = requests.get(
        f"{base}/query",
        params={"query": "select * from Vendor where AcctNum = '1'", "minorversion": "75"},
        headers=headers,
        timeout=30,
    )
    assert r.status_code == 400
    error = r.json()["Fault"]["Error"][0]
    assert error["code"] == "4001"
    assert error["Detail"] == "QueryValidationError: property 'AcctNum' is not queryable"
