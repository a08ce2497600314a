"""``qbo-backup restore``: put a company back the way a snapshot saw it, reviewed and audited.

Restore compares a snapshot in the lake with the live company and writes a *plan*; nothing is
written to QBO until someone approves that plan by its id. Applying is idempotent (every write
carries a request id derived from the plan and the step), resumable (rerun the same command after
a failure), re-plans stale SyncTokens instead of forcing them, and leaves an audit trail beside the
plan in the lake (``restore/<plan_id>/``).

Usage:

```
# 1. Plan: what would change, and why (QBO is only read).
qbo-backup restore plan --snapshot SNAPSHOT SCOPE [--realm REALM] [--remove-new]
                        [--incident SNAPSHOT] [--no-backup] [--html plan.html]
#    SNAPSHOT: a snapshot id, an id prefix, a date (2026-05-01), "latest" or "previous" (the one
#      before the latest when the command starts, before its safety snapshot).
#    SCOPE, exactly one of:
#      --records Invoice:130 --records Customer:24   (or --records Invoice:130,Customer:24)
#      --entity Invoice --entity Payment              every record of these entities
#      --changed-since SNAPSHOT2 [--entity ...]       what changed since another snapshot
#      --all [--entity ...]                           every record
#    --remove-new also deletes transactions (and deactivates list records) created after it.
#    --incident names the snapshot that holds the damage (default: the newest snapshot before
#      the safety snapshot); whatever changed after it is someone's later work: a conflict.
qbo-backup restore plan --snapshot SNAPSHOT --into REALM2 (--all | --entity ...) [--realm REALM]
#    --into rebuilds the snapshot inside another connected company (disaster recovery, normally
#      a new company): every record is created with a new id in dependency order, the defaults
#      that company already has (accounts, terms, tax codes...) are matched by name and type,
#      and what QBO's API cannot write is listed. apply, show and status work as below.

# 2. Review: the steps as a table; --html writes a page with every field-level change.
#    PLAN below: a plan id, or "latest" (the newest plan; the command prints its id).
qbo-backup restore show PLAN [--html plan.html]

# 3. Approve and apply (rerun to resume; --include-conflicts also overwrites records that
#    changed after the incident snapshot, which the plan marks as conflicts).
qbo-backup restore apply PLAN --approve [--as "Your Name"] [--include-conflicts] [--no-verify]

# 4. Follow up.
qbo-backup restore status PLAN     each step's state, and the post-apply verification
qbo-backup restore list [--format table|csv|json]   every plan, who approved it, how far it got
```

Before planning, ``restore plan`` takes a *safety snapshot* of the company as it is now, so that
every live change is kept before anything is overwritten and the restore itself can be undone
(plan a restore to the safety snapshot); the output names it. The plan then compares whole
entities through it by content hash and reads live only the records that differ.
``--no-backup`` skips it: nothing keeps the company's current state, and whole entities are
compared by reading every record live, which is slower for a large company than the snapshot.

Conflicts are a three-way comparison per record: the target snapshot (what to go back to), the
incident snapshot (the state the damage left: by default the newest snapshot before the safety
snapshot; ``--incident`` chooses another) and now. Now equal to the incident snapshot: safe to
revert. Now different, or deleted or created since: someone worked on it after the incident, so
the step is a conflict, shown with the fields changed since the incident, and written only when
approved with ``--include-conflicts``. With no snapshot between the target and the incident,
every change is a conflict (the plan says so); ``--incident latest`` then declares everything up
to now the incident.

A plan says, for each record, whether it is re-created (with a new id, and every reference to it
remapped), reverted, reactivated, deactivated, deleted (``--remove-new``), mapped by name to a
live record, skipped as identical, or cannot be restored and why (read-only entities, closed
periods, fields QBO's API cannot write). Records the plan needs are pulled in: a deleted customer
of a restored invoice is re-created first; an inactive item is reactivated for the invoices that
use it and deactivated again at the end. CompanyInfo and Preferences are reverted field by field,
RecurringTransaction templates after what they use, attachments re-uploaded from the lake's bytes.

After ``apply``, a fresh snapshot is compared with the target snapshot for the plan's records
(``--no-verify`` skips it). Exit codes: 0 done (and verified), 1 failed, incomplete (rerun to
resume) or not matching the snapshot after all, 2 bad arguments or no approval. Files under
``restore/<plan_id>/`` in the lake: ``plan.json`` (never
rewritten), ``approval.json``, ``status.jsonl`` (appended per step), ``audit.jsonl`` (every
request and response, secrets masked) and ``verify.json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from qbo_pipeline.cli import listing
from qbo_pipeline.cli.boundary import fail
from qbo_pipeline.cli.listing import Column, ListFormat, emit, format_option
from qbo_pipeline.cli.settings import load_settings
from qbo_pipeline.cli.wording import count, verb
from qbo_pipeline.config import Settings
from qbo_pipeline.errors import EXIT_FAILURE, EXIT_USAGE, QboPipelineError

if TYPE_CHECKING:
    from qbo_pipeline.lake.lake import RealmLake
    from qbo_pipeline.restore.model import Plan
    from qbo_pipeline.restore.store import PlanStore

console = Console(stderr=True, soft_wrap=True)  # the terminal wraps: commands stay pasteable
out = Console(soft_wrap=True)

restore_app = typer.Typer(
    name="restore",
    help="Plan, review and apply restores from snapshots (nothing is written without approval).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``restore`` command group."""
    app.add_typer(restore_app, name="restore")


