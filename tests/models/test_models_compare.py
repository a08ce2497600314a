from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from qbo_pipeline.models.compare import compare_warehouses, main


def _warehouse(path: Path, *statements: str) -> Path:
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema staging")
        con.execute("create schema marts")
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()
    return path


BASE = (
    "create table staging.a as select * from (values (1, 'x'), (1, 'x'), (2, null)) t(n, s)",
    "create table marts.b as select 1.5::decimal(18, 2) as amount",
)


def test_models_compare_equal_warehouses(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    left = _warehouse(tmp_path / "l.duckdb", *BASE)
    right = _warehouse(tmp_path / "r.duckdb", *reversed(BASE))
    result = compare_warehouses(left, right)
    assert result.equal
    assert result.relations == ("marts.b", "staging.a")
    assert result.rows == 4
    assert main([str(left), str(right)]) == 0
    assert "2 relations, 4 rows compared: equal" in capsys.readouterr().out


def test_models_compare_finds_rows_types_and_relations(tmp_path: Path) -> None:
    left = _warehouse(tmp_path / "l.duckdb", *BASE, "create table marts.only_left as select 1")
    right = _warehouse(
        tmp_path / "r.duckdb",
        # one duplicate fewer, the same distinct rows: only EXCEPT ALL sees it
        "create table staging.a as select * from (values (1, 'x'), (2, null)) t(n, s)",
        "create table marts.b as select 1.5::decimal(18, 3) as amount",
    )
    problems = {d.relation: d.problem for d in compare_warehouses(left, right).differences}
    assert problems["staging.a"].startswith("1 row(s) only in")
    assert "columns differ" in problems["marts.b"]
    assert problems["marts.only_left"] == f"only in {left}"
    assert main([str(left), str(right)]) == 1
    with pytest.raises(FileNotFoundError, match="no warehouse"):
        compare_warehouses(left, tmp_path / "missing.duckdb")
