"""Disaster recovery drill (#20): a snapshot rebuilt inside a brand-new company.

Everything real: the embedded sandbox over HTTP (the generated, pinned company and a new
company created the way QBO creates one, with its default accounts, terms and tax codes), the
client, run_backup into a lake in tmp_path, the plan beside the source's snapshots, an apply
SIGKILLed in another process and resumed, the verification against the snapshot's records and
its TrialBalance, ProfitAndLoss and BalanceSheet.
"""

from __future__ import annotations

import calendar
import shutil
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
import requests

from qbo_pipeline import entities
from qbo_pipeline.config import Settings
from qbo_pipeline.lake.catalogue import SnapshotInfo
from qbo_pipeline.lake.lake import Lake, RealmLake
from qbo_pipeline.qbo.connect import login_embedded, open_client
from qbo_pipeline.qbo.http import QBOClient
from qbo_pipeline.restore import remap
from qbo_pipeline.restore.apply import approve
from qbo_pipeline.restore.into_refs import foreign_references as remap_foreign
from qbo_pipeline.restore.model import Action
from qbo_pipeline.restore.run import apply_restore, plan_restore_into, verify_plan
from qbo_pipeline.restore.store import PlanStore, RestoreError
from qbo_pipeline.sandbox.server import SandboxServer
from tests.conftest import FullBackup
from tests.restore.into_drill import RETRY, batches_sent, rebuild_killed_and_rerun


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"QBO_DATA_DIR": str(tmp_path / "data"), "QBO_ENVIRONMENT": "embedded"}


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


@pytest.fixture
def source(sandbox: SandboxServer, settings: Settings) -> Iterator[QBOClient]:
    realm_id = login_embedded(settings, sandbox.base_url, realm_hint=sandbox.realm_ids[0])[0]
    with open_client(settings, realm_id, api_base=sandbox.base_url, retry=RETRY) as qbo:
        yield qbo


@pytest.fixture
def realm(source: QBOClient, settings: Settings) -> RealmLake:
    return Lake(settings.lake_url).realm(source.realm_id)


@pytest.fixture
def snapshot(full_backup: FullBackup, realm: RealmLake) -> SnapshotInfo:
    """The source's full backup in this test's lake (a copy of :func:`full_backup`'s)."""
    return full_backup.copy_to(realm)


def new_company(sandbox: SandboxServer, **body: Any) -> str:
    """A new company created through the sandbox's admin endpoint, as QBO creates one."""
    answer = requests.post(f"{sandbox.base_url}/_sandbox/realms", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["realmId"])


@pytest.fixture
def target(sandbox: SandboxServer, settings: Settings, source: QBOClient) -> Iterator[QBOClient]:
    multicurrency = bool(
        (source.preferences().get("CurrencyPrefs") or {}).get("MultiCurrencyEnabled")
    )
    realm_id = new_company(sandbox, country="US", multicurrency=multicurrency)
    assert login_embedded(settings, sandbox.base_url, realm_hint=realm_id) == [realm_id]
    with open_client(settings, realm_id, api_base=sandbox.base_url, retry=RETRY) as qbo:
        yield qbo


@contextmanager
def another_new_company(
    sandbox: SandboxServer, settings: Settings, multicurrency: bool, country: str = "US"
) -> Iterator[QBOClient]:
    """A client of one more new company of the sandbox (US unless ``country`` says)."""
    realm_id = new_company(sandbox, country=country, multicurrency=multicurrency)
    assert login_embedded(settings, sandbox.base_url, realm_hint=realm_id) == [realm_id]
    with open_client(settings, realm_id, api_base=sandbox.base_url, retry=RETRY) as qbo:
        yield qbo


