from __future__ import annotations

import logging
import multiprocessing
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from qbo_pipeline import entities
from qbo_pipeline.config import Secret, Settings
from qbo_pipeline.qbo import query as q
from qbo_pipeline.qbo.auth import AppCredentials
from qbo_pipeline.qbo.connect import flow_for, login_embedded, logout, open_client, open_store
from qbo_pipeline.qbo.faults import (
    CorruptTokenStoreError,
    NotConnectedError,
    QueryError,
    ReauthorizationRequired,
    ServerError,
    WrongPassphraseError,
)
from qbo_pipeline.qbo.http import QBOClient, RetryPolicy
from qbo_pipeline.qbo.limiter import RealmLimiter
from qbo_pipeline.qbo.provider import StoredTokenProvider
from qbo_pipeline.qbo.tokens import TokenStore
from qbo_pipeline.sandbox.server import SandboxServer

PASS = Secret("resilience passphrase")
FAST = RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.05, max_retry_after=0.05)


class FakeClock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        import time

        return time.time() + self.offset


@dataclass
class Rig:
    server: SandboxServer
    settings: Settings
    realm_id: str

    def client(self, **kw: Any) -> QBOClient:
        kw.setdefault("limiter", RealmLimiter())
        kw.setdefault("retry", FAST)
        return open_client(self.settings, self.realm_id, passphrase=PASS, **kw)


def make_rig(template: Path, tmp_path: Path, **server_kw: Any) -> Iterator[Rig]:
    state = tmp_path / "sandbox.sqlite3"
    shutil.copyfile(template, state)
    server = SandboxServer(state, **server_kw)
    server.start()
    try:
        settings = Settings.from_env(
            {"QBO_DATA_DIR": str(tmp_path / "data"), "QBO_ENVIRONMENT": "embedded"}
        )
        realms = login_embedded(
            settings,
            server.base_url,
            passphrase=PASS,
            credentials=AppCredentials(server.client_id, Secret(server.client_secret)),
        )
        yield Rig(server, settings, realms[0])
    finally:
        server.stop()


@pytest.fixture
def rig(sandbox_template: Path, tmp_path: Path) -> Iterator[Rig]:
    yield from make_rig(sandbox_template, tmp_path)


def store_ids(server: SandboxServer, realm: str, entity: str) -> list[str]:
    return [r["Id"] for r in server.store.iter_records(realm, entity)]


def test_long_paging_run_under_faults_and_limits(rig: Rig) -> None:
    import time

    time.sleep(2.1)  # let the login's requests leave the sandbox's (short) rate window
    rig.server.configure(
        rate_limits=True,
        requests_per_minute=20,
        window_seconds=2,
        max_concurrent=3,
        retry_after=0,
        latency_ms=5,
        jitter_ms=10,
        seed=11,
        faults=[
            {"kind": "429", "rate": 0.08},
            {"kind": "500", "rate": 0.05},
            {"kind": "503", "rate": 0.05, "format": "json"},
            {"kind": "reset", "rate": 0.05},
            {"kind": "truncate", "rate": 0.05},
        ],
    )
    limiter = RealmLimiter(per_minute=20, max_in_flight=3, window=2.2)
    with rig.client(limiter=limiter) as client:
        for name in ("Account", "Customer", "Invoice"):
            got = [
                r["Id"]
                for page in client.iter_pages(entities.get(name), page_size=5, parallel=3)
                for r in page
            ]
            assert got == store_ids(rig.server, rig.realm_id, name), name
        retries = client.retries
    stats = rig.server.stats()["realms"][rig.realm_id]
    injected = stats["faults"]
    assert sum(injected.values()) >= 3, injected  # the faults really happened
    assert retries >= sum(injected.values())
    assert stats["max_concurrent"] <= 3
    # Every 429 the sandbox sent was an injected one: the client never tripped the real limits.
    assert stats["throttled"] == injected.get("429", 0)


def test_retry_after_is_honoured_realm_wide(rig: Rig) -> None:
    limiter = RealmLimiter()
    slept: list[float] = []
    held_back: list[float | None] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        held_back.append(limiter.try_acquire())  # what any other thread would be told now

    rig.server.configure(retry_after=1, faults=[{"kind": "429", "on": [1]}])
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, max_retry_after=120)
    with rig.client(limiter=limiter, retry=policy, sleep=sleep) as client:
        assert client.count(entities.get("Customer")) > 0
    assert slept == [1.0]
    assert held_back[0] == pytest.approx(1.0, abs=0.5)


