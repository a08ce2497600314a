"""The main job end to end on the embedded sandbox: the story ``make demo`` tells.

Start the sandbox, connect through OAuth2, take a full snapshot, simulate a week of bookkeeping
with a nightly incremental snapshot, cause an incident, show the diff that reveals it, plan a
restore, approve and apply it, verify it, build the warehouse and the exports, and say where to look
next. Everything happens in its own folder (``data/demo`` by default), started afresh on every run,
so the demo can be run again at any time.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from qbo_pipeline.backup import BackupResult, run_backup
from qbo_pipeline.cli.connection import Connection, connect
from qbo_pipeline.cli.wording import count
from qbo_pipeline.config import Settings
from qbo_pipeline.errors import UsageError
from qbo_pipeline.lake.lake import Lake, RealmLake
from qbo_pipeline.qbo.http import QBOClient

MARKER = ".qbo-demo"
"""A file that marks a folder as the demo's own, so a rerun may wipe it and nothing else."""

KEPT = ("dagster",)
"""What a rerun keeps of the demo's folder: the Dagster run history of ``make ui`` on it."""

BOOKS_START = date(2024, 1, 1)
"""The first day of the demo company's books. The books run a year, so the full snapshot is taken
on 2024-12-31 and the week of bookkeeping runs from 2025-01-01 to 2025-01-07, every time: the
README's examples name those dates."""

SEED = 42
"""The demo company's seed (the sandbox's default): the same company on every run."""


EXAMPLE_QUERIES = (
    "select doc_number, customer_name, total_amount, balance from marts.invoices"
    " where balance > 0 order by balance desc limit 5",
    "select month, revenue, net_income from marts.revenue_by_month order by month",
    "select month, ar_balance, ap_balance from marts.ar_by_month"
    " join marts.ap_by_month using (realm_id, month) order by month",
    "select id, display_name, txn_date, total_amount from as_of('Invoice', 'previous') limit 5",
)
"""The queries the demo suggests at the end (its test runs them on the warehouse it built):
the current-state tables, the monthly models and a past snapshot."""


class DemoError(UsageError, RuntimeError):
    """The demo cannot run as asked; the message says why (exit code 2)."""


@dataclass
class DemoResult:
    """What the demo did and where its outputs are."""

    folder: Path
    realm_id: str
    company: str
    snapshots: list[str] = field(default_factory=list)
    before_incident: str = ""
    after_incident: str = ""
    incident: dict[str, int] = field(default_factory=dict)
    incident_records: set[tuple[str, str]] = field(default_factory=set)
    diff_records: set[tuple[str, str]] = field(default_factory=set)
    review_html: Path | None = None
    changes_csv: Path | None = None
    plan_id: str = ""
    plan_html: Path | None = None
    plan_actions: dict[str, int] = field(default_factory=dict)
    applied: dict[str, int] = field(default_factory=dict)
    verified: bool = False
    warehouse: Path | None = None
    warehouse_tables: list[str] = field(default_factory=list)
    exports: Path | None = None
    seconds: float = 0.0


def run_demo(
    folder: Path,
    *,
    days: int = 7,
    console: Console | None = None,
) -> DemoResult:
    """Run the whole backup-and-recovery story on the embedded sandbox.

    Args:
        folder: The demo's own folder; wiped and recreated (only when it is empty or was made by
            an earlier demo).
        days: Days of simulated bookkeeping, each followed by a nightly incremental snapshot.
        console: Where to tell the story (a quiet console by default).

    Raises:
        DemoError: If the folder holds something the demo did not make.
    """
    console = console or Console(quiet=True)
    started = time.monotonic()
    kept = _fresh(folder)
    settings = Settings.from_env({"QBO_DATA_DIR": str(folder), "QBO_ENVIRONMENT": "embedded"})
    say = _Narrator(console)
    say.title("qbo_pipeline demo: backup and recovery of a QuickBooks Online company")
    for name in kept:
        say.detail(
            f"started {folder} afresh, keeping {folder / name} (the Dagster run history of "
            "`make ui`; delete that folder to start it afresh too)"
        )
    _company(settings)
    with connect(settings, announce=False) as conn:
        realm_id = conn.realm_ids[0]
        client = conn.client(realm_id)
        realm = Lake(settings.lake_url).realm(realm_id)
        company = str(client.company_info().get("CompanyName", realm_id))
        result = DemoResult(folder=folder, realm_id=realm_id, company=company)
        say.step(
            f"Started the embedded QBO sandbox at {conn.api_base} and connected to "
            f"[bold]{company}[/bold] (realm {realm_id}) through OAuth2"
        )
        _week(say, conn, client, realm, realm_id, days, result)
        _incident(say, conn, client, realm, realm_id, result)
        _review(say, settings, realm_id, result)
        _restore(say, client, realm, result)
        _outputs(say, settings, realm, result)
    result.seconds = time.monotonic() - started
    _where_next(say, settings, result)
    return result


