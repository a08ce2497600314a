"""Realism switches: rate limits, concurrency, and every injected fault."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from qbo_pipeline.sandbox.server import SandboxServer
from tests.conftest import sandbox_token


def _setup(sandbox: SandboxServer) -> tuple[str, dict[str, str]]:
    realm = sandbox.realm_ids[0]
    headers = {
        "Authorization": f"Bearer {sandbox_token(sandbox, realm)}",
        "Accept": "application/json",
    }
    return f"{sandbox.base_url}/v3/company/{realm}/customer/1", headers


def test_rate_limit_per_window_answers_429_xml(sandbox: SandboxServer) -> None:
    url, headers = _setup(sandbox)
    sandbox.configure(rate_limits=True, requests_per_minute=5, window_seconds=3600)
    codes = [requests.get(url, headers=headers, timeout=30).status_code for _ in range(8)]
    assert codes == [200] * 5 + [429] * 3
    throttled = requests.get(url, headers=headers, timeout=30)
    assert throttled.headers["Retry-After"] == "60"
    assert throttled.headers["Content-Type"].startswith("application/xml")
    assert "errorCode=003001; statusCode=429" in throttled.text
    stats = sandbox.stats()["realms"][sandbox.realm_ids[0]]
    assert stats["requests"] == 5 and stats["throttled"] == 4


def test_concurrency_never_exceeds_limit(sandbox: SandboxServer) -> None:
    url, headers = _setup(sandbox)
    sandbox.configure(rate_limits=True, max_concurrent=3, latency_ms=200)
    with ThreadPoolExecutor(max_workers=12) as pool:
        codes = list(
            pool.map(
                lambda _: requests.get(url, headers=headers, timeout=60).status_code, range(12)
            )
        )
    stats = sandbox.stats()["realms"][sandbox.realm_ids[0]]
    assert 429 in codes and 200 in codes
    assert stats["max_concurrent"] <= 3


def test_handles_ten_concurrent_requests(sandbox: SandboxServer) -> None:
    url, headers = _setup(sandbox)
    sandbox.configure(latency_ms=100)
    barrier = threading.Barrier(10)

    def call(_: int) -> int:
        barrier.wait(timeout=30)
        return requests.get(url, headers=headers, timeout=60).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        assert list(pool.map(call, range(10))) == [200] * 10
    assert sandbox.stats()["realms"][sandbox.realm_ids[0]]["max_concurrent"] >= 2


@pytest.mark.parametrize("kind", ["500", "503"])
def test_system_fault_xml_and_json(sandbox: SandboxServer, kind: str) -> None:
    url, headers = _setup(sandbox)
    sandbox.configure(
        faults=[{"kind": kind, "on": [2]}, {"kind": kind, "on": [3], "format": "json"}]
    )
    assert requests.get(url, headers=headers, timeout=30).status_code == 200
    xml = requests.get(url, headers=headers, timeout=30)
    assert xml.status_code == int(kind) and '<Error code="10000">' in xml.text
    js = requests.get(url, headers=headers, timeout=30)
    assert js.status_code == int(kind) and js.json()["Fault"]["type"] == "SystemFault"
    assert requests.get(url, headers=headers, timeout=30).status_code == 200


def test_injected_429_on_matching_path(sandbox: SandboxServer) -> None:
    url, headers = _setup(sandbox)
    sandbox.configure(faults=[{"kind": "429", "path": "/query", "times": 1, "rate": 1.0}])
    assert requests.get(url, headers=headers, timeout=30).status_code == 200
    query_url = url.rsplit("/customer/", 1)[0] + "/query"
    params = {"query": "select * from Customer"}
    assert requests.get(query_url, params=params, headers=headers, timeout=30).status_code == 429
    assert requests.get(query_url, params=params, headers=headers, timeout=30).status_code == 200


def test_connection_reset(sandbox: SandboxServer) -> None:
    url, headers = _setup(sandbox)
    sandbox.configure(faults=[{"kind": "reset", "on": [1]}])
    with pytest.raises(requests.ConnectionError):
        requests.get(url, headers=headers, timeout=30)
    assert requests.get(url, headers=headers, timeout=30).status_code == 200


def test_truncated_body(sandbox: SandboxServer) -> None:
    url, headers = _setup(sandbox)
    sandbox.configure(faults=[{"kind": "truncate", "on": [1]}])
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        requests.get(url, headers=headers, timeout=30).json()
    assert requests.get(url, headers=headers, timeout=30).json()["Customer"]["Id"] == "1"


def test_slow_response_uses_configured_delay(sandbox: SandboxServer) -> None:
    url, headers = _setup(sandbox)
    slept: list[float] = []
    assert sandbox.app is not None
    sandbox.app.realism.sleep = slept.append
    sandbox.configure(faults=[{"kind": "slow", "on": [1], "seconds": 7}])
    assert requests.get(url, headers=headers, timeout=30).status_code == 200
    assert slept == [7.0]


def test_held_request_waits_for_a_rule_change_then_is_answered(sandbox: SandboxServer) -> None:
    url, headers = _setup(sandbox)
    realm = sandbox.realm_ids[0]
    sandbox.configure(faults=[{"kind": "hold", "on": [1], "seconds": 300}])
    answers: list[int] = []
    held = threading.Thread(
        target=lambda: answers.append(requests.get(url, headers=headers, timeout=600).status_code)
    )
    held.start()
    while sandbox.stats()["realms"].get(realm, {}).get("faults", {}).get("hold") != 1:
        held.join(0.02)
    # Held: counted in flight, unanswered, however long the test takes to look.
    assert sandbox.stats()["realms"][realm]["in_flight"] == 1 and answers == []
    assert requests.get(url, headers=headers, timeout=30).status_code == 200  # others go on
    sandbox.configure(faults=[])
    held.join(60)
    assert answers == [200]
    assert sandbox.stats()["realms"][realm]["in_flight"] == 0


def test_revoked_token_fault(sandbox: SandboxServer) -> None:
    url, headers = _setup(sandbox)
    sandbox.configure(faults=[{"kind": "revoked", "on": [1]}])
    assert requests.get(url, headers=headers, timeout=30).status_code == 401
    assert requests.get(url, headers=headers, timeout=30).status_code == 401


def test_admin_config_and_bad_switch(sandbox: SandboxServer) -> None:
    r = requests.post(f"{sandbox.base_url}/_sandbox/config", json={"latency_ms": 1}, timeout=30)
    assert r.status_code == 200 and r.json()["latency_ms"] == 1
    bad = requests.post(f"{sandbox.base_url}/_sandbox/config", json={"nope": 1}, timeout=30)
    assert bad.status_code == 400 and "nope" in bad.json()["error"]
    bad_fault = requests.post(
        f"{sandbox.base_url}/_sandbox/config", json={"faults": [{"kind": "boom"}]}, timeout=30
    )
    assert bad_fault.status_code == 400 and "boom" in bad_fault.json()["error"]
