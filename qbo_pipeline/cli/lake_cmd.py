"""``qbo-backup prune``, ``verify`` and ``gc``: look after the lake."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from qbo_pipeline.cli.boundary import fail, failed
from qbo_pipeline.cli.settings import load_settings
from qbo_pipeline.cli.wording import count
from qbo_pipeline.errors import EXIT_USAGE

if TYPE_CHECKING:
    from qbo_pipeline.lake.gc import GCResult
    from qbo_pipeline.lake.lake import Lake

out = Console(soft_wrap=True)

_REALM_HELP = "Company (realm id); default: every company in the lake."


def register(app: typer.Typer) -> None:
    """Add ``prune``, ``verify`` and ``gc``."""

    @app.command("prune")
    def prune(
        realm: str | None = typer.Option(None, help=_REALM_HELP),
        daily: int = typer.Option(7, min=0, help="Keep the newest snapshot of the last N days."),
        weekly: int = typer.Option(5, min=0, help="Keep the newest snapshot of the last N weeks."),
        monthly: int = typer.Option(
            12, min=0, help="Keep the newest snapshot of the last N months."
        ),
        dry_run: bool = typer.Option(
            False, "--dry-run", help="Show what would go; change nothing."
        ),
    ) -> None:
        """Retire the snapshots a retention policy does not keep, then collect the garbage."""
        from qbo_pipeline.lake.errors import LakeError
        from qbo_pipeline.lake.retention import RetentionPolicy
        from qbo_pipeline.lake.retention import prune as prune_realm

        lake = _lake()
        policy = RetentionPolicy(daily=daily, weekly=weekly, monthly=monthly)
        for realm_id in _realms(lake, realm):
            try:
                realm_lake = lake.realm(realm_id)
                infos = {i.snapshot_id: i for i in realm_lake.snapshots()}
                result = prune_realm(realm_lake, policy, dry_run=dry_run)
            except LakeError as exc:
                failed(f"prune of realm {realm_id} failed", exc)
            retention = result.retention
            table = Table(
                title=f"Retention of realm {realm_id}" + (" (dry run)" if dry_run else "")
            )
            decided = [(sid, True) for sid in retention.kept]
            decided += [(sid, False) for sid in retention.dropped]
            widest = max((len(sid) for sid, _ in decided), default=0)
            for column in ("snapshot", "server time", "kind", "records", "decision", "kept by"):
                is_id = column == "snapshot"  # an id is never cut
                table.add_column(
                    column,
                    justify="right" if column == "records" else "left",
                    no_wrap=is_id,
                    min_width=max(widest, len(column)) if is_id else None,
                )
            for sid, kept in sorted(decided):
                info = infos.get(sid)
                table.add_row(
                    sid,
                    info.server_time.isoformat(timespec="seconds") if info else "",
                    info.kind if info else "",
                    str(info.totals.get("live", "")) if info else "",
                    "keep" if kept else ("would drop" if dry_run else "dropped"),
                    ", ".join(retention.reasons.get(sid, [])),
                )
            out.print(table)
            verb = "would keep" if dry_run else "kept"
            out.print(
                f"realm {realm_id}: {verb} {count(len(retention.kept), 'snapshot')}, "
                f"{'would drop' if dry_run else 'dropped'} {len(retention.dropped):,}; "
                + _gc_summary(result.gc)
            )

    @app.command("verify")
    def verify(
        realm: str | None = typer.Option(None, help=_REALM_HELP),
        snapshot: str | None = typer.Option(
            None,
            help="One snapshot (id, unique prefix, ISO date, 'latest' or 'previous'); "
            "default: all.",
        ),
    ) -> None:
        """Rebuild snapshots and check their counts, digests, payload hashes and attachments."""
        from qbo_pipeline.lake.errors import LakeError

        lake = _lake()
        table = Table(title="Verification")
        for column in ("realm", "snapshot", "records", "result"):
            table.add_column(column, justify="right" if column == "records" else "left")
        failures: list[str] = []
        checked = 0
        for realm_id in _realms(lake, realm):
            realm_lake = lake.realm(realm_id)
            infos = [realm_lake.resolve(snapshot)] if snapshot else realm_lake.snapshots()
            for info in infos:
                checked += 1
                try:
                    realm_lake.verify(info.snapshot_id)
                except LakeError as exc:
                    failures.append(str(exc))
                    outcome = "[red]FAILED[/red]"
                else:
                    outcome = "[green]ok[/green]"
                table.add_row(realm_id, info.snapshot_id, str(info.totals.get("live", "")), outcome)
        if not checked:
            fail("no snapshots to verify: run `qbo-backup backup` first")
        out.print(table)
        for message in failures:
            sys.stderr.write(f"verify failed: {' '.join(message.split())}\n")
        if failures:
            fail(f"{len(failures)} of {count(checked, 'snapshot')} failed verification")
        out.print(f"{count(checked, 'snapshot')} verified")

    @app.command("gc")
    def gc(
        realm: str | None = typer.Option(None, help=_REALM_HELP),
        dry_run: bool = typer.Option(
            False, "--dry-run", help="Show what would go; change nothing."
        ),
    ) -> None:
        """Delete what no live snapshot needs, and the leftovers of crashed runs."""
        from qbo_pipeline.lake.errors import LakeError
        from qbo_pipeline.lake.gc import collect_garbage

        lake = _lake()
        for realm_id in _realms(lake, realm):
            try:
                result = collect_garbage(lake.realm(realm_id), dry_run=dry_run)
            except LakeError as exc:
                failed(f"garbage collection of realm {realm_id} failed", exc)
            out.print(f"realm {realm_id}: {_gc_summary(result)}")


def _lake() -> Lake:
    from qbo_pipeline.lake.errors import LakeError
    from qbo_pipeline.lake.lake import Lake

    settings = load_settings()
    try:
        return Lake(settings.lake_url)
    except (LakeError, ValueError, OSError) as exc:
        failed(f"cannot open the lake at {settings.lake_url}", exc)


def _realms(lake: Lake, realm: str | None) -> list[str]:
    known = lake.realms()
    if realm is None:
        if not known:
            fail(f"the lake at {lake.fs.url(lake.fs.root)} holds no company yet")
        return known
    lake.realm(realm)  # an id that cannot be a realm's is refused as such
    if realm not in known:
        shown = ", ".join(known) if known else "none"
        fail(
            f"realm {realm} is not in the lake at {lake.fs.url(lake.fs.root)} (realms: {shown})",
            EXIT_USAGE,
        )
    return [realm]


def _gc_summary(result: GCResult) -> str:
    would = "would free" if result.dry_run else "freed"
    approx = "about " if result.dry_run and result.files_rewritten else ""
    return (
        f"garbage collection {would} {approx}{_size(result.bytes_removed)} "
        f"({count(len(result.files_removed), 'file')} deleted, "
        f"{len(result.files_rewritten):,} rewritten, "
        f"{count(result.rows_removed, 'record version')} dropped)"
    )


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
