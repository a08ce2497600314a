"""Concurrent apply: the same end state as one step at a time, resumable after faults.

Real parts only: two embedded sandboxes on copies of one generated company, the client,
run_backup into lakes in tmp_path, plans and audit logs beside the snapshots.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qbo_pipeline import entities
from qbo_pipeline.backup import run_backup
from qbo_pipeline.config import Settings
from qbo_pipeline.lake.lake import Lake, RealmLake
from qbo_pipeline.qbo.connect import login_embedded, open_client
from qbo_pipeline.qbo.http import QBOClient, RetryPolicy
from qbo_pipeline.restore.apply import ApplyResult, approve
from qbo_pipeline.restore.run import apply_restore, plan_restore, verify_plan
from qbo_pipeline.restore.scope import Scope
from qbo_pipeline.restore.store import PlanStore
from qbo_pipeline.sandbox.server import SandboxServer

NAMES = ["Invoice", "Payment", "Deposit"]


@dataclass
class Company:
    sandbox: SandboxServer
    client: QBOClient
    realm: RealmLake
    plan_id: str
    counts_before: dict[str, int]


def counts(client: QBOClient) -> dict[str, int]:
    return {name: client.count(entities.ENTITIES[name]) for name in NAMES}


@contextmanager
def incident_planned(template: Path, where: Path) -> Iterator[Company]:
    """A sandbox on a copy of ``template``: backed up, invoices bulk-deleted, restore planned."""
    where.mkdir()
    state = where / "sandbox.sqlite3"
    shutil.copyfile(template, state)
    sandbox = SandboxServer(state, realms=1)
    sandbox.start()
    try:
        settings = Settings.from_env(
            {"QBO_DATA_DIR": str(where / "data"), "QBO_ENVIRONMENT": "embedded"}
        )
        realm_id = login_embedded(settings, sandbox.base_url, realm_hint=sandbox.realm_ids[0])[0]
        retry = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, max_retry_after=0.05)
        with open_client(settings, realm_id, api_base=sandbox.base_url, retry=retry) as client:
            realm = Lake(where / "data" / "lake").realm(client.realm_id)
            before = run_backup(client, realm, mode="full").snapshot.snapshot_id
            counts_before = counts(client)
            dates = sorted({str(p["TxnDate"]) for p in realm.iter_payloads(before, "Invoice")})
            sandbox.incident("bulk_delete_invoices", start=dates[2], end=dates[40])
            run_backup(client, realm)  # the nightly that captures the incident
            planned = plan_restore(
                client, realm, snapshot=before, scope=Scope.parse(entity_names=NAMES)
            )
            approve(PlanStore.for_realm(realm), planned.plan.plan_id, name="test")
            yield Company(sandbox, client, realm, planned.plan.plan_id, counts_before)
    finally:
        sandbox.stop()


def end_state(client: QBOClient, result: ApplyResult) -> dict[str, Any]:
    """What the restored records hold, keyed by snapshot id (new ids depend on write order)."""
    new_to_old = {(k.split(":")[0], v): k.split(":")[1] for k, v in result.id_map.items()}
    out: dict[str, Any] = {}
    for step in result.steps:
        if step.new_id is None or step.entity not in NAMES:
            continue
        record = client.read(entities.ENTITIES[step.entity], step.new_id)
        links = sorted(
            (link["TxnType"], new_to_old.get((link["TxnType"], link["TxnId"]), link["TxnId"]))
            for line in record.get("Line") or []
            for link in line.get("LinkedTxn") or []
        )
        out[f"{step.entity}:{step.old_id}"] = (
            record.get("TxnDate"),
            record.get("TotalAmt"),
            record.get("DocNumber"),
            (record.get("CustomerRef") or {}).get("value"),
            links,
        )
    return out


def audit_is_one_writer(company: Company) -> None:
    events = list(PlanStore.for_realm(company.realm).audit(company.plan_id).read())
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    requests = [e["request_id"] for e in events if e["event"] == "request"]
    answered = {e["request_id"] for e in events if e["event"] == "response"}
    assert set(requests) <= answered


def test_concurrent_apply_reaches_the_sequential_end_state(larger_template, tmp_path):
    with incident_planned(larger_template, tmp_path / "one") as first:
        sequential, _ = apply_restore(first.client, first.realm, first.plan_id, workers=1)
        assert sequential.complete
        expected = end_state(first.client, sequential)
        assert counts(first.client) == first.counts_before
        report = verify_plan(first.client, first.realm, first.plan_id)
        assert report["ok"]
        assert report["counts"]["Invoice"]["after"] == report["counts"]["Invoice"]["snapshot"] > 0
    with incident_planned(larger_template, tmp_path / "two") as second:
        second.sandbox.configure(latency_ms=20)
        second.client.limiter.max_in_flight_seen = 0
        concurrent, _ = apply_restore(second.client, second.realm, second.plan_id, workers=8)
        assert second.client.limiter.max_in_flight_seen > 1  # steps did overlap
        second.sandbox.configure(latency_ms=0)
        assert concurrent.complete
        assert [(s.number, s.state) for s in concurrent.steps] == [
            (s.number, s.state) for s in sequential.steps
        ]
        assert end_state(second.client, concurrent) == expected
        assert counts(second.client) == second.counts_before
        report = verify_plan(second.client, second.realm, second.plan_id)
        assert report["ok"], report["differences"][:3]
        audit_is_one_writer(second)
        status = PlanStore.for_realm(second.realm).status(second.plan_id)
        assert {entry["state"] for entry in status["steps"].values()} <= {"done", "skipped"}
        assert status["id_map"] and status["id_map"].items() <= concurrent.id_map.items()


def test_fault_injected_concurrent_apply_resumes_to_the_same_end_state(larger_template, tmp_path):
    with incident_planned(larger_template, tmp_path / "faults") as company:
        company.sandbox.configure(
            seed=7,
            faults=[
                {"kind": "reset", "path": "/payment", "rate": 0.5, "times": 8},
                {"kind": "500", "path": "/invoice", "rate": 0.5, "times": 8, "format": "json"},
                {"kind": "truncate", "path": "/invoice", "rate": 1.0, "times": 2},
            ],
        )
        runs, first = 0, None
        while True:
            runs += 1
            # One request per write: the faults above aim at the entities' own paths.
            result, _ = apply_restore(
                company.client, company.realm, company.plan_id, workers=8, batch=False
            )
            first = first or result
            if result.complete or runs == 8:
                break
        injected = company.sandbox.stats()["realms"][company.client.realm_id]["faults"]
        company.sandbox.configure(faults=[])
        assert sum(injected.values()) >= 3, injected
        assert result.complete
        # Resumed, never duplicated: a re-created record kept the id its first write got.
        for key, new_id in first.id_map.items():
            assert result.id_map[key] == new_id
        assert counts(company.client) == company.counts_before
        report = verify_plan(company.client, company.realm, company.plan_id)
        assert report["ok"], report["differences"][:3]
        audit_is_one_writer(company)
