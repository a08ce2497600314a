"""Updates go through QBO's batch endpoint too (#20): counted, killed mid-batch, faulted per item.

Everything real: the embedded sandbox over HTTP with its pinned company, a botched customer
import staged in it, run_backup into a lake in tmp_path, an in-place plan reverting the
customers, and an apply SIGKILLed inside an update batch in another process, then resumed.
"""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from qbo_pipeline import entities
from qbo_pipeline.backup import run_backup
from qbo_pipeline.config import Settings
from qbo_pipeline.lake.lake import Lake, RealmLake
from qbo_pipeline.qbo.connect import login_embedded, open_client
from qbo_pipeline.qbo.faults import ObjectNotFoundError
from qbo_pipeline.qbo.http import QBOClient, RetryPolicy
from qbo_pipeline.restore.apply import approve
from qbo_pipeline.restore.model import Action, Plan
from qbo_pipeline.restore.run import apply_restore, plan_restore
from qbo_pipeline.restore.scope import Scope
from qbo_pipeline.restore.store import PlanStore
from qbo_pipeline.sandbox.server import SandboxServer
from tests.restore.into_drill import KILLED_APPLY

CUSTOMERS = 26
"""Customers the botched import rewrites (every active one that is not a job)."""

VENDORS = 10
"""Vendors renamed by hand besides: 36 updates, two batches of them (30 + 6)."""

UPDATES = CUSTOMERS + VENDORS

RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, max_retry_after=0.05)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"QBO_DATA_DIR": str(tmp_path / "data"), "QBO_ENVIRONMENT": "embedded"}


@pytest.fixture
def client(sandbox: SandboxServer, env: dict[str, str]) -> Iterator[QBOClient]:
    settings = Settings.from_env(env)
    realm_id = login_embedded(settings, sandbox.base_url, realm_hint=sandbox.realm_ids[0])[0]
    with open_client(settings, realm_id, api_base=sandbox.base_url, retry=RETRY) as qbo:
        yield qbo


@pytest.fixture
def realm(client: QBOClient, env: dict[str, str]) -> RealmLake:
    return Lake(Settings.from_env(env).lake_url).realm(client.realm_id)


def botched_import_plan(client: QBOClient, sandbox: SandboxServer, realm: RealmLake) -> Plan:
    """The snapshot before a botched import of many customers and vendors renamed by hand,
    and the approved plan that reverts them."""
    before = run_backup(client, realm, mode="full").snapshot
    sandbox.incident("bad_import_customers", count=CUSTOMERS)
    vendor = entities.ENTITIES["Vendor"]
    for n, live in enumerate(client.query("select * from Vendor")["Vendor"][:VENDORS]):
        client.update(
            vendor,
            {"Id": live["Id"], "SyncToken": live["SyncToken"], "CompanyName": f"Renamed {n}"},
            sparse=True,
            request_id=f"rename-vendor-{n}",
        )
    run_backup(client, realm)
    plan = plan_restore(
        client,
        realm,
        snapshot=before.snapshot_id,
        scope=Scope.parse(entity_names=["Customer", "Vendor"]),
        incident="latest",
    ).plan
    assert sum(s.action is Action.UPDATE for s in plan.steps) == UPDATES
    approve(PlanStore.for_realm(realm), plan.plan_id, name="drill")
    return plan


def audit(store: PlanStore, plan_id: str) -> list[dict]:
    path = Path(store.location(plan_id, "audit.jsonl"))
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def requests_sent(store: PlanStore, plan_id: str) -> int:
    return sum(1 for line in audit(store, plan_id) if line["event"] == "request")


def assert_reverted(client: QBOClient, realm: RealmLake, plan: Plan) -> None:
    """Every customer and vendor is back to its snapshot version, written exactly once."""
    for step in plan.steps:
        if step.action is not Action.UPDATE:
            continue
        live = client.read(entities.ENTITIES[step.entity], step.old_id)
        snap = realm.get_payload(plan.snapshot_id, step.entity, step.old_id) or {}
        for key in ("DisplayName", "CompanyName", "BillAddr"):
            assert live.get(key) == snap.get(key), (step.entity, step.old_id, key)
        # One write since planning: a second one would have moved the SyncToken again.
        assert int(live["SyncToken"]) == int(step.live_sync_token or 0) + 1, step.old_id


def test_many_updates_go_in_batches_and_a_rerun_writes_nothing(client, sandbox, realm):
    plan = botched_import_plan(client, sandbox, realm)
    store = PlanStore.for_realm(realm)
    before = client.calls_by_topic()
    result, _ = apply_restore(client, realm, plan.plan_id, verify=False, workers=4)
    assert result.complete and result.counts["done"] >= UPDATES
    calls = {k: v - before.get(k, 0) for k, v in client.calls_by_topic().items()}
    # 36 updates in two batch requests (30 a batch), none alone.
    assert calls.get("batch") == math.ceil(UPDATES / 30) == 2, calls
    assert sum(calls.values()) == calls["batch"], calls
    assert_reverted(client, realm, plan)
    items = [
        item["item"]
        for line in audit(store, plan.plan_id)
        if line["event"] == "request" and line.get("operation") == "batch"
        for item in line["items"]
    ]
    assert Counter(i["operation"] for i in items) == {"update": UPDATES}
    assert all(i.get("Customer", i.get("Vendor"))["sparse"] is False for i in items)

    sent = requests_sent(store, plan.plan_id)
    again, _ = apply_restore(client, realm, plan.plan_id, verify=False, workers=4)
    assert again.complete and requests_sent(store, plan.plan_id) == sent