def _realm(settings: Settings, realm_id: str | None) -> RealmLake:
    from qbo_pipeline.lake.lake import Lake

    lake = Lake(settings.lake_url)
    if realm_id:
        return lake.realm(realm_id)
    realms = lake.realms()
    if len(realms) == 1:
        return lake.realm(realms[0])
    if not realms:
        fail(f"no snapshots yet in {settings.lake_url}: run `qbo-backup backup` first")
    fail(
        f"several companies in the lake: choose one with --realm ({', '.join(realms)})", EXIT_USAGE
    )


def _realm_for_plan(settings: Settings, plan_id: str, realm_id: str | None) -> RealmLake:
    """The realm holding ``plan_id`` (searched across the lake when --realm is not given)."""
    from qbo_pipeline.lake.lake import Lake
    from qbo_pipeline.restore.store import PlanStore

    if realm_id:
        return Lake(settings.lake_url).realm(realm_id)
    lake = Lake(settings.lake_url)
    for candidate in lake.realms():
        realm = lake.realm(candidate)
        if plan_id in PlanStore.for_realm(realm).plan_ids():
            return realm
    return _realm(settings, None)


LATEST_PLAN = "latest"
"""The plan reference that names the newest plan of the company."""


def _plan_and_realm(settings: Settings, ref: str, realm_id: str | None) -> tuple[RealmLake, str]:
    """The realm holding the plan ``ref`` names, and its id.

    ``latest`` is the newest plan (by when it was written) of the company, or of every company
    in the lake when ``--realm`` is not given.
    """
    from qbo_pipeline.lake.lake import Lake
    from qbo_pipeline.restore.store import PlanStore

    if ref.strip().lower() != LATEST_PLAN:
        return _realm_for_plan(settings, ref, realm_id), ref
    lake = Lake(settings.lake_url)
    realms = [lake.realm(realm_id)] if realm_id else [lake.realm(r) for r in lake.realms()]
    created: dict[tuple[str, str], tuple[RealmLake, str]] = {}
    for lake_realm in realms:
        store = PlanStore.for_realm(lake_realm)
        for plan_id in store.plan_ids():
            try:
                when = store.load(plan_id).created_at
            except QboPipelineError:
                continue  # a damaged plan is not the newest one anyone can use
            created[(when, plan_id)] = (lake_realm, plan_id)
    if not created:
        where = f"company {realm_id}" if realm_id else f"the lake at {settings.lake_url}"
        _fail(f"{where} has no restore plan yet: run `qbo-backup restore plan` first", EXIT_USAGE)
    lake_realm, newest = created[max(created)]
    console.print(f"plan latest: {newest}", highlight=False)
    return lake_realm, newest


def _open_plan(ref: str, realm_id: str | None) -> tuple[PlanStore, Plan]:
    """The store holding a plan, and the plan (one that cannot be read ends the command)."""
    from qbo_pipeline.restore.store import PlanStore

    lake_realm, plan_id = _plan_and_realm(load_settings(), ref, realm_id)
    store = PlanStore.for_realm(lake_realm)
    return store, store.load(plan_id)


