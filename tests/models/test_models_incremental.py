"""The incremental warehouse: a build after new snapshots appends to the incremental models and
equals a full build of the same lake, relation by relation and row by row."""

from __future__ import annotations

import copy
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from models_lake_builder import WriterLake, sample
from models_scenario import ENTITIES, NEW_CUSTOMER, T1, T2, T3, T4
from warehouse_relations import assert_same_relations as _assert_equal
from warehouse_relations import relations as _relations

from qbo_pipeline.lake.lake import Lake
from qbo_pipeline.lake.retention import RetentionPolicy, prune
from qbo_pipeline.models.runner import ModelError, load_project
from qbo_pipeline.models.warehouse import build_warehouse, connect

SQL_DIR = Path(__file__).resolve().parents[2] / "dbt_like_sql"


def _by_id(records: list[dict], record_id: str) -> dict:
    return next(r for r in records if r["Id"] == record_id)


def _states() -> list[dict[str, list[dict]]]:
    """Four states of one company: a change, a deletion and a new record, a record returning to
    its first content (the writer stores that version again), then a new invoice."""
    s1 = {e: sample(e) for e in ENTITIES}
    s2 = copy.deepcopy(s1)
    inv = _by_id(s2["Invoice"], "130")
    inv["Line"][0]["Amount"] = 300
    inv["TotalAmt"] = 387.07
    inv["SyncToken"] = "4"
    cust = _by_id(s2["Customer"], "2")
    cust["Active"] = False
    cust["DisplayName"] = "Bill's Windsurf Shop (deleted)"
    s2["Invoice"] = [r for r in s2["Invoice"] if r["Id"] != "161"]
    s2["Customer"].append(copy.deepcopy(NEW_CUSTOMER))
    s3 = copy.deepcopy(s2)
    s3["Customer"] = [
        copy.deepcopy(_by_id(s1["Customer"], "2")) if r["Id"] == "2" else r for r in s3["Customer"]
    ]
    s4 = copy.deepcopy(s3)
    extra = copy.deepcopy(_by_id(s1["Invoice"], "155"))
    extra["Id"] = "9100"
    extra["DocNumber"] = "9100"
    s4["Invoice"].append(extra)
    return [s1, s2, s3, s4]


def _full_copy(lake: Path, tmp_path: Path, name: str) -> Path:
    warehouse = tmp_path / f"{name}.duckdb"
    result = build_warehouse(lake, warehouse, full=True)
    assert result.kind == "full"
    return warehouse


@dataclass(frozen=True)
class TwoSnapshots:
    """A lake of the first two states (read only) and the warehouses built from it."""

    lake: WriterLake
    second: str
    """The second snapshot's id."""
    first_build: Path
    """The warehouse built when the lake held the first snapshot only (copy it to build on)."""
    full: Path
    """A full build of the lake as it is, both snapshots."""


@pytest.fixture(scope="module")
def two_snapshots(tmp_path_factory: pytest.TempPathFactory) -> TwoSnapshots:
    """Built once for the tests that build the second snapshot on top of the first: each starts
    from a copy of the first build and compares its result with the one full build."""
    folder = tmp_path_factory.mktemp("two-snapshots")
    lake = WriterLake(folder / "lake")
    states = _states()
    lake.commit(T1, states[0])
    first_build = folder / "first.duckdb"
    assert build_warehouse(lake.root, first_build).kind == "full"
    second = lake.commit(T2, states[1])
    return TwoSnapshots(lake, second, first_build, _full_copy(lake.root, folder, "full"))