@pytest.mark.parametrize("replay", [True, False], ids=["qbo-replays", "replay-gone"])
def test_killed_inside_an_update_batch_resumes_with_each_write_once(
    client, sandbox, realm, env, replay
):
    plan = botched_import_plan(client, sandbox, realm)
    store = PlanStore.for_realm(realm)
    # In place: the source and the target are the same company; killed after 10 steps done.
    args = [realm.realm_id, realm.realm_id, sandbox.base_url, plan.plan_id, "10"]
    child = subprocess.run(
        [sys.executable, "-c", KILLED_APPLY, *args],
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    killed = store.status(plan.plan_id) or {}
    unanswered = {int(n) for n, e in killed["steps"].items() if e["state"] == "not_started"} & {
        int(n) for n in killed["batches"]
    }
    assert unanswered, "the kill missed the batch"
    if not replay:
        # QBO no longer replays the batch (its request id is forgotten): the resent updates
        # carry SyncTokens their own first write made stale.
        con = sqlite3.connect(sandbox.state_path)
        with con:
            con.execute("delete from replays")
        con.close()

    result, _ = apply_restore(client, realm, plan.plan_id, verify=False, workers=1)
    assert result.complete, [s for s in result.steps if s.state != "done"][:3]
    assert_reverted(client, realm, plan)
    lines = audit(store, plan.plan_id)
    if replay:
        # The batch went again under its request id and QBO answered it as the first time.
        sent = Counter(
            line["request_id"]
            for line in lines
            if line["event"] == "request" and line.get("operation") == "batch"
        )
        assert max(sent.values()) == 2
    else:
        # Each stale update re-read its record and found its own write there.
        rereads = [s for s in result.steps if "already written by an earlier" in str(s.detail)]
        assert {s.number for s in rereads} == unanswered
        assert not [e for e in lines if e["event"] == "conflict"]

    sent = requests_sent(store, plan.plan_id)
    again, _ = apply_restore(client, realm, plan.plan_id, verify=False)
    assert again.complete and requests_sent(store, plan.plan_id) == sent


def test_a_faulted_update_in_a_batch_fails_only_its_step_with_qbo_s_error(client, sandbox, realm):
    plan = botched_import_plan(client, sandbox, realm)
    updates = [s for s in plan.steps if s.action is Action.UPDATE]
    taken = [s for s in updates if s.entity == "Customer"][3]
    name = (realm.get_payload(plan.snapshot_id, "Customer", taken.old_id) or {})["DisplayName"]
    # After planning, a vendor takes the name the customer goes back to: QBO answers 6240.
    client.create(entities.ENTITIES["Vendor"], {"DisplayName": name}, request_id="vendor-1")
    before = client.calls_by_topic()
    result, _ = apply_restore(client, realm, plan.plan_id, verify=False, workers=1)
    calls = {k: v - before.get(k, 0) for k, v in client.calls_by_topic().items()}
    assert calls.get("batch") == 2
    states = {s.number: s for s in result.steps}
    failed = states[taken.number]
    assert failed.state == "failed" and (failed.fault or {}).get("code") == "6240"
    assert "6240" in str(failed.detail) or "Duplicate" in str(failed.detail), failed.detail
    assert all(states[s.number].state == "done" for s in updates if s is not taken)
    faults = [e for e in audit(PlanStore.for_realm(realm), plan.plan_id) if e["event"] == "fault"]
    assert [(e["step"], e["code"]) for e in faults] == [(taken.number, "6240")]


def test_deletes_of_later_transactions_go_in_a_batch(client, sandbox, realm):
    before = run_backup(client, realm, mode="full").snapshot
    journal = entities.ENTITIES["JournalEntry"]
    accounts = [a["Id"] for a in client.query("select * from Account")["Account"][:2]]
    created = []
    for n in range(5):
        lines = [
            {
                "Amount": 10 + n,
                "DetailType": "JournalEntryLineDetail",
                "JournalEntryLineDetail": {"PostingType": side, "AccountRef": {"value": account}},
            }
            for side, account in zip(("Debit", "Credit"), accounts, strict=True)
        ]
        entry = {"TxnDate": "2024-12-30", "Line": lines}
        created.append(client.create(journal, entry, request_id=f"later-je-{n}")["Id"])
    run_backup(client, realm)
    plan = plan_restore(
        client,
        realm,
        snapshot=before.snapshot_id,
        scope=Scope.parse(entity_names=["JournalEntry"]),
        remove_new=True,
        incident="latest",
    ).plan
    deletes = [s for s in plan.steps if s.action is Action.DELETE]
    assert sorted(s.old_id for s in deletes) == sorted(created)
    store = PlanStore.for_realm(realm)
    approve(store, plan.plan_id, name="drill")
    before_calls = client.calls_by_topic()
    result, _ = apply_restore(client, realm, plan.plan_id, verify=False, workers=4)
    assert result.complete
    calls = {k: v - before_calls.get(k, 0) for k, v in client.calls_by_topic().items()}
    assert calls.get("batch") == 1, calls
    [sent] = [
        line
        for line in audit(store, plan.plan_id)
        if line["event"] == "request" and line.get("operation") == "batch"
    ]
    assert sorted(i["item"]["JournalEntry"]["Id"] for i in sent["items"]) == sorted(created)
    assert {i["item"]["operation"] for i in sent["items"]} == {"delete"}
    for record_id in created:
        with pytest.raises(ObjectNotFoundError):
            client.read(journal, record_id)
    requests = requests_sent(store, plan.plan_id)
    again, _ = apply_restore(client, realm, plan.plan_id, verify=False)
    assert again.complete and requests_sent(store, plan.plan_id) == requests
