from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from models_lake_builder import WriterLake, content_hash
from models_scenario import Scenario, build_scenario

from qbo_pipeline.models.runner import ModelError, default_sql_dir
from qbo_pipeline.models.warehouse import (
    BUILD_MEMORY_LIMIT,
    BuildError,
    QueryRefusedError,
    build_memory_limit,
    build_warehouse,
    connect,
    connect_for_queries,
    read_statement,
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scenario, Path]:
    root = tmp_path_factory.mktemp("wh")
    scenario = build_scenario(root / "lake")
    warehouse = root / "warehouse.duckdb"
    build_warehouse(root / "lake", warehouse)
    return scenario, warehouse


@pytest.fixture
def con(built: tuple[Scenario, Path]) -> duckdb.DuckDBPyConnection:
    connection = connect(built[1], read_only=True)
    yield connection
    connection.close()


def test_models_snapshot_catalogue_lists_only_committed_snapshots(built, con) -> None:
    scenario, _ = built
    rows = con.execute(
        "select snapshot_id, snapshot_seq, is_latest, live_records, live_records_rebuilt "
        "from marts.snapshots order by snapshot_seq"
    ).fetchall()
    assert [r[0] for r in rows] == scenario.snapshots
    assert scenario.orphan not in {r[0] for r in rows}
    assert [r[1] for r in rows] == [1, 2, 3]
    assert [r[2] for r in rows] == [False, False, True]
    assert all(r[3] == r[4] for r in rows)


def test_models_snapshot_entities_counts_match_each_state(built, con) -> None:
    scenario, _ = built
    for sid, state in zip(scenario.snapshots, scenario.states, strict=True):
        got = dict(
            con.execute(
                "select entity, live_records from marts.snapshot_entities where snapshot_id = ?",
                [sid],
            ).fetchall()
        )
        assert got == {entity: len(records) for entity, records in state.items()}


def test_models_as_of_equals_the_manifest_of_each_snapshot(built, con) -> None:
    scenario, _ = built
    for sid, state in zip(scenario.snapshots, scenario.states, strict=True):
        expected = {
            (entity, str(r["Id"]), content_hash(entity, r))
            for entity, records in state.items()
            for r in records
        }
        for ref in (sid, sid[:15]):
            got = set(
                con.execute("select entity, id, content_hash from as_of('*', ?)", [ref]).fetchall()
            )
            assert got == expected
        invoices = con.execute("select count(*) from as_of('invoice', ?)", [sid]).fetchone()[0]
        assert invoices == len(state["Invoice"])


def test_models_as_of_a_date_takes_the_newest_snapshot_of_that_day(built, con) -> None:
    scenario, _ = built
    got = con.execute("select distinct snapshot_id from as_of('Invoice', '2026-11-02')").fetchall()
    assert got == [(scenario.snapshots[1],)]
    before = con.execute("select count(*) from as_of('Invoice', '2026-10-31')").fetchone()[0]
    assert before == 0
    at_time = con.execute("select snapshot_id from snapshot_at('2026-11-02 04:59:59')").fetchall()
    assert at_time == [(scenario.snapshots[0],)]
    assert con.execute("select snapshot_id from snapshot_at('previous')").fetchall() == [
        (scenario.snapshots[1],)
    ]


def test_models_snapshot_at_rejects_bad_and_ambiguous_references(con) -> None:
    with pytest.raises(duckdb.Error, match="not latest, previous"):
        con.execute("select * from snapshot_at('yesterday-ish')").fetchall()
    with pytest.raises(duckdb.Error, match="ambiguous"):
        con.execute("select * from snapshot_at('2026')").fetchall()
    with pytest.raises(duckdb.Error, match="unknown QBO entity"):
        con.execute("select * from as_of('Invoyce', 'latest')").fetchall()


def test_models_changes_equal_exactly_the_known_changes(built, con) -> None:
    scenario, _ = built
    s1, s2, s3 = scenario.snapshots
    got = set(
        con.execute("select entity, record_id, action from changes(?, ?)", [s1, s2]).fetchall()
    )
    assert got == scenario.expected_changes_1_2
    # Customer 2 went back to its first content: no change between 1 and 3 for it.
    got_1_3 = set(
        con.execute("select entity, record_id, action from changes(?, ?)", [s1, s3]).fetchall()
    )
    assert ("Customer", "2", "changed") not in got_1_3
    assert ("Customer", "2", "deactivated") not in got_1_3
    assert ("Invoice", "9100", "added") in got_1_3
    got_2_3 = set(
        con.execute("select entity, record_id, action from changes(?, ?)", [s2, s3]).fetchall()
    )
    assert ("Customer", "2", "reactivated") in got_2_3
    backwards = set(
        con.execute("select entity, record_id, action from changes(?, ?)", [s2, s1]).fetchall()
    )
    assert ("Invoice", "161", "added") in backwards
    assert ("Customer", "9001", "deleted") in backwards


