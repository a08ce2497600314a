"""The ``/_sandbox/`` admin endpoints: config, stats, realms, clock, simulate, incident."""

from __future__ import annotations

from datetime import datetime, timedelta

import requests

from qbo_pipeline.sandbox.server import SandboxServer
from tests.conftest import sandbox_token


def _admin(sandbox: SandboxServer, path: str) -> str:
    return f"{sandbox.base_url}/_sandbox/{path}"


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_realms_lists_every_company_with_its_clock(sandbox: SandboxServer) -> None:
    r = requests.get(_admin(sandbox, "realms"), timeout=30)
    assert r.status_code == 200
    realms = r.json()
    assert [x["realmId"] for x in realms] == sandbox.realm_ids
    assert realms[0]["companyName"] == "Craig's Design and Landscaping Services"
    assert _when(realms[0]["now"]).tzinfo is not None


def test_clock_get_advance_and_set(sandbox: SandboxServer) -> None:
    realm = sandbox.realm_ids[0]
    before = _when(requests.get(_admin(sandbox, "clock"), timeout=30).json()["now"])
    moved = requests.post(
        _admin(sandbox, "clock"), json={"realmId": realm, "advance_days": 3}, timeout=30
    )
    assert moved.status_code == 200, moved.text
    after = _when(moved.json()["now"])
    assert timedelta(days=3) <= after - before < timedelta(days=3, minutes=5)
    target = "2031-05-06T07:08:09-07:00"
    r = requests.post(_admin(sandbox, "clock"), json={"realmId": realm, "set": target}, timeout=30)
    assert r.status_code == 200, r.text
    assert _when(r.json()["now"]) >= _when(target)
    assert _when(r.json()["now"]) - _when(target) < timedelta(minutes=5)
    # The API stamps writes with the realm's clock.
    headers = {
        "Authorization": f"Bearer {sandbox_token(sandbox, realm)}",
        "Accept": "application/json",
    }
    created = requests.post(
        f"{sandbox.base_url}/v3/company/{realm}/customer",
        json={"DisplayName": "Clockwork Customer"},
        headers=headers,
        timeout=30,
    ).json()["Customer"]
    assert created["MetaData"]["CreateTime"].startswith("2031-05-06")


def test_clock_refuses_bad_input(sandbox: SandboxServer) -> None:
    unknown = requests.post(_admin(sandbox, "clock"), json={"realmId": "42"}, timeout=30)
    assert unknown.status_code == 400 and "unknown realmId" in unknown.json()["error"]
    bad_time = requests.post(_admin(sandbox, "clock"), json={"set": "not a time"}, timeout=30)
    assert bad_time.status_code == 400 and "not a time" in bad_time.json()["error"]
    not_json = requests.post(_admin(sandbox, "clock"), data=b"{oops", timeout=30)
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["error"]
    not_object = requests.post(_admin(sandbox, "clock"), json=[1, 2], timeout=30)
    assert not_object.status_code == 400 and "JSON object" in not_object.json()["error"]


def test_config_round_trip_and_validation(sandbox: SandboxServer) -> None:
    initial = requests.get(_admin(sandbox, "config"), timeout=30).json()
    assert initial["rate_limits"] is False and initial["faults"] == []
    r = requests.post(
        _admin(sandbox, "config"),
        json={"latency_ms": 1, "faults": [{"kind": "503", "on": [1], "path": "/customer/"}]},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.json()["latency_ms"] == 1.0
    assert r.json()["faults"][0]["kind"] == "503"
    assert requests.get(_admin(sandbox, "config"), timeout=30).json() == r.json()
    realm = sandbox.realm_ids[0]
    headers = {"Authorization": f"Bearer {sandbox_token(sandbox, realm)}"}
    hit = requests.get(
        f"{sandbox.base_url}/v3/company/{realm}/customer/1", headers=headers, timeout=30
    )
    assert hit.status_code == 503 and b'code="10000"' in hit.content
    unknown = requests.post(_admin(sandbox, "config"), json={"warp_speed": True}, timeout=30)
    assert unknown.status_code == 400 and "warp_speed" in unknown.json()["error"]
    bad_rule = requests.post(
        _admin(sandbox, "config"), json={"faults": [{"kind": "x"}]}, timeout=30
    )
    assert bad_rule.status_code == 400 and "fault kind" in bad_rule.json()["error"]
    # A refused change leaves the configuration as it was.
    assert requests.get(_admin(sandbox, "config"), timeout=30).json() == r.json()


def test_stats_count_requests_per_realm(sandbox: SandboxServer) -> None:
    realm = sandbox.realm_ids[0]
    headers = {"Authorization": f"Bearer {sandbox_token(sandbox, realm)}"}
    for _ in range(3):
        ok = requests.get(
            f"{sandbox.base_url}/v3/company/{realm}/query",
            params={"query": "select count(*) from Customer"},
            headers=headers,
            timeout=30,
        )
        assert ok.status_code == 200
    stats = requests.get(_admin(sandbox, "stats"), timeout=30).json()
    assert stats["realms"][realm]["requests"] == 3
    assert stats["realms"][realm]["in_flight"] == 0
    assert stats["config"]["rate_limits"] is False


def test_simulate_advances_clock_and_changes_records(sandbox: SandboxServer) -> None:
    realm = sandbox.realm_ids[0]
    before = _when(requests.get(_admin(sandbox, "clock"), timeout=30).json()["now"])
    r = requests.post(
        _admin(sandbox, "simulate"),
        json={"realmId": realm, "days": 2, "seed": 3, "changes_per_day": 6},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["realmId"] == realm and body["days"] == 2
    assert sum(body["changes"].values()) > 0
    assert all("." in key for key in body["changes"])
    after = _when(requests.get(_admin(sandbox, "clock"), timeout=30).json()["now"])
    assert after - before >= timedelta(days=2)
    zero = requests.post(_admin(sandbox, "simulate"), json={"days": 0}, timeout=30)
    assert zero.status_code == 400 and "at least 1" in zero.json()["error"]


def test_incident_endpoints_stage_and_refuse(sandbox: SandboxServer) -> None:
    realm = sandbox.realm_ids[0]
    store = sandbox.store
    assert store is not None
    r = requests.post(
        _admin(sandbox, "incident"),
        json={"kind": "bad_import_customers", "params": {"count": 3}},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "realmId": realm,
        "kind": "bad_import_customers",
        "changes": {"Customer.updated": 3},
    }
    invoices = store.count(realm, "Invoice")
    dates = sorted(str(i["TxnDate"]) for i in store.iter_records(realm, "Invoice"))
    r = requests.post(
        _admin(sandbox, "incident"),
        json={"kind": "bulk_delete_invoices", "params": {"start": dates[0], "end": dates[4]}},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    deleted = r.json()["changes"]["Invoice.deleted"]
    assert deleted >= 5 and store.count(realm, "Invoice") == invoices - deleted
    unknown = requests.post(_admin(sandbox, "incident"), json={"kind": "meteor"}, timeout=30)
    assert unknown.status_code == 400 and "meteor" in unknown.json()["error"]
    bad_param = requests.post(
        _admin(sandbox, "incident"),
        json={"kind": "bulk_delete_invoices", "params": {"start": "yesterday", "end": "x"}},
        timeout=30,
    )
    assert bad_param.status_code == 400 and "yesterday" in bad_param.json()["error"]
    assert store.count(realm, "Invoice") == invoices - deleted
