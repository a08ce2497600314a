from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from qbo_pipeline import entities
from qbo_pipeline.sandbox import shapes
from qbo_pipeline.sandbox.generator import generate_company
from qbo_pipeline.sandbox.reports import build_report
from qbo_pipeline.sandbox.simulate import ActivityLog, diff_fields, flatten, simulate_days
from qbo_pipeline.sandbox.store import SandboxStore
from tests.conftest import pinned_company

REALM = "4620816365000000002"

Snapshot = dict[tuple[str, str], dict[str, Any]]


def snapshot(store: SandboxStore) -> Snapshot:
    return {
        (e.name, shapes.record_id(e.name, r)): flatten(r)
        for e in entities.CATALOGUE
        for r in store.iter_records(REALM, e.name)
    }


def replay(before: Snapshot, log: ActivityLog) -> Snapshot:
    """Apply a log to a snapshot, checking every old value it claims."""
    state = {key: dict(fields) for key, fields in before.items()}
    for change in log:
        key = (change.entity, change.id)
        if change.action == "created":
            assert key not in state, key
            state[key] = {}
        current = state[key]
        for path, (old, new) in change.fields.items():
            assert current.get(path) == old, (key, path)
            if new is None:
                current.pop(path, None)
            else:
                current[path] = new
        if change.action == "deleted":
            assert current == {}, key
            del state[key]
    return state


@pytest.fixture
def store() -> SandboxStore:
    store = SandboxStore(":memory:")
    # Pinned in time: a company that follows the host's clock is another company every day
    # (its dates, so which documents are open), and so is the simulation over it.
    generate_company(store, REALM, seed=42, start=date(2025, 3, 3))
    return store


def test_the_log_turns_the_before_state_into_the_after_state_exactly(store: SandboxStore) -> None:
    before = snapshot(store)
    log = simulate_days(store, REALM, 12, seed=11, changes_per_day=15)
    after = snapshot(store)
    assert replay(before, log) == after
    assert after != before


def test_simulation_makes_every_kind_of_change(store: SandboxStore) -> None:
    log = simulate_days(store, REALM, 20, seed=5, changes_per_day=20)
    counts = log.counts()
    for key in [
        ("Invoice", "created"),
        ("Payment", "created"),
        ("Bill", "created"),
        ("BillPayment", "created"),
        ("Purchase", "created"),
        ("JournalEntry", "created"),
        ("Customer", "created"),
        ("Customer", "updated"),
        ("Invoice", "updated"),
        ("Invoice", "voided"),
        ("Purchase", "deleted"),
        ("Customer", "deactivated"),
    ]:
        assert counts.get(key, 0) > 0, key
    assert sum(counts.values()) == len(log)


def test_changes_carry_field_paths_and_server_stamps(store: SandboxStore) -> None:
    log = simulate_days(store, REALM, 10, seed=3, changes_per_day=20)
    updates = [c for c in log if c.entity == "Customer" and c.action == "updated"]
    # A customer is also updated when its balance moves (an invoice or payment of its own).
    contact = next(c for c in updates if "PrimaryPhone.FreeFormNumber" in c.fields)
    old_token, new_token = contact.fields["SyncToken"]
    assert int(new_token) == int(old_token) + 1
    assert "MetaData.LastUpdatedTime" in contact.fields
    deleted = next(c for c in log if c.action == "deleted")
    assert store.get(REALM, deleted.entity, deleted.id) is None
    assert store.is_deleted(REALM, deleted.entity, deleted.id)
    voided = next(c for c in log if c.action == "voided")
    assert voided.fields["TotalAmt"][1] == 0


def test_simulation_moves_the_clock_and_keeps_books_balanced(store: SandboxStore) -> None:
    start = store.now(REALM)
    simulate_days(store, REALM, 7, seed=9)
    assert (store.now(REALM) - start).days == 7
    report = build_report(store, REALM, "TrialBalance", {"date_macro": "all"})
    total = report["Rows"]["Row"][-1]["Summary"]["ColData"]
    assert total[1]["value"] == total[2]["value"]


def test_same_seed_same_activity() -> None:
    logs = []
    for _ in range(2):
        store = SandboxStore(":memory:")
        pinned_company(store, REALM)
        logs.append([(c.entity, c.action, c.id) for c in simulate_days(store, REALM, 3, seed=4)])
    assert logs[0] == logs[1]


def test_bad_arguments_are_refused(store: SandboxStore) -> None:
    with pytest.raises(ValueError, match="days"):
        simulate_days(store, REALM, -1)
    with pytest.raises(ValueError, match="changes_per_day"):
        simulate_days(store, REALM, 1, changes_per_day=-2)
    assert simulate_days(store, REALM, 0) == []


def test_diff_fields_reports_added_removed_and_changed_paths() -> None:
    before = {"A": {"B": 1}, "Line": [{"Amount": 1}, {"Amount": 2}], "Gone": "x"}
    after = {"A": {"B": 2}, "Line": [{"Amount": 1}], "New": []}
    assert diff_fields(before, after) == {
        "A.B": (1, 2),
        "Gone": ("x", None),
        "Line[1].Amount": (2, None),
        "New": (None, []),
    }
    with pytest.raises(ValueError, match="unknown action"):
        ActivityLog().record("Invoice", "exploded", before | {"Id": "1"}, None)


def test_customer_ties_stay_counted_through_a_simulation(store: SandboxStore) -> None:
    import random

    from qbo_pipeline.sandbox import simulate

    ties = simulate.CustomerTies(store, REALM)
    assert ties.open_invoices()  # counted once, up front
    log = ActivityLog()
    day = simulate._Day(store, REALM, random.Random(3), log, "2026-06-01", ties)
    for action in ("invoice", "payment", "line_edit", "void", "deactivate") * 12:
        getattr(day, action)()
    assert {c.entity for c in log} >= {"Invoice", "Payment"}
    assert ties.open_invoices() == simulate.CustomerTies(store, REALM).open_invoices()
    for change in log:
        if change.entity == "Customer" and change.action == "deactivated":
            assert not ties.binding(change.id)


def test_a_parent_customer_is_never_deactivated_under_its_sub_customers(
    store: SandboxStore,
) -> None:
    jobs = [c for c in store.iter_records(REALM, "Customer") if c.get("ParentRef")]
    assert jobs, "the generated company has no sub-customers"
    # Many days of many changes: deactivations and contact changes on sub-customers meet.
    log = simulate_days(store, REALM, 20, seed=5, changes_per_day=40)
    parents = {str(j["ParentRef"]["value"]) for j in jobs}
    deactivated = {c.id for c in log if c.entity == "Customer" and c.action == "deactivated"}
    assert deactivated and not deactivated & parents


@pytest.mark.parametrize("seed", [4, 5])
def test_activity_goes_on_around_an_item_made_inactive(store: SandboxStore, seed: int) -> None:
    from qbo_pipeline.sandbox import incidents

    item = next(iter(incidents.deactivate_item(store, REALM))).id
    # Before, editing an invoice line that sold the inactive item failed with 610.
    log = simulate_days(store, REALM, 15, seed=seed, changes_per_day=40)
    assert len(log) > 300
    for change in log:
        if change.entity == "Invoice" and change.action in ("created", "updated"):
            invoice = store.get(REALM, "Invoice", change.id)
            if invoice is None or change.action == "updated":
                continue
            refs = [
                (line.get("SalesItemLineDetail") or {}).get("ItemRef", {}).get("value")
                for line in invoice.get("Line") or ()
            ]
            assert item not in refs, change.id
