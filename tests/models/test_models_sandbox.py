"""The models over real sandbox snapshots: the diff is what happened, as-of is the manifest.

One module fixture snapshots the sandbox, simulates days of activity and three incidents (a bulk
delete of invoices, a bad customer import, an item deactivated), snapshots again and builds the
warehouse. The sandbox's ActivityLog is the independent record of what changed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from qbo_pipeline import entities
from qbo_pipeline.backup import run_backup
from qbo_pipeline.config import Settings
from qbo_pipeline.lake.lake import Lake, RealmLake
from qbo_pipeline.models.diff import compute_diff
from qbo_pipeline.models.warehouse import build_warehouse, connect
from qbo_pipeline.qbo.connect import login_embedded, open_client
from qbo_pipeline.sandbox import openid
from qbo_pipeline.sandbox.server import SandboxServer
from qbo_pipeline.sandbox.simulate import ActivityLog, Change
from tests.conftest import build_pinned_state

SYSTEM_FIELDS = ("MetaData", "SyncToken")
WANTED_ACTIONS = {"created", "updated", "deleted", "voided", "deactivated"}


@dataclass
class Run:
    realm: RealmLake
    log: ActivityLog
    incidents: dict[str, ActivityLog]
    snapshots: list[str]
    warehouse: Path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("models-sandbox")
    state = root / "sandbox.sqlite3"
    # The simulation's choices depend on the company's dates: pin them, so that the same
    # activity (every kind of change surviving into the diff) happens whatever the day.
    build_pinned_state(state)
    server = SandboxServer(state, realms=1)
    server.start()
    try:
        settings = Settings.from_env(
            {"QBO_DATA_DIR": str(root / "data"), "QBO_ENVIRONMENT": "embedded"}
        )
        realm_id = login_embedded(settings, server.base_url, realm_hint=server.realm_ids[0])[0]
        with open_client(settings, realm_id, api_base=server.base_url) as client:
            realm = Lake(settings.lake_url).realm(realm_id)
            first = run_backup(client, realm, mode="full")
            log, incidents = _activity(server, realm_id)
            second = run_backup(client, realm, mode="incremental")
    finally:
        server.stop()
    warehouse = root / "warehouse.duckdb"
    build_warehouse(settings.lake_url, warehouse)
    yield Run(
        realm=realm,
        log=log,
        incidents=incidents,
        snapshots=[first.snapshot.snapshot_id, second.snapshot.snapshot_id],
        warehouse=warehouse,
    )


def _activity(server: SandboxServer, realm_id: str) -> tuple[ActivityLog, dict[str, ActivityLog]]:
    """Days of activity (until every kind of change happened at least once), then incidents."""
    assert server.store is not None
    log = ActivityLog()
    for _ in range(12):
        log += server.simulate(1, realm_id=realm_id, changes_per_day=12)
        if WANTED_ACTIONS <= {c.action for c in log}:
            break
    invoices = list(server.store.iter_records(realm_id, "Invoice"))
    dates = sorted(p["TxnDate"] for p in invoices)
    # The bulk delete spans eight invoice dates but none of a voided invoice's: deleted again,
    # the void would not survive into the diff.
    voided = {c.id for c in log if c.entity == "Invoice" and c.action == "voided"}
    keep = {p["TxnDate"] for p in invoices if p["Id"] in voided}
    first = next(
        i
        for i in range(5, len(dates) - 7)
        if not any(dates[i] <= day <= dates[i + 7] for day in keep)
    )
    incidents = {
        "bulk_delete_invoices": server.incident(
            "bulk_delete_invoices", realm_id=realm_id, start=dates[first], end=dates[first + 7]
        ),
        "bad_import_customers": server.incident("bad_import_customers", realm_id=realm_id),
        "deactivate_item": server.incident("deactivate_item", realm_id=realm_id),
    }
    for incident in incidents.values():
        assert incident, "every incident must change something"
        log += incident
    return log, incidents


def _top(path: str) -> str:
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def _text(value: Any) -> str | None:
    """A log value as the diff writes it: strings bare, everything else as JSON text."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _change(old: Any, new: Any) -> str:
    """The diff's kind of field change for a log entry (None: the path is absent there)."""
    if old is None:
        return "added"
    return "removed" if new is None else "modified"


def expected_diff(
    log: ActivityLog,
) -> dict[tuple[str, str], tuple[str, dict[str, tuple[str, str | None, str | None]]]]:
    """The net effect of a log per record: the diff's action and its non-system field changes.

    Several changes to one record compose: created then deleted is no change at all, created
    then edited is added, edited then deleted is deleted; otherwise each path keeps its first old
    and last new value, and unchanged paths drop out.
    """
    by_record: dict[tuple[str, str], list[Change]] = {}
    for change in log:
        by_record.setdefault((change.entity, change.id), []).append(change)
    expected = {}
    for key, changes in by_record.items():
        created = changes[0].action == "created"
        deleted = changes[-1].action == "deleted"
        if created and deleted:
            continue
        if created or deleted:
            expected[key] = ("added" if created else "deleted", {})
            continue
        fields: dict[str, tuple[Any, Any]] = {}
        for change in changes:
            for path, (old, new) in change.fields.items():
                if _top(path) not in SYSTEM_FIELDS:
                    fields[path] = (fields[path][0] if path in fields else old, new)
        fields = {p: v for p, v in fields.items() if v[0] != v[1]}
        active = fields.get("Active")
        if active == (True, False):
            action = "deactivated"
        elif active == (False, True):
            action = "reactivated"
        elif any(c.action == "voided" for c in changes):
            action = "voided"
        else:
            action = "changed"
        expected[key] = (
            action,
            {p: (_change(o, n), _text(o), _text(n)) for p, (o, n) in fields.items()},
        )
    return expected


