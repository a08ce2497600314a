from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from qbo_pipeline.models import sql_dir
from qbo_pipeline.models.runner import ModelError, default_sql_dir, load_project
from qbo_pipeline.models.sql_dir import SqlDirNotFoundError, find_sql_dir, installed_sql_dir

REPO_SQL = Path(__file__).resolve().parents[2] / "dbt_like_sql"


def test_models_sql_dir_checkout_and_override(tmp_path: Path) -> None:
    assert find_sql_dir({}) == REPO_SQL
    assert find_sql_dir({"QBO_SQL_DIR": str(tmp_path)}) == tmp_path
    with pytest.raises(SqlDirNotFoundError, match="QBO_SQL_DIR='/no/such/folder' is not a folder"):
        find_sql_dir({"QBO_SQL_DIR": "/no/such/folder"})


def test_models_sql_dir_bad_override_is_a_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QBO_SQL_DIR", "/no/such/folder")
    with pytest.raises(ModelError, match="QBO_SQL_DIR"):
        default_sql_dir()


def _install(prefix: Path, record_files: list[str]) -> metadata.Distribution:
    """A wheel install's layout: site-packages with a dist-info whose RECORD lists data files."""
    site = prefix / "lib" / "python3.11" / "site-packages"
    info = site / "qbo_pipeline-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: qbo_pipeline\nVersion: 0.1.0\n")
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in record_files))
    for name in record_files:
        target = site / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((REPO_SQL / "staging" / "stg_snapshots.sql").read_bytes())
    return metadata.PathDistribution(info)


def test_models_sql_dir_found_where_a_wheel_installed_it(tmp_path: Path) -> None:
    dist = _install(
        tmp_path / "prefix",
        [
            "qbo_pipeline/__init__.py",
            "../../../share/qbo_pipeline/dbt_like_sql/staging/stg_snapshots.sql",
        ],
    )
    found = installed_sql_dir(dist)
    assert found == tmp_path / "prefix" / "share" / "qbo_pipeline" / "dbt_like_sql"
    project = load_project(found)
    assert [m.key for m in project.models] == ["staging.stg_snapshots"]


def test_models_sql_dir_install_without_sql_is_none(tmp_path: Path) -> None:
    dist = _install(tmp_path / "prefix", ["qbo_pipeline/__init__.py"])
    assert installed_sql_dir(dist) is None
    assert sql_dir.SHARE == Path("share/qbo_pipeline/dbt_like_sql")
