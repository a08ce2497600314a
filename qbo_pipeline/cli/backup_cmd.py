"""``qbo-backup backup``, ``snapshots`` and ``unlock``: take and list snapshots."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from qbo_pipeline.cli import listing
from qbo_pipeline.cli.boundary import failed
from qbo_pipeline.cli.listing import Column, ListFormat, emit, format_option
from qbo_pipeline.cli.settings import load_settings
from qbo_pipeline.cli.wording import count
from qbo_pipeline.errors import EXIT_CANCELLED, NotConnected, QboPipelineError

if TYPE_CHECKING:
    from qbo_pipeline.backup import BackupResult
    from qbo_pipeline.config import Settings
    from qbo_pipeline.lake.lake import Lake, SnapshotInfo

console = Console(stderr=True, soft_wrap=True)  # the terminal wraps: commands stay pasteable
out = Console(soft_wrap=True)
log = logging.getLogger(__name__)


class RichProgress:
    """Per-entity progress bars for a backup run."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}
        self._status = progress.add_task("starting", total=None, entity="")

    def planned(self, kind: str, expected: dict[str, int | None]) -> None:
        """Create one bar per entity."""
        for name, total in expected.items():
            self._tasks[name] = self._progress.add_task(name, total=total, entity=name)

    def fetched(self, entity: str, count: int) -> None:
        """Advance an entity's bar."""
        task = self._tasks.get(entity)
        if task is not None:
            self._progress.advance(task, count)

    def stage(self, message: str) -> None:
        """Show the current stage."""
        self._progress.update(self._status, description=message)


def register(app: typer.Typer) -> None:
    """Add ``backup``, ``snapshots`` and ``unlock``."""

    @app.command("backup")
    def backup(
        realm: str | None = typer.Option(None, help="Company (realm id); default: every one."),
        full: bool = typer.Option(False, "--full", help="Read every entity in full."),
        incremental: bool = typer.Option(
            False, "--incremental", help="Read only what CDC says changed since the last snapshot."
        ),
        entities: str | None = typer.Option(
            None, help="Comma-separated entities to refresh (others carry over)."
        ),
        wait: float = typer.Option(
            0, help="Seconds to wait for a running backup of the same company (0: refuse)."
        ),
    ) -> None:
        """Take a snapshot of each connected company."""
        from qbo_pipeline.cli.connection import connect
        from qbo_pipeline.lake.lake import Lake

        if full and incremental:
            raise typer.BadParameter("choose one of --full and --incremental")
        mode = "full" if full else "incremental" if incremental else "auto"
        only = [e for e in entities.split(",") if e.strip()] if entities else None
        settings = load_settings()
        try:
            with connect(settings) as conn:
                lake = Lake(settings.lake_url)
                _say_other_environments(lake, settings.environment.value)
                for realm_id in conn.realms(realm):
                    try:
                        result = _run_one(conn.client(realm_id), lake, realm_id, mode, only, wait)
                    except (QboPipelineError, ValueError) as exc:
                        failed(f"backup of company {realm_id} failed", exc)
                    _summary(result)
        except KeyboardInterrupt:
            console.print("[yellow]cancelled: no snapshot was committed[/yellow]")
            raise typer.Exit(EXIT_CANCELLED) from None

    @app.command("snapshots")
    def snapshots(
        realm: str | None = typer.Option(None, help="Company (realm id); default: every one."),
        retired: bool = typer.Option(False, help="Also list retired snapshots."),
        fmt: ListFormat = format_option(),
    ) -> None:
        """List the committed snapshots with their counts (ids are never cut)."""
        from qbo_pipeline.lake.lake import Lake

        settings = load_settings()
        lake = Lake(settings.lake_url)
        known = lake.realms()
        if realm is not None and realm not in known:
            lake.realm(realm)  # an id that cannot be a realm's is refused as such
            _no_snapshots_of(settings, lake, realm, known)
            return
        realms = [realm] if realm else known
        if not realms:
            console.print("no snapshots yet: run `qbo-backup backup`")
            if fmt is not ListFormat.TABLE:
                emit(out, fmt, [])
            return
        rows: list[dict[str, Any]] = []
        tables = []
        seen: dict[str, set[str]] = {}
        for realm_id in realms:
            mine = [
                _snapshot_row(info)
                for info in lake.realm(realm_id).snapshots(include_retired=retired)
            ]
            rows += mine
            for row in mine:
                seen.setdefault(row["environment"] or "?", set()).add(realm_id)
            company = next((r["company"] for r in reversed(mine) if r["company"]), None)
            environments = sorted({r["environment"] or "?" for r in mine})
            title = f"Snapshots of {company + ', ' if company else ''}realm {realm_id}"
            title += f" ({', '.join(environments)})" if environments else ""
            tables.append(listing.table(title, _SNAPSHOT_COLUMNS, mine))
        emit(out, fmt, rows, tables=tables)
        known = sorted(e for e in seen if e != "?")
        if len(known) > 1:
            console.print(
                "[yellow]this lake holds companies of more than one environment: "
                + "; ".join(f"{e}: {', '.join(sorted(seen[e]))}" for e in known)
                + "[/yellow]"
            )

    @app.command("unlock")
    def unlock(
        realm: str = typer.Argument(..., help="Company (realm id) whose lock to clear."),
    ) -> None:
        """Clear a backup lock left behind (only when no backup of the company is running)."""
        from qbo_pipeline.lake.lake import Lake
        from qbo_pipeline.lake.lock import force_unlock

        settings = load_settings()
        cleared = force_unlock(Lake(settings.lake_url).realm(realm))
        console.print("lock cleared" if cleared else "no lock was held")