def test_models_changes_carry_amounts_numbers_names_and_who(built, con) -> None:
    scenario, _ = built
    s1, s2, _ = scenario.snapshots
    rows = con.execute(
        "select entity, record_id, display_name, document_number, amount_old, amount_new, "
        "balance_old, balance_new, changed_by from changes(?, ?)",
        [s1, s2],
    ).fetchall()
    by_key = {(r[0], r[1]): r[2:] for r in rows}
    # Invoice 130 (DocNumber 1037): its total went from 362.07 to 387.07; the capture names its
    # last modifier by id only. Its display name is not its document number under another name.
    assert by_key["Invoice", "130"] == (
        "Invoice 1037 · Sonnenschein Family Store",
        "1037",
        Decimal("362.07"),
        Decimal("387.07"),
        Decimal("362.07"),
        Decimal("362.07"),
        "9341457021722234",
    )
    # A deleted invoice keeps its old amounts; QBO does not say who deleted it.
    deleted = by_key["Invoice", "161"]
    assert deleted[0].startswith("Invoice ") and deleted[1] in deleted[0]
    assert deleted[2] is not None and deleted[3] is None and deleted[6] is None
    # A name-list record keeps its name and has no document number.
    assert by_key["Customer", "2"][:2] == ("Bill's Windsurf Shop (deleted)", None)
    assert by_key["Customer", "2"][4:6] == (Decimal("-15"), Decimal("-15"))


def test_models_field_changes_equal_exactly_the_known_edits(built, con) -> None:
    scenario, _ = built
    s1, s2, _ = scenario.snapshots
    rows = con.execute(
        "select entity, record_id, field_path, old_value, new_value from field_changes(?, ?) "
        "where not is_system_field",
        [s1, s2],
    ).fetchall()
    assert set(rows) == scenario.expected_fields_1_2
    assert len(rows) == len(scenario.expected_fields_1_2)
    system = con.execute(
        "select field_path from field_changes(?, ?) where is_system_field and record_id = '130'",
        [s1, s2],
    ).fetchall()
    assert {r[0] for r in system} == {"SyncToken", "MetaData.LastUpdatedTime"}


def test_models_history_intervals_are_contiguous(con) -> None:
    gaps = con.execute(
        """
        select count(*) from (
            select
                valid_to_snapshot_id,
                is_deleted,
                lead(valid_from_snapshot_id) over w as next_from,
                lead(version_number) over w as next_number,
                version_number,
            from marts.record_history
            window w as (partition by realm_id, entity, record_id order by version_number)
        )
        where (next_from is not null and not is_deleted and next_from <> valid_to_snapshot_id)
            or (next_number is not null and next_number <> version_number + 1)
        """
    ).fetchone()[0]
    assert gaps == 0
    rows = con.execute(
        "select version_number, is_current, is_deleted from marts.record_history "
        "where entity = 'Customer' and record_id = '2' order by version_number"
    ).fetchall()
    assert rows == [(1, False, False), (2, False, False), (3, True, False)]
    deleted = con.execute(
        "select deleted_at is not null, valid_to is not null, is_current from marts.record_history "
        "where entity = 'Invoice' and record_id = '161'"
    ).fetchall()
    assert deleted == [(True, True, False)]


def _published(path: Path) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as c:
        return c.execute("select * from marts.snapshots order by snapshot_id").fetchall()


@pytest.mark.parametrize(
    ("model_sql", "match"),
    [
        (
            "select realm_id,  -- #UNIQUE\n from staging.stg_record_versions",
            r"UNIQUE\(realm_id\).*offending",
        ),
        ("select no_such_column from staging.stg_snapshots", "no_such_column"),
    ],
)
def test_models_broken_model_leaves_published_tables_untouched(
    tmp_path: Path, model_sql: str, match: str
) -> None:
    scenario = build_scenario(tmp_path / "lake")
    warehouse = tmp_path / "warehouse.duckdb"
    build_warehouse(tmp_path / "lake", warehouse, select=["snapshots"])
    before = _published(warehouse)
    assert len(before) == 3
    # New data arrives, and the project gains a broken model.
    sql_dir = tmp_path / "sql"
    shutil.copytree(default_sql_dir(), sql_dir)
    (sql_dir / "marts" / "zz_broken.sql").write_text(model_sql)
    scenario.lake.commit(datetime(2026, 11, 5, tzinfo=UTC), scenario.states[0])
    with pytest.raises(BuildError, match=match) as info:
        build_warehouse(
            tmp_path / "lake", warehouse, sql_dir=sql_dir, select=["snapshots", "zz_broken"]
        )
    assert info.value.model == "marts.zz_broken"
    assert _published(warehouse) == before
    with duckdb.connect(str(warehouse), read_only=True) as c:
        tables = {r[0] for r in c.execute("select table_name from duckdb_tables()").fetchall()}
    assert "zz_broken" not in tables


