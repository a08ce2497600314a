"""The restore-into drill (#20) and its checks, shared by the pinned company's drill
(test_restore_into.py) and the few-thousand-transaction one (test_restore_into_scale.py).

:func:`rebuild_killed_and_rerun` backs the source up, plans it into the target company, applies
it in another process SIGKILLed while the sandbox holds one of its batch requests (the ``hold``
fault: the kill lands inside a batch on every run, whatever the machine's load), resumes it,
and checks the four points of the issue: records equal modulo ids, every account of the reports
equal (but for what the API cannot write), running balances back, a rerun that writes nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from qbo_pipeline import entities
from qbo_pipeline.backup import run_backup
from qbo_pipeline.lake.lake import RealmLake
from qbo_pipeline.qbo.http import QBOClient, RetryPolicy
from qbo_pipeline.restore import apply_batch, remap, verify
from qbo_pipeline.restore.apply import approve
from qbo_pipeline.restore.model import Plan
from qbo_pipeline.restore.run import apply_restore, plan_restore_into, verify_plan
from qbo_pipeline.restore.store import PlanStore
from qbo_pipeline.sandbox import reports
from qbo_pipeline.sandbox.running_balances import account_balances
from qbo_pipeline.sandbox.server import SandboxServer

RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, max_retry_after=0.05)
"""The drills' clients' retries: quick, so that a fault the sandbox injects costs no waiting."""

APPLY = """
import os, sys
from qbo_pipeline.config import Settings
from qbo_pipeline.lake.lake import Lake
from qbo_pipeline.qbo.connect import open_client
from qbo_pipeline.qbo.http import RetryPolicy
from qbo_pipeline.qbo.limiter import RealmLimiter
from qbo_pipeline.restore.run import apply_restore

source, target, base, plan_id = sys.argv[1:5]
settings = Settings.from_env(dict(os.environ))
realm = Lake(settings.lake_url).realm(source)
retry = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, max_retry_after=0.05)
unspent = RealmLimiter(per_minute=1_000_000, max_in_flight=10)
with open_client(settings, target, api_base=base, retry=retry, batch_limiter=unspent) as qbo:
    apply_restore(qbo, realm, plan_id, verify=False, workers=1)
print("finished", flush=True)
"""
"""An apply of a plan in a process of its own (the parent kills it): one worker and a batch
budget never spent, so its batches are the same on every run, whatever the machine's speed."""

KILLED_APPLY = """
import os, signal, sys
from qbo_pipeline.config import Settings
from qbo_pipeline.lake.lake import Lake
from qbo_pipeline.qbo.connect import open_client
from qbo_pipeline.qbo.http import RetryPolicy
from qbo_pipeline.restore.run import apply_restore

source, target, base, plan_id, after = sys.argv[1:6]
settings = Settings.from_env(dict(os.environ))
realm = Lake(settings.lake_url).realm(source)
retry = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, max_retry_after=0.05)
done = 0

def progress(step, state):
    global done
    if state == "done":
        done += 1
    if done >= int(after):
        print("killing", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

with open_client(settings, target, api_base=base, retry=retry) as qbo:
    apply_restore(qbo, realm, plan_id, progress=progress, verify=False, workers=1)
print("finished", flush=True)
"""
"""An apply that SIGKILLs itself once ``after`` steps are done (the trust machine's kills, where
landing between steps or inside a batch are both fine)."""

KILL_WAIT_SECONDS = 1200
"""How long the killed apply may take to reach the held batch before the drill gives up."""


def running_balances_differ(
    realm: RealmLake,
    snapshot_id: str,
    target: QBOClient,
    id_map: remap.IdMap,
    not_written: list[dict[str, Any]],
) -> list[tuple[str, str, str, Decimal, Decimal]]:
    """Names whose running balances in the new company are not the snapshot's.

    Restore verify leaves running balances out (:data:`verify.RUNNING_BALANCES`): out-of-scope
    transactions move them. A whole company rebuilt must bring them all back, except what the
    transactions the API cannot write (a tax payment) posted: the accounts are expected to
    miss exactly those postings (the sandbox's posting rules over the snapshot's chart). The
    new company's names are read a page of a query at a time, inactive ones included.
    """
    payloads = {
        name: list(realm.iter_payloads(snapshot_id, name))
        for name in ("Account", "Item", "TaxRate", "TaxAgency", "TaxCode", "Customer", "Vendor")
    }
    chart = reports.Chart.from_records(
        payloads["Account"],
        payloads["Item"],
        payloads["TaxRate"],
        payloads["TaxAgency"],
        payloads["TaxCode"],
        default_tax_code=next(
            (
                str(((p.get("TaxPrefs") or {}).get("TaxGroupCodeRef") or {}).get("value"))
                for p in realm.iter_payloads(snapshot_id, "Preferences")
            ),
            None,
        ),
    )
    unwritten = [
        (t["entity"], p)
        for t in not_written
        for p in realm.iter_payloads(snapshot_id, t["entity"])
        if p["Id"] == t["old_id"]
    ]
    missing = account_balances(chart, unwritten)
    differ = []
    for name, fields in verify.RUNNING_BALANCES.items():
        entity = entities.ENTITIES[name]
        restored = {r["Id"]: r for page in target.iter_pages(entity) for r in page}
        for record in payloads[name]:
            new = restored.get(id_map.resolve(name, record["Id"]), {})
            for position, field in enumerate(fields):
                want = Decimal(str(record.get(field) or 0))
                if name == "Account" and record["Id"] in missing:
                    want -= missing[record["Id"]][position]
                got = Decimal(str(new.get(field) or 0))
                if got != want:
                    differ.append((name, record["Id"], field, got, want))
    return differ


