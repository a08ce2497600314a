from __future__ import annotations

from pathlib import Path

import pytest

from qbo_pipeline.models.runner import (
    MissingReferenceError,
    ModelCycleError,
    ModelError,
    Project,
    UnknownMacroError,
    build_steps,
    code_version,
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


def test_models_a_project_loaded_again_reads_its_files_again(tmp_path: Path) -> None:
    """The tokens are kept by the SQL's text: an edited file is read anew, and SQL that cannot
    be tokenized is named by the file that holds it, each time."""
    root = _project(
        tmp_path, {"staging/a.sql": "select 1 as x", "marts/b.sql": "select * from staging.a"}
    )
    assert {m.key: m.depends_on for m in load_project(root).models}["marts.b"] == {"staging.a"}
    (root / "marts" / "b.sql").write_text("select 2 as y -- staging.a no more")
    assert {m.key: m.depends_on for m in load_project(root).models}["marts.b"] == frozenset()
    unterminated = "select 'no end as x"
    (root / "marts" / "c.sql").write_text(unterminated)
    with pytest.raises(ModelError, match=r"c\.sql: the SQL cannot be tokenized"):
        load_project(root)
    (root / "marts" / "c.sql").unlink()
    (root / "marts" / "d.sql").write_text(unterminated)
    with pytest.raises(ModelError, match=r"d\.sql: the SQL cannot be tokenized"):
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


MACRO_PROJECT = {
    "staging/a.sql": "select 1 as x",
    "macros/plus.sql": "create or replace macro plus(n) as table select x + n as y from staging.a",
    "macros/twice.sql": "create or replace macro twice(n) as table\nselect y from plus(n)\n"
    "union all select y from plus(n)",
    "marts/b.sql": "select y from plus(1)",
    "marts/c.sql": "select y, from twice(2) join range(1) on true",
}


def test_models_and_macros_are_ordered_in_one_graph(tmp_path: Path) -> None:
    project = load_project(_project(tmp_path, MACRO_PROJECT))
    order = [s.key for s in project.steps]
    assert order == ["staging.a", "macros.plus", "macros.twice", "marts.b", "marts.c"]
    assert [m.key for m in project.models] == ["staging.a", "marts.b", "marts.c"]
    assert [m.name for m in project.macros] == ["plus", "twice"]
    c = project.get("marts.c")
    assert c.macros == {"twice"}
    assert c.depends_on == {"staging.a"}  # read through twice -> plus
    assert project.macros[1].calls == {"plus"}
    assert c.all_macros == {"twice", "plus"}  # twice calls plus
    assert project.get("staging.a").all_macros == frozenset()
    assert project.macros[1].depends_on == {"staging.a"}
    # Selecting a model that calls a macro brings what the macro reads, and the macro itself.
    chosen = select_models(project, ["c"])
    assert [m.key for m in chosen] == ["staging.a", "marts.c"]
    assert [s.key for s in build_steps(project, chosen)] == [
        "staging.a",
        "macros.plus",
        "macros.twice",
        "marts.c",
    ]


def test_models_packaged_models_come_after_the_macros_they_call() -> None:
    project = load_project()
    position = {s.key: i for i, s in enumerate(project.steps)}
    callers = [m for m in project.models if m.macros]
    assert callers, "some packaged model calls a macro"
    for model in callers:
        for name in model.macros:
            assert position[f"macros.{name}"] < position[model.key], (name, model.key)
    for macro in project.macros:
        for dep in macro.depends_on:
            assert position[dep] < position[macro.key], (dep, macro.key)
        for name in macro.calls:
            assert position[f"macros.{name}"] < position[macro.key], (name, macro.key)


_BAD_MACRO_PROJECTS = {
    "unknown macro in a model": (
        {**MACRO_PROJECT, "marts/d.sql": "select * from plsu(1)"},
        UnknownMacroError,
        r"d\.sql: model marts\.d reads from plsu\(\.\.\.\)",
    ),
    "unknown macro in a macro": (
        {
            "staging/a.sql": "select 1 as x",
            "macros/m.sql": "create macro m() as table from staging.a join nope(1) on true",
        },
        UnknownMacroError,
        r"macro m reads from nope.*known: m\b",
    ),
    "cycle through a macro": (
        {
            "macros/m.sql": "create or replace macro m() as table select * from marts.b",
            "marts/b.sql": "select * from m()",
        },
        ModelCycleError,
        r"cycle: .*(macros\.m -> marts\.b|marts\.b -> macros\.m)",
    ),
    "cycle of macros": (
        {
            "macros/m.sql": "create or replace macro m() as table select * from n()",
            "macros/n.sql": "create or replace macro n() as table select * from m()",
        },
        ModelCycleError,
        r"macros\.m.*macros\.n|macros\.n.*macros\.m",
    ),
    "file defines another macro": (
        {"macros/plus.sql": "create or replace macro add(n) as n + 1"},
        ModelError,
        r"plus\.sql: .*macro plus\(\.\.\.\).*defines add",
    ),
    "macro reads a missing model": (
        {"macros/m.sql": "create macro m() as table select * from marts.gone"},
        MissingReferenceError,
        r"macro m references marts\.gone",
    ),
}


@pytest.mark.parametrize("case", sorted(_BAD_MACRO_PROJECTS))
def test_models_bad_macro_projects_name_the_problem(tmp_path: Path, case: str) -> None:
    files, error, message = _BAD_MACRO_PROJECTS[case]
    with pytest.raises(error, match=message):
        load_project(_project(tmp_path, files))


def test_models_code_version_follows_the_macros_a_model_calls(tmp_path: Path) -> None:
    before = load_project(_project(tmp_path / "one", MACRO_PROJECT))
    changed = {**MACRO_PROJECT, "macros/plus.sql": MACRO_PROJECT["macros/plus.sql"] + " + 0"}
    after = load_project(_project(tmp_path / "two", changed))

    def versions(project: Project) -> dict[str, str]:
        return {m.key: code_version(m, project.macros) for m in project.models}

    old, new = versions(before), versions(after)
    assert new["staging.a"] == old["staging.a"]  # calls no macro
    assert new["marts.b"] != old["marts.b"]  # calls plus
    assert new["marts.c"] != old["marts.c"]  # calls twice, which calls plus
    assert versions(load_project(_project(tmp_path / "three", MACRO_PROJECT))) == old
