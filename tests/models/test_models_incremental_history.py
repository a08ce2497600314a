"""The whole-history models built incrementally (#19): int_record_intervals, record_history,
int_live_reference_edges (under the marts.reference_graph view) and stg_manifest_deltas are
appended to and equal a full build after edits, deletes, re-creates, voids and an emptied
entity; a build with nothing new builds no model; an appended model is audited over its new rows
and still fails on a duplicate of an old row."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from models_lake_builder import WriterLake, sample
from models_scenario import ENTITIES, T1, T2, T3, T4
from test_models_incremental import _assert_equal, _full_copy

from qbo_pipeline.models.runner import ModelError, load_project
from qbo_pipeline.models.warehouse import BuildError, build_warehouse, connect

T5 = T4.replace(day=5)
HISTORY_MODELS = (
    "staging.stg_manifest_deltas",
    "intermediate.int_record_intervals",
    "marts.record_history",
    "intermediate.int_live_reference_edges",
)


def _by_id(records: list[dict], record_id: str) -> dict:
    return next(r for r in records if r["Id"] == record_id)


def _void(invoice: dict) -> None:
    """What QBO does to a voided invoice (tests/fixtures/samples/invoice_void_response.json)."""
    for line in invoice["Line"]:
        line["Amount"] = 0
    invoice.update(TotalAmt=0, Balance=0, PrivateNote="Voided", TxnTaxDetail={"TotalTax": 0})
    invoice["SyncToken"] = str(int(invoice["SyncToken"]) + 1)


def _states() -> list[dict[str, list[dict]]]:
    """Five states: edits, a void, a delete and a renamed customer; the deleted invoice back and
    every estimate gone; the customer an invoice points to deleted; then nothing new."""
    s1 = {e: sample(e) for e in (*ENTITIES, "Estimate")}
    s2 = copy.deepcopy(s1)
    edited = _by_id(s2["Invoice"], "130")
    edited["Line"][0]["Amount"] = 300
    edited["TotalAmt"] = 387.07
    edited["SyncToken"] = "4"
    _void(_by_id(s2["Invoice"], "155"))
    s2["Invoice"] = [r for r in s2["Invoice"] if r["Id"] != "161"]
    customer_id = edited["CustomerRef"]["value"]
    _by_id(s2["Customer"], customer_id)["DisplayName"] = "Renamed Customer"
    s3 = copy.deepcopy(s2)
    s3["Invoice"].append(copy.deepcopy(_by_id(s1["Invoice"], "161")))
    s3["Estimate"] = []
    s4 = copy.deepcopy(s3)
    s4["Customer"] = [r for r in s4["Customer"] if r["Id"] != customer_id]
    s5 = copy.deepcopy(s4)
    return [s1, s2, s3, s4, s5]


def test_models_history_models_equal_a_full_build_snapshot_by_snapshot(tmp_path: Path) -> None:
    lake = WriterLake(tmp_path / "lake")
    warehouse = tmp_path / "warehouse.duckdb"
    states = _states()
    lake.commit(T1, states[0])
    build_warehouse(lake.root, warehouse)
    for i, (at, state) in enumerate(zip((T2, T3, T4, T5), states[1:], strict=True), start=2):
        lake.commit(at, state)
        result = build_warehouse(lake.root, warehouse)
        assert result.kind == "incremental", result.reason
        by_key = {m.key: m for m in result.models}
        for key in HISTORY_MODELS:
            assert by_key[key].materialized == "incremental"
            assert by_key[key].appended or by_key[key].skipped, key
        _assert_equal(warehouse, _full_copy(lake.root, tmp_path, f"full{i}"))
        if i == 4:  # the customer is gone: the invoices pointing to it now dangle
            assert by_key["intermediate.int_live_reference_edges"].rows_deleted > 0
            with connect(warehouse, read_only=True) as con:
                dangling = con.execute(
                    "select count(*) from marts.reference_graph where is_dangling "
                    "and target_entity = 'Customer'"
                ).fetchone()[0]
            assert dangling > 0
    with connect(warehouse, read_only=True) as con:
        voided = con.execute(
            "select total_amount, is_current from marts.record_history "
            "where entity = 'Invoice' and record_id = '155' order by version_number"
        ).fetchall()
        estimates = con.execute("select count(*) from marts.estimates").fetchone()[0]
        returned = con.execute(
            "select count(*), count(*) filter (where is_deleted) from marts.record_history "
            "where entity = 'Invoice' and record_id = '161'"
        ).fetchone()
    assert voided[-1] == (0, True) and len(voided) == 2
    assert estimates == 0
    assert returned == (2, 1)  # deleted, then live again


def test_models_a_build_with_nothing_new_builds_no_model(tmp_path: Path) -> None:
    lake = WriterLake(tmp_path / "lake")
    warehouse = tmp_path / "warehouse.duckdb"
    states = _states()
    lake.commit(T1, states[0])
    build_warehouse(lake.root, warehouse)
    lake.commit(T2, states[1])
    after = build_warehouse(lake.root, warehouse)
    assert not any(m.skipped for m in after.models if m.key in HISTORY_MODELS)
    again = build_warehouse(lake.root, warehouse)
    assert again.kind == "incremental" and again.new_snapshots == 0
    assert [m.key for m in again.models if not m.skipped] == []
    assert sum(m.rows_inserted + m.rows_deleted for m in again.models) == 0
    assert again.tests_passed == 0
    _assert_equal(warehouse, _full_copy(lake.root, tmp_path, "full"))


def test_models_an_unchanged_entity_skips_what_reads_only_it(tmp_path: Path) -> None:
    """A snapshot that changes no record appends nothing, and what reads only records is kept."""
    lake = WriterLake(tmp_path / "lake")
    warehouse = tmp_path / "warehouse.duckdb"
    states = _states()
    lake.commit(T1, states[0])
    build_warehouse(lake.root, warehouse)
    lake.commit(T2, states[0])  # the same state again: no delta, no version
    result = build_warehouse(lake.root, warehouse)
    by_key = {m.key: m for m in result.models}
    assert by_key["staging.stg_snapshots"].skipped is False
    assert by_key["staging.stg_manifest_deltas"].rows_inserted == 0
    for key in ("intermediate.int_record_intervals", "marts.record_history"):
        # the snapshot chain grew, so they run, over no delta
        assert by_key[key].appended and by_key[key].rows_inserted == 0, key
    for key in ("marts.invoices", "marts.invoice_lines", "marts.reference_graph"):
        assert by_key[key].skipped, key
    _assert_equal(warehouse, _full_copy(lake.root, tmp_path, "full"))


def _project(root: Path, model_sql: str) -> Path:
    (root / "staging").mkdir(parents=True)
    (root / "staging" / "entity_snapshots.sql").write_text(model_sql, encoding="utf-8")
    return root


_PER_ENTITY = """\
-- materialized: incremental
-- incremental_key: snapshot_id
select
    snapshot_id,
    entity,  -- #UNIQUE
    {extra}count(*) as versions,