def _snapshot_ref(lake_realm: RealmLake, ref: str | None, option: str) -> str | None:
    """A snapshot reference made an id by the lake's resolver, the option named if it fails.

    It is resolved before the safety snapshot is taken, so ``previous`` means what
    ``qbo-backup diff previous latest`` showed.
    """
    if ref is None:
        return None
    from qbo_pipeline.lake.errors import SnapshotNotFound

    try:
        return lake_realm.resolve(ref).snapshot_id
    except SnapshotNotFound as exc:
        _fail(f"{option} {ref}: {exc}", EXIT_USAGE)


def _fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    fail(message, code)


@restore_app.command("plan")
def plan_cmd(
    snapshot: str = typer.Option(
        ...,
        "--snapshot",
        help="Snapshot to restore to (id, prefix, date, 'latest' or 'previous').",
    ),
    records: list[str] = typer.Option(
        [], "--records", help="Entity:Id of a record (repeatable, or comma-separated)."
    ),
    entity: list[str] = typer.Option(
        [], "--entity", help="Restore every record of an entity; repeatable."
    ),
    changed_since: str | None = typer.Option(
        None, "--changed-since", help="Restore what changed since this snapshot."
    ),
    everything: bool = typer.Option(False, "--all", help="Restore every record."),
    realm: str | None = typer.Option(None, "--realm", help="Company (realm id)."),
    remove_new: bool = typer.Option(
        False, "--remove-new", help="Also delete/deactivate records created after the snapshot."
    ),
    backup_first: bool = typer.Option(
        True, "--backup/--no-backup", help="Take a safety snapshot before planning."
    ),
    incident: str | None = typer.Option(
        None,
        "--incident",
        help="Snapshot holding the damage (default: the newest before the safety snapshot); "
        "changes after it are flagged as conflicts. 'latest': everything up to now.",
    ),
    html: str | None = typer.Option(
        None, "--html", help="Also write the plan as an HTML page here."
    ),
    into: str | None = typer.Option(
        None,
        "--into",
        help="Rebuild the snapshot inside this other connected company (realm id), normally a "
        "new one: every record created, its defaults matched by name (with --all or --entity).",
    ),
) -> None:
    """Compare a snapshot with the live company and write a plan (QBO is not changed)."""
    if into:
        _plan_into(snapshot, into, realm, entity, everything, bool(records or changed_since), html)
        return
    from qbo_pipeline.cli.connection import connect
    from qbo_pipeline.restore.review import plan_table, write_html
    from qbo_pipeline.restore.run import plan_restore
    from qbo_pipeline.restore.scope import Scope, ScopeError

    records = [part for raw in records for part in raw.replace(",", " ").split() if part]
    try:
        scope = Scope.parse(
            records=records, entity_names=entity, changed_since=changed_since, everything=everything
        )
    except ScopeError as exc:
        raise typer.BadParameter(str(exc)) from None
    settings = load_settings()
    try:
        with connect(settings) as conn:
            realm_id = conn.realms(realm)[0] if realm or len(conn.realm_ids) == 1 else None
            if realm_id is None:
                _fail(
                    "several companies are connected: choose one with --realm "
                    f"({', '.join(conn.realm_ids) or 'none'})",
                    EXIT_USAGE,
                )
            lake_realm = _realm(settings, realm_id)
            snapshot = str(_snapshot_ref(lake_realm, snapshot, "--snapshot"))
            if scope.changed_since:
                since = _snapshot_ref(lake_realm, scope.changed_since, "--changed-since")
                scope = Scope(kind=scope.kind, entities=scope.entities, changed_since=since)
            if backup_first:
                console.print(
                    "taking a safety snapshot of the company before planning "
                    "(skip it with --no-backup)"
                )
            with console.status("reading the live company and planning"):
                planned = plan_restore(
                    conn.client(str(realm_id)),
                    lake_realm,
                    snapshot=snapshot,
                    scope=scope,
                    remove_new=remove_new,
                    backup_first=backup_first,
                    incident=incident,
                )
    except QboPipelineError:
        raise
    except ValueError as exc:
        _fail(str(exc))
    plan = planned.plan
    out.print(plan_table(plan))
    for note in plan.notes:
        out.print(f"[yellow]note:[/yellow] {note}")
    if planned.safety_snapshot_id:
        out.print(
            f"safety snapshot taken before planning: {planned.safety_snapshot_id} "
            "(restore to it to undo this restore; --no-backup skips it)"
        )
    else:
        out.print(
            "no safety snapshot was taken (--no-backup): nothing keeps the company as it is now, "
            "and records changed since the newest snapshot are marked as conflicts"
        )
    if html:
        out.print(f"HTML review page: {write_html(plan, html)}")
    out.print(f"plan written to {planned.location}")
    out.print(f"review it, then: [bold]qbo-backup restore apply {plan.plan_id} --approve[/bold]")