class _Narrator:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.n = 0

    def title(self, text: str) -> None:
        self.console.rule(f"[bold]{text}")

    def step(self, text: str) -> None:
        self.n += 1
        self.console.print(f"[bold cyan]{self.n:>2}.[/bold cyan] {text}")

    def detail(self, text: str) -> None:
        self.console.print(f"    {text}")


def _fresh(folder: Path) -> list[str]:
    """Empty the demo's folder (one the demo made) but for :data:`KEPT`; returns what it kept."""
    kept: list[str] = []
    if folder.exists():
        if any(folder.iterdir()) and not (folder / MARKER).exists():
            raise DemoError(
                f"{folder} already holds files the demo did not make; "
                "choose another folder with --folder"
            )
        for child in sorted(folder.iterdir()):
            if child.name in KEPT and child.is_dir():
                kept.append(child.name)
            elif child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("made by `qbo-backup demo`; removed by its next run\n")
    return kept


def _company(settings: Settings) -> None:
    """Generate the demo company, its books starting on :data:`BOOKS_START`.

    Its snapshots then carry the same dates on every run; its clock runs on from there.
    """
    from qbo_pipeline.sandbox.generator import generate_company
    from qbo_pipeline.sandbox.server import realm_id_for
    from qbo_pipeline.sandbox.store import SandboxStore

    settings.sandbox_state_path.parent.mkdir(parents=True, exist_ok=True)
    store = SandboxStore(settings.sandbox_state_path)
    try:
        generate_company(store, realm_id_for(0), seed=SEED, start=BOOKS_START)
    finally:
        store.close()


def _snap(result: DemoResult, backup: BackupResult) -> str:
    result.snapshots.append(backup.snapshot.snapshot_id)
    return backup.snapshot.snapshot_id


def _week(
    say: _Narrator,
    conn: Connection,
    client: QBOClient,
    realm: RealmLake,
    realm_id: str,
    days: int,
    result: DemoResult,
) -> None:
    full = run_backup(client, realm, mode="full")
    _snap(result, full)
    say.step(
        f"Full snapshot {full.snapshot.snapshot_id}: {count(full.live_records, 'record')} of "
        f"{count(len(full.entities), 'entity', 'entities')}, "
        f"{count(full.attachments_downloaded, 'attachment')}, "
        f"{count(full.api_calls, 'API call')}, reconciled with QBO's COUNT(*)"
    )
    say.step(f"A week of bookkeeping: {days} simulated days, each with a nightly snapshot")
    for day in range(1, days + 1):
        log = conn.sandbox.simulate(1, realm_id=realm_id)
        nightly = run_backup(client, realm, mode="incremental")
        _snap(result, nightly)
        say.detail(
            f"day {day}: {count(len(log), 'change'):>11} in QBO -> snapshot "
            f"{nightly.snapshot.snapshot_id}: {count(nightly.versions_written, 'new version')}, "
            f"{count(nightly.deletions, 'deletion')}, {count(nightly.api_calls, 'API call')}"
        )


