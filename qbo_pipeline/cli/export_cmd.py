"""``qbo-backup export``: write a snapshot as flattened CSV, JSON and XML files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

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

from qbo_pipeline.cli.boundary import fail, failed
from qbo_pipeline.cli.settings import load_settings
from qbo_pipeline.cli.wording import count
from qbo_pipeline.errors import EXIT_CANCELLED, EXIT_USAGE

if TYPE_CHECKING:
    from qbo_pipeline.exports import ExportProgress, ExportResult

console = Console(stderr=True, soft_wrap=True)  # the terminal wraps: commands stay pasteable
out = Console(soft_wrap=True)


class RichExportProgress:
    """One progress bar per entity, created when the entity starts."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def __call__(self, event: ExportProgress) -> None:
        """Advance the entity's bar."""
        task = self._tasks.get(event.entity)
        if task is None:
            task = self._tasks[event.entity] = self._progress.add_task(
                event.entity, total=event.total
            )
        label = f"{event.entity} (reading columns)" if event.stage == "scan" else event.entity
        total = event.done if event.stage == "done" else event.total
        self._progress.update(task, completed=event.done, total=total, description=label)


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


def register(app: typer.Typer) -> None:
    """Add ``export``."""

    @app.command("export")
    def export(
        realm: str | None = typer.Option(
            None, help="Company (realm id); default: every company in the lake."
        ),
        snapshot: str = typer.Option(
            "latest",
            help="Snapshot: 'latest', 'previous', an id or unique prefix, or an ISO date/time "
            "(the newest snapshot at or before it).",
        ),
        formats: list[str] = typer.Option(
            ["csv"],
            "--format",
            "-f",
            help="csv, json or xml; repeat the option or give a comma list.",
        ),
        entities: list[str] | None = typer.Option(
            None,
            "--entities",
            "-e",
            help="Entities to export (repeat or comma list); default: all with records.",
        ),
        max_records: int | None = typer.Option(
            None,
            "--max-records-per-file",
            min=1,
            help="Split each entity into files of at most N records.",
        ),
        bom: bool = typer.Option(
            False, "--bom", help="Start CSV files with a UTF-8 BOM (Excel on Windows)."
        ),
        no_neutralise: bool = typer.Option(
            False,
            "--no-neutralise",
            help="Write formula-like cells (=, +, -, @, tab, CR) as they are (unsafe to open).",
        ),
        raw_json: bool = typer.Option(
            False, "--raw-json", help="JSON as the stored payloads, one per line (.jsonl)."
        ),
        output: Path | None = typer.Option(
            None, "--output", "-o", help="Exports folder; default: QBO_EXPORTS_DIR (data/exports)."
        ),
    ) -> None:
        """Export a snapshot (the latest, or any earlier one) as CSV, JSON and XML files."""
        from qbo_pipeline.exports import ExportError, export_snapshot, parse_formats
        from qbo_pipeline.exports.flatten import FlattenError
        from qbo_pipeline.lake.errors import LakeError
        from qbo_pipeline.lake.lake import Lake

        try:
            chosen = parse_formats(formats)
        except ExportError as exc:
            raise typer.BadParameter(str(exc), param_hint="--format") from None
        settings = load_settings()
        lake = Lake(settings.lake_url)
        known = lake.realms()
        if realm is not None and realm not in known:
            lake.realm(realm)  # an id that cannot be a realm's is refused as such
            fail(
                f"no snapshots of company {realm!r} in {settings.lake_url}; "
                f"companies: {', '.join(known) or 'none (run `qbo-backup backup`)'}",
                EXIT_USAGE,
            )
        realms = [realm] if realm else known
        if not realms:
            fail(f"no snapshots yet in {settings.lake_url}: run `qbo-backup backup`")
        target = output or settings.exports_dir
        columns = (
            TextColumn("{task.description:<34}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        for realm_id in realms:
            try:
                with Progress(*columns, console=console, transient=True) as progress:
                    result = export_snapshot(
                        lake.realm(realm_id),
                        snapshot,
                        formats=chosen,
                        entities=_split(entities) or None,
                        out_dir=target,
                        max_records=max_records,
                        bom=bom,
                        neutralise=not no_neutralise,
                        raw_json=raw_json,
                        progress=RichExportProgress(progress),
                    )
            except KeyboardInterrupt:
                console.print("[yellow]cancelled: earlier exports are untouched[/yellow]")
                raise typer.Exit(EXIT_CANCELLED) from None
            except (ExportError, FlattenError, LakeError, OSError) as exc:
                failed(f"export of company {realm_id} failed", exc)
            _summary(result)


def _summary(result: ExportResult) -> None:
    table = Table(title=f"Export of snapshot {result.snapshot_id} ({result.company})")
    for column in ("entity", "format", "files", "records", "rows", "bytes"):
        table.add_column(column, justify="left" if column in ("entity", "format") else "right")
    groups: dict[tuple[str, str], list[int]] = {}
    for entry in result.files:
        files, records, rows, size = groups.setdefault((entry.entity, entry.format), [0, 0, 0, 0])
        main = entry.table == ""
        groups[(entry.entity, entry.format)] = [
            files + 1,
            records + (entry.records if main else 0),
            rows + entry.rows,
            size + entry.bytes,
        ]
    for (entity, fmt), (files, records, rows, size) in groups.items():
        table.add_row(entity, fmt, str(files), str(records), str(rows), f"{size:,}")
    out.print(table)
    removed = f", {count(len(result.removed), 'stale file')} removed" if result.removed else ""
    out.print(
        f"{count(len(result.files), 'file')}, {count(sum(result.records.values()), 'record')}, "
        f"{count(result.bytes, 'byte')} in {result.duration_s:.1f} s{removed}\n"
        f"folder: {result.folder}\nmanifest: {result.manifest_path}"
    )
