"""Fixtures of the Dagster tests: a temporary DAGSTER_HOME with telemetry off.

The instance's SQLite event log commits (and syncs to disk) once per event, and a full snapshot
run stores hundreds of events: on a shared disk that syncing, not the pipeline, took most of the
time. A temporary DAGSTER_HOME therefore lives in memory (``/dev/shm``) when the machine has it;
it is the same SQLite instance, only its files never wait for the disk.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest

REPO = Path(__file__).resolve().parents[2]
DAGSTER_YAML = REPO / "qbo_pipeline" / "defs" / "dagster.yaml"
"""The project's Dagster instance settings (``make ui`` copies them into DAGSTER_HOME)."""
MEMORY = Path("/dev/shm")


@contextmanager
def temporary_dagster_home(fallback: Path) -> Iterator[Path]:
    """A new DAGSTER_HOME holding the project's dagster.yaml, removed afterwards.

    Args:
        fallback: Folder to create it in when there is no writable ``/dev/shm``.
    """
    parent = MEMORY if MEMORY.is_dir() and os.access(MEMORY, os.W_OK) else fallback
    home = Path(tempfile.mkdtemp(prefix="qbo-dagster-home-", dir=parent))
    try:
        shutil.copyfile(DAGSTER_YAML, home / "dagster.yaml")
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh DAGSTER_HOME holding the project's dagster.yaml (telemetry off)."""
    with temporary_dagster_home(tmp_path) as home:
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        monkeypatch.setenv("DAGSTER_DISABLE_TELEMETRY", "1")
        yield home


@pytest.fixture(scope="module")
def module_dagster_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A DAGSTER_HOME for a module's shared runs (the environment is left to the caller)."""
    with temporary_dagster_home(tmp_path_factory.mktemp("dagster_home")) as home:
        yield home


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
