"""Restore jobs: plan, approve, apply (invariant 6: no write without an approved plan).

1. ``restore_plan_job`` (config: company, snapshot, scope) takes a safety snapshot, compares the
   snapshot with the live company and stores a plan under the lake's ``restore/<plan_id>/``,
   writing nothing to QBO. Its output metadata names the plan id and counts every action; review
   it with ``qbo-backup restore show PLAN --html review.html``.
2. ``restore_approve_job`` (config: company, plan id, who approves) records the approval once,
   in ``approval.json`` and the audit log. A human launches it after reviewing the plan.
3. ``restore_apply_job`` (config: company, plan id) applies an APPROVED plan and refuses any
   other; every write carries an idempotency key, rerunning resumes, and a fresh snapshot
   verifies the result (``verify.json``). With ``verify_months`` (the default) the written
   company's TrialBalance, ProfitAndLoss and BalanceSheet of every month of the snapshot are
   compared with the snapshot's ledger (a warehouse built in a temporary folder), reported as
   the op's ``months_*`` metadata and as the asset check ``books_equal_every_month`` of
   ``qbo_restore/<company>`` (ERROR when a difference has no known cause, WARN when each
   names one, such as a TaxPayment the API cannot write).
"""

# No `from __future__ import annotations` here: Dagster reads the annotations of decorated
# functions (context, config and resource parameters) at definition time.

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from qbo_pipeline.defs.resources import LakeResource, QBOResource
from qbo_pipeline.restore.apply import NotApproved, approve
from qbo_pipeline.restore.run import apply_restore, plan_restore, plan_restore_into
from qbo_pipeline.restore.scope import Scope, ScopeError
from qbo_pipeline.restore.store import PlanStore, RestoreError


class RestorePlanConfig(dg.Config):
    """What to restore, from which snapshot (one scope: records, entities, changed_since, all)."""

    realm_id: str = Field(description="The company (realm id)")
    snapshot: str = Field(
        description="Snapshot to restore to: id, prefix, latest, previous or a date"
    )
    records: list[str] = Field(default=[], description="Entity:Id records, e.g. Invoice:130")
    entities: list[str] = Field(default=[], description="Whole entities, e.g. Customer")
    changed_since: str | None = Field(
        default=None, description="Every record changed since this snapshot (id, prefix, date)"
    )
    everything: bool = Field(default=False, description="Everything that differs")
    remove_new: bool = Field(
        default=False, description="Also remove records created after the snapshot"
    )
    incident: str | None = Field(
        default=None,
        description="Snapshot holding the damage (default: the newest before the safety "
        "snapshot); records changed after it are conflicts. 'latest': everything up to now",
    )
    into: str | None = Field(
        default=None,
        description="Rebuild the snapshot inside this other connected company (realm id), "
        "normally a new one (disaster recovery); with entities or everything",
    )


class ApprovalConfig(dg.Config):
    """Who approves which plan."""

    realm_id: str = Field(description="The company (realm id)")
    plan_id: str = Field(description="The reviewed plan")
    approved_by: str = Field(description="The name of the person approving")
    include_conflicts: bool = Field(
        default=False,
        description="Also write the steps marked as conflicts (work done after the incident)",
    )


class ApplyConfig(dg.Config):
    """Which approved plan to apply."""

    realm_id: str = Field(description="The company (realm id)")
    plan_id: str = Field(description="An approved plan")
    verify: bool = Field(default=True, description="Verify against a fresh snapshot afterwards")
    verify_months: bool = Field(
        default=True,
        description="Also compare the books of every month of the snapshot (TrialBalance, "
        "ProfitAndLoss, BalanceSheet) with its ledger, through a warehouse built for it",
    )


def _fail(exc: Exception, what: str) -> dg.Failure:
    return dg.Failure(description=f"{what}: {exc}", metadata={"error": type(exc).__name__})