def _on_the_first_build(shared: TwoSnapshots, tmp_path: Path) -> Path:
    """A warehouse of this test's own: a copy of the first build."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(shared.first_build, warehouse)
    return warehouse


def test_models_incremental_builds_equal_full_builds_snapshot_by_snapshot(tmp_path: Path) -> None:
    lake = WriterLake(tmp_path / "lake")
    warehouse = tmp_path / "warehouse.duckdb"
    states = _states()
    lake.commit(T1, states[0])
    first = build_warehouse(lake.root, warehouse)
    assert first.kind == "full"
    assert first.reason == "there is no published warehouse yet"
    for i, (at, state) in enumerate(zip((T2, T3, T4), states[1:], strict=True), start=2):
        lake.commit(at, state)
        result = build_warehouse(lake.root, warehouse)
        assert result.kind == "incremental", result.reason
        assert "gained 1 snapshot(s)" in result.reason
        assert result.new_snapshots == 1
        full = _full_copy(lake.root, tmp_path, f"full{i}")
        _assert_equal(warehouse, full)
    # A build with nothing new appends nothing and still equals the full build (of the same
    # lake: nothing was committed since).
    again = build_warehouse(lake.root, warehouse)
    assert again.kind == "incremental"
    assert again.version_files_read == 0
    assert {m.rows_inserted for m in again.models if m.materialized == "incremental"} == {0}
    _assert_equal(warehouse, full)


def test_models_incremental_work_follows_the_change_not_the_history(tmp_path: Path) -> None:
    lake = WriterLake(tmp_path / "lake")
    warehouse = tmp_path / "warehouse.duckdb"
    states = _states()
    lake.commit(T1, states[0])
    full = build_warehouse(lake.root, warehouse)
    total = next(m for m in full.models if m.key == "staging.stg_record_versions")
    assert total.rows_inserted == total.rows > 50
    lake.commit(T2, states[1])
    lake.commit(T3, states[2])
    lake.commit(T4, states[3])  # one new invoice
    result = build_warehouse(lake.root, warehouse)
    assert result.kind == "incremental"
    versions = next(m for m in result.models if m.key == "staging.stg_record_versions")
    # T2: invoice 130, customer 2 deactivated, customer 9001; T3: customer 2 back to its first
    # content (already held: not inserted again); T4: invoice 9100.
    assert versions.rows_inserted == 4
    assert versions.rows == total.rows + 4
    # Views stay live over the lake and are not counted (counting would run them over history).
    assert {m.rows for m in result.models if m.materialized == "view"} == {None}
    lines = next(m for m in result.models if m.key == "staging.stg_invoice_line_versions")
    assert 0 < lines.rows_inserted <= 2 * 10
    headers = next(m for m in result.models if m.key == "staging.stg_invoice_versions")
    assert headers.rows_inserted == 2
    files = sum(1 for _ in (lake.realm_dir / "versions").rglob("*.parquet"))
    assert result.version_files_read is not None
    assert 0 < result.version_files_read < files


def test_models_a_prune_makes_the_next_build_full_and_says_why(tmp_path: Path) -> None:
    lake = WriterLake(tmp_path / "lake")
    warehouse = tmp_path / "warehouse.duckdb"
    states = _states()
    lake.commit(T1, states[0])
    lake.commit(T2, states[1])
    build_warehouse(lake.root, warehouse)
    lake.commit(datetime(2026, 11, 2, 6, 0, tzinfo=UTC), states[2])
    prune(Lake(lake.root).realm(lake.realm), RetentionPolicy(daily=1, weekly=0, monthly=0))
    result = build_warehouse(lake.root, warehouse)
    assert result.kind == "full"
    assert "(prune" in result.reason or "(gc)" in result.reason, result.reason
    _assert_equal(warehouse, _full_copy(lake.root, tmp_path, "full"))


def test_models_a_changed_sql_file_makes_the_next_build_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    lake = WriterLake(tmp_path / "lake")
    warehouse = tmp_path / "warehouse.duckdb"
    lake.commit(T1, _states()[0])
    build_warehouse(lake.root, warehouse, sql_dir=sql_dir)
    model = sql_dir / "staging" / "stg_invoice_versions.sql"
    model.write_text(
        model.read_text().replace("as email_status,", "as email_status, 1 as added,"),
        encoding="utf-8",
    )
    result = build_warehouse(lake.root, warehouse, sql_dir=sql_dir)
    assert result.kind == "full"
    assert result.reason.startswith("the SQL project")
    with connect(warehouse, read_only=True) as con:
        added = con.execute("select count(*) from staging.stg_invoice_versions where added = 1")
        assert added.fetchone()[0] > 0
    forced = build_warehouse(lake.root, warehouse, sql_dir=sql_dir, full=True)
    assert (forced.kind, forced.reason) == ("full", "--full was asked for")


def test_models_an_incremental_model_needs_a_key(tmp_path: Path) -> None:
    sql_dir = tmp_path / "sql"
    (sql_dir / "staging").mkdir(parents=True)
    (sql_dir / "staging" / "a.sql").write_text(
        "-- materialized: incremental\nselect 1 as x", encoding="utf-8"
    )
    with pytest.raises(ModelError, match="incremental_key"):
        load_project(sql_dir)


_BUILDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from qbo_pipeline.models.warehouse import build_warehouse
    build_warehouse(sys.argv[1], Path(sys.argv[2]))
    """
)