_SNAPSHOT_COLUMNS = (
    Column("snapshot_id", "snapshot", identifier=True),
    Column("kind", "kind"),
    Column("status", "status"),
    Column("records", "records", numeric=True),
    Column("new_versions", "new versions", numeric=True),
    Column("deletions", "deletions", numeric=True),
    Column("api_calls", "API calls", numeric=True),
)


def _snapshot_row(info: SnapshotInfo) -> dict[str, Any]:
    """One snapshot as a listing row (every field csv and json carry)."""
    totals = info.totals
    return {
        "realm_id": info.realm_id,
        "company": info.company_name,
        "environment": info.record.get("environment"),
        "snapshot_id": info.snapshot_id,
        "parent_id": info.parent_id,
        "kind": info.kind,
        "status": info.status,
        "server_time": info.server_time.isoformat(),
        "committed_at": info.committed_at.isoformat(),
        "records": totals.get("live"),
        "new_versions": totals.get("versions_written"),
        "deletions": totals.get("deletes"),
        "api_calls": totals.get("api_calls"),
    }


def _no_snapshots_of(settings: Settings, lake: Lake, realm: str, known: list[str]) -> None:
    """Say why the lake has no snapshots of a company: it is not connected, or not backed up yet.

    Raises:
        NotConnected: When the company is not connected (a usage error: exit code 2).
    """
    from qbo_pipeline.qbo.connect import connected_realms

    where = lake.fs.url(lake.fs.root)
    try:
        connected = connected_realms(settings)
    except (QboPipelineError, ValueError):
        connected = []  # the token store cannot say: the lake alone decides
    if realm in connected:
        console.print(
            f"no snapshots of company {realm} in the lake at {where} yet: "
            f"run `qbo-backup backup --realm {realm}`",
            highlight=False,
        )
        return
    raise NotConnected(
        f"company {realm} is not connected and the lake at {where} holds no snapshot of it "
        f"(companies in the lake: {', '.join(known) or 'none'}); connect it with "
        "`qbo-backup auth login`, then run `qbo-backup backup`"
    )


def _say_other_environments(lake: Lake, environment: str) -> None:
    """Say when the lake holds companies whose latest snapshot came from another environment."""
    others = []
    for realm_id in lake.realms():
        latest = lake.realm(realm_id).latest()
        theirs = latest.record.get("environment") if latest is not None else None
        if theirs and theirs != environment:
            others.append(f"{realm_id} ({theirs})")
    if others:
        console.print(
            f"[yellow]this {environment} backup writes to a lake that also holds companies of "
            f"another environment: {', '.join(others)}[/yellow]",
            highlight=False,
        )


def _run_one(
    client: Any, lake: Lake, realm_id: str, mode: str, only: list[str] | None, wait: float
) -> BackupResult:
    from qbo_pipeline.backup import run_backup

    columns = (
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        return run_backup(
            client,
            lake.realm(realm_id),
            mode=mode,  # type: ignore[arg-type]
            only=only,
            progress=RichProgress(progress),
            lock_wait=wait,
        )


def _summary(result: BackupResult) -> None:
    snap = result.snapshot
    table = Table(title=f"Snapshot {snap.snapshot_id} of {snap.company_name or snap.realm_id}")
    for column in ("entity", "mode", "records", "fetched", "new versions", "deletions"):
        table.add_column(column, justify="left" if column in ("entity", "mode") else "right")
    for name, stats in sorted(result.entities.items()):
        table.add_row(
            name,
            str(stats.get("mode", "")),
            str(stats.get("live", "")),
            str(stats.get("fetched", "")),
            str(stats.get("versions_written", "")),
            str(stats.get("deletes", "")),
        )
    out.print(table)
    out.print(
        f"[bold]{result.kind}[/bold] snapshot committed: {count(result.live_records, 'record')}, "
        f"{result.fetched:,} fetched, {count(result.versions_written, 'new version')}, "
        f"{count(result.deletions, 'deletion')}, "
        f"{count(result.attachments_downloaded, 'attachment')} "
        f"({count(result.attachment_bytes, 'byte')}), {count(result.bytes_written, 'byte')} "
        f"written, {count(result.api_calls, 'API call')}, {result.duration_s:.1f} s"
    )
