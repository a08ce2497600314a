from __future__ import annotations

from pathlib import Path

import pytest

from qbo_pipeline.models.runner import (
    MissingReferenceError,
    ModelCycleError,
    ModelError,
    find_references,
    load_project,
    select_models,
)
from qbo_pipeline.models.sql_tests import TestDeclarationError, parse_tests


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, sql in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sql)
    return tmp_path


def test_models_packaged_project_is_ordered_by_references() -> None:
    project = load_project()
    position = {m.key: i for i, m in enumerate(project.models)}
    assert {"marts.snapshots", "marts.record_history", "staging.stg_record_versions"} <= set(
        position
    )
    for model in project.models:
        for dep in model.depends_on:
            assert position[dep] < position[model.key], (dep, model.key)
    macros = [m.name for m in project.macros]
    assert macros.index("snapshot_at") < macros.index("as_of")
    assert macros.index("changes") < macros.index("field_changes")


def test_models_cycle_is_named(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        {
            "staging/a.sql": "select * from marts.b",
            "marts/b.sql": "select * from staging.a",
        },
    )
    with pytest.raises(
        ModelCycleError, match=r"cycle: .*staging\.a.*marts\.b|cycle: .*marts\.b.*staging\.a"
    ):
        load_project(root)


def test_models_missing_reference_names_file_and_relation(tmp_path: Path) -> None:
    root = _project(tmp_path, {"marts/b.sql": "select * from staging.nope"})
    with pytest.raises(MissingReferenceError, match=r"b\.sql.*staging\.nope"):
        load_project(root)
    root2 = _project(tmp_path / "x", {"marts/c.sql": "select * from lake.nothing"})
    with pytest.raises(MissingReferenceError, match=r"lake\.nothing"):
        load_project(root2)


def test_models_references_skip_comments_and_strings() -> None:
    sql = """
    -- reads marts.fake in a comment
    select 'staging.not_a_ref' as s, x.a
    from staging.stg_real as x
    join "intermediate"."int_quoted" using (a)
    """
    refs = find_references(sql, ("staging", "intermediate", "marts"))
    assert refs == {"staging.stg_real", "intermediate.int_quoted"}


def test_models_bad_file_name_and_materialization(tmp_path: Path) -> None:
    root = _project(tmp_path, {"marts/Bad-Name.sql": "select 1"})
    with pytest.raises(ModelError, match="lower-case SQL name"):
        load_project(root)
    root2 = _project(tmp_path / "y", {"marts/m.sql": "-- materialized: incremental\nselect 1"})
    with pytest.raises(ModelError, match="incremental"):
        load_project(root2)


def test_models_select_includes_upstream_and_downstream() -> None:
    project = load_project()
    keys = [m.key for m in select_models(project, ["int_snapshot_chain"])]
    assert keys == ["staging.stg_snapshots", "intermediate.int_snapshot_chain"]
    downstream = {m.key for m in select_models(project, ["int_snapshot_chain+"])}
    assert "marts.snapshots" in downstream
    with pytest.raises(ModelError, match="no model matches"):
        select_models(project, ["nope"])


def test_models_test_tags_are_parsed() -> None:
    sql = """-- #UNIQUE_BY(realm_id, snapshot_id)
    select
        a.realm_id,  -- #NO_NULLS
        count(*) as n,  -- #UNIQUE #NO_NULLS
        status,  -- #ACCEPTED_VALUES('live', 'retired')
    from t as a
    """
    labels = [t.label for t in parse_tests(sql)]
    assert labels == [
        "UNIQUE_BY(realm_id, snapshot_id)",
        "NO_NULLS(realm_id)",
        "UNIQUE(n)",
        "NO_NULLS(n)",
        "ACCEPTED_VALUES(status)",
    ]
    with pytest.raises(TestDeclarationError, match=":1: #UNIQUE_BY needs column names"):
        parse_tests("-- #UNIQUE_BY()\nselect 1")
    with pytest.raises(TestDeclarationError, match="must follow a column"):
        parse_tests("select 1\n-- #UNIQUE")
