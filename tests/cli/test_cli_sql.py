"""`qbo-backup sql` is locked down: one read-only query over the warehouse and its lake only.

Each attack below worked before the lock-down (a file written, a file read, the network tried);
each must now be refused with one line and exit code 2, while ordinary queries, the lake-backed
views and ``qbo-backup diff`` keep working.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from qbo_pipeline import entities
from qbo_pipeline.cli import app
from qbo_pipeline.lake import records
from qbo_pipeline.lake.lake import Lake, RealmLake
from qbo_pipeline.models.warehouse import build_warehouse

SAMPLES = Path(__file__).resolve().parents[1] / "lake" / "lake_samples.json"
REALM = "4620816365171123456"


def _take(realm: RealmLake, data: dict[str, list[dict[str, Any]]], when: datetime) -> str:
    with realm.begin(kind="full", server_time=when, company_name="Craig's") as writer:
        for name, payloads in data.items():
            entity = entities.get(name)
            rows = [records.landing_row(entity, p) for p in payloads]
            writer.write_entity(
                name, [records.rows_to_batch(rows)], mode="full", qbo_count=len(rows)
            )
        writer.put_report("TrialBalance", {"Header": {"ReportName": "TrialBalance"}})
        return writer.commit().snapshot_id


@pytest.fixture(scope="module")
def warehouse_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], list[str]]:
    """Two snapshots (one invoice changed between them) and the warehouse built over them."""
    root = tmp_path_factory.mktemp("sql")
    realm = Lake(root / "lake").realm(REALM)
    base = json.loads(SAMPLES.read_text())
    data = {name: base[name] for name in ("Invoice", "Customer", "Item")}
    start = datetime.now(UTC) - timedelta(days=2)
    first = _take(realm, data, start)
    changed = copy.deepcopy(data)
    changed["Invoice"][0]["PrivateNote"] = "edited"
    second = _take(realm, changed, start + timedelta(days=1))
    build_warehouse(root / "lake", root / "warehouse.duckdb")
    env = {
        "QBO_DATA_DIR": str(root / "data"),
        "QBO_LAKE_URL": str(root / "lake"),
        "QBO_WAREHOUSE": str(root / "warehouse.duckdb"),
        "COLUMNS": "80",
    }
    return env, [first, second]


def _sql(env: dict[str, str], query: str, *args: str) -> Any:
    return CliRunner().invoke(app, ["sql", query, *args], env=env)


def _refused(result: Any, *words: str) -> str:
    """The one-line refusal, checked: exit code 2 and every expected word in it."""
    message = result.output.strip()
    assert result.exit_code == 2, result.output
    assert "\n" not in message, message
    assert message.startswith("error: query refused:"), message
    for word in words:
        assert word in message, message
    return message


def test_cli_sql_copy_to_a_file_is_refused(warehouse_env, tmp_path: Path) -> None:
    env, _ = warehouse_env
    target = tmp_path / "x.csv"
    _refused(_sql(env, f"copy (select 1) to '{target}'"), "COPY")
    assert not target.exists()


def test_cli_sql_copy_into_the_lake_is_refused(warehouse_env) -> None:
    env, _ = warehouse_env
    target = Path(env["QBO_LAKE_URL"]) / "x.csv"
    _refused(_sql(env, f"copy (select 1) to '{target}'"), "COPY")
    assert not target.exists()


def test_cli_sql_export_database_is_refused(warehouse_env, tmp_path: Path) -> None:
    env, _ = warehouse_env
    target = tmp_path / "exported"
    _refused(_sql(env, f"export database '{target}'"), "EXPORT")
    assert not target.exists()


def test_cli_sql_a_second_statement_is_refused(warehouse_env, tmp_path: Path) -> None:
    env, _ = warehouse_env
    target = tmp_path / "y.csv"
    _refused(_sql(env, f"select 1; copy (select 1) to '{target}'"), "one statement", "2")
    assert not target.exists()
    _refused(_sql(env, "select 1; select 2"), "one statement")


def test_cli_sql_read_csv_outside_the_lake_is_refused(warehouse_env) -> None:
    env, _ = warehouse_env
    result = _sql(env, "select * from read_csv('/etc/passwd')", "--format", "csv")
    _refused(result, "/etc/passwd")
    assert "root:" not in result.output


def test_cli_sql_read_text_outside_the_lake_is_refused(warehouse_env) -> None:
    env, _ = warehouse_env
    hostname = Path("/etc/hostname")
    result = _sql(env, f"select content from read_text('{hostname}')", "--format", "csv")
    _refused(result, str(hostname))
    if hostname.exists() and hostname.read_text().strip():
        assert hostname.read_text().strip() not in result.output


def test_cli_sql_install_extension_is_refused(warehouse_env) -> None:
    env, _ = warehouse_env
    _refused(_sql(env, "install httpfs"), "INSTALL")
    _refused(_sql(env, "load httpfs"), "LOAD")


def test_cli_sql_settings_cannot_be_changed(warehouse_env) -> None:
    env, _ = warehouse_env
    _refused(_sql(env, "set enable_external_access = true"), "SET")


def test_cli_sql_empty_query_is_refused(warehouse_env) -> None:
    env, _ = warehouse_env
    _refused(_sql(env, "  ;  "), "no statement")


def test_cli_sql_ordinary_queries_still_work(warehouse_env) -> None:
    env, (first, second) = warehouse_env
    result = _sql(env, "select count(*) as n from marts.snapshots;", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"n": 2}]
    # The lake.* views, and the macros and live views over them, read the lake's files directly.
    result = _sql(
        env,
        "select (select count(*) from lake.commits) as commits, "
        "(select count(distinct snapshot_id) from lake.versions) as versions, "
        "(select count(*) from lake.reports) as reports, "
        "(select count(*) from marts.snapshot_manifest) as manifest, "
        "(select count(*) from as_of('Invoice', 'latest')) as invoices",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert row["commits"] == 2
    assert row["versions"] == 2
    assert row["reports"] == 2
    assert row["manifest"] > row["invoices"] > 0
    result = _sql(
        env,
        f"with c as (select * from changes('{first}', '{second}')) "
        "select entity, action, count(*) as n from c group by all",
        "--format",
        "csv",
    )
    assert result.exit_code == 0, result.output
    assert list(csv.DictReader(io.StringIO(result.stdout))) == [
        {"entity": "Invoice", "action": "changed", "n": "1"}
    ]
    # The lake's own files may be read directly, they are what the warehouse reads.
    lake = env["QBO_LAKE_URL"]
    result = _sql(
        env,
        f"select count(*) as n from read_parquet('{lake}/realm=*/versions/snapshot=*/*.parquet')",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["n"] > 0
    for query in ("describe marts.snapshots", "show tables", "from marts.snapshots"):
        result = _sql(env, query)
        assert result.exit_code == 0, result.output


def test_cli_sql_a_failing_query_still_says_so(warehouse_env) -> None:
    env, _ = warehouse_env
    result = _sql(env, "select * from no_such_table")
    assert result.exit_code == 1
    assert "query failed" in result.output


def test_cli_diff_and_review_still_work(warehouse_env, tmp_path: Path) -> None:
    env, (first, second) = warehouse_env
    runner = CliRunner()
    result = runner.invoke(app, ["diff", first, second, "-f", "csv"], env=env)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {(r["entity"], r["action"]) for r in rows} == {("Invoice", "changed")}
    review = tmp_path / "review.html"
    result = runner.invoke(
        app, ["diff", "previous", "latest", "-f", "html", "-o", str(review)], env=env
    )
    assert result.exit_code == 0, result.output
    assert "PrivateNote" in review.read_text()


def test_cli_warehouse_build_says_whether_it_was_incremental_and_why(warehouse_env) -> None:
    env, _ = warehouse_env
    runner = CliRunner()
    again = runner.invoke(app, ["warehouse", "build"], env={**env, "COLUMNS": "200"})
    assert again.exit_code == 0, again.output
    assert "incremental build: the lake gained 0 snapshot(s) and 0 version file(s)" in again.output
    forced = runner.invoke(app, ["warehouse", "build", "--full"], env={**env, "COLUMNS": "200"})
    assert forced.exit_code == 0, forced.output
    assert "full build: --full was asked for" in forced.output


def test_cli_warehouse_build_compacts_on_demand_and_says_so(warehouse_env) -> None:
    env, _ = warehouse_env
    runner = CliRunner()
    plain = runner.invoke(app, ["warehouse", "build"], env={**env, "COLUMNS": "200"})
    assert plain.exit_code == 0, plain.output
    assert "not compacted (the published file (" in plain.output
    compacted = runner.invoke(
        app, ["warehouse", "build", "--compact"], env={**env, "COLUMNS": "200"}
    )
    assert compacted.exit_code == 0, compacted.output
    assert "incremental build:" in compacted.output
    assert "compacted in" in compacted.output
    assert "(compaction was asked for; the published file" in compacted.output


SUMMARY = re.compile(
    r"^(\d+) models: (\d+) rebuilt, (\d+) appended, (\d+) kept unchanged; (\d+) tests; "
    r"([\d,]+) rows appended; \d+\.\d s$"
)


def _summary(output: str) -> dict[str, int]:
    """The counts of `warehouse build`'s last line, checked to add up."""
    last = output.strip().splitlines()[-1]
    found = SUMMARY.match(last)
    assert found, last
    total, rebuilt, appended, kept, tests, rows = (int(g.replace(",", "")) for g in found.groups())
    assert rebuilt + appended + kept == total, last
    assert output.count("(kept)") == kept, output
    return {
        "total": total,
        "rebuilt": rebuilt,
        "appended": appended,
        "kept": kept,
        "tests": tests,
        "rows": rows,
    }


