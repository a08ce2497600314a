"""The restore flow over the real parts, shared by the CLI and Dagster.

:func:`plan_restore` takes a safety snapshot of the company as it is now (so the restore itself
can be undone, and so whole entities are compared through a snapshot that knows every live
change), then plans and stores the plan. Conflicts are judged three ways: the target snapshot,
the incident snapshot (by default the newest snapshot before the safety snapshot, the state the
damage left) and now; a record that changed after the incident snapshot is someone's later work.
:func:`apply_restore` applies an approved plan and verifies it against
a fresh snapshot, storing ``verify.json``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qbo_pipeline.errors import EXIT_USAGE
from qbo_pipeline.lake.errors import SnapshotNotFound
from qbo_pipeline.lake.lake import RealmLake
from qbo_pipeline.qbo.http import QBOClient
from qbo_pipeline.restore import remap
from qbo_pipeline.restore.apply import ApplyResult, ProgressCallback, apply_plan
from qbo_pipeline.restore.model import Plan
from qbo_pipeline.restore.plan import PlanRequest, build_plan
from qbo_pipeline.restore.scope import Scope
from qbo_pipeline.restore.sources import ClientLive, LakeSnapshots
from qbo_pipeline.restore.store import PlanStore, RestoreError
from qbo_pipeline.restore.verify import verify_restore

log = logging.getLogger(__name__)


class TwoLakes:
    """Snapshots of two companies read as one: the written company's snapshot from its lake.

    Verification of a restore into another company reads the target snapshot from the source's
    lake and the fresh snapshot (``after_id``) from the written company's.
    """

    def __init__(self, source: LakeSnapshots, written: LakeSnapshots, after_id: str) -> None:
        self.source = source
        self.written = written
        self.after_id = after_id

    def _of(self, snapshot_id: str) -> LakeSnapshots:
        return self.written if snapshot_id == self.after_id else self.source

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.source, name)
        if name in ("has_blob",):
            return method

        def routed(snapshot_id: str, *args: Any, **kwargs: Any) -> Any:
            return getattr(self._of(snapshot_id), name)(snapshot_id, *args, **kwargs)

        return routed


@dataclass
class PlannedRestore:
    """A stored plan and where it is."""

    plan: Plan
    location: str
    safety_snapshot_id: str | None


def plan_restore(
    client: QBOClient,
    realm: RealmLake,
    *,
    snapshot: str,
    scope: Scope,
    remove_new: bool = False,
    backup_first: bool = True,
    incident: str | None = None,
) -> PlannedRestore:
    """Plan a restore of ``scope`` to ``snapshot`` and store the plan (nothing is written to QBO).

    Args:
        client: A client for the company.
        realm: The company's lake.
        snapshot: A snapshot reference (id, prefix, ``latest``, ``previous`` or a date).
        scope: What to restore (``changed_since`` may hold a snapshot reference).
        remove_new: Remove records created after the snapshot.
        backup_first: Take a snapshot of the company as it is now before planning.
        incident: The snapshot that holds the state the incident left (a reference, resolved
            after the safety snapshot, so ``latest`` names the safety snapshot: nothing is then
            judged to be later work). None: the newest snapshot before the safety snapshot.

    Raises:
        RestoreError: If a snapshot cannot be found.
    """
    try:
        target = realm.resolve(snapshot)
        if scope.kind == "changed_since" and scope.changed_since:
            since = realm.resolve(scope.changed_since).snapshot_id
            scope = Scope(kind=scope.kind, entities=scope.entities, changed_since=since)
    except SnapshotNotFound as exc:
        raise RestoreError(str(exc), exit_code=exc.exit_code) from None
    before = realm.latest()
    safety = None
    if backup_first:
        from qbo_pipeline.backup import run_backup

        safety = run_backup(client, realm).snapshot.snapshot_id
        log.info("safety snapshot %s taken before planning", safety)
    latest = realm.latest()
    try:
        incident_id = realm.resolve(incident).snapshot_id if incident else None
    except SnapshotNotFound as exc:
        raise RestoreError(f"incident snapshot: {exc}", exit_code=exc.exit_code) from None
    if incident_id is None:
        incident_id = (before or target).snapshot_id
    live = ClientLive(client)
    company = client.company_info()
    request = PlanRequest(
        realm_id=str(client.realm_id),
        snapshot_id=target.snapshot_id,
        latest_snapshot_id=latest.snapshot_id if latest else None,
        scope=scope,
        remove_new=remove_new,
        company_name=company.get("CompanyName") or target.company_name,
        live_snapshot_id=safety,
        incident_snapshot_id=incident_id,
    )
    plan = build_plan(live, LakeSnapshots(realm), request, preferences=client.preferences())
    if incident_id <= target.snapshot_id:
        plan.notes.insert(
            0,
            f"no snapshot was taken between snapshot {target.snapshot_id} and the incident, so "
            "the incident cannot be told apart from later work: every change since "
            f"{incident_id} is flagged as a conflict. Review them and approve with "
            "--include-conflicts, or plan again with --incident naming the snapshot that "
            "holds the damage (--incident latest: everything up to now is the incident)",
        )
    store = PlanStore.for_realm(realm)
    location = store.save(plan)
    store.audit(plan.plan_id).append(
        "planned",
        snapshot_id=plan.snapshot_id,
        latest_snapshot_id=plan.latest_snapshot_id,
        incident_snapshot_id=plan.incident_snapshot_id,
        safety_snapshot_id=safety,
        scope=plan.scope,
        summary=plan.summary(),
    )
    return PlannedRestore(plan=plan, location=location, safety_snapshot_id=safety)


def plan_restore_into(
    client: QBOClient,
    realm: RealmLake,
    *,
    snapshot: str,
    entities: tuple[str, ...] = (),
) -> PlannedRestore:
    """Plan the rebuild of a snapshot of ``realm`` inside the company of ``client``.

    Nothing is matched by id: every record becomes a create in dependency order, except the
    records the target already has (its default accounts, terms, tax codes ... matched by
    name and type), which are mapped. The plan is stored beside the source's snapshots.

    Args:
        client: A client for the company written to (another company than ``realm``'s).
        realm: The lake of the company the snapshot is from.
        snapshot: A snapshot reference (id, prefix, ``latest``, ``previous`` or a date).
        entities: Only these entities (and what they need); empty: everything.

    Raises:
        RestoreError: If the snapshot cannot be found or the target is the source itself.
    """
    from qbo_pipeline.restore.plan_into import IntoRequest, build_into_plan

    if str(client.realm_id) == realm.realm_id:
        raise RestoreError(
            f"--into names company {realm.realm_id}, the snapshot's own company: plan a restore "
            "in place (without --into) instead",
            exit_code=EXIT_USAGE,
        )
    try:
        target = realm.resolve(snapshot)
    except SnapshotNotFound as exc:
        raise RestoreError(str(exc), exit_code=exc.exit_code) from None
    latest = realm.latest()
    company = client.company_info()
    from qbo_pipeline import entities as catalogue

    present = sum(
        client.count(catalogue.ENTITIES[name])
        for name in ("Invoice", "Bill", "JournalEntry", "Payment", "SalesReceipt", "Purchase")
    )
    request = IntoRequest(
        source_realm_id=realm.realm_id,
        target_realm_id=str(client.realm_id),
        snapshot_id=target.snapshot_id,
        latest_snapshot_id=latest.snapshot_id if latest else None,
        entities=tuple(entities),
        company_name=company.get("CompanyName"),
        target_transactions=present,
    )
    plan = build_into_plan(
        ClientLive(client), LakeSnapshots(realm), request, preferences=client.preferences()
    )
    store = PlanStore.for_realm(realm)
    location = store.save(plan)
    store.audit(plan.plan_id).append(
        "planned",
        snapshot_id=plan.snapshot_id,
        into=plan.realm_id,
        scope=plan.scope,
        summary=plan.summary(),
    )
    return PlannedRestore(plan=plan, location=location, safety_snapshot_id=None)


def _not_written(plan: Plan, realm: RealmLake) -> list[dict[str, Any]]:
    """The transactions that post to the books and that the plan could not write."""
    from qbo_pipeline import entities
    from qbo_pipeline.restore.model import Action

    out = []
    for step in plan.steps:
        entity = entities.ENTITIES.get(step.entity)
        if step.action is not Action.UNSUPPORTED or entity is None or not entity.posts_to_ledger:
            continue
        payload = realm.get_payload(plan.snapshot_id, step.entity, step.old_id) or {}
        out.append(
            {
                "entity": step.entity,
                "old_id": step.old_id,
                "amount": payload.get(entity.amount_field or "TotalAmt"),
                "date": payload.get("TxnDate") or payload.get("PaymentDate"),
                "why": step.reason,
            }
        )
    return out


def _verify_periods(
    client: QBOClient,
    realm: RealmLake,
    plan: Plan,
    id_map: remap.IdMap,
    not_written: list[dict[str, Any]],
    warehouse: Path,
) -> dict[str, Any]:
    """Build the warehouse, then compare the written company's books of every month with it."""
    import duckdb

    from qbo_pipeline.models.warehouse import build_warehouse
    from qbo_pipeline.restore.verify_periods import chart_of, compare_periods, snapshot_postings

    build_warehouse(realm.fs.url(realm.fs.root), warehouse)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        postings = snapshot_postings(con, realm.realm_id, plan.snapshot_id)
    finally:
        con.close()
    return compare_periods(
        postings,
        realm.report(plan.snapshot_id, "TrialBalance"),
        client.report,
        id_map,
        not_written=not_written,
        chart=chart_of(
            realm.iter_payloads(plan.snapshot_id, "Account"),
            next(iter(realm.iter_payloads(plan.snapshot_id, "CompanyInfo")), None),
        ),
    )


def _add_months(report: dict[str, Any], months: dict[str, Any]) -> None:
    """Put the monthly comparison (:func:`compare_periods`) into a verification report."""
    report["periods"] = months["periods"]
    report["periods_profit_and_loss"] = months["profit_and_loss"]
    report["periods_balance_sheet"] = months["balance_sheet"]
    report["periods_unexplained"] = months["unexplained"]
    report["periods_ok"] = months["ok"]


def snapshot_exists(realm: RealmLake, snapshot_id: str) -> bool:
    """Whether a live (not retired, not collected) snapshot with that exact id is in the lake."""
    return any(s.snapshot_id == snapshot_id for s in realm.snapshots())


def apply_restore(
    client: QBOClient,
    realm: RealmLake,
    plan_id: str,
    *,
    progress: ProgressCallback | None = None,
    verify: bool = True,
    workers: int | None = None,
    batch: bool = True,
    warehouse: Path | None = None,
) -> tuple[ApplyResult, dict[str, Any] | None]:
    """Apply an approved plan, then verify it against a fresh snapshot.

    ``batch`` sends ready creates together through QBO's batch endpoint (False: one request
    per write). ``warehouse``: see :func:`verify_plan`.

    Returns:
        The per-step results, and the verification report (None when not verified).

    Raises:
        NotApproved: If the plan has not been approved.
        RestoreError: If the plan is for another company or its snapshot is gone.
    """
    store = PlanStore.for_realm(realm)
    result = apply_plan(
        client,
        store,
        plan_id,
        snapshot_exists=lambda sid: snapshot_exists(realm, sid),
        progress=progress,
        read_attachment=realm.read_attachment,
        workers=workers,
        batch=batch,
    )
    if not verify:
        return result, None
    return result, verify_plan(client, realm, plan_id, warehouse=warehouse)


def verify_plan(
    client: QBOClient, realm: RealmLake, plan_id: str, *, warehouse: Path | None = None
) -> dict[str, Any]:
    """Take a fresh snapshot and compare the plan's records with its target snapshot.

    For a restore into another company the fresh snapshot is of that company (into its own
    part of the lake), and its TrialBalance, ProfitAndLoss and BalanceSheet for the snapshot's
    period are compared with the snapshot's, account by account through the id map. Given a
    ``warehouse`` (the DuckDB file), the warehouse is built and the written company's
    TrialBalance and BalanceSheet at every month end of the snapshot, and its ProfitAndLoss of
    every month, are compared with the snapshot's ledger too
    (:mod:`qbo_pipeline.restore.verify_periods`), under ``periods``,
    ``periods_profit_and_loss`` and ``periods_balance_sheet`` (``periods_ok``: none differs).
    For a restore into another company they count in ``ok``; in place they are only reported
    (the company's books also hold the work the plan's scope left alone).
    """
    from qbo_pipeline.backup import run_backup

    store = PlanStore.for_realm(realm)
    plan = store.load(plan_id)
    status = store.status(plan_id) or {}
    if plan.into:
        from qbo_pipeline.restore.verify_reports import compare_reports

        written = RealmLake(realm.fs, plan.realm_id)
        after = run_backup(client, written).snapshot.snapshot_id
        reader = TwoLakes(LakeSnapshots(realm), LakeSnapshots(written), after)
        report = verify_restore(plan, status, reader, after)
        id_map = remap.IdMap(plan.id_map)
        id_map.update(remap.IdMap(status.get("id_map") or {}))
        books = compare_reports(
            lambda name: realm.report(plan.snapshot_id, name),
            client.report,
            id_map,
            not_written=_not_written(plan, realm),
        )
        report["reports"] = books["reports"]
        report["not_written"] = books["not_written"]
        report["ok"] = bool(report["ok"] and books["ok"])
        if warehouse is not None:
            months = _verify_periods(client, realm, plan, id_map, report["not_written"], warehouse)
            _add_months(report, months)
            report["ok"] = bool(report["ok"] and months["ok"])
    else:
        after = run_backup(client, realm).snapshot.snapshot_id
        report = verify_restore(plan, status, LakeSnapshots(realm), after)
        if warehouse is not None:
            # The company's books at each month end against the snapshot's: said, not judged
            # (a restore of part of the company leaves later work elsewhere in the books).
            id_map = remap.IdMap(plan.id_map)
            id_map.update(remap.IdMap(status.get("id_map") or {}))
            report["not_written"] = _not_written(plan, realm)
            _add_months(
                report,
                _verify_periods(client, realm, plan, id_map, report["not_written"], warehouse),
            )
    store.save_verification(plan_id, report)
    store.audit(plan_id).append(
        "verified",
        after_snapshot_id=after,
        checked=report["checked"],
        equal=report["equal"],
        different=report["different"],
    )
    return report
