"""Incremental warehouse builds over a lake on object storage (moto's S3 server on loopback).

The build keeps a local mirror of the lake's files beside the warehouse: after a new snapshot it
downloads that snapshot's files only, appends to the warehouse, and equals a full build relation
by relation and row by row. A prune and gc on the store make the next build full and leave the
mirror with the store's files only; a build killed mid-download leaves no part file in use.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from models_lake_builder import WriterLake
from models_scenario import T1, T2, T3
from test_models_incremental import _assert_equal, _relations, _states

from qbo_pipeline.lake.fs import LakeFS
from qbo_pipeline.lake.lake import Lake
from qbo_pipeline.lake.retention import RetentionPolicy, prune
from qbo_pipeline.models.lake_mirror import LAKE_FILES, mirror_folder
from qbo_pipeline.models.warehouse import build_warehouse, connect

REPORT = {"ProfitAndLoss": {"Header": {"ReportName": "ProfitAndLoss"}, "Rows": {"Row": []}}}
"""A report each snapshot keeps (appended to ``lake.reports``; gc removes those of the snapshots
a prune retires)."""


def _remote_files(lake_url: str) -> dict[str, bytes]:
    """The files of the lake the ``lake.*`` relations read, by path under the root: contents."""
    fs = LakeFS(lake_url)
    base = fs.root + "/"
    return {
        p[len(base) :]: fs.read_bytes(p)
        for p in fs.find(fs.root)
        if LAKE_FILES.fullmatch(p[len(base) :])
    }


def _mirrored(warehouse: Path) -> dict[str, bytes]:
    """The files of the warehouse's mirror a build reads (dot-names are skipped by its globs)."""
    folder = mirror_folder(warehouse)
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def _full(lake_url: str, tmp_path: Path, name: str) -> Path:
    warehouse = tmp_path / f"{name}.duckdb"
    result = build_warehouse(lake_url, warehouse, full=True)
    assert result.kind == "full"
    return warehouse


def test_an_s3_build_after_a_snapshot_downloads_its_files_only_and_equals_a_full_build(
    s3_lake_url: str, tmp_path: Path
) -> None:
    lake = WriterLake(s3_lake_url)  # type: ignore[arg-type]  # the writer takes any lake URL
    warehouse = tmp_path / "warehouse.duckdb"
    states = _states()
    lake.commit(T1, states[0], reports=REPORT)
    first = build_warehouse(s3_lake_url, warehouse)
    before = _remote_files(s3_lake_url)
    assert first.kind == "full"
    assert first.files_downloaded == len(before) > 10
    assert _mirrored(warehouse) == before
    for at, state in zip((T2, T3), states[1:3], strict=True):
        lake.commit(at, state, reports=REPORT)
        after = _remote_files(s3_lake_url)
        new = set(after) - set(before)
        latest = f"snapshot={lake.snapshot_ids[-1]}"
        assert new and all(latest in p or "/commits/" in p for p in new)
        result = build_warehouse(s3_lake_url, warehouse)
        assert result.kind == "incremental", result.reason
        assert result.new_snapshots == 1
        assert result.files_downloaded == len(new)
        assert result.version_files_read == sum("/versions/" in p for p in new)
        assert _mirrored(warehouse) == after
        before = after
    _assert_equal(warehouse, _full(s3_lake_url, tmp_path, "full"))
    built = _relations(warehouse)
    again = build_warehouse(s3_lake_url, warehouse)
    assert (again.kind, again.files_downloaded, again.version_files_read) == ("incremental", 0, 0)
    assert _relations(warehouse) == built
    with connect(warehouse, read_only=True) as con:
        kinds = con.execute(
            "select table_name from duckdb_tables() where schema_name = 'lake' order by 1"
        ).fetchall()
        commits = con.execute("select count(*) from lake.commits").fetchone()
        reports = con.execute("select count(*) from lake.reports").fetchone()
    assert kinds == [("commits",), ("manifest_deltas",), ("reports",), ("versions",)]
    assert commits == reports == (3,)


