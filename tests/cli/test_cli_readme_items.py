"""The items of issue #21 one by one, on a data folder ``qbo-backup backup`` wrote.

``previous`` and ``latest`` where the README uses them, ``diff`` comparing what it says it
compares and building the warehouse it needs, listings that never cut an id and speak CSV and
JSON, ``sql`` fitted to an 80-column terminal, counts in the right number, and the sandbox's bulk
delete without dates.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import REALM, run
from rich.console import Console

from qbo_pipeline.cli import listing
from qbo_pipeline.cli.fit import CELL_WIDTH, fit_table
from qbo_pipeline.cli.wording import count, verb
from qbo_pipeline.lake.lake import Lake

SNAPSHOT_ID = re.compile(r"\b\d{8}T\d{6}\.\d{6}Z\b")


@pytest.fixture(scope="module")
def data(cli_data_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One copy of the CLI data folder for this module (the tests only add to it, in order)."""
    folder = tmp_path_factory.mktemp("issue21") / "data"
    shutil.copytree(cli_data_template, folder)
    yield folder


def _ids(data: Path) -> list[str]:
    return [i.snapshot_id for i in Lake(data / "lake").realm(REALM).snapshots()]


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_diff_builds_the_missing_warehouse_and_says_so(data: Path) -> None:
    assert not (data / "warehouse.duckdb").exists()
    done = run(data, "diff", "previous", "latest", "--realm", REALM)
    assert done.exit_code == 0, done.output
    assert "there is no warehouse" in _flat(done.output)
    assert "building it first" in _flat(done.output)
    assert (data / "warehouse.duckdb").exists()
    ids = _ids(data)
    assert f"{ids[-2]} -> {ids[-1]}" in done.output
    # Built and current: the next diff does not build again.
    again = run(data, "diff", "previous", "latest", "--realm", REALM)
    assert again.exit_code == 0 and "building" not in again.output


def test_diff_latest_compares_the_previous_snapshot_with_it(data: Path) -> None:
    ids = _ids(data)
    done = run(data, "diff", "latest", "--realm", REALM)
    assert done.exit_code == 0, done.output
    assert f"{ids[-2]} -> {ids[-1]}" in done.output
    assert "comparing the previous snapshot with the latest" in _flat(done.output)


def test_diff_says_when_both_names_are_one_snapshot(data: Path) -> None:
    ids = _ids(data)
    done = run(data, "diff", "2099-01-01", "latest", "--realm", REALM)
    assert done.exit_code == 0, done.output
    text = _flat(done.output)
    assert f"both name snapshot {ids[-1]}" in text
    assert "nothing can differ" in text


def test_a_new_snapshot_makes_diff_rebuild_the_warehouse(data: Path) -> None:
    assert run(data, "backup", "--realm", REALM).exit_code == 0
    newest = _ids(data)[-1]
    done = run(data, "diff", "previous", "latest", "--realm", REALM)
    assert done.exit_code == 0, done.output
    assert f"does not hold snapshot {newest}" in _flat(done.output)
    assert f"-> {newest}" in done.output
    sql = run(data, "sql", "select max(snapshot_id) as s from marts.snapshots", "-f", "json")
    assert json.loads(sql.stdout) == [{"s": newest}]