def test_plan_into_maps_defaults_and_creates_the_rest(source, target, realm, snapshot):
    planned = plan_restore_into(target, realm, snapshot=snapshot.snapshot_id)
    plan = planned.plan
    assert plan.into and plan.realm_id == target.realm_id
    assert plan.source_realm_id == source.realm_id
    steps = {(s.entity, s.old_id): s for s in plan.steps}
    # Every record of the snapshot has exactly one main step: nothing is matched by id.
    for name in ("Customer", "Invoice", "Payment", "Attachable"):
        ids = {p["Id"] for p in realm.iter_payloads(snapshot.snapshot_id, name)}
        assert ids and ids <= {old for (e, old) in steps if e == name}
        assert {steps[(name, i)].action for i in ids} <= {Action.CREATE, Action.UNSUPPORTED}
    # Defaults of the new company are mapped by name and type instead of duplicated.
    mapped = [
        s for s in plan.steps if s.entity == "Account" and s.action in (Action.MAP, Action.UPDATE)
    ]
    assert mapped, "no default account was matched"
    for step in mapped:
        assert plan.id_map[f"Account:{step.old_id}"] == step.live_id
    # What the API cannot write is listed with what to do.
    for step in plan.steps:
        if step.entity in ("TaxPayment", "ReimburseCharge"):
            assert step.action is Action.UNSUPPORTED and "by hand" in step.reason
    # Dependencies come first: a payment after the invoices it pays.
    number = {(s.entity, s.old_id): s.number for s in plan.steps}
    for step in plan.steps:
        if step.entity == "Payment" and step.action is Action.CREATE:
            for line in (step.payload or {}).get("Line", []):
                for link in line.get("LinkedTxn", []):
                    if link["TxnType"] == "Invoice":
                        assert number[("Invoice", link["TxnId"])] < step.number
    # The plan is stored beside the source's snapshots, and loads back.
    assert PlanStore.for_realm(realm).load(plan.plan_id).realm_id == target.realm_id


def test_into_its_own_company_is_refused(source, realm, snapshot):
    with pytest.raises(RestoreError, match="the snapshot's own company"):
        plan_restore_into(source, realm, snapshot=snapshot.snapshot_id)


def test_drill_rebuilds_the_company_killed_mid_apply_and_rerun_writes_nothing(
    source, target, realm, sandbox, env
):
    """The drill on the pinned company, killed in its batches a third of the way."""
    rebuild_killed_and_rerun(source, target, realm, sandbox, env, kill_at=1 / 3, min_writes=100)


def test_cli_plan_into_apply_and_status(sandbox_template: Path, tmp_path: Path):
    from typer.testing import CliRunner

    from qbo_pipeline.cli import app
    from qbo_pipeline.sandbox.new_company import create_new_company
    from qbo_pipeline.sandbox.server import realm_id_for
    from qbo_pipeline.sandbox.store import SandboxStore

    env = {"QBO_DATA_DIR": str(tmp_path / "data"), "QBO_ENVIRONMENT": "embedded", "COLUMNS": "200"}
    settings = Settings.from_env(env)
    settings.sandbox_state_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sandbox_template, settings.sandbox_state_path)
    store = SandboxStore(settings.sandbox_state_path)
    try:
        into = create_new_company(store).realm_id
    finally:
        store.close()
    source_id = realm_id_for(0)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args), env=env)
        assert result.exit_code == code, result.output
        return result.output

    run("backup", "--realm", source_id, "--full")
    lake = Lake(settings.lake_url).realm(source_id)
    snapshot = lake.latest().snapshot_id
    refused = run(
        "restore", "plan", "--snapshot", "latest", "--into", into, "--records", "Term:1", code=2
    )
    assert "--into rebuilds whole entities" in refused
    planned = run(
        "restore",
        "plan",
        "--snapshot",
        "latest",
        "--realm",
        source_id,
        "--into",
        into,
        "--entity",
        "Customer",
    )
    assert f"into company {into}" in planned
    plan_id = next(word for word in planned.split() if word.startswith(snapshot + "-")).strip(".:")
    plan = PlanStore.for_realm(lake).load(plan_id)
    customers = sum(1 for _ in lake.iter_payloads(snapshot, "Customer"))
    assert sum(1 for s in plan.steps if s.entity == "Customer") == customers

    applied = run("restore", "apply", plan_id, "--approve", "--no-verify")
    assert "approved by" in applied and "done" in applied
    status = PlanStore.for_realm(lake).status(plan_id) or {}
    done = {e["state"] for e in status["steps"].values()}
    assert done <= {"done", "skipped"}
    assert sum(1 for k in status["id_map"] if k.startswith("Customer:")) == customers

    # A rerun writes nothing and verifies: the customers match, the books cannot (only the
    # customers were rebuilt), and the command says which report differs, and exits 1.
    checked = run("restore", "apply", plan_id, code=1)
    # With the customers, the tax code they name (California), its rate and agency (#20).
    created = sum(1 for s in plan.steps if s.action is Action.CREATE)
    assert created == customers + 3
    assert f"{created:,} of {created:,} records match the snapshot" in checked
    assert "TrialBalance:" in checked and "row(s) differ" in checked
    assert "TrialBalance at each month end:" in checked and "month ends differ" in checked
    assert "records or books differ from the snapshot" in checked

    # The warehouse publishes the id map (old id, new id, entity, restore, companies).
    run("warehouse", "build")
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        published = con.execute(
            "select entity, old_id, new_id, source_realm_id, target_realm_id, mapped_at "
            "from restore.id_map where restore_id = ?",
            [plan_id],
        ).fetchall()
    finally:
        con.close()
    created = {(e, old): new for e, old, new, *_ in published}
    # Plan-time mappings (by name, or a tax code sent as the company's code without tax) and
    # the apply's new ids.
    want = {**plan.id_map, **status["id_map"]}
    assert {f"{e}:{old}": new for (e, old), new in created.items()} == want
    assert {(src, dst) for *_, src, dst, _ in published} == {(source_id, into)}