@dg.op(
    description="Plan a restore and store the plan; nothing is written to QBO.",
    tags={"qbo/restore": "plan"},
)
def plan_restore_op(
    context: dg.OpExecutionContext,
    config: RestorePlanConfig,
    qbo: QBOResource,
    lake: LakeResource,
) -> str:
    """Store a restore plan and return its id."""
    if not (config.records or config.entities or config.changed_since or config.everything):
        raise dg.Failure(
            description=(
                "the restore scope is empty: set one of records, entities, changed_since or "
                "everything in the op's config"
            )
        )
    try:
        scope = Scope.parse(
            records=config.records,
            entity_names=config.entities,
            changed_since=config.changed_since,
            everything=config.everything,
        )
    except ScopeError as exc:
        raise _fail(exc, "the restore scope is not valid") from None
    realm = lake.realm(config.realm_id)
    if config.into and scope.kind not in ("entities", "all"):
        raise dg.Failure(
            description="into rebuilds whole entities: set entities or everything, not records "
            "or changed_since"
        )
    with qbo.connect(context.log) as connection:
        try:
            if config.into:
                planned = plan_restore_into(
                    connection.client(config.into),
                    realm,
                    snapshot=config.snapshot,
                    entities=scope.entities,
                )
            else:
                planned = plan_restore(
                    connection.client(config.realm_id),
                    realm,
                    snapshot=config.snapshot,
                    scope=scope,
                    remove_new=config.remove_new,
                    incident=config.incident,
                )
        except RestoreError as exc:
            raise _fail(exc, "no plan was made") from None
    plan = planned.plan
    summary = plan.summary()
    context.log.info(
        f"plan {plan.plan_id} stored at {planned.location}: {summary['writes']} writes, "
        f"{summary['conflict']} conflicts; review it with `qbo-backup restore show "
        f"{plan.plan_id} --html review.html`, then run restore_approve_job"
    )
    context.add_output_metadata(
        {
            "plan_id": plan.plan_id,
            "location": planned.location,
            "snapshot_id": plan.snapshot_id,
            "incident_snapshot_id": plan.incident_snapshot_id or "-",
            "safety_snapshot_id": planned.safety_snapshot_id or "-",
            "qbo_environment": connection.label,
            **{f"steps_{k}": v for k, v in summary.items()},
        }
    )
    return plan.plan_id


@dg.op(description="Record who approved a reviewed plan.", tags={"qbo/restore": "approve"})
def approve_restore_op(
    context: dg.OpExecutionContext, config: ApprovalConfig, lake: LakeResource
) -> str:
    """Approve a plan once (a second approval keeps the first)."""
    if not config.approved_by.strip():
        raise dg.Failure(description="approved_by must name the person approving the plan")
    store = PlanStore.for_realm(lake.realm(config.realm_id))
    try:
        approval = approve(
            store,
            config.plan_id,
            name=config.approved_by,
            include_conflicts=config.include_conflicts,
        )
    except RestoreError as exc:
        raise _fail(exc, f"plan {config.plan_id} was not approved") from None
    context.log.info(
        f"plan {config.plan_id} approved by {approval['approved_by']} at {approval['approved_at']}"
    )
    context.add_output_metadata({k: str(v) for k, v in approval.items() if k != "summary"})
    return config.plan_id


def _counts(result: Any) -> dict[str, int]:
    return {f"steps_{state}": n for state, n in result.counts.items()}


@dg.op(
    description="Apply an approved restore plan; refuses a plan that is not approved.",
    tags={"qbo/restore": "apply"},
)
def apply_restore_op(
    context: dg.OpExecutionContext,
    config: ApplyConfig,
    qbo: QBOResource,
    lake: LakeResource,
) -> Iterator[Any]:
    """Apply (or resume) the plan and verify it; fail when a step failed.

    Yields the monthly comparison's asset check (before failing, too), then the step counts.
    """
    realm = lake.realm(config.realm_id)
    store = PlanStore.for_realm(realm)
    try:
        approval = store.approval(config.plan_id)
        written = store.load(config.plan_id).realm_id  # another company for a plan "into"
    except RestoreError as exc:
        raise _fail(exc, "the plan cannot be read") from None
    if not approval:
        raise dg.Failure(
            description=(
                f"plan {config.plan_id} is not approved: review it, then approve it with "
                "restore_approve_job (or `qbo-backup restore apply PLAN --approve`); "
                "nothing was written"
            )
        )
    with qbo.connect(context.log) as connection:

        def progress(step: Any, state: str) -> None:
            context.log.info(
                f"step {step.number} {step.action} {step.entity} {step.old_id}: {state}"
            )

        try:
            with tempfile.TemporaryDirectory(prefix="qbo-restore-verify-") as folder:
                result, report = apply_restore(
                    connection.client(written),
                    realm,
                    config.plan_id,
                    progress=progress,
                    verify=config.verify,
                    warehouse=Path(folder) / "verify.duckdb" if config.verify_months else None,
                )
        except (NotApproved, RestoreError) as exc:
            raise _fail(exc, "the plan was not applied") from None
    counts = _counts(result)
    metadata: dict[str, Any] = {
        "plan_id": config.plan_id,
        "qbo_environment": connection.label,
        **counts,
    }
    if report is not None:
        metadata |= {f"verify_{k}": report[k] for k in ("checked", "equal", "different", "ok")}
        metadata["verify_after_snapshot_id"] = report["after_snapshot_id"]
    if report is not None and "periods" in report:
        months = _months_metadata(report)
        metadata |= months
        yield _months_check(written, config.plan_id, report, months)
    if not result.complete:
        failed = [s for s in result.steps if s.state in ("failed", "not_started")]
        raise dg.Failure(
            description=(
                f"plan {config.plan_id} is not complete: {len(failed)} steps failed or were not "
                f"started (first: step {failed[0].number}, {failed[0].detail}); rerun the job "
                "to resume, done steps are skipped"
            ),
            metadata=metadata,
        )
    if report is not None and not report["ok"] and not report["differences"]:
        books = [r["report"] for r in report.get("reports") or [] if not r["ok"]]
        books += [
            f"{label} by month"
            for key, label in _MONTHLY
            if any(m["differences"] for m in report.get(key) or [])
        ]
        raise dg.Failure(
            description=(
                f"plan {config.plan_id} was applied and its records match, but the new "
                f"company's {', '.join(books)} differ from snapshot {report['snapshot_id']}'s "
                f"per account; the details are in the plan's verify.json"
            ),
            metadata=metadata,
        )
    if report is not None and not report["ok"]:
        raise dg.Failure(
            description=(
                f"plan {config.plan_id} was applied, but {report['different']} of "
                f"{report['checked']} restored records differ from snapshot "
                f"{report['snapshot_id']} in the fresh snapshot {report['after_snapshot_id']} "
                f"(first: {_difference(report['differences'][0])}); the details are in the "
                f"plan's verify.json (`qbo-backup restore status {config.plan_id}`)"
            ),
            metadata=metadata,
        )
    yield dg.Output(counts, metadata=metadata)