def _incident(
    say: _Narrator,
    conn: Connection,
    client: QBOClient,
    realm: RealmLake,
    realm_id: str,
    result: DemoResult,
) -> None:
    result.before_incident = result.snapshots[-1]
    start, end = _invoice_range(conn, realm_id)
    logs = [
        conn.sandbox.incident("bulk_delete_invoices", realm_id=realm_id, start=start, end=end),
        conn.sandbox.incident("bad_import_customers", realm_id=realm_id, count=8),
        conn.sandbox.incident("deactivate_item", realm_id=realm_id),
    ]
    counts: Counter[str] = Counter()
    for log in logs:
        for change in log:
            counts[f"{change.entity} {change.action}"] += 1
            result.incident_records.add((change.entity, change.id))
    result.incident = dict(counts)
    say.step(
        "[bold red]Incident[/bold red]: a bulk delete of the invoices dated "
        f"{start} to {end} with their payments, a bad import over 8 customers, an item "
        "deactivated: " + ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))
    )
    after = run_backup(client, realm, mode="incremental")
    result.after_incident = _snap(result, after)
    say.detail(
        f"the nightly snapshot {after.snapshot.snapshot_id} captured it: "
        f"{count(after.versions_written, 'new version')}, {count(after.deletions, 'deletion')}"
    )


def _invoice_range(conn: Connection, realm_id: str) -> tuple[date, date]:
    return invoice_range(conn.sandbox.store, realm_id)


def invoice_range(store: Any, realm_id: str) -> tuple[date, date]:
    """The dates of the demo's bulk delete: about a sixth of the invoices, a third of the way in.

    Also the default of ``qbo-backup sandbox incident bulk_delete_invoices``.

    Raises:
        DemoError: If the company has fewer than four invoices.
    """
    dates = sorted(p["TxnDate"] for p in store.iter_records(realm_id, "Invoice"))
    if len(dates) < 4:
        raise DemoError("the sandbox company has too few invoices for the incident")
    lo, hi = len(dates) // 3, len(dates) // 3 + max(2, len(dates) // 6)
    return date.fromisoformat(dates[lo]), date.fromisoformat(dates[min(hi, len(dates) - 1)])


