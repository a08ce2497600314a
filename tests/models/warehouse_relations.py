"""Every relation of a warehouse, row by row: how an incremental build is proven equal to a full
build of the same lake (used by the models' tests and by the trust state machine)."""

from __future__ import annotations

from pathlib import Path

from qbo_pipeline.models.warehouse import connect


def relations(warehouse: Path, *, views: bool = True) -> dict[str, list[tuple]]:
    """Every table (and view) of the warehouse but the build's own records, every row, ordered."""
    view_names = (
        "union all select schema_name, view_name from duckdb_views() "
        "where database_name = current_database() and not internal "
        if views
        else ""
    )
    with connect(warehouse, read_only=True) as con:
        names = con.execute(
            "select schema_name, table_name from duckdb_tables() "
            f"where database_name = current_database() {view_names}order by 1, 2"
        ).fetchall()
        out = {}
        for schema, name in names:
            if schema == "main" and name.startswith("build_"):
                continue
            rows = con.execute(f'select * from "{schema}"."{name}"').fetchall()
            out[f"{schema}.{name}"] = sorted(rows, key=repr)
    return out


def assert_same_relations(incremental: Path, full: Path) -> None:
    """The two warehouses hold the same relations, each with the same rows."""
    got, want = relations(incremental), relations(full)
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name] == want[name], name