def test_an_in_place_restore_publishes_its_id_map(source, realm, sandbox, tmp_path, snapshot):
    from qbo_pipeline.restore.id_maps import id_map_rows
    from qbo_pipeline.restore.run import plan_restore
    from qbo_pipeline.restore.scope import Scope

    invoice = next(iter(realm.iter_payloads(snapshot.snapshot_id, "Invoice")))
    entity = entities.ENTITIES["Invoice"]
    live = source.read(entity, invoice["Id"])
    source.delete(entity, live["Id"], live["SyncToken"], request_id="test-delete-1")
    planned = plan_restore(
        source,
        realm,
        snapshot=snapshot.snapshot_id,
        scope=Scope.parse(records=[f"Invoice:{invoice['Id']}"]),
        incident="latest",
    )
    approve(PlanStore.for_realm(realm), planned.plan.plan_id, name="drill")
    apply_restore(source, realm, planned.plan.plan_id, verify=False)
    rows = [
        r
        for r in id_map_rows(str(realm.fs.url(realm.fs.root)))
        if r["restore_id"] == planned.plan.plan_id
    ]
    mine = [r for r in rows if (r["entity"], r["old_id"]) == ("Invoice", invoice["Id"])]
    assert len(mine) == 1 and mine[0]["new_id"] != invoice["Id"]
    assert mine[0]["source_realm_id"] == mine[0]["target_realm_id"] == source.realm_id
    assert mine[0]["mapped_at"] == "apply"


def test_batched_apply_sends_a_fraction_of_the_requests_for_the_same_records(
    source, realm, sandbox, settings, snapshot
):
    store = PlanStore.for_realm(realm)
    multicurrency = bool(
        (source.preferences().get("CurrencyPrefs") or {}).get("MultiCurrencyEnabled")
    )
    calls: dict[bool, dict[str, int]] = {}
    counts: dict[bool, dict[str, int]] = {}
    for batch in (False, True):
        with another_new_company(sandbox, settings, multicurrency) as target:
            plan = plan_restore_into(target, realm, snapshot=snapshot.snapshot_id).plan
            approve(store, plan.plan_id, name="bench")
            before = target.calls_by_topic()
            result, _ = apply_restore(
                target, realm, plan.plan_id, verify=False, workers=4, batch=batch
            )
            assert result.complete, [s for s in result.steps if s.state == "failed"][:5]
            after = target.calls_by_topic()
            calls[batch] = {k: after.get(k, 0) - before.get(k, 0) for k in after}
            counts[batch] = {
                name: target.count(entities.ENTITIES[name])
                for name in ("Customer", "Invoice", "Payment", "Bill", "JournalEntry")
            }
    assert counts[True] == counts[False]
    one_by_one, batched = sum(calls[False].values()), sum(calls[True].values())
    assert calls[True]["batch"] > 0 and "batch" not in calls[False]
    assert batched * 3 < one_by_one, (calls[False], calls[True])