def test_server_errors_give_up_with_the_fault(rig: Rig) -> None:
    rig.server.configure(faults=[{"kind": "500", "rate": 1.0, "path": "/query"}])
    with rig.client(retry=RetryPolicy(max_attempts=3, base_delay=0.001)) as client:
        with pytest.raises(ServerError) as info:
            client.count(entities.get("Customer"))
    assert info.value.code == "10000"
    assert info.value.intuit_tid
    assert rig.server.stats()["realms"][rig.realm_id]["faults"]["500"] == 3


def test_validation_faults_are_not_retried(rig: Rig) -> None:
    with rig.client() as client:
        before = client.api_calls
        with pytest.raises(QueryError):
            client.query("SELECT * FROM Customer WHERE Name = 'a' OR Name = 'b'")
        assert client.api_calls == before + 1


def test_access_expiry_mid_run_refreshes_once(sandbox_template: Path, tmp_path: Path) -> None:
    clock = FakeClock()
    for rig in make_rig(sandbox_template, tmp_path, clock=clock):
        store = open_store(rig.settings, PASS)
        before = store.get(rig.realm_id)
        with rig.client() as client:
            pages = client.iter_pages(entities.get("Account"), page_size=5, parallel=3)
            got = [r["Id"] for r in next(pages)]
            clock.offset += 4000  # every access token issued so far is now expired
            got += [r["Id"] for page in pages for r in page]
            assert client.tokens.refreshes == 1  # type: ignore[attr-defined]
        assert got == store_ids(rig.server, rig.realm_id, "Account")
        after = store.get(rig.realm_id)
        assert after.refresh_token != before.refresh_token  # rotated and persisted
        assert after.access_token != before.access_token


def test_refresh_ahead_of_expiry(rig: Rig) -> None:
    now = [datetime.now(UTC)]
    store = open_store(rig.settings, PASS)
    provider = StoredTokenProvider(
        store, rig.realm_id, lambda rec: flow_for(rig.settings, rec), clock=lambda: now[0]
    )
    first = provider.access_token()
    assert provider.access_token() == first and provider.refreshes == 0
    now[0] += timedelta(minutes=57)  # under five minutes left
    second = provider.access_token()
    assert second != first
    assert provider.refreshes == 1
    assert store.get(rig.realm_id).access_token == second


def _refresh_in_process(
    store_path: str,
    passphrase: str,
    realm_id: str,
    base_url: str,
    client_id: str,
    client_secret: str,
    rejected: str,
    barrier: Any,
    results: Any,
) -> None:
    from qbo_pipeline.config import Endpoints, Environment
    from qbo_pipeline.qbo.auth import OAuthFlow

    store = TokenStore(store_path, Secret(passphrase))
    endpoints = Endpoints.for_environment(Environment.EMBEDDED, base_url=base_url)
    flow = OAuthFlow(
        endpoints, AppCredentials(client_id, Secret(client_secret)), "http://127.0.0.1:1/cb"
    )
    provider = StoredTokenProvider(store, realm_id, lambda rec: flow)
    barrier.wait(timeout=60)
    try:
        token = provider.refresh(rejected=Secret(rejected))
        results.put(("ok", provider.refreshes, token.reveal()))
    except Exception as exc:  # reported to the parent
        results.put(("error", 0, f"{type(exc).__name__}: {exc}"))


def test_processes_refreshing_at_once_never_lose_the_token(
    sandbox_template: Path, tmp_path: Path
) -> None:
    # No grace: a refresh token used after it was rotated fails at once, so a race would show.
    for rig in make_rig(sandbox_template, tmp_path, refresh_grace=0):
        store = open_store(rig.settings, PASS)
        ctx = multiprocessing.get_context("spawn")
        workers = 3
        for _round in range(2):
            rejected = store.get(rig.realm_id).access_token.reveal()
            barrier = ctx.Barrier(workers)
            results = ctx.Queue()
            procs = [
                ctx.Process(
                    target=_refresh_in_process,
                    args=(
                        str(rig.settings.token_store_path),
                        PASS.reveal(),
                        rig.realm_id,
                        rig.server.base_url,
                        rig.server.client_id,
                        rig.server.client_secret,
                        rejected,
                        barrier,
                        results,
                    ),
                )
                for _ in range(workers)
            ]
            for p in procs:
                p.start()
            outcomes = [results.get(timeout=120) for _ in procs]
            for p in procs:
                p.join(timeout=60)
            assert all(kind == "ok" for kind, _, _ in outcomes), outcomes
            assert sum(n for _, n, _ in outcomes) == 1  # one refresh; the others reused it
            assert len({tok for _, _, tok in outcomes}) == 1
        with rig.client() as client:  # the persisted refresh token is the live one
            client.tokens.refresh()
            assert client.count(entities.get("Customer")) > 0