def _plan_into(
    snapshot: str,
    into: str,
    realm: str | None,
    entity: list[str],
    everything: bool,
    narrower: bool,
    html: str | None,
) -> None:
    """``restore plan --into REALM``: plan the rebuild of a snapshot inside another company."""
    from qbo_pipeline.cli.connection import connect
    from qbo_pipeline.restore.review import plan_table, write_html
    from qbo_pipeline.restore.run import plan_restore_into
    from qbo_pipeline.restore.scope import Scope, ScopeError

    if narrower or not (everything or entity):
        raise typer.BadParameter(
            "--into rebuilds whole entities: give --all or --entity (not --records or "
            "--changed-since)"
        )
    names: tuple[str, ...] = ()
    if entity:
        try:
            names = Scope.parse(entity_names=entity).entities
        except ScopeError as exc:
            raise typer.BadParameter(str(exc)) from None
    settings = load_settings()
    lake_realm = _realm(settings, realm)
    snapshot = str(_snapshot_ref(lake_realm, snapshot, "--snapshot"))
    try:
        with connect(settings) as conn:
            target = conn.realms(into)[0]
            with console.status(f"reading company {target} and planning"):
                planned = plan_restore_into(
                    conn.client(target), lake_realm, snapshot=snapshot, entities=names
                )
    except QboPipelineError:
        raise
    except ValueError as exc:
        _fail(str(exc))
    plan = planned.plan
    out.print(plan_table(plan))
    for note in plan.notes:
        out.print(f"[yellow]note:[/yellow] {note}")
    if html:
        out.print(f"HTML review page: {write_html(plan, html)}")
    out.print(
        f"plan written to {planned.location}: snapshot {plan.snapshot_id} of company "
        f"{lake_realm.realm_id} into company {plan.realm_id}"
    )
    out.print(f"review it, then: [bold]qbo-backup restore apply {plan.plan_id} --approve[/bold]")


@restore_app.command("show")
def show_cmd(
    plan_id: str = typer.Argument(..., help="The plan id, or 'latest' (the newest plan)."),
    html: str | None = typer.Option(None, "--html", help="Write the plan as an HTML page here."),
    realm: str | None = typer.Option(None, "--realm", help="Company (realm id)."),
) -> None:
    """Show a plan as a table (and as an HTML page with the field-level changes)."""
    from qbo_pipeline.restore.review import plan_table, write_html

    store, plan = _open_plan(plan_id, realm)
    plan_id = plan.plan_id
    status = store.status(plan_id)
    out.print(plan_table(plan, status))
    for note in plan.notes:
        out.print(f"[yellow]note:[/yellow] {note}")
    approval = plan.approval
    out.print(
        f"approved by {approval['approved_by']} at {approval['approved_at']}"
        if approval
        else "not approved yet"
    )
    if html:
        out.print(f"HTML review page: {write_html(plan, html, status)}")