def test_models_a_killed_incremental_build_leaves_the_published_warehouse(
    two_snapshots: TwoSnapshots, tmp_path: Path
) -> None:
    lake = two_snapshots.lake
    warehouse = _on_the_first_build(two_snapshots, tmp_path)
    before = _relations(warehouse, views=False)  # the lake.* views read the lake as it is now
    scratch = warehouse.with_name(warehouse.name + ".build")
    builder = subprocess.Popen(
        [sys.executable, "-c", _BUILDER, str(lake.root), str(warehouse)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    deadline = time.monotonic() + 120
    while not scratch.exists() and builder.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(builder.pid, signal.SIGKILL)
    assert builder.wait() == -signal.SIGKILL
    assert _relations(warehouse, views=False) == before
    result = build_warehouse(lake.root, warehouse)
    assert result.kind == "incremental"
    _assert_equal(warehouse, two_snapshots.full)


def test_models_a_snapshot_appended_twice_is_not_doubled(
    two_snapshots: TwoSnapshots, tmp_path: Path
) -> None:
    """A build that appended a snapshot but whose record says it did not (a retried build) deletes
    the rows of that snapshot's keys before inserting them again."""
    lake, second = two_snapshots.lake, two_snapshots.second
    warehouse = _on_the_first_build(two_snapshots, tmp_path)
    assert build_warehouse(lake.root, warehouse).kind == "incremental"
    with connect(warehouse) as con:  # forget that the last build read the second snapshot
        con.execute("delete from main.build_snapshots where snapshot_id = ?", [second])
        con.execute(
            "delete from main.build_version_files where path like ?", [f"%/snapshot={second}/%"]
        )
    again = build_warehouse(lake.root, warehouse)
    assert again.kind == "incremental" and again.new_snapshots == 1
    lines = next(m for m in again.models if m.key == "staging.stg_invoice_line_versions")
    assert lines.rows_deleted == lines.rows_inserted > 0
    _assert_equal(warehouse, two_snapshots.full)


def _row_groups(warehouse: Path, table: str) -> list[int]:
    """The row counts of ``table``'s row groups in the published file, in storage order."""
    con = connect(warehouse, read_only=True)
    try:
        rows = con.execute(
            "select row_group_id, sum(count) from pragma_storage_info(?) "
            "where column_path = '[0]' group by row_group_id order by row_group_id",
            [table],
        ).fetchall()
    finally:
        con.close()
    return [n for _, n in rows]


def test_models_an_incremental_build_appends_replaced_rows_without_rewriting_the_table(
    two_snapshots: TwoSnapshots, tmp_path: Path
) -> None:
    """The checkpoint does not vacuum (#19): the rows a build replaced stay as tombstones and its
    new rows go in a row group of their own, instead of DuckDB rewriting the table's row groups
    (most of the final checkpoint's time after a nightly of a big company)."""
    lake = two_snapshots.lake
    warehouse = _on_the_first_build(two_snapshots, tmp_path)
    before = _row_groups(warehouse, "marts.record_history")
    assert len(before) == 1
    result = build_warehouse(lake.root, warehouse)
    assert result.kind == "incremental"
    history = next(m for m in result.models if m.key == "marts.record_history")
    assert history.appended
    assert history.rows_deleted > 0
    after = _row_groups(warehouse, "marts.record_history")
    assert after[0] == before[0]  # the first row group kept, deleted rows and all
    assert sum(after[1:]) == history.rows_inserted
    _assert_equal(warehouse, two_snapshots.full)