def test_restore_plan_takes_previous_and_the_plan_commands_take_latest(data: Path) -> None:
    before = _ids(data)
    done = run(
        data, "restore", "plan", "--snapshot", "previous", "--entity", "Term",
        "--realm", REALM, "--no-backup",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    plan_id = re.search(r"restore apply (\S+) --approve", done.output).group(1)
    assert plan_id.startswith(before[-2])  # previous: the one before the latest
    shown = run(data, "restore", "show", "latest")
    assert shown.exit_code == 0, shown.output
    assert f"plan latest: {plan_id}" in shown.output
    assert "not approved yet" in shown.output
    status = run(data, "restore", "status", "latest")
    assert status.exit_code == 0 and f"plan {plan_id} has not been applied yet" in status.output


def test_restore_plan_previous_needs_two_snapshots(tmp_path: Path, data: Path) -> None:
    lake = tmp_path / "lake" / f"realm={REALM}"
    shutil.copytree(data / "lake" / f"realm={REALM}", lake)
    shutil.copytree(data / "sandbox", tmp_path / "sandbox")
    for commit in sorted((lake / "commits").glob("*.json"))[1:]:
        commit.unlink()  # only the first snapshot stays committed
    done = run(
        tmp_path, "restore", "plan", "--snapshot", "previous", "--all", "--realm", REALM,
        "--no-backup",
    )  # fmt: skip
    assert done.exit_code == 2
    assert "--snapshot previous" in done.output and "only one snapshot" in done.output


def test_snapshots_never_cut_an_id_in_80_columns_or_a_pipe(data: Path) -> None:
    ids = _ids(data)
    done = run(data, "snapshots", "--realm", REALM, COLUMNS="80")  # CliRunner's: a pipe
    assert done.exit_code == 0, done.output
    assert SNAPSHOT_ID.findall(done.stdout) == ids
    assert REALM in done.stdout
    assert "…" not in done.stdout
    # In an 80-column terminal too: the id column keeps its width, the others give way.
    rows = [{"snapshot_id": i, "kind": "incremental", "records": 391} for i in ids]
    table = listing.table(
        "Snapshots",
        [
            listing.Column("snapshot_id", "snapshot", identifier=True),
            *(listing.Column(f"c{n}", f"a long heading {n}") for n in range(8)),
        ],
        rows,
    )
    terminal = Console(width=80, force_terminal=True, record=True, file=io.StringIO())
    listing.print_table(terminal, table)
    text = terminal.export_text()
    assert SNAPSHOT_ID.findall(text) == ids
    assert max(len(line) for line in text.splitlines()) <= 80


def test_snapshots_and_restore_list_as_csv_and_json(data: Path) -> None:
    ids = _ids(data)
    as_json = run(data, "snapshots", "--realm", REALM, "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.stdout)
    assert [r["snapshot_id"] for r in rows] == ids
    assert rows[0]["kind"] == "full" and rows[0]["records"] > 0
    assert {r["environment"] for r in rows} == {"embedded"}
    as_csv = run(data, "snapshots", "--realm", REALM, "--format", "csv")
    assert [r["snapshot_id"] for r in csv.DictReader(io.StringIO(as_csv.stdout))] == ids
    plans = run(data, "restore", "list", "--realm", REALM, "--format", "json")
    assert plans.exit_code == 0, plans.output
    listed = json.loads(plans.stdout)
    assert listed and all(SNAPSHOT_ID.match(p["plan_id"]) for p in listed)
    assert [p["created_at"] for p in listed] == sorted(p["created_at"] for p in listed)
    plans_csv = run(data, "restore", "list", "--realm", REALM, "--format", "csv")
    ids_csv = [r["plan_id"] for r in csv.DictReader(io.StringIO(plans_csv.stdout))]
    assert ids_csv == [p["plan_id"] for p in listed]
    table = run(data, "restore", "list", "--realm", REALM, COLUMNS="80")
    assert [p["plan_id"] in table.stdout for p in listed] == [True] * len(listed)


def test_sql_select_star_fits_an_80_column_terminal(data: Path) -> None:
    query = "select * from as_of('Invoice', 'latest') limit 10"
    done = run(data, "sql", query, COLUMNS="80")
    assert done.exit_code == 0, done.output
    table = [line for line in done.stdout.splitlines() if line.strip()]
    assert max(len(line) for line in table) <= 80
    assert len([line for line in table if line.startswith("│")]) == 10  # one line a row
    message = _flat(done.stderr)
    hidden = re.search(
        r"(\d+) of (\d+) columns shown to fit 80 characters; hidden: ([^;]+)", message
    )
    assert hidden, message
    assert "payload" in hidden.group(3)
    assert f"values cut at {CELL_WIDTH} characters" in message
    full = run(data, "sql", query, "--format", "json")
    records = json.loads(full.stdout)
    assert len(records) == 10 and len(records[0]) == int(hidden.group(2))
    assert any(len(str(v)) > CELL_WIDTH for v in records[0].values())


def test_fit_table_keeps_the_columns_in_order_and_names_the_rest() -> None:
    fitted = fit_table(["id", "payload", "name"], [(1, "x" * 500, "Amy")], width=30)
    assert fitted.hidden == ["payload"]
    assert [c.header for c in fitted.table.columns] == ["id", "name"]
    wide = fit_table(["id", "note"], [(1, "a\nb " + "y" * 100)], width=200)
    assert wide.hidden == [] and wide.cut
    cells = list(wide.table.columns[1].cells)
    assert cells[0].startswith("a b ") and len(cells[0]) == CELL_WIDTH


def test_counts_are_in_the_right_number(data: Path) -> None:
    assert count(1, "deletion") == "1 deletion"
    assert count(0, "deletion") == "0 deletions"
    assert count(2, "entity", "entities") == "2 entities"
    assert count(1234, "record") == "1,234 records"
    assert verb(1, "differs", "differ") == "differs" and verb(3, "differs", "differ") == "differ"
    from qbo_pipeline.cli.restore_cmd import _verdict

    assert "6 of 6 records match the snapshot" in _verdict({"ok": True, "checked": 6, "equal": 6})
    assert "1 of 1 record matches" in _verdict({"ok": True, "checked": 1, "equal": 1})
    wrong = _verdict({"ok": False, "checked": 10, "equal": 8, "different": 2})
    assert "2 of 10 records differ from the snapshot" in wrong
    one = _verdict({"ok": False, "checked": 10, "equal": 9, "different": 1})
    assert "1 of 10 records differs" in one
    said = _verdict({"ok": True, "checked": 10, "equal": 7, "different": 0, "planned": 3})
    assert "7 of 10 records match the snapshot, 3 differ where the plan said" in said
    backup = run(data, "backup", "--realm", REALM)
    assert backup.exit_code == 0, backup.output
    assert re.search(r"\b0 deletions\b", _flat(backup.output))
    assert not re.search(r"\b1 deletions\b|\b1 new versions\b|\b1 API calls\b", backup.output)


def test_a_bulk_delete_without_dates_picks_the_demo_range(tmp_path: Path, data: Path) -> None:
    shutil.copytree(data / "sandbox", tmp_path / "sandbox")
    done = run(tmp_path, "sandbox", "incident", "bulk_delete_invoices")
    assert done.exit_code == 0, done.output
    dates = re.search(r"invoices dated (\S+) to (\S+) with their payments", done.output)
    assert dates and dates.group(1) <= dates.group(2)
    changes = json.loads(done.stdout[done.stdout.index("{") :])["changes"]
    assert changes.get("Invoice.deleted", 0) > 0


def test_auth_list_as_json_and_csv_names_companies_never_tokens(data: Path) -> None:
    as_json = run(data, "auth", "list", "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.stdout)
    assert REALM in {r["realm_id"] for r in rows}
    assert all(set(r) == {"company", "realm_id", "environment", "refresh_expires_at"} for r in rows)
    as_csv = run(data, "auth", "list", "--format", "csv")
    assert [r["realm_id"] for r in csv.DictReader(io.StringIO(as_csv.stdout))] == [
        r["realm_id"] for r in rows
    ]
    table = run(data, "auth", "list", COLUMNS="80")
    assert all(r["realm_id"] in table.stdout for r in rows)