_MONTHLY = (
    ("periods", "TrialBalance"),
    ("periods_profit_and_loss", "ProfitAndLoss"),
    ("periods_balance_sheet", "BalanceSheet"),
)
"""The monthly comparisons of a verification report: its key and the report's name."""

_SHOWN = 50
"""Differing accounts listed in the metadata's table at most (all are in verify.json)."""


def _months_metadata(report: dict[str, Any]) -> dict[str, Any]:
    """The monthly comparison as op metadata.

    Months equal per report, the differences and how many have no known cause, and a table
    of the differing accounts with why.
    """
    out: dict[str, Any] = {}
    rows = []
    for key, name in _MONTHLY:
        months = report.get(key) or []
        differing = [m for m in months if m["differences"]]
        out[f"months_{name}"] = f"{len(months) - len(differing)} of {len(months)} equal"
        for month in differing:
            rows += [(name, month["end"], d) for d in month["differences"]]
    out["months_differences"] = len(rows)
    out["months_unexplained"] = int(report.get("periods_unexplained") or 0)
    out["months_ok"] = bool(report.get("periods_ok"))
    lines = ["| report | month end | account | snapshot | restored | difference | why |"]
    lines.append("|---|---|---|---|---|---|---|")
    for name, end, d in rows[:_SHOWN]:
        why = str(d.get("why") or "").replace("|", "/")
        lines.append(
            f"| {name} | {end} | {d.get('account')} | {d.get('snapshot')} | "
            f"{d.get('restored')} | {d.get('difference')} | {why} |"
        )
    if len(rows) > _SHOWN:
        lines.append(f"| ... | {len(rows) - _SHOWN} more in verify.json | | | | | |")
    out["months_table"] = dg.MetadataValue.md("\n".join(lines) if rows else "every month equal")
    return out


MONTHS_CHECK = "books_equal_every_month"
"""The asset check an apply reports its monthly comparison as."""


def restore_books_key(realm_id: str) -> dg.AssetKey:
    """The asset whose check carries a restore's monthly comparison: the written company."""
    return dg.AssetKey(["qbo_restore", realm_id])


def _months_check(
    realm_id: str, plan_id: str, report: dict[str, Any], months: dict[str, Any]
) -> dg.AssetCheckEvaluation:
    """The monthly comparison as an asset check of the written company.

    Passes when every month of every report is equal; fails as ERROR when a difference has
    no known cause, as WARN when each names one (a transaction the API cannot write...).
    """
    explained = not months["months_unexplained"]
    return dg.AssetCheckEvaluation(
        asset_key=restore_books_key(realm_id),
        check_name=MONTHS_CHECK,
        passed=bool(months["months_ok"]),
        severity=dg.AssetCheckSeverity.WARN if explained else dg.AssetCheckSeverity.ERROR,
        metadata={"plan_id": plan_id, "snapshot_id": report["snapshot_id"], **months},
        description=(
            "the written company's TrialBalance, ProfitAndLoss and BalanceSheet of every "
            f"month of snapshot {report['snapshot_id']} against its ledger, per account"
        ),
    )


def _difference(entry: dict[str, Any]) -> str:
    """One verification difference in words (``Item 5: differs from the snapshot (Active)``)."""
    paths = ", ".join(c["path"] for c in entry.get("changes", [])[:5])
    return f"{entry['entity']} {entry['new_id']}: {entry['problem']}" + (
        f" ({paths})" if paths else ""
    )


@dg.job(description="Plan a restore (config: company, snapshot, scope); writes nothing to QBO.")
def restore_plan_job() -> None:
    """Plan a restore."""
    plan_restore_op()


@dg.job(description="Approve a reviewed restore plan (config: company, plan id, your name).")
def restore_approve_job() -> None:
    """Approve a plan."""
    approve_restore_op()


@dg.job(description="Apply an approved restore plan (config: company, plan id) and verify it.")
def restore_apply_job() -> None:
    """Apply a plan."""
    apply_restore_op()
