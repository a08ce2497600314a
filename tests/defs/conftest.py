"""Fixtures of the Dagster tests: a temporary DAGSTER_HOME with telemetry off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

REPO = Path(__file__).resolve().parents[2]
DAGSTER_YAML = REPO / "qbo_pipeline" / "defs" / "dagster.yaml"
"""The project's Dagster instance settings (``make ui`` copies them into DAGSTER_HOME)."""


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh DAGSTER_HOME holding the project's dagster.yaml (telemetry off)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        (REPO / "qbo_pipeline" / "defs" / "dagster.yaml").read_text()
    )
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_DISABLE_TELEMETRY", "1")
    return home


@pytest.fixture
def instance(dagster_home: Path) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance stored in the temporary DAGSTER_HOME."""
    with dg.DagsterInstance.get() as inst:
        yield inst


@pytest.fixture(scope="session")
def definitions() -> dg.Definitions:
    """The project's code location."""
    from qbo_pipeline.definitions import defs

    return defs()