def test_models_rebuild_after_fix_publishes_new_state(tmp_path: Path) -> None:
    build_scenario(tmp_path / "lake")
    warehouse = tmp_path / "warehouse.duckdb"
    first = build_warehouse(tmp_path / "lake", warehouse, select=["snapshots"])
    assert first.tests_passed > 0
    shutil.rmtree(tmp_path / "lake" / "realm=9341453908059321" / "commits")
    build_warehouse(tmp_path / "lake", warehouse, select=["snapshots"])
    assert _published(warehouse) == []
    assert not (tmp_path / "warehouse.duckdb.build").exists()


def test_models_tables_and_live_views_call_macros(tmp_path: Path) -> None:
    sql_dir = tmp_path / "sql"
    files = {
        "staging/stg_base.sql": "select 1 as x union all select 2",
        "macros/plus.sql": "create or replace macro plus(n) as table\n"
        "select x + n as y from staging.stg_base",
        "macros/commits_of.sql": "create or replace macro commits_of(realm) as table\n"
        "select snapshot_id from lake.commits where realm_id = realm",
        "marts/shifted.sql": "-- #UNIQUE_BY(y)\nselect y from plus(10)",
        "marts/shifted_live.sql": "-- materialized: view\nselect y from plus(100)",
        "marts/commits_live.sql": "-- materialized: view\n"
        "select count(*) as commits from commits_of('9341453908059321')",
    }
    for name, sql in files.items():
        (sql_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (sql_dir / name).write_text(sql)
    lake = WriterLake(tmp_path / "lake")
    customer = {"Id": "1", "SyncToken": "0", "DisplayName": "Amy", "Active": True}
    lake.commit(datetime(2026, 3, 1, tzinfo=UTC), {"Customer": [customer]})
    warehouse = tmp_path / "w.duckdb"
    result = build_warehouse(tmp_path / "lake", warehouse, sql_dir=sql_dir)
    assert set(result.macros) == {"plus", "commits_of"}
    assert {m.key: m.rows for m in result.models}["marts.commits_live"] == 1
    with connect(warehouse, read_only=True) as con:
        assert con.execute("select y from marts.shifted order by y").fetchall() == [(11,), (12,)]
        assert con.execute("select y from marts.shifted_live order by y").fetchall() == [
            (101,),
            (102,),
        ]
    # The published view still expands its macro over the lake: a new snapshot shows at once.
    lake.commit(datetime(2026, 3, 2, tzinfo=UTC), {"Customer": [customer]})
    with connect(warehouse, read_only=True) as con:
        assert con.execute("select commits from marts.commits_live").fetchone() == (2,)
    # A partial build of a model that calls a macro builds the macro (and what it reads) first.
    again = build_warehouse(tmp_path / "lake", warehouse, sql_dir=sql_dir, select=["shifted"])
    assert [m.key for m in again.models] == ["staging.stg_base", "marts.shifted"]
    assert again.macros == ("commits_of", "plus")  # commits_of reads only the lake


def test_models_build_over_an_empty_lake(tmp_path: Path) -> None:
    (tmp_path / "lake").mkdir()
    result = build_warehouse(tmp_path / "lake", tmp_path / "w.duckdb")
    counts = {m.key: m.rows for m in result.models}
    assert counts["marts.snapshots"] == 0
    assert counts["marts.record_history"] == 0


def test_models_build_memory_limit_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert build_memory_limit() == BUILD_MEMORY_LIMIT
    monkeypatch.setenv("QBO_WAREHOUSE_MEMORY_LIMIT", "300MB")
    (tmp_path / "lake").mkdir()
    build_warehouse(tmp_path / "lake", tmp_path / "w.duckdb")  # a small limit still builds
    monkeypatch.setenv("QBO_WAREHOUSE_MEMORY_LIMIT", "lots'; drop table x; --")
    with pytest.raises(ModelError, match="QBO_WAREHOUSE_MEMORY_LIMIT"):
        build_warehouse(tmp_path / "lake", tmp_path / "w.duckdb")
    assert (tmp_path / "w.duckdb").exists()  # the published warehouse is still there


def test_models_retired_snapshot_stays_in_the_chain_but_is_hidden(tmp_path: Path) -> None:
    scenario = build_scenario(tmp_path / "lake")
    s1, s2, s3 = scenario.snapshots
    # What retention does (lake/FORMAT.md): rewrite only the commit record, status retired.
    commit = tmp_path / "lake" / f"realm={scenario.lake.realm}" / "commits" / f"{s2}.json"
    record = json.loads(commit.read_text())
    record["status"] = "retired"
    commit.write_text(json.dumps(record))
    build_warehouse(tmp_path / "lake", tmp_path / "w.duckdb")
    with connect(tmp_path / "w.duckdb", read_only=True) as con:
        statuses = con.execute(
            "select snapshot_id, status from marts.snapshots order by 1"
        ).fetchall()
        assert statuses == [(s1, "live"), (s2, "retired"), (s3, "live")]
        expected = {
            (entity, str(r["Id"]), content_hash(entity, r))
            for entity, records in scenario.states[2].items()
            for r in records
        }
        got = set(
            con.execute("select entity, id, content_hash from as_of('*', ?)", [s3]).fetchall()
        )
        assert got == expected
        assert con.execute("select snapshot_id from snapshot_at('previous')").fetchall() == [(s1,)]
        assert con.execute("select count(*) from snapshot_at(?)", [s2]).fetchone()[0] == 0
        listed = {
            r[0] for r in con.execute("select snapshot_id from marts.snapshot_entities").fetchall()
        }
        assert listed == {s1, s3}


def test_models_readme_queries_run(con) -> None:
    readme = Path(__file__).resolve().parents[2] / "qbo_pipeline" / "models" / "README.md"
    blocks = re.findall(r"```sql\n(.*?)```", readme.read_text(), re.S)
    statements = [s.strip() for block in blocks for s in block.split(";") if s.strip()]
    assert len(statements) >= 10
    for statement in statements:
        con.execute(statement).fetchall()


def test_models_query_connection_reads_the_warehouse_and_its_lake_only(
    built, tmp_path: Path
) -> None:
    _, warehouse = built
    with connect_for_queries(warehouse) as q:
        assert q.execute("select count(*) from marts.snapshots").fetchone()[0] == 3
        assert q.execute("select count(*) from lake.versions").fetchone()[0] > 0
        assert q.execute("select count(*) from marts.snapshot_manifest").fetchone()[0] > 0
        assert q.execute("select count(*) from as_of('*', 'latest')").fetchone()[0] > 0
        assert q.execute("select current_setting('TimeZone')").fetchone()[0] == "UTC"
        outside = tmp_path / "outside.csv"
        outside.write_text("a\n1\n")
        for statement in (
            f"select * from read_csv('{outside}')",
            "select * from read_text('/etc/hostname')",
            f"copy (select 1) to '{tmp_path / 'x.csv'}'",
            f"attach '{tmp_path / 'other.duckdb'}' as other",
            "install httpfs",
            "load httpfs",
        ):
            with pytest.raises(duckdb.PermissionException):
                q.execute(statement)
        for setting in (
            "enable_external_access = true",
            "allowed_directories = ['/']",
            "autoload_known_extensions = true",
        ):
            with pytest.raises(duckdb.InvalidInputException, match="locked"):
                q.execute(f"set {setting}")
    assert not (tmp_path / "x.csv").exists()
    assert not (tmp_path / "other.duckdb").exists()


def test_models_read_statement_takes_one_select(tmp_path: Path) -> None:
    for sql in ("select 1", "select 1;", "from t", "with a as (select 1) from a", "show tables"):
        assert read_statement(sql).type == duckdb.StatementType.SELECT
    for sql, message in (
        ("", "no statement"),
        ("select 1; select 2", "2 statements"),
        (f"copy (select 1) to '{tmp_path / 'x.csv'}'", "COPY statements"),
        ("export database 'x'", "EXPORT statements"),
        ("install httpfs", "INSTALL/LOAD statements"),
        ("explain analyze select 1", "EXPLAIN statements"),
        ("set enable_external_access = true", "SET statements"),
    ):
        with pytest.raises(QueryRefusedError, match=message):
            read_statement(sql)
    with pytest.raises(duckdb.ParserException):
        read_statement("selec 1")
