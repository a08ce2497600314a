"""The main job end to end (``qbo-backup demo``) at a small scale, run twice."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from rich.console import Console

from qbo_pipeline.cli.demo import EXAMPLE_QUERIES, MARKER, DemoError, run_demo
from qbo_pipeline.lake.lake import Lake
from qbo_pipeline.models.warehouse import connect


def test_the_demo_tells_the_whole_story_twice(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    for _ in range(2):  # idempotent: a second run starts afresh and works again
        console = Console(file=io.StringIO(), width=100)
        result = run_demo(folder, days=1, console=console)
        printed = console.file.getvalue()
        realm = Lake(folder / "lake").realm(result.realm_id)
        committed = [s.snapshot_id for s in realm.snapshots()]
        # full + 1 nightly + after the incident + the plan's safety snapshot + the verification
        assert len(committed) >= 4
        assert result.before_incident in committed and result.after_incident in committed
        # The diff names every record the incident touched.
        assert result.incident_records
        assert result.incident_records <= result.diff_records
        assert result.incident.get("Invoice deleted", 0) > 0
        # The restore was planned, applied and verified against a fresh snapshot.
        assert result.plan_actions.get("create", 0) >= result.incident["Invoice deleted"]
        assert result.applied.get("failed", 0) == 0
        assert result.verified
        # The warehouse has its tables, and the reviews exist.
        assert {
            "marts.snapshots",
            "marts.record_history",
            "marts.trial_balance",
            "marts.invoices",
            "marts.revenue_by_month",
        } <= set(result.warehouse_tables)
        assert result.warehouse is not None
        con = connect(result.warehouse, read_only=True)
        try:
            for query in EXAMPLE_QUERIES:  # the queries the demo tells the newcomer to run
                assert con.execute(query).fetchall(), query
                assert f'qbo-backup sql "{query}"' in printed
        finally:
            con.close()
        # Where to look next points analysts at the current-state and monthly tables.
        closing = " ".join(printed.split("Where to look next", 1)[1].split())
        for table in (
            "marts.invoices",
            "marts.customers",
            "marts.revenue_by_month",
            "marts.ar_by_month",
            "marts.ap_by_month",
        ):
            assert table in closing, table
        assert result.review_html is not None and "<html" in result.review_html.read_text()
        assert result.plan_html is not None and result.plan_html.exists()
        # The CSVs open and have rows.
        assert result.exports is not None
        invoices = sorted(result.exports.glob("*-Invoice-*.csv"))
        assert invoices
        with invoices[0].open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert rows and "Id" in rows[0]
        assert (folder / MARKER).exists()


def test_the_demo_never_wipes_a_folder_it_did_not_make(tmp_path: Path) -> None:
    folder = tmp_path / "precious"
    folder.mkdir()
    (folder / "books.xlsx").write_text("not the demo's")
    with pytest.raises(DemoError, match="did not make"):
        run_demo(folder, days=1)
    assert (folder / "books.xlsx").read_text() == "not the demo's"


def test_a_rerun_keeps_the_dagster_run_history_and_says_so(tmp_path: Path) -> None:
    from qbo_pipeline.cli.demo import _fresh

    folder = tmp_path / "demo"
    (folder / "dagster" / "history").mkdir(parents=True)
    (folder / "dagster" / "history" / "runs.db").write_text("runs")
    (folder / "lake").mkdir()
    (folder / "lake" / "old.parquet").write_text("old")
    (folder / MARKER).write_text("")
    assert _fresh(folder) == ["dagster"]
    assert (folder / "dagster" / "history" / "runs.db").read_text() == "runs"
    assert not (folder / "lake").exists()
    assert (folder / MARKER).exists()