@restore_app.command("apply")
def apply_cmd(
    plan_id: str = typer.Argument(..., help="The plan id, or 'latest' (the newest plan)."),
    approve: bool = typer.Option(False, "--approve", help="Approve the plan (required to write)."),
    as_name: str | None = typer.Option(None, "--as", help="Who approves (default: the OS user)."),
    include_conflicts: bool = typer.Option(
        False, "--include-conflicts", help="Also write the steps marked as conflicts."
    ),
    verify: bool = typer.Option(
        True, "--verify/--no-verify", help="Snapshot and compare afterwards."
    ),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        max=10,
        help="Steps written at once (default: QBO's 10 requests in flight; 1 = in plan order).",
    ),
    realm: str | None = typer.Option(None, "--realm", help="Company (realm id)."),
) -> None:
    """Apply an approved plan (rerun to resume after a failure)."""
    from qbo_pipeline.cli.connection import connect
    from qbo_pipeline.restore.apply import approve as approve_plan
    from qbo_pipeline.restore.run import apply_restore
    from qbo_pipeline.restore.store import PlanStore

    settings = load_settings()
    lake_realm, plan_id = _plan_and_realm(settings, plan_id, realm)
    store = PlanStore.for_realm(lake_realm)
    try:
        # Everything that can refuse is checked before an approval is recorded: the plan is
        # the one stored for this company (load refuses an edited or moved plan), and the
        # company is connected.
        plan = store.load(plan_id)
        if not approve and not plan.approval:
            _fail(
                f"refusing to write without approval: review `qbo-backup restore show {plan_id}`, "
                f"then run `qbo-backup restore apply {plan_id} --approve`",
                EXIT_USAGE,
            )
        with connect(settings) as conn:
            conn.realms(plan.realm_id)
            client = conn.client(plan.realm_id)
            if approve:
                approval = approve_plan(
                    store, plan_id, name=as_name, include_conflicts=include_conflicts
                )
                out.print(f"approved by {approval['approved_by']} on {approval['host']}")
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as bar:
                task = bar.add_task("applying", total=len(plan.steps))

                def advance(step: Any, state: str) -> None:
                    bar.update(
                        task, advance=1, description=f"step {step.number} {step.entity} {state}"
                    )

                result, report = apply_restore(
                    client,
                    lake_realm,
                    plan_id,
                    progress=advance,
                    verify=verify,
                    workers=workers,
                    warehouse=settings.warehouse_path if plan.into else None,
                )
    except QboPipelineError:
        raise
    except ValueError as exc:
        _fail(str(exc))
    _print_result(result.counts)
    failed = [s for s in result.steps if s.state in ("failed", "conflict")]
    for step in failed[:20]:
        out.print(f"  step {step.number} {step.entity} {step.old_id}: {step.state}: {step.detail}")
    if report is not None:
        out.print(
            f"verification against snapshot {report['after_snapshot_id']}: {_verdict(report)}"
        )
        for books in report.get("reports") or []:  # a restore into another company
            out.print(f"  {books['report']}: {_books_verdict(books)}")
        for key, label, unit in _MONTHLY:
            if report.get(key):
                out.print(f"  {label}: {_periods_verdict(report, key, unit)}")
    if not result.complete:
        out.print(
            f"some steps did not complete: rerun `qbo-backup restore apply {plan_id}` to resume"
        )
        raise typer.Exit(1)
    if report is not None and not report["ok"]:
        out.print(
            "the restored records or books differ from the snapshot: see "
            f"`qbo-backup restore status {plan_id}` and verify.json beside the plan"
        )
        raise typer.Exit(1)


def _verdict(report: dict[str, Any]) -> str:
    """``6 of 6 records match the snapshot`` or ``2 of 10 records differ from it``.

    Records that differ only where their plan step said they would (a restore into another
    company: a tax code the company lacks) are counted apart, as the plan said.
    """
    checked = int(report.get("checked") or 0)
    equal = int(report.get("equal") or 0)
    planned = int(report.get("planned") or 0)
    if report.get("ok") or not report.get("different"):  # into: the books are said apart
        agree = verb(equal, "matches", "match")
        said = f", {planned:,} differ where the plan said" if planned else ""
        return f"[green]{equal:,} of {count(checked, 'record')} {agree} the snapshot{said}[/green]"
    different = int(report.get("different") or checked - equal)
    differ = verb(different, "differs", "differ")
    return f"[red]{different:,} of {count(checked, 'record')} {differ} from the snapshot[/red]"


def _books_verdict(books: dict[str, Any]) -> str:
    """``equal per account (42 rows)`` or the first difference and why."""
    if books.get("ok"):
        return f"[green]equal per account ({books.get('equal', 0)} rows)[/green]"
    first = (books.get("differences") or [{}])[0]
    return (
        f"[red]{len(books.get('differences') or [])} row(s) differ[/red], first "
        f"{first.get('row')}: {escape(str(first.get('why')))}"
    )