from lake.new_versions
group by all
"""


def test_models_an_appended_row_that_duplicates_an_old_one_fails_the_build(
    tmp_path: Path,
) -> None:
    """Uniqueness is checked against the whole table for the new rows' keys."""
    sql_dir = _project(tmp_path / "sql", _PER_ENTITY.format(extra=""))
    lake = WriterLake(tmp_path / "lake")
    warehouse = tmp_path / "warehouse.duckdb"
    states = _states()
    lake.commit(T1, states[0])
    build_warehouse(lake.root, warehouse, sql_dir=sql_dir)
    lake.commit(T2, states[1])  # new Invoice and Customer versions: entities already there
    with pytest.raises(BuildError, match=r"UNIQUE\(entity\).*offending") as caught:
        build_warehouse(lake.root, warehouse, sql_dir=sql_dir)
    assert caught.value.model == "staging.entity_snapshots"


def test_models_an_appended_row_failing_a_row_test_fails_the_build(tmp_path: Path) -> None:
    flag = "case when snapshot_id > '20261101T9' then null else 1 end as flag,  -- #NO_NULLS"
    sql = _PER_ENTITY.format(extra=flag + "\n    ").replace("-- #UNIQUE", "")
    sql_dir = _project(tmp_path / "sql", sql)
    lake = WriterLake(tmp_path / "lake")
    warehouse = tmp_path / "warehouse.duckdb"
    states = _states()
    lake.commit(T1, states[0])
    build_warehouse(lake.root, warehouse, sql_dir=sql_dir)
    lake.commit(T2, states[1])
    with pytest.raises(BuildError, match=r"NO_NULLS\(flag\)"):
        build_warehouse(lake.root, warehouse, sql_dir=sql_dir)


def test_models_incremental_delete_is_only_for_incremental_models(tmp_path: Path) -> None:
    sql_dir = _project(
        tmp_path / "sql",
        "-- incremental_delete: snapshot_id in (select snapshot_id from lake.commits)\n"
        "select 1 as snapshot_id",
    )
    with pytest.raises(ModelError, match="incremental_delete"):
        load_project(sql_dir)


def test_models_incremental_delete_counts_what_it_reads(tmp_path: Path) -> None:
    (tmp_path / "sql" / "marts").mkdir(parents=True)
    _project(tmp_path / "sql", _PER_ENTITY.format(extra=""))
    (tmp_path / "sql" / "marts" / "latest.sql").write_text(
        "-- materialized: incremental\n-- incremental_key: entity\n"
        "-- incremental_delete: entity in (select entity from delta.entity_snapshots)\n"
        "select 'x' as entity",
        encoding="utf-8",
    )
    model = load_project(tmp_path / "sql").get("marts.latest")
    assert model.incremental_delete.startswith("entity in (select entity from delta.")
    assert "staging.entity_snapshots" in model.depends_on