def test_a_prune_and_gc_on_s3_make_the_next_build_full_and_leave_the_mirror_the_stores(
    s3_lake_url: str, tmp_path: Path
) -> None:
    lake = WriterLake(s3_lake_url)  # type: ignore[arg-type]
    warehouse = tmp_path / "warehouse.duckdb"
    states = _states()
    lake.commit(T1, states[0], reports=REPORT)
    lake.commit(T2, states[1], reports=REPORT)
    build_warehouse(s3_lake_url, warehouse)
    lake.commit(T3, states[2], reports=REPORT)
    built = _remote_files(s3_lake_url)
    pruned = prune(
        Lake(s3_lake_url).realm(lake.realm), RetentionPolicy(daily=1, weekly=0, monthly=0)
    )
    assert pruned.gc.files_removed and pruned.gc.files_rewritten
    remaining = _remote_files(s3_lake_url)
    assert set(built) - set(remaining)  # the retired snapshots' reports, which the mirror held
    assert any(built[p] != remaining[p] for p in remaining if p in built)  # versions rewritten
    result = build_warehouse(s3_lake_url, warehouse)
    assert result.kind == "full"
    assert "(prune" in result.reason or "(gc)" in result.reason, result.reason
    # The mirror is the store's, byte for byte (rewritten commit records and versions fetched
    # again, removed reports gone), so this full build read what a fresh one reads.
    assert _mirrored(warehouse) == remaining
    every = Lake(s3_lake_url).realm(lake.realm).snapshots(include_retired=True)
    with connect(warehouse, read_only=True) as con:
        statuses = con.execute(
            "select snapshot_id, status from lake.commits order by snapshot_id"
        ).fetchall()
        reports = con.execute("select snapshot_id from lake.reports").fetchall()
    assert statuses == [(s.snapshot_id, s.status) for s in every]
    assert [s.status for s in every] == ["retired", "retired", "live"]
    assert reports == [(every[-1].snapshot_id,)]


_KILLED_BUILDER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from qbo_pipeline.lake import fs as lake_fs
    from qbo_pipeline.models.warehouse import build_warehouse

    opened = lake_fs.LakeFS.__init__

    def init(self, url):
        opened(self, url)
        real_get = self.fs.get

        def get(remote, local, *args, **kwargs):
            # Download for real, then die with the last file half written, as a kill would.
            real_get(remote, local, *args, **kwargs)
            last = local[-1]
            with open(last, "r+b") as handle:
                handle.truncate(os.path.getsize(last) // 2)
            os.kill(os.getpid(), signal.SIGKILL)

        self.fs.get = get

    lake_fs.LakeFS.__init__ = init
    build_warehouse(sys.argv[1], Path(sys.argv[2]))
    """
)


def test_a_build_killed_mid_download_leaves_no_part_file_in_use(
    s3_lake_url: str, tmp_path: Path
) -> None:
    lake = WriterLake(s3_lake_url)  # type: ignore[arg-type]
    warehouse = tmp_path / "warehouse.duckdb"
    states = _states()
    lake.commit(T1, states[0])
    build_warehouse(s3_lake_url, warehouse)
    published = _relations(warehouse)
    mirrored = _mirrored(warehouse)
    lake.commit(T2, states[1])
    builder = subprocess.run(
        [sys.executable, "-c", _KILLED_BUILDER, s3_lake_url, str(warehouse)],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        check=False,
        timeout=300,
    )
    assert builder.returncode == -signal.SIGKILL, builder.stderr.decode()
    folder = mirror_folder(warehouse)
    parts = [p for p in folder.rglob(".*.part")]
    assert parts  # killed with the downloads under their part names
    assert _mirrored(warehouse) == mirrored  # nothing new or half written where a build reads
    assert _relations(warehouse) == published
    result = build_warehouse(s3_lake_url, warehouse)
    assert result.kind == "incremental", result.reason
    assert result.files_downloaded == len(_remote_files(s3_lake_url)) - len(mirrored)
    assert not list(folder.rglob(".*.part"))
    # Every file the build read is the store's, byte for byte: no half file was used.
    assert _mirrored(warehouse) == _remote_files(s3_lake_url)
    with connect(warehouse, read_only=True) as con:
        commits = con.execute("select count(*) from lake.commits").fetchone()
    assert commits == (2,)
