"""Planning reads the live company in bulk: the same plan with far fewer API calls.

Real parts only: the embedded sandbox over HTTP, the client, run_backup into a lake in tmp_path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from qbo_pipeline import entities
from qbo_pipeline.backup import run_backup
from qbo_pipeline.config import Settings
from qbo_pipeline.lake.lake import Lake, RealmLake
from qbo_pipeline.qbo.connect import login_embedded, open_client
from qbo_pipeline.qbo.http import QBOClient, RetryPolicy
from qbo_pipeline.restore import sources
from qbo_pipeline.restore.model import Plan
from qbo_pipeline.restore.plan import PlanRequest, build_plan
from qbo_pipeline.restore.scope import Scope
from qbo_pipeline.restore.sources import ClientLive, LakeSnapshots
from qbo_pipeline.sandbox.server import SandboxServer


class OneByOne(ClientLive):
    """The live company read one GET per record (bulk reads switched off)."""

    read_many = None  # type: ignore[assignment]


class Counting(ClientLive):
    """The live company, counting the records each kind of read returns, per entity."""

    def __init__(self, client: QBOClient) -> None:
        super().__init__(client)
        self.listed: Counter[str] = Counter()
        self.read: Counter[str] = Counter()

    def iter_records(self, entity: entities.Entity) -> Iterator[dict[str, Any]]:
        for record in super().iter_records(entity):
            self.listed[entity.name] += 1
            yield record

    def read_many(self, entity: entities.Entity, record_ids: Iterable[str]) -> dict[str, Any]:
        found = super().read_many(entity, record_ids)
        self.read[entity.name] += len(found)
        return found


@pytest.fixture
def sandbox(larger_sandbox: SandboxServer) -> SandboxServer:
    return larger_sandbox


@pytest.fixture
def client(sandbox: SandboxServer, tmp_path: Path) -> Iterator[QBOClient]:
    settings = Settings.from_env(
        {"QBO_DATA_DIR": str(tmp_path / "data"), "QBO_ENVIRONMENT": "embedded"}
    )
    realm_id = login_embedded(settings, sandbox.base_url, realm_hint=sandbox.realm_ids[0])[0]
    retry = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, max_retry_after=0.05)
    with open_client(settings, realm_id, api_base=sandbox.base_url, retry=retry) as qbo:
        yield qbo


@pytest.fixture
def realm(client: QBOClient, tmp_path: Path) -> RealmLake:
    return Lake(tmp_path / "data" / "lake").realm(client.realm_id)


def plan_with(live: ClientLive, realm: RealmLake, snapshot_id: str, scope: Scope) -> Plan:
    request = PlanRequest(
        realm_id=live.client.realm_id,
        snapshot_id=snapshot_id,
        latest_snapshot_id=snapshot_id,
        scope=scope,
    )
    return build_plan(live, LakeSnapshots(realm), request)


def steps_of(plan: Plan) -> list[dict[str, Any]]:
    return [step.to_json() for step in plan.steps]


def delete_invoices(client: QBOClient, sandbox: SandboxServer, realm: RealmLake, sid: str) -> int:
    """Bulk-delete about 60 invoices (a date range); returns how many went."""
    dates = sorted(str(p["TxnDate"]) for p in realm.iter_payloads(sid, "Invoice"))
    assert len(dates) >= 60, "the generated company has fewer than 60 invoices"
    before = client.count(entities.ENTITIES["Invoice"])
    sandbox.incident("bulk_delete_invoices", start=dates[0], end=dates[59])
    return before - client.count(entities.ENTITIES["Invoice"])


def test_planning_a_60_invoice_restore_reads_in_bulk(client, sandbox, realm):
    sid = run_backup(client, realm, mode="full").snapshot.snapshot_id
    deleted = delete_invoices(client, sandbox, realm, sid)
    assert deleted >= 60
    scope = Scope.parse(entity_names=["Invoice", "Payment", "Deposit"])
    calls = client.api_calls
    single = plan_with(OneByOne(client), realm, sid, scope)
    single_calls = client.api_calls - calls
    calls = client.api_calls
    bulk = plan_with(ClientLive(client), realm, sid, scope)
    bulk_calls = client.api_calls - calls
    assert steps_of(bulk) == steps_of(single)
    assert sum(1 for s in bulk.steps if s.entity == "Invoice") >= deleted
    # One GET per referenced customer, item, account... against a few queries per entity.
    assert bulk_calls * 3 < single_calls, (bulk_calls, single_calls)


def test_planning_listed_records_reads_them_in_bulk(client, sandbox, realm):
    sid = run_backup(client, realm, mode="full").snapshot.snapshot_id
    ids = [str(p["Id"]) for p in realm.iter_payloads(sid, "Invoice")][:60]
    for rid in ids[:5]:  # a few changed, the rest identical
        entity = entities.ENTITIES["Invoice"]
        live = client.read(entity, rid)
        body = {"Id": rid, "SyncToken": live["SyncToken"], "sparse": True, "PrivateNote": "x"}
        client.update(entity, body, sparse=True, request_id=f"edit-{rid}")
    scope = Scope.parse(records=[f"Invoice:{rid}" for rid in ids])
    calls = client.api_calls
    single = plan_with(OneByOne(client), realm, sid, scope)
    single_calls = client.api_calls - calls
    calls = client.api_calls
    bulk = plan_with(ClientLive(client), realm, sid, scope)
    bulk_calls = client.api_calls - calls
    assert steps_of(bulk) == steps_of(single)
    assert sum(1 for s in bulk.steps if s.action.writes) == 5
    assert single_calls >= 60
    assert bulk_calls * 5 < single_calls, (bulk_calls, single_calls)


def test_read_many_finds_inactive_records_and_leaves_unknown_ids_out(client, monkeypatch):
    live = ClientLive(client)
    customer = entities.ENTITIES["Customer"]
    records = list(live.iter_records(customer))
    target = records[0]
    token = client.read(customer, target["Id"])["SyncToken"]
    client.update(
        customer,
        {"Id": target["Id"], "SyncToken": token, "Active": False},
        sparse=True,
        request_id="deactivate-for-read-many",
    )
    monkeypatch.setattr(sources, "IDS_PER_QUERY", 3)
    wanted = [str(r["Id"]) for r in records[:7]] + ["999999"]
    calls = client.api_calls
    found = live.read_many(customer, wanted)
    assert client.api_calls - calls == 3  # 8 ids, 3 per query
    assert sorted(found) == sorted(wanted[:7])
    assert found[str(target["Id"])]["Active"] is False


def test_read_many_does_not_query_records_without_a_top_level_id(client):
    live = ClientLive(client)
    calls = client.api_calls
    assert live.read_many(entities.ENTITIES["ExchangeRate"], ["EUR@2026-01-01"]) == {}
    assert live.read_many(entities.ENTITIES["RecurringTransaction"], ["1"]) == {}
    assert live.read_many(entities.ENTITIES["Preferences"], ["Preferences"]) == {}
    assert client.api_calls == calls


def plan_through(
    live: ClientLive, realm: RealmLake, snapshot_id: str, scope: Scope, live_snapshot: str | None
) -> Plan:
    """A plan whose latest snapshot is ``live_snapshot`` (the safety snapshot), compared or not."""
    request = PlanRequest(
        realm_id=live.client.realm_id,
        snapshot_id=snapshot_id,
        latest_snapshot_id=live_snapshot,
        scope=scope,
        remove_new=True,
        live_snapshot_id=live_snapshot,
    )
    return build_plan(live, LakeSnapshots(realm), request)


def test_whole_entities_are_compared_through_the_safety_snapshot(client, sandbox, realm):
    sid = run_backup(client, realm, mode="full").snapshot.snapshot_id
    deleted = delete_invoices(client, sandbox, realm, sid)
    invoice = entities.ENTITIES["Invoice"]
    kept = [p for p in realm.iter_payloads(sid, "Invoice")][-3:]
    edited = kept[0]
    live = client.read(invoice, edited["Id"])
    client.update(
        invoice,
        {"Id": edited["Id"], "SyncToken": live["SyncToken"], "sparse": True, "PrivateNote": "x"},
        sparse=True,
        request_id="edit-after-snapshot",
    )
    new = {k: v for k, v in kept[1].items() if k in ("CustomerRef", "Line", "TxnDate")}
    for line in new["Line"]:
        line.pop("Id", None)
        line.pop("LineNum", None)
    created = client.create(invoice, new, request_id="created-after-snapshot")
    safety = run_backup(client, realm).snapshot.snapshot_id
    scope = Scope.parse(entity_names=["Invoice", "Payment", "Deposit"])

    full_reader, compared_reader = Counting(client), Counting(client)
    full = plan_through(full_reader, realm, sid, scope, None)
    compared = plan_through(compared_reader, realm, sid, scope, safety)

    assert steps_of(compared) == steps_of(full)
    assert compared.identical == full.identical
    assert compared.summary() == full.summary()
    actions = {(s.entity, s.old_id): s.action.value for s in compared.steps}
    assert actions[("Invoice", str(edited["Id"]))] == "update"
    assert actions[("Invoice", str(created["Id"]))] == "delete"
    recreated = [s for s in compared.steps if s.entity == "Invoice" and s.action.value == "create"]
    assert len(recreated) == deleted
    # Without the safety snapshot every invoice, payment and deposit is paged live; with it,
    # only what differs (and what a re-created record references) is read.
    scoped = ("Invoice", "Payment", "Deposit")
    live_now = realm.info(safety).entities
    assert all(full_reader.listed[n] == live_now[n]["live"] for n in scoped), full_reader.listed
    assert sum(compared_reader.listed.values()) == 0
    differing = deleted + sum(full.summary().get(a, 0) for a in ("update", "delete"))
    assert compared_reader.read["Invoice"] <= differing + 2, compared_reader.read