def test_a_faulted_batch_item_fails_only_its_step(source, target, realm, snapshot):
    plan = plan_restore_into(target, realm, snapshot=snapshot.snapshot_id, entities=("Customer",))
    plan = plan.plan
    store = PlanStore.for_realm(realm)
    approve(store, plan.plan_id, name="drill")
    creates = [s for s in plan.steps if s.entity == "Customer" and s.action is Action.CREATE]
    taken = next(s for s in creates if (s.payload or {}).get("Active", True))
    # A vendor took the customer's name after planning: names are shared, QBO answers 6240.
    vendor = target.create(
        entities.ENTITIES["Vendor"], {"DisplayName": taken.name}, request_id="drill-vendor-1"
    )
    result, _ = apply_restore(target, realm, plan.plan_id, verify=False, workers=1)
    states = {s.number: s for s in result.steps}
    assert states[taken.number].state == "failed"
    assert (states[taken.number].fault or {}).get("code") == "6240"
    others = [states[s.number] for s in creates if s.number != taken.number]
    assert others and all(s.state in ("done", "skipped") for s in others)
    assert sum(s.state == "done" for s in others) > len(others) // 2
    assert batches_sent(store, plan.plan_id)

    # Once the name is free again, a rerun creates the one customer that failed.
    target.update(
        entities.ENTITIES["Vendor"],
        {"Id": vendor["Id"], "SyncToken": vendor["SyncToken"], "DisplayName": "Someone else"},
        sparse=True,
        request_id="drill-vendor-2",
    )
    again, _ = apply_restore(target, realm, plan.plan_id, verify=False, workers=1)
    assert {s.number: s.state for s in again.steps}[taken.number] == "done"


def test_a_us_snapshot_planned_into_a_canadian_company_reports_its_tax_codes(
    source, realm, sandbox, settings, snapshot
):
    assert source.company_info().get("Country") == "US"
    realm_id = new_company(sandbox, country="CA", multicurrency=True)
    assert login_embedded(settings, sandbox.base_url, realm_hint=realm_id) == [realm_id]
    with open_client(settings, realm_id, api_base=sandbox.base_url, retry=RETRY) as canadian:
        plan = plan_restore_into(canadian, realm, snapshot=snapshot.snapshot_id).plan
        codes = canadian.query("select * from TaxCode")["TaxCode"]
    [out_of_scope] = [c["Id"] for c in codes if c["Name"] == "Out of Scope"]
    [note] = [n for n in plan.notes if "sales tax does not carry over" in n]
    assert "in US and this one in CA" in note and "by hand" in note
    assert "'Out of Scope'" in note
    # No payload sends an id of the US company the id map does not map (#20: Canadian tax
    # codes 3 to 7 share ids with the snapshot's), and every US tax code a created
    # transaction uses goes to Out of Scope, which the transaction says.
    assert remap_foreign(plan) == []
    used: Counter[str] = Counter()
    for step in plan.steps:
        entity = entities.ENTITIES[step.entity]
        if step.action is not Action.CREATE or entity.kind is not entities.Kind.TRANSACTION:
            continue
        lines = {
            site.target_id
            for site in remap.reference_sites(entity, step.payload or {})
            if site.target == "TaxCode"
        }
        for code in lines:
            assert plan.id_map[f"TaxCode:{code}"] == out_of_scope, code
            assert "do not exist in a CA company" in step.reason, step.reason
        used.update(lines)
        if "TxnTaxDetail.TaxLine" in step.departs:
            assert "sales tax:" in step.reason and "TaxLine" not in step.payload["TxnTaxDetail"]
    assert used["NON"]  # the generated company's lines: NON (its sales carry no tax)
    for code, count in used.items():
        assert f"{code} ({count})" in note
    # The US tax codes themselves are not written: the API cannot create tax codes.
    for step in plan.steps:
        if step.entity == "TaxCode":
            assert step.action is Action.UNSUPPORTED and "by hand" in step.reason, step
    # A US target gets no such note, and no foreign id either.
    with another_new_company(sandbox, settings, multicurrency=True) as american:
        us_plan = plan_restore_into(american, realm, snapshot=snapshot.snapshot_id).plan
    assert not any("sales tax does not carry over" in n for n in us_plan.notes)
    assert remap_foreign(us_plan) == []