def test_cli_warehouse_build_sums_up_the_build_and_honours_the_compact_growth_setting(
    tmp_path: Path,
) -> None:
    realm = Lake(tmp_path / "lake").realm(REALM)
    base = json.loads(SAMPLES.read_text())
    data = {name: base[name] for name in ("Invoice", "Customer", "Item")}
    start = datetime.now(UTC) - timedelta(days=2)
    _take(realm, data, start)
    env = {
        "QBO_DATA_DIR": str(tmp_path / "data"),
        "QBO_LAKE_URL": str(tmp_path / "lake"),
        "QBO_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
        "COLUMNS": "200",
    }
    runner = CliRunner()

    def build(growth: str = "") -> Any:
        result = runner.invoke(
            app, ["warehouse", "build"], env={**env, "QBO_WAREHOUSE_COMPACT_GROWTH": growth}
        )
        assert result.exit_code == 0, result.output
        return result

    full = _summary(build().output)
    assert full["rebuilt"] == full["total"] > 0
    assert (full["appended"], full["kept"], full["rows"]) == (0, 0, 0)
    assert full["tests"] > 0
    changed = copy.deepcopy(data)
    changed["Invoice"][0]["PrivateNote"] = "edited"
    _take(realm, changed, start + timedelta(days=1))
    nightly = build("off")
    assert "incremental build:" in nightly.output
    assert "automatic compaction is off (QBO_WAREHOUSE_COMPACT_GROWTH=off)" in nightly.output
    night = _summary(nightly.output)
    assert night["total"] == full["total"]
    assert night["appended"] > 0 and night["rows"] > 0
    assert night["rebuilt"] < full["total"]
    # The file grew: a limit just above 1 compacts at the next build, and says which limit.
    again = build("1.01")
    assert "compacted in" in again.output and "(limit 1.01x)" in again.output
    assert _summary(again.output)["rows"] == 0  # nothing new in the lake
    bad = runner.invoke(
        app, ["warehouse", "build"], env={**env, "QBO_WAREHOUSE_COMPACT_GROWTH": "1"}
    )
    assert bad.exit_code == 2, bad.output
    assert "QBO_WAREHOUSE_COMPACT_GROWTH='1' must be a number above 1" in bad.output
    helped = runner.invoke(app, ["warehouse", "build", "--help"], env=env)
    assert "QBO_WAREHOUSE_COMPACT_GROWTH" in helped.output