def _audit_lines(store: PlanStore, plan_id: str) -> list[dict[str, Any]]:
    path = Path(store.location(plan_id, "audit.jsonl"))
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def requests_sent(store: PlanStore, plan_id: str) -> int:
    """Writes the plan's applies have sent (the audit log's request lines)."""
    return sum(1 for line in _audit_lines(store, plan_id) if line["event"] == "request")


def batches_sent(store: PlanStore, plan_id: str) -> Counter[str]:
    """How many times each batch request id was sent (the audit log's batch request lines)."""
    return Counter(
        line["request_id"]
        for line in _audit_lines(store, plan_id)
        if line["event"] == "request" and line.get("operation") == "batch"
    )


def batch_to_kill_in(plan: Plan, fraction: float) -> int:
    """The ordinal of the batch request to kill the apply in, about ``fraction`` of the way.

    Batches carry at most 30 items and the killed apply's budget is never spent (all its
    batchable writes go in batches), so there are at least a 30th as many batches as
    batchable writes: the chosen one is always sent, and (one worker) always the same one.
    """
    batchable = sum(1 for s in plan.steps if s.action.writes and apply_batch.batchable(s))
    return max(2, int(batchable // apply_batch.BATCH_MAX_ITEMS * fraction))


def _held(sandbox: SandboxServer, realm_id: str) -> dict[str, Any]:
    return sandbox.stats()["realms"].get(realm_id, {"faults": {}, "in_flight": 0})


def kill_mid_apply(env: dict[str, str], sandbox: SandboxServer, plan: Plan, batch: int) -> None:
    """Apply in another process, SIGKILLed while the sandbox holds its ``batch``-th batch.

    The batch's request id and steps are logged before it is sent; the sandbox holds the
    request (fault ``hold``) until the child is dead, then does its writes for a client that
    is gone, as QBO would: the resumed apply must resend it and get the first answer replayed.
    """
    realm_id = plan.realm_id
    held_before = _held(sandbox, realm_id)["faults"].get("hold", 0)
    sandbox.configure(
        faults=[
            {
                "kind": "hold",
                "path": f"/v3/company/{realm_id}/batch",
                "on": [batch],
                "times": 1,
                "seconds": KILL_WAIT_SECONDS,
            }
        ]
    )
    args = [str(plan.source_realm_id), realm_id, sandbox.base_url, plan.plan_id]
    log = Path(env["QBO_DATA_DIR"]).parent / f"killed-apply-{plan.plan_id}.log"
    with log.open("w") as out:
        child = subprocess.Popen(
            [sys.executable, "-c", APPLY, *args],
            env=os.environ | env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            while _held(sandbox, realm_id)["faults"].get("hold", 0) == held_before:
                try:
                    child.wait(0.05)
                except subprocess.TimeoutExpired:
                    continue
                raise AssertionError(
                    f"the apply ended ({child.returncode}) before its batch {batch} was sent: "
                    + log.read_text()[-3000:]
                )
            child.send_signal(signal.SIGKILL)
            child.wait(60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(60)
            sandbox.configure(faults=[])  # releases the held batch
    while _held(sandbox, realm_id)["in_flight"]:  # the released batch is being written
        time.sleep(0.05)
    assert child.returncode == -signal.SIGKILL, log.read_text()[-3000:]
    assert "finished" not in log.read_text()


@dataclass
class Drill:
    """What the drill planned, and what the resumed apply's verification reported."""

    plan: Plan
    snapshot_id: str
    report: dict[str, Any]
    killed_in: set[int]
    """The steps of the batch the kill left unanswered."""
    stale: list[tuple[str, str, str, Decimal, Decimal]]
    """The running balances that differ (:func:`running_balances_differ`)."""


def rebuild_killed_and_rerun(
    source: QBOClient,
    target: QBOClient,
    realm: RealmLake,
    sandbox: SandboxServer,
    env: dict[str, str],
    *,
    kill_at: float,
    min_writes: int,
    books: bool = True,
) -> Drill:
    """The drill: rebuild the source in ``target``, killed ``kill_at`` of the way, resumed.

    One unpaid invoice is voided first (the plan creates it, then voids it). Asserts the issue's
    four points and returns the plan and the report for further checks. ``books=False`` (a
    company in another country: its sales tax and home currency are not the snapshot's)
    leaves the reports and running balances to the caller, and lets records differ where
    their steps said.
    """
    invoices = entities.ENTITIES["Invoice"]
    unpaid = next(
        p
        for p in source.query("select * from Invoice")["Invoice"]
        if p["Balance"] == p["TotalAmt"] and not p.get("LinkedTxn")
    )
    source.void(invoices, unpaid["Id"], unpaid["SyncToken"], request_id="drill-void-1")
    snapshot = run_backup(source, realm, mode="full").snapshot
    plan = plan_restore_into(target, realm, snapshot=snapshot.snapshot_id).plan
    [voided] = [s for s in plan.steps if s.void_after]
    assert (voided.entity, voided.old_id) == ("Invoice", unpaid["Id"])
    store = PlanStore.for_realm(realm)
    approve(store, plan.plan_id, name="drill")
    writes = sum(1 for s in plan.steps if s.action.writes)
    assert writes > min_writes

    kill_mid_apply(env, sandbox, plan, batch_to_kill_in(plan, kill_at))
    killed = store.status(plan.plan_id) or {}
    states = Counter(e["state"] for e in killed["steps"].values())
    assert 0 < states["done"] < writes
    # The killed run died inside a batch: its request id and steps were logged before sending.
    unanswered = {int(n) for n, e in killed["steps"].items() if e["state"] == "not_started"} & {
        int(n) for n in killed["batches"]
    }
    assert unanswered, "the kill did not land inside a batch"

    result, report = apply_restore(target, realm, plan.plan_id)
    assert result.complete, [s for s in result.steps if s.state == "failed"][:5]
    # That batch was sent again under its request id (QBO replays the first answer).
    sent_batches = batches_sent(store, plan.plan_id)
    assert len(sent_batches) > 5 and max(sent_batches.values()) == 2
    assert report is not None
    assert report["checked"] > writes // 2
    # Every record equals its snapshot version modulo ids, or differs only where its step
    # said (none of them in a company of the snapshot's country).
    assert report["different"] == 0, sorted(
        {
            (d["entity"], change["path"].split("[")[0])
            for d in report["differences"]
            for change in d.get("changes") or [{"path": d["problem"]}]
        }
    )
    assert not books or not report["as_planned"], report["as_planned"][:5]
    # Each record was created once: the kill left no duplicate behind.
    for name in ("Customer", "Invoice", "Payment", "Bill", "JournalEntry", "Attachable"):
        want = sum(1 for _ in realm.iter_payloads(snapshot.snapshot_id, name))
        assert target.count(entities.ENTITIES[name]) == want, name
    # The running balances of every customer, vendor and account came back with the
    # transactions, but for what the unwritten tax payment posted.
    id_map = remap.IdMap(plan.id_map)
    id_map.update(remap.IdMap((store.status(plan.plan_id) or {})["id_map"]))
    stale = running_balances_differ(
        realm, snapshot.snapshot_id, target, id_map, report["not_written"]
    )
    assert not books or not stale, stale[:5]
    # The books: every account of the three reports equal, but for the transactions the API
    # cannot write (the sales tax payment), which the report names.
    assert any(t["entity"] == "TaxPayment" for t in report["not_written"])
    limit = sum(abs(Decimal(str(t["amount"]))) for t in report["not_written"])
    names = {kept["report"]: kept for kept in report["reports"]}
    assert names["ProfitAndLoss"]["ok"], names["ProfitAndLoss"]["differences"][:5]
    for kept in report["reports"]:
        assert kept["equal"] > 0
        for difference in kept["differences"] if books else ():
            assert "could not write" in difference["why"]
            want = [Decimal(v) for v in difference["snapshot"] or ["0", "0"]]
            got = [Decimal(v) for v in difference["restored"] or ["0"] * len(want)]
            assert all(abs(w - g) <= limit for w, g in zip(want, got, strict=False)), difference

    # The voided invoice was created, then voided: as the snapshot has it.
    new_id = (store.status(plan.plan_id) or {})["id_map"][f"Invoice:{unpaid['Id']}"]
    again_voided = target.read(invoices, new_id)
    assert again_voided["PrivateNote"] == "Voided" and not again_voided["TotalAmt"]

    # A rerun writes nothing and verifies the same.
    sent = requests_sent(store, plan.plan_id)
    again, _ = apply_restore(target, realm, plan.plan_id, verify=False)
    assert again.complete
    assert requests_sent(store, plan.plan_id) == sent
    again_report = verify_plan(target, realm, plan.plan_id)
    assert (again_report["equal"], again_report["different"]) == (
        report["equal"],
        report["different"],
    )
    return Drill(
        plan=plan,
        snapshot_id=snapshot.snapshot_id,
        report=report,
        killed_in=unanswered,
        stale=stale,
    )