def test_the_new_company_s_trial_balance_equals_the_snapshot_s_ledger_at_every_month_end(
    source, target, realm, tmp_path, snapshot
):
    plan = plan_restore_into(target, realm, snapshot=snapshot.snapshot_id).plan
    approve(PlanStore.for_realm(realm), plan.plan_id, name="drill")
    result, _ = apply_restore(target, realm, plan.plan_id, verify=False)
    assert result.complete
    report = verify_plan(target, realm, plan.plan_id, warehouse=tmp_path / "warehouse.duckdb")
    months = report["periods"]
    # The pinned company's books are 2024's: one trial balance per month end.
    assert [m["end"] for m in months] == [
        f"2024-{month:02d}-{calendar.monthrange(2024, month)[1]:02d}" for month in range(1, 13)
    ]
    assert report["periods_unexplained"] == 0, [m["differences"] for m in months][:3]
    [tax_payment] = [t for t in report["not_written"] if t["entity"] == "TaxPayment"]
    for month in months:
        assert month["equal"] > 10
        for difference in month["differences"]:
            if "could not write" in difference["why"]:
                # Named only from the month the unwritten payment is dated in.
                assert tax_payment["date"] <= month["end"]
                assert f"TaxPayment {tax_payment['old_id']}" in difference["why"]
            else:
                assert "the model's gap, not the restore's" in difference["why"]
    named = [
        m["end"] for m in months if any("could not write" in d["why"] for d in m["differences"])
    ]
    assert named and min(named) >= tax_payment["date"]


def test_creates_go_one_by_one_while_the_batch_budget_is_spent(source, target, realm, snapshot):
    from qbo_pipeline.qbo.limiter import RealmLimiter

    plan = plan_restore_into(target, realm, snapshot=snapshot.snapshot_id).plan
    store = PlanStore.for_realm(realm)
    approve(store, plan.plan_id, name="drill")
    # A batch budget of 3 a minute (QBO's is 40): the rest of the writes may not wait for it.
    target.batch_limiter = RealmLimiter(per_minute=3, max_in_flight=9, window=3600)
    before = target.calls_by_topic()
    result, _ = apply_restore(target, realm, plan.plan_id, verify=False, workers=1)
    assert result.complete
    calls = {k: v - before.get(k, 0) for k, v in target.calls_by_topic().items()}
    assert calls["batch"] == 3
    assert sum(calls.values()) - calls["batch"] > 100  # the others went one by one
    for name in ("Customer", "Invoice", "Payment"):
        want = sum(1 for _ in realm.iter_payloads(snapshot.snapshot_id, name))
        assert target.count(entities.ENTITIES[name]) == want, name


class _Killed(BaseException):
    """The apply's process dying right after a batch request went out."""


def test_a_batch_killed_unanswered_is_resent_whole_once(
    source, target, realm, monkeypatch, snapshot
):
    """Regression (#20, fixed in 7a6f6f7): a resumed apply resent a killed batch in pieces
    under its one request id (the drill's batch of 30 as 20, 2, 4, 1 and 3; this one's 6 as 3,
    2 and 1 after the first send): the steps an earlier run did were released one at a time."""
    plan = plan_restore_into(
        target, realm, snapshot=snapshot.snapshot_id, entities=("Customer",)
    ).plan
    store = PlanStore.for_realm(realm)
    approve(store, plan.plan_id, name="drill")
    sends: list[tuple[str, int]] = []
    batch = target.batch

    def send_then_die(items: list[dict[str, Any]], *, request_id: str) -> Any:
        sends.append((request_id, len(items)))
        answer = batch(items, request_id=request_id)
        if len(sends) == 2:
            raise _Killed
        return answer

    monkeypatch.setattr(target, "batch", send_then_die)
    with pytest.raises(_Killed):
        apply_restore(target, realm, plan.plan_id, verify=False, workers=1)
    killed_id, size = sends[-1]
    monkeypatch.undo()
    result, _ = apply_restore(target, realm, plan.plan_id, verify=False, workers=1)
    assert result.complete
    resent = [
        len(line["steps"])
        for line in (
            orjson.loads(b)
            for b in Path(store.location(plan.plan_id, "audit.jsonl")).read_bytes().splitlines()
        )
        if line["event"] == "request" and line.get("request_id") == killed_id
    ]
    assert resent == [size, size]
