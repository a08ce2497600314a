"""The planner's rules on an in-memory company: actions, order, references, conflicts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from qbo_pipeline.restore.model import Action, Phase, Plan
from qbo_pipeline.restore.plan import PlanRequest, build_plan
from qbo_pipeline.restore.scope import Scope
from tests.restore.conftest import DictLake, DictLive

S1 = "20260401T000000.000000Z"
S2 = "20260501T000000.000000Z"


def plan_for(
    snapshot: dict, live: dict, scope: Scope, *, latest: dict | None = None, **kw: Any
) -> Plan:
    snaps = {S1: snapshot}
    if latest is not None:
        snaps[S2] = latest
    lake = DictLake(snaps)
    req = PlanRequest(
        realm_id="123",
        snapshot_id=S1,
        latest_snapshot_id=S2 if latest is not None else S1,
        scope=scope,
        **kw,
    )
    return build_plan(DictLive(live), lake, req)


def steps_by_key(plan: Plan) -> dict[tuple[str, str, str], Any]:
    return {(s.entity, s.old_id, s.action.value): s for s in plan.steps}


def test_deleted_invoices_payment_and_deposit_are_recreated_in_reference_order(small_company):
    live = copy.deepcopy(small_company)
    for key in [("Invoice", "130"), ("Invoice", "131"), ("Payment", "180"), ("Deposit", "200")]:
        del live[key]
    plan = plan_for(small_company, live, Scope.parse(everything=True), latest=live)
    order = [(s.entity, s.old_id, s.action) for s in plan.steps]
    assert order == [
        ("Invoice", "130", Action.CREATE),
        ("Invoice", "131", Action.CREATE),
        ("Payment", "180", Action.CREATE),
        ("Deposit", "200", Action.CREATE),
    ]
    pay = plan.steps[2]
    assert pay.depends_on == [1, 2]
    assert plan.steps[3].depends_on == [3]
    # Back-links are not sent: the payment re-creates the invoice links, the deposit the payment's.
    assert "LinkedTxn" not in plan.steps[0].payload
    assert "LinkedTxn" not in pay.payload
    assert pay.payload["Line"][0]["LinkedTxn"] == [{"TxnId": "130", "TxnType": "Invoice"}]
    # Fields QBO owns are stripped; line ids of a new record too.
    assert not {"Id", "SyncToken", "MetaData", "domain", "sparse", "Balance"} & set(
        plan.steps[0].payload
    )
    assert "Id" not in plan.steps[0].payload["Line"][0]
    summary = plan.summary()
    assert summary["create"] == 4 and summary["writes"] == 4 and summary["conflict"] == 0
    assert summary["identical"] == 6


def test_inactive_item_is_reactivated_for_the_invoice_and_deactivated_at_the_end(small_company):
    snapshot = copy.deepcopy(small_company)
    snapshot[("Item", "6")]["Active"] = False
    snapshot[("Item", "6")]["Name"] = "Pump (deleted)"
    live = copy.deepcopy(snapshot)
    del live[("Invoice", "131")]
    plan = plan_for(snapshot, live, Scope.parse(records=["Invoice:131"]), latest=live)
    actions = [(s.entity, s.old_id, s.action, s.phase) for s in plan.steps]
    assert actions == [
        ("Item", "6", Action.REACTIVATE, Phase.RESTORE),
        ("Invoice", "131", Action.CREATE, Phase.RESTORE),
        ("Item", "6", Action.DEACTIVATE, Phase.DEACTIVATE),
    ]
    reactivate, create, deactivate = plan.steps
    assert reactivate.sparse and reactivate.payload == {"Id": "6", "SyncToken": "0", "Active": True}
    assert create.depends_on == [1]
    assert set(deactivate.depends_on) == {1, 2}


def test_item_deactivated_by_an_incident_is_reactivated_with_its_name(small_company):
    live = copy.deepcopy(small_company)
    live[("Item", "5")].update(Active=False, Name="Rock Fountain (deleted)", SyncToken="1")
    plan = plan_for(small_company, live, Scope.parse(entity_names=["Item"]), latest=live)
    (step,) = plan.steps
    assert step.action is Action.REACTIVATE and not step.sparse
    assert step.payload["Name"] == "Rock Fountain" and step.payload["Active"] is True
    assert step.payload["Id"] == "5" and step.payload["SyncToken"] == "1"
    assert {c.path for c in step.changes} == {"Active", "Name"}


def test_parents_are_created_before_children(small_company):
    live = copy.deepcopy(small_company)
    del live[("Customer", "2")]
    live[("Customer", "1")]["Active"] = False  # an inactive parent must be made active too
    snapshot = copy.deepcopy(small_company)
    snapshot[("Customer", "3")] = {
        "Id": "3",
        "DisplayName": "Sub job",
        "Active": True,
        "ParentRef": {"value": "2"},
        "SyncToken": "0",
    }
    plan = plan_for(snapshot, live, Scope.parse(records=["Customer:3"]), latest=live)
    order = [(s.entity, s.old_id, s.action) for s in plan.steps]
    assert order == [
        ("Customer", "1", Action.REACTIVATE),
        ("Customer", "2", Action.CREATE),
        ("Customer", "3", Action.CREATE),
        ("Customer", "1", Action.DEACTIVATE),
    ]
    assert plan.steps[1].reason.startswith("needed by Customer 3")


def test_changed_record_is_reverted_with_field_changes(small_company):
    live = copy.deepcopy(small_company)
    live[("Customer", "1")].update(DisplayName="AMY BIRD (import)", SyncToken="3", Balance=999)
    plan = plan_for(small_company, live, Scope.parse(records=["Customer:1"]), latest=live)
    (step,) = plan.steps
    assert step.action is Action.UPDATE and step.conflict is None
    assert [(c.path, c.live, c.snapshot) for c in step.changes] == [
        ("DisplayName", "AMY BIRD (import)", "Amy's Bird Sanctuary")
    ]
    assert step.payload["SyncToken"] == "3" and step.payload["Id"] == "1"
    assert "Balance" not in step.payload


def test_change_no_snapshot_captured_is_a_conflict(small_company):
    live = copy.deepcopy(small_company)
    live[("Customer", "1")].update(
        DisplayName="Someone's later edit",
        SyncToken="4",
        MetaData={"LastUpdatedTime": "2026-05-04T10:00:00-07:00"},
    )
    # The latest snapshot is the target itself: the live edit exists in no snapshot.
    plan = plan_for(small_company, live, Scope.parse(records=["Customer:1"]))
    (step,) = plan.steps
    assert step.action is Action.UPDATE
    assert step.conflict and "SyncToken 0 -> 4" in step.conflict
    assert plan.summary()["conflict"] == 1


def test_identical_records_are_skipped(small_company):
    plan = plan_for(small_company, small_company, Scope.parse(records=["Invoice:130"]))
    (step,) = plan.steps
    assert step.action is Action.SKIP and step.reason == "identical to the snapshot"
    assert plan.summary()["writes"] == 0


def test_closed_period_and_read_only_entities_are_unsupported(small_company):
    snapshot = copy.deepcopy(small_company)
    snapshot[("TaxPayment", "9")] = {"Id": "9", "SyncToken": "0", "PaymentAmount": 5}
    live = copy.deepcopy(small_company)
    del live[("Invoice", "130")]
    lake = DictLake({S1: snapshot})
    dict_live = DictLive(live)
    dict_live.preferences = {"AccountingInfoPrefs": {"BookCloseDate": "2026-04-30"}}
    req = PlanRequest(
        realm_id="1",
        snapshot_id=S1,
        latest_snapshot_id=S1,
        scope=Scope.parse(records=["Invoice:130", "TaxPayment:9"]),
    )
    plan = build_plan(dict_live, lake, req)
    by = {(s.entity, s.old_id): s for s in plan.steps}
    assert by[("Invoice", "130")].action is Action.UNSUPPORTED
    assert "closed period" in by[("Invoice", "130")].reason
    assert by[("TaxPayment", "9")].action is Action.UNSUPPORTED
    assert "read-only" in by[("TaxPayment", "9")].reason
    assert plan.book_close_date == "2026-04-30"


def test_reference_to_a_record_nowhere_blocks_the_step(small_company):
    snapshot = copy.deepcopy(small_company)
    snapshot[("Invoice", "140")] = {
        "Id": "140",
        "SyncToken": "0",
        "CustomerRef": {"value": "77"},
        "Line": [],
    }
    plan = plan_for(snapshot, small_company, Scope.parse(records=["Invoice:140"]))
    (step,) = plan.steps
    assert step.action is Action.UNSUPPORTED
    assert "Customer 77" in step.reason and step.payload is None


def test_gone_name_list_record_maps_to_live_record_of_the_same_name(small_company):
    snapshot = copy.deepcopy(small_company)
    snapshot[("Customer", "50")] = {
        "Id": "50",
        "SyncToken": "0",
        "DisplayName": "Amy's Bird Sanctuary",
    }
    plan = plan_for(snapshot, small_company, Scope.parse(records=["Customer:50"]))
    (step,) = plan.steps
    assert step.action is Action.MAP
    assert plan.id_map == {"Customer:50": "1"}


def test_records_created_after_the_snapshot_are_left_alone_unless_asked(small_company):
    live = copy.deepcopy(small_company)
    live[("Invoice", "300")] = {
        "Id": "300",
        "SyncToken": "0",
        "CustomerRef": {"value": "1"},
        "Line": [],
        "TxnDate": "2026-05-01",
    }
    live[("Customer", "60")] = {
        "Id": "60",
        "SyncToken": "0",
        "DisplayName": "Junk import",
        "Active": True,
    }
    scope = Scope.parse(everything=True)
    kept = plan_for(small_company, live, scope, latest=live)
    assert kept.steps == []
    assert any("created after the snapshot" in n for n in kept.notes)
    removed = plan_for(small_company, live, scope, latest=live, remove_new=True)
    by = {(s.entity, s.old_id): s for s in removed.steps}
    assert by[("Invoice", "300")].action is Action.DELETE
    assert by[("Invoice", "300")].phase is Phase.REMOVE
    assert by[("Customer", "60")].action is Action.DEACTIVATE
    assert removed.steps[0].entity == "Invoice"  # removals run first
    assert by[("Invoice", "300")].conflict is None  # the latest snapshot knew it


def test_note_when_a_recreated_invoice_was_paid_by_a_payment_out_of_scope(small_company):
    live = copy.deepcopy(small_company)
    del live[("Invoice", "130")]
    del live[("Payment", "180")]
    plan = plan_for(small_company, live, Scope.parse(entity_names=["Invoice"]), latest=live)
    assert [s.action for s in plan.steps] == [Action.CREATE]
    assert any("Payment:180" in note for note in plan.notes)


def test_plan_round_trips_through_json_and_has_a_sortable_id(small_company):
    live = copy.deepcopy(small_company)
    del live[("Invoice", "130")]
    plan = plan_for(small_company, live, Scope.parse(records=["Invoice:130"]), latest=live)
    assert plan.plan_id.startswith(S1 + "-")
    again = Plan.from_json(plan.to_json())
    assert again.to_json() == plan.to_json()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "say what to restore"),
        ({"records": ["Invoice:1"], "everything": True}, "choose one scope"),
        ({"records": ["Invoice"]}, "is not Entity:Id"),
        ({"records": ["Nope:1"]}, "unknown QBO entity"),
        ({"records": ["Invoice:1' OR '1'='1"]}, "is not a QBO id"),
        ({"entity_names": ["Bogus"]}, "unknown QBO entity"),
    ],
)
def test_bad_scopes_are_refused_with_the_reason(kwargs, message):
    from qbo_pipeline.restore.scope import ScopeError

    with pytest.raises(ScopeError, match=message):
        Scope.parse(**kwargs)


def test_changed_since_covers_what_changed_between_two_snapshots(small_company):
    later = copy.deepcopy(small_company)
    later[("Customer", "1")].update(DisplayName="Renamed", SyncToken="1")
    del later[("Invoice", "131")]
    lake = DictLake({S1: small_company, S2: later})
    req = PlanRequest(
        realm_id="1",
        snapshot_id=S1,
        latest_snapshot_id=S2,
        scope=Scope.parse(changed_since=S1),
    )
    plan = build_plan(DictLive(later), lake, req)
    assert [(s.entity, s.old_id, s.action) for s in plan.steps] == [
        ("Customer", "1", Action.UPDATE),
        ("Invoice", "131", Action.CREATE),
    ]
    assert plan.scope["kind"] == "changed_since" and plan.identical == {}


def test_an_identical_but_inactive_record_in_scope_is_reactivated_for_its_referrer(small_company):
    snapshot = copy.deepcopy(small_company)
    snapshot[("Item", "6")].update(Active=False, Name="Pump (deleted)")
    live = copy.deepcopy(snapshot)
    del live[("Invoice", "131")]
    plan = plan_for(snapshot, live, Scope.parse(records=["Item:6", "Invoice:131"]), latest=live)
    assert [(s.entity, s.action) for s in plan.steps] == [
        ("Item", Action.REACTIVATE),
        ("Invoice", Action.CREATE),
        ("Item", Action.DEACTIVATE),
    ]