def test_revoked_grant_gives_a_clear_error(rig: Rig) -> None:
    rig.server.configure(faults=[{"kind": "revoked", "on": [1]}])
    with rig.client() as client:
        with pytest.raises(ReauthorizationRequired) as info:
            client.count(entities.get("Customer"))
    text = str(info.value)
    assert "expired or was revoked" in text
    assert "qbo-backup auth login" in text
    assert rig.realm_id in text


def test_logout_revokes_and_forgets(rig: Rig) -> None:
    store = open_store(rig.settings, PASS)
    record = store.get(rig.realm_id)
    assert logout(rig.settings, rig.realm_id, passphrase=PASS) is True
    with pytest.raises(NotConnectedError, match="qbo-backup auth login"):
        store.get(rig.realm_id)
    with pytest.raises(ReauthorizationRequired):
        flow_for(rig.settings, record).refresh(record.refresh_token)


def test_store_problems_through_open_client(rig: Rig) -> None:
    with pytest.raises(WrongPassphraseError):
        open_client(rig.settings, rig.realm_id, passphrase=Secret("not it"))
    with pytest.raises(NotConnectedError):
        open_client(rig.settings, "123", passphrase=PASS)
    rig.settings.token_store_path.write_bytes(b'{"format": "qbo_pipeline.tokens"')
    with pytest.raises(CorruptTokenStoreError, match="damaged"):
        open_client(rig.settings, rig.realm_id, passphrase=PASS)


HOSTILE_NAMES = [
    'O\'Brien \\ "Ltd" 🚀',
    "x' OR Id > '0",
    "Back\\slash\\' end\\",
    "Ünïcødé 中文 ‮rtl",
    "100% sure_",
]


def test_hostile_strings_in_queries(rig: Rig) -> None:
    customer = entities.get("Customer")
    with rig.client() as client:
        made = {
            name: client.create(customer, {"DisplayName": name}, request_id=uuid.uuid4().hex)
            for name in HOSTILE_NAMES
        }
        total = client.count(customer)
        for name, record in made.items():
            found = client.query(q.select(customer, where=[q.eq("DisplayName", name)]))
            assert [r["Id"] for r in found.get("Customer", [])] == [record["Id"]], name
            assert found["Customer"][0]["DisplayName"] == name
            assert client.count(customer, [q.eq("DisplayName", name)]) == 1
        # LIKE with a hostile prefix matches only what it should.
        found = client.query(q.select(customer, where=[q.like("DisplayName", "x' OR%")]))
        assert [r["DisplayName"] for r in found["Customer"]] == ["x' OR Id > '0"]
        assert client.count(customer) == total


def test_secrets_never_logged(
    sandbox_template: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()
    secrets_seen: set[str] = set()
    for rig in make_rig(sandbox_template, tmp_path, clock=clock):
        store = open_store(rig.settings, PASS)

        def collect() -> None:
            for rec in store.list():
                secrets_seen.add(rec.access_token.reveal())
                secrets_seen.add(rec.refresh_token.reveal())

        collect()
        rig.server.configure(faults=[{"kind": "500", "on": [2]}, {"kind": "reset", "on": [4]}])
        with rig.client() as client:
            for _ in client.iter_pages(entities.get("Customer"), page_size=10):
                pass
            clock.offset += 4000
            client.count(entities.get("Invoice"))  # 401, refresh, retry
            collect()
            with pytest.raises(QueryError):
                client.query("SELECT * FROM Nope")
        logout(rig.settings, rig.realm_id, passphrase=PASS)
    secrets_seen.add(rig.server.client_secret)
    secrets_seen.add(PASS.reveal())
    assert len(secrets_seen) >= 6
    records = caplog.records
    assert any("refreshed the access token" in r.getMessage() for r in records)
    texts = [caplog.text] + [r.getMessage() + (r.exc_text or "") for r in records]
    for text in texts:
        for secret in secrets_seen:
            assert secret not in text
    assert "Bearer eyJ" not in caplog.text
