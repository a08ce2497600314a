"""``qbo-backup warehouse build``, ``diff`` and ``sql``: the DuckDB warehouse over the lake."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from qbo_pipeline import config
from qbo_pipeline.cli.boundary import CommandError, exit_code_of
from qbo_pipeline.cli.fit import CELL_WIDTH, FittedTable, fit_table
from qbo_pipeline.cli.freshness import ensure_current
from qbo_pipeline.cli.settings import load_settings
from qbo_pipeline.cli.wording import count
from qbo_pipeline.errors import EXIT_FAILURE, EXIT_USAGE

console = Console(stderr=True, soft_wrap=True)  # the terminal wraps: commands stay pasteable
out = Console(soft_wrap=True)


class DiffFormat(StrEnum):
    """Output formats of ``diff``."""

    TEXT = "text"
    CSV = "csv"
    JSON = "json"
    HTML = "html"


class SqlFormat(StrEnum):
    """Output formats of ``sql``."""

    TABLE = "table"
    CSV = "csv"
    JSON = "json"


USAGE_EXIT_CODE = EXIT_USAGE
"""The exit code of a query ``sql`` refuses to run (a usage error)."""


def _fail(message: str, code: int = EXIT_FAILURE) -> CommandError:
    """The error ending a command: the boundary prints ``error: <message>`` and exits ``code``."""
    return CommandError(message, exit_code=code)


def _refusal(exc: Exception) -> str:
    """One line for a query DuckDB kept from reaching outside the warehouse and its lake."""
    found = re.search(r'Cannot access (?:file|directory) "([^"]*)"', str(exc))
    if found is None:
        return str(exc).splitlines()[0]
    return (
        f"{found.group(1)} is outside the warehouse and its lake folder; "
        "`qbo-backup sql` reads nothing else"
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def _say(text: str) -> None:
    console.print(text, highlight=False)


def _say_what_is_left_out(fitted: FittedTable, columns: int, more_rows: int, width: int) -> None:
    """One line on stderr naming the hidden columns, cut values and rows not shown."""
    parts = []
    if fitted.hidden:
        shown = columns - len(fitted.hidden)
        parts.append(
            f"{shown} of {count(columns, 'column')} shown to fit {width} characters; "
            f"hidden: {', '.join(fitted.hidden)}"
        )
    if fitted.cut:
        parts.append(f"values cut at {CELL_WIDTH} characters")
    if more_rows:
        parts.append(f"{count(more_rows, 'more row')} (--limit 0 shows them)")
    if parts:
        console.print(
            "; ".join(parts) + " (--format csv or json for every column and full values)",
            highlight=False,
            soft_wrap=True,
        )


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    console.print(f"wrote {output}")


def register(app: typer.Typer) -> None:
    """Add ``warehouse build``, ``diff`` and ``sql``."""
    warehouse_app = typer.Typer(help="The DuckDB warehouse analysts query.", no_args_is_help=True)
    app.add_typer(warehouse_app, name="warehouse")

    @warehouse_app.command("build")
    def build(
        select: list[str] = typer.Option(
            [],
            "--select",
            "-s",
            help="Build only these models (and what they read); `name+` adds downstream.",
        ),
        full: bool = typer.Option(
            False,
            "--full",
            help="Rebuild every model from the whole lake, even when the last build could be "
            "extended with the new snapshots only.",
        ),
        compact: bool = typer.Option(
            False,
            "--compact",
            help="Copy the built warehouse into a fresh file before publishing, dropping the "
            "deleted rows incremental builds leave behind (done by itself once the file has "
            f"grown past {config.WAREHOUSE_COMPACT_GROWTH_VAR} times the size of its last full "
            f"build or compaction: {config.DEFAULT_COMPACT_GROWTH:g} by default, off never).",
        ),
    ) -> None:
        """Build every model over the lake and publish them to the warehouse atomically.

        After a backup the build is incremental: the per-version models only take the new
        snapshots' versions. A prune, a gc or a changed SQL file makes it full; it says why.
        """
        from qbo_pipeline.models.runner import ModelError
        from qbo_pipeline.models.warehouse import build_warehouse

        settings = load_settings()
        try:
            result = build_warehouse(
                settings.lake_url,
                settings.warehouse_path,
                select=select,
                full=full,
                compact=True if compact else None,
            )
        except ModelError as exc:
            raise _fail(str(exc), exit_code_of(exc)) from None
        table = Table(title=f"warehouse {result.warehouse}", title_justify="left")
        numeric = ("rows", "inserted", "tests")
        for column in ("model", "kind", *numeric):
            table.add_column(column, justify="right" if column in numeric else "left")
        for model in result.models:
            table.add_row(
                model.key,
                f"{model.materialized} (kept)" if model.skipped else model.materialized,
                "-" if model.rows is None else f"{model.rows:,}",
                f"{model.rows_inserted:,}",
                str(len(model.tests)),
            )
        out.print(table)
        out.print(f"{result.kind} build: {result.reason}")
        out.print(
            f"file {result.file_bytes / 2**20:.1f} MiB: "
            + (
                f"compacted in {result.compact_seconds:.1f}s ({result.compaction_reason})"
                if result.compacted
                else f"not compacted ({result.compaction_reason})"
            )
        )
        out.print(f"macros: {', '.join(result.macros) or 'none'}")
        out.print(result.summary())

    @app.command("diff")
    def diff(
        old: str = typer.Argument(
            ..., help="Earlier snapshot: id, prefix, latest, previous, date."
        ),
        new: str | None = typer.Argument(
            None, help="Later snapshot (default: latest; `diff latest` compares previous with it)."
        ),
        fmt: DiffFormat = typer.Option(DiffFormat.TEXT, "--format", "-f", help="Output format."),
        output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file."),
        entity: list[str] = typer.Option(
            [], "--entities", "-e", help="Only these entities (repeat or comma-separate)."
        ),
        realm: str | None = typer.Option(None, help="Only this company (realm id)."),
        system: bool = typer.Option(
            False, "--system-fields", help="Include MetaData and SyncToken differences."
        ),
        rebuild: bool = typer.Option(
            False,
            "--build",
            help="Rebuild the warehouse first (it is built anyway when it "
            "does not hold the lake's snapshots).",
        ),
    ) -> None:
        """Show what changed between two snapshots: summary, CSV/JSON change list or HTML review.

        The warehouse is built first when it is missing or does not hold the lake's snapshots.
        """
        from qbo_pipeline.models.diff import ACTIONS, compute_diff
        from qbo_pipeline.models.review import render_review
        from qbo_pipeline.models.runner import ModelError
        from qbo_pipeline.models.warehouse import build_warehouse, connect_for_queries

        settings = load_settings()
        names = [n.strip() for item in entity for n in item.split(",") if n.strip()]
        if new is None:
            new = "latest"
            if old.strip().lower() == "latest":
                old = "previous"
                console.print(
                    "comparing the previous snapshot with the latest (`diff A B` names both)",
                    highlight=False,
                )
        try:
            if rebuild:
                build_warehouse(settings.lake_url, settings.warehouse_path)
            else:
                ensure_current(settings, _say)
            con = connect_for_queries(settings.warehouse_path)
            try:
                result = compute_diff(
                    con,
                    old,
                    new,
                    entity_names=names,
                    include_system_fields=system,
                    realm_id=realm,
                )
            finally:
                con.close()
        except ModelError as exc:
            raise _fail(str(exc), exit_code_of(exc)) from None
        for realm_id, (old_sid, new_sid) in result.snapshots.items():
            if old_sid == new_sid:
                console.print(
                    f"[yellow]note:[/yellow] {old!r} and {new!r} both name snapshot {old_sid} of "
                    f"company {realm_id}, so nothing can differ; `qbo-backup snapshots` lists "
                    "the snapshots (a date names the newest snapshot taken by the end of that day)",
                    highlight=False,
                )
        if fmt is DiffFormat.CSV:
            _emit(result.to_csv(), output)
        elif fmt is DiffFormat.JSON:
            _emit(result.to_json(), output)
        elif fmt is DiffFormat.HTML:
            _emit(render_review(result), output)
        else:
            for realm_id, (old_sid, new_sid) in result.snapshots.items():
                table = Table(
                    title=f"company {realm_id}: {old_sid} -> {new_sid}", title_justify="left"
                )
                table.add_column("entity")
                for action in ACTIONS:
                    table.add_column(action, justify="right")
                rows = [r for r in result.summary() if r["realm_id"] == realm_id]
                for row in rows:
                    table.add_row(row["entity"], *(str(row[a] or "") for a in ACTIONS))
                if not rows:
                    table.add_row("(no change)", *[""] * len(ACTIONS))
                out.print(table)
            fields = sum(len(c.fields) for c in result.changes)
            out.print(
                f"{count(len(result.changes), 'record')} changed, "
                f"{count(fields, 'field change')} (--format csv|json|html for the full list)"
            )

    @app.command("sql")
    def sql(
        query: str = typer.Argument(
            ..., help="One read-only query (select, from, with, describe...) on the warehouse."
        ),
        fmt: SqlFormat = typer.Option(SqlFormat.TABLE, "--format", "-f", help="Output format."),
        limit: int = typer.Option(1000, help="Most rows shown as a table (0: all)."),
    ) -> None:
        """Run one read-only query on the warehouse.

        The connection is locked down: it reads the warehouse and the lake folder its views read,
        no other file, URL or extension, and no statement can change its settings.
        """
        import duckdb

        from qbo_pipeline.models.runner import ModelError
        from qbo_pipeline.models.warehouse import (
            QueryRefusedError,
            connect_for_queries,
            read_statement,
        )

        settings = load_settings()
        try:
            statement = read_statement(query)
        except QueryRefusedError as exc:
            raise _fail(f"query refused: {exc}", USAGE_EXIT_CODE) from None
        except duckdb.Error as exc:
            raise _fail(f"query failed: {exc}") from None
        try:
            ensure_current(settings, _say)
            con = connect_for_queries(settings.warehouse_path)
        except ModelError as exc:
            raise _fail(str(exc), exit_code_of(exc)) from None
        try:
            cursor = con.execute(statement)
            columns = [d[0] for d in cursor.description or []]
            rows = cursor.fetchall() if columns else []
        except duckdb.PermissionException as exc:
            raise _fail(f"query refused: {_refusal(exc)}", USAGE_EXIT_CODE) from None
        except duckdb.Error as exc:
            raise _fail(f"query failed: {exc}") from None
        finally:
            con.close()
        if fmt is SqlFormat.CSV:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows(rows)
            _emit(buffer.getvalue(), None)
        elif fmt is SqlFormat.JSON:
            records = [{c: _jsonable(v) for c, v in zip(columns, r, strict=True)} for r in rows]
            _emit(json.dumps(records, indent=2, ensure_ascii=False, default=str), None)
        else:
            shown = rows if limit <= 0 else rows[:limit]
            fitted = fit_table(columns, shown, out.width)
            out.print(fitted.table)
            _say_what_is_left_out(fitted, len(columns), len(rows) - len(shown), out.width)