def _review(say: _Narrator, settings: Settings, realm_id: str, result: DemoResult) -> None:
    from qbo_pipeline.models.diff import ACTIONS, compute_diff
    from qbo_pipeline.models.review import render_review
    from qbo_pipeline.models.warehouse import build_warehouse
    from qbo_pipeline.models.warehouse import connect as open_warehouse

    build = build_warehouse(settings.lake_url, settings.warehouse_path)
    con = open_warehouse(settings.warehouse_path, read_only=True)
    try:
        diff = compute_diff(con, result.before_incident, result.after_incident, realm_id=realm_id)
    finally:
        con.close()
    result.diff_records = {(c.entity, c.record_id) for c in diff.changes}
    reviews = settings.data_dir / "reviews"
    reviews.mkdir(parents=True, exist_ok=True)
    result.review_html = reviews / "incident.html"
    result.review_html.write_text(render_review(diff, title=f"What changed: {result.company}"))
    result.changes_csv = reviews / "incident-changes.csv"
    _write_rows(result.changes_csv, list(diff.rows()))
    say.step(
        f"Built the DuckDB warehouse ({len(build.models)} models, {build.tests_passed} column "
        f"tests passed) and diffed the snapshots before and after the incident:"
    )
    summary = diff.summary()
    shown = [a for a in ACTIONS if any(row[a] for row in summary)]
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("entity")
    for action in shown:
        table.add_column(action, justify="right")
    for row in summary:
        table.add_row(str(row["entity"]), *(str(row[a] or "") for a in shown))
    say.console.print(table)
    say.detail(f"HTML change review: {result.review_html}")


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    import csv

    columns = list(rows[0]) if rows else ["entity", "id", "change"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _restore(say: _Narrator, client: QBOClient, realm: RealmLake, result: DemoResult) -> None:
    from qbo_pipeline.restore.apply import approve
    from qbo_pipeline.restore.review import write_html
    from qbo_pipeline.restore.run import apply_restore, plan_restore
    from qbo_pipeline.restore.scope import Scope
    from qbo_pipeline.restore.store import PlanStore

    planned = plan_restore(
        client,
        realm,
        snapshot=result.before_incident,
        scope=Scope.parse(changed_since=result.before_incident),
    )
    plan = planned.plan
    result.plan_id = plan.plan_id
    result.plan_actions = dict(Counter(step.action for step in plan.steps))
    store = PlanStore.for_realm(realm)
    result.plan_html = Path(write_html(plan, result.folder / "reviews" / "restore-plan.html"))
    say.step(
        f"Restore plan {plan.plan_id} back to snapshot {result.before_incident}: "
        + ", ".join(f"{n} {a}" for a, n in sorted(result.plan_actions.items()))
        + " (nothing written yet)"
    )
    say.detail(f"plan for review: {result.plan_html}")
    approve(store, plan.plan_id, name="demo")
    say.step("Approved the plan (as `demo`) and applied it, every write with an idempotency key")
    applied, verification = apply_restore(client, realm, plan.plan_id)
    result.applied = {k: v for k, v in applied.counts.items() if v}
    result.verified = bool(verification and verification.get("ok"))
    say.detail("steps: " + ", ".join(f"{n} {s}" for s, n in sorted(result.applied.items())))
    if verification is not None:
        result.snapshots.append(str(verification.get("after_snapshot_id")))
        say.detail(
            f"verified against a fresh snapshot: {verification.get('equal')} of "
            f"{count(int(verification.get('checked') or 0), 'record')} "
            f"{'equals' if verification.get('equal') == 1 else 'equal'} the snapshot before the "
            "incident" + ("" if result.verified else f", {verification.get('different')} differ")
        )


def _outputs(say: _Narrator, settings: Settings, realm: RealmLake, result: DemoResult) -> None:
    from qbo_pipeline.exports import export_snapshot
    from qbo_pipeline.models.warehouse import build_warehouse
    from qbo_pipeline.models.warehouse import connect as open_warehouse

    build = build_warehouse(settings.lake_url, settings.warehouse_path)
    result.warehouse = settings.warehouse_path
    con = open_warehouse(settings.warehouse_path, read_only=True)
    try:
        result.warehouse_tables = sorted(
            f"{schema}.{name}"
            for schema, name in con.execute(
                "select table_schema, table_name from information_schema.tables "
                "where table_schema not in ('information_schema', 'pg_catalog')"
            ).fetchall()
        )
    finally:
        con.close()
    exported = export_snapshot(
        realm, "latest", formats=("csv", "json", "xml"), out_dir=settings.exports_dir
    )
    result.exports = exported.folder
    say.step(
        f"Rebuilt the warehouse ({len(build.models)} models) and exported the latest snapshot "
        f"as CSV, JSON and XML ({count(sum(exported.records.values()), 'record')})"
    )


def _where_next(say: _Narrator, settings: Settings, result: DemoResult) -> None:
    say.console.rule("[bold]Where to look next")
    print_ = say.console.print
    print_(
        f"Done in {result.seconds:.0f} s: {count(len(result.snapshots), 'snapshot')} of "
        f"{result.company}, the incident found and "
        f"{'verified restored' if result.verified else 'restored'}.",
        highlight=False,
    )
    print_(
        "Every command of the README's 'Everyday use' and 'Recovering from an incident' works "
        "on the demo's company once pointed at its folder:",
        highlight=False,
    )
    print_(f"    {point_at(settings.data_dir)}", soft_wrap=True, highlight=False, markup=False)
    print_(
        "For analysts, the warehouse holds the books as they stand now, one row per record "
        "(marts.invoices, marts.customers, marts.invoice_lines ...: a table per entity), "
        "revenue, receivables and payables by month (marts.revenue_by_month, marts.ar_by_month, "
        "marts.ap_by_month) and any snapshot's past (as_of('Invoice', 'previous'), "
        "revenue_by_month('previous')):",
        highlight=False,
    )
    for query in EXAMPLE_QUERIES:
        print_(f'    .venv/bin/qbo-backup sql "{query}"', soft_wrap=True, highlight=False)
    for what, where in (
        ("The warehouse", result.warehouse),
        ("The change review", result.review_html),
        ("The restore plan", result.plan_html),
        ("The exports (CSV, JSON, XML)", result.exports),
    ):
        print_(f"- {what}: {where}", soft_wrap=True, highlight=False, markup=False)
    print_(
        f"- The Dagster UI on the same data: QBO_DATA_DIR={settings.data_dir} make ui "
        "(UI_PORT=3001 for another port than 3000)",
        soft_wrap=True,
        highlight=False,
    )


def point_at(folder: Path) -> str:
    """The shell line that points every later command at the demo's company and data."""
    return f"export QBO_ENVIRONMENT=embedded QBO_DATA_DIR={folder}"