_MONTHLY = (
    ("periods", "TrialBalance at each month end", "month ends"),
    ("periods_profit_and_loss", "ProfitAndLoss of each month", "months"),
    ("periods_balance_sheet", "BalanceSheet at each month end", "month ends"),
)
"""The monthly verifications of a restore into another company: report key, label, unit."""


def _periods_verdict(report: dict[str, Any], key: str = "periods", unit: str = "month ends") -> str:
    """``equal per account at 12 month ends``, or how many differ and the first difference."""
    months = report[key]
    differing = [m for m in months if m["differences"]]
    if not differing:
        return f"[green]equal per account at {len(months)} {unit}[/green]"
    unexplained = int(report.get("periods_unexplained") or 0)
    first = differing[0]["differences"][0]
    return (
        f"[red]{len(differing)} of {len(months)} {unit} differ[/red], first account "
        f"{first.get('account')} at {differing[0]['end']} by {first.get('difference')}: "
        f"{escape(str(first.get('why')))} ({unexplained} row(s) unexplained in all; "
        "the others name their cause in verify.json)"
    )


def _print_result(counts: dict[str, int]) -> None:
    out.print(", ".join(f"{n} {state}" for state, n in counts.items() if n) or "nothing to do")


@restore_app.command("status")
def status_cmd(
    plan_id: str = typer.Argument(..., help="The plan id, or 'latest' (the newest plan)."),
    realm: str | None = typer.Option(None, "--realm", help="Company (realm id)."),
) -> None:
    """Show each step's state after an apply, and the verification."""
    from qbo_pipeline.restore.review import plan_table

    store, plan = _open_plan(plan_id, realm)
    plan_id = plan.plan_id
    status = store.status(plan_id)
    if status is None:
        out.print(f"plan {plan_id} has not been applied yet")
        return
    out.print(plan_table(plan, status))
    counts: dict[str, int] = {}
    for entry in status.get("steps", {}).values():
        counts[entry.get("state", "not_started")] = (
            counts.get(entry.get("state", "not_started"), 0) + 1
        )
    _print_result(counts)
    report = store.verification(plan_id)
    if report:
        out.print(
            f"verified against {report['after_snapshot_id']}: "
            f"{report['equal']}/{report['checked']} equal, {report['different']} different"
        )


@restore_app.command("list")
def list_cmd(
    realm: str | None = typer.Option(None, "--realm", help="Company (realm id)."),
    fmt: ListFormat = format_option(),
) -> None:
    """List the restore plans with their state, newest last (ids are never cut)."""
    from qbo_pipeline.restore.review import summary_line
    from qbo_pipeline.restore.store import PlanStore, RestoreError

    settings = load_settings()
    store = PlanStore.for_realm(_realm(settings, realm))
    ids = store.plan_ids()
    if not ids:
        console.print("no restore plans yet: `qbo-backup restore plan --snapshot S --all`")
        if fmt is not ListFormat.TABLE:
            emit(out, fmt, [])
        return
    rows: list[dict[str, Any]] = []
    for plan_id in ids:
        try:
            plan = store.load(plan_id)
        except RestoreError as exc:
            rows.append({"plan_id": plan_id, "error": str(exc)})
            continue
        status = store.status(plan_id)
        done = None
        if status:
            done = sum(1 for s in status.get("steps", {}).values() if s.get("state") == "done")
        rows.append(
            {
                "plan_id": plan_id,
                "created_at": plan.created_at,
                "snapshot_id": plan.snapshot_id,
                "scope": plan.scope.get("kind"),
                "steps": len(plan.steps),
                "summary": summary_line(plan),
                "approved_by": (plan.approval or {}).get("approved_by"),
                "steps_done": done,
                "applied": "" if done is None else f"{done}/{len(plan.steps)} done",
                "error": None,
            }
        )
    rows.sort(key=lambda r: (str(r.get("created_at") or ""), r["plan_id"]))
    shown = [r | {"summary": r.get("summary") or f"[red]{escape(r['error'])}[/red]"} for r in rows]
    emit(out, fmt, rows, tables=[listing.table("Restore plans", _PLAN_COLUMNS, shown)])


_PLAN_COLUMNS = (  # a plan id starts with its target snapshot's id (csv and json have both)
    Column("plan_id", "plan (to snapshot)", identifier=True),
    Column("scope", "scope"),
    Column("summary", "steps"),
    Column("approved_by", "approved by"),
    Column("applied", "applied"),
)