def test_models_sandbox_diff_equals_the_activity_log(run: Run) -> None:
    assert WANTED_ACTIONS <= {c.action for c in run.log}, "the simulation must cover every action"
    old, new = run.snapshots
    with connect(run.warehouse, read_only=True) as con:
        diff = compute_diff(con, old, new)
    actual = {
        (c.entity, c.record_id): (
            c.action,
            {f.path: (f.change, f.old_value, f.new_value) for f in c.fields},
        )
        for c in diff.changes
    }
    expected = expected_diff(run.log)
    assert set(actual) == set(expected)
    for key, (action, fields) in expected.items():
        assert actual[key][0] == action, key
        assert actual[key][1] == fields, key
    # Every kind of change made it through, and so did every record the incidents touched.
    assert {"added", "changed", "deleted", "voided", "deactivated"} <= {
        action for action, _ in actual.values()
    }
    deleted = {(c.entity, c.id) for c in run.incidents["bulk_delete_invoices"]}
    assert {actual[k][0] for k in deleted if k in expected} <= {"deleted", "changed"}
    assert sum(actual[k][0] == "deleted" for k in deleted if k[0] == "Invoice") >= 1
    imported = {(c.entity, c.id) for c in run.incidents["bad_import_customers"]}
    assert len(imported) == 10 and imported <= set(actual)
    (item,) = {(c.entity, c.id) for c in run.incidents["deactivate_item"]}
    assert actual[item][0] == "deactivated"
    assert actual[item][1]["Name"][2].endswith(" (deleted)")


def test_models_sandbox_changes_name_who_changed_invoices_bills_and_orders(run: Run) -> None:
    # The sandbox names the writer in MetaData.LastModifiedByRef where QBO does (the
    # simulation writes as the app's user); deletions and other entities name nobody.
    old, new = run.snapshots
    with connect(run.warehouse, read_only=True) as con:
        rows = con.execute(
            "select entity, action, changed_by from changes(?, ?)", [old, new]
        ).fetchall()
    named = {e.name for e in entities.CATALOGUE if e.names_modifier}
    written = [r for r in rows if r[0] in named and r[1] != "deleted"]
    assert {r[0] for r in written} >= {"Invoice"} and {r[1] for r in written} >= {"changed"}
    assert {r[2] for r in written} == {openid.APP_USER_ID}
    assert {r[2] for r in rows if r not in written} == {None}


def test_models_sandbox_as_of_equals_the_manifest(run: Run) -> None:
    with connect(run.warehouse, read_only=True) as con:
        for sid in run.snapshots:
            for entity in ("Invoice", "Customer", "Payment", "Item", "Deposit", "Attachable"):
                manifest = run.realm.manifest(sid, [entity])
                expected = set(
                    zip(
                        manifest["id"].to_pylist(),
                        manifest["content_hash"].to_pylist(),
                        strict=True,
                    )
                )
                rows = con.execute(
                    "select id, content_hash from as_of(?, ?)", [entity, sid]
                ).fetchall()
                assert expected, (sid, entity)
                assert set(rows) == expected, (sid, entity)
                assert len(rows) == len(expected)
            everything = con.execute("select count(*) from as_of('*', ?)", [sid]).fetchone()[0]
            assert everything == run.realm.manifest(sid).num_rows


def _mismatches(con: duckdb.DuckDBPyConnection, sid: str) -> list[tuple[Any, ...]]:
    return con.execute(
        "select account_id, account_name, computed_balance, reported_balance "
        "from marts.trial_balance_check where snapshot_id = ? and not is_matching",
        [sid],
    ).fetchall()


def test_models_sandbox_trial_balance_matches_the_report(run: Run) -> None:
    with connect(run.warehouse, read_only=True) as con:
        for sid in run.snapshots:
            report = run.realm.report(sid, "TrialBalance")
            assert report is not None
            accounts = con.execute(
                "select count(*) from marts.trial_balance_check where snapshot_id = ?", [sid]
            ).fetchone()[0]
            reported = sum(1 for row in report["Rows"]["Row"] if "ColData" in row)
            assert accounts >= reported > 10
            assert _mismatches(con, sid) == []
            debit, credit, unassigned = con.execute(
                "select sum(debit), sum(credit), count(*) filter (where account_id is null) "
                "from marts.trial_balance where snapshot_id = ?",
                [sid],
            ).fetchone()
            assert debit == credit > Decimal(0)
            assert unassigned == 0
