"""Readers never block builds, builds never block readers: each build is published atomically.

Readers here are real other processes (a notebook or DBeaver holding the warehouse open) or
``connect_for_queries`` (what ``qbo-backup sql`` opens), against real builds of a real lake.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import filelock
import pytest
from models_scenario import build_scenario

from qbo_pipeline.models.warehouse import (
    WarehouseBusyError,
    build_warehouse,
    connect,
    connect_for_queries,
)

_COUNT = "select count(*) from marts.snapshots"

_HOLDER = textwrap.dedent(
    """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    print(con.execute({count!r}).fetchone()[0], flush=True)
    sys.stdin.readline()  # the parent rebuilds meanwhile
    print(con.execute({count!r}).fetchone()[0], flush=True)
    """
).format(count=_COUNT)

_BUILDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from qbo_pipeline.models.warehouse import build_warehouse
    build_warehouse(sys.argv[1], Path(sys.argv[2]))
    print("built", flush=True)
    """
)


def _snapshots(warehouse: Path) -> int:
    with connect(warehouse, read_only=True) as con:
        return con.execute(_COUNT).fetchone()[0]


@pytest.fixture
def published(tmp_path: Path):
    scenario = build_scenario(tmp_path / "lake")
    warehouse = tmp_path / "warehouse.duckdb"
    build_warehouse(tmp_path / "lake", warehouse, select=["snapshots"])
    return scenario, warehouse


def test_models_build_publishes_while_another_process_holds_the_warehouse_open(
    published, tmp_path: Path
) -> None:
    scenario, warehouse = published
    before = _snapshots(warehouse)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(warehouse)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert int(holder.stdout.readline()) == before
        scenario.lake.commit(datetime(2026, 11, 5, tzinfo=UTC), scenario.states[-1])
        build_warehouse(tmp_path / "lake", warehouse, select=["snapshots"])
        # The open reader keeps its consistent view of the file it opened...
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert int(holder.stdout.readline()) == before
    finally:
        holder.kill()
        holder.wait()
    # ...and the next connection sees the new build.
    assert _snapshots(warehouse) == before + 1


def test_models_queries_answer_from_the_published_warehouse_during_a_build(
    published, tmp_path: Path
) -> None:
    _, warehouse = published
    before = _snapshots(warehouse)
    builder = subprocess.Popen(
        [sys.executable, "-c", _BUILDER, str(tmp_path / "lake"), str(warehouse)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    answers = []
    try:
        while builder.poll() is None:
            con = connect_for_queries(warehouse)  # raised WarehouseBusyError before
            try:
                answers.append(con.execute(_COUNT).fetchone()[0])
            finally:
                con.close()
        out, err = builder.communicate()
    finally:
        builder.kill()
    assert "built" in out, err
    assert answers, "the build ended before any query ran"
    assert set(answers) == {before}
    assert _snapshots(warehouse) == before


def test_models_a_killed_build_leaves_the_published_warehouse_and_the_next_build_works(
    published, tmp_path: Path
) -> None:
    _, warehouse = published
    before = _snapshots(warehouse)
    scratch = warehouse.with_name(warehouse.name + ".build")
    builder = subprocess.Popen(
        [sys.executable, "-c", _BUILDER, str(tmp_path / "lake"), str(warehouse)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not scratch.exists() and builder.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(builder.pid, signal.SIGKILL)
    builder.wait()
    assert _snapshots(warehouse) == before
    result = build_warehouse(tmp_path / "lake", warehouse)
    assert result.models
    assert not scratch.exists()
    assert _snapshots(warehouse) == before


def test_models_builds_of_one_warehouse_take_turns(published, tmp_path: Path) -> None:
    _, warehouse = published
    with filelock.FileLock(str(warehouse) + ".lock"):  # another build holds its turn
        with pytest.raises(WarehouseBusyError, match="another build of the warehouse"):
            build_warehouse(tmp_path / "lake", warehouse, select=["snapshots"], wait_seconds=0.2)
    build_warehouse(tmp_path / "lake", warehouse, select=["snapshots"], wait_seconds=0.2)
