"""What a warehouse was built from, and whether the next build may be incremental.

A published warehouse records its build state (``main.build_info``: the SQL project's hash and
the build kind; ``main.build_snapshots``: every committed snapshot it read, with a digest of its
commit record; ``main.build_version_files``: every version file it read, with its size). The
next ``warehouse build`` is incremental only when that state is a prefix of the lake's: the same
project, every snapshot still committed with the same record (no prune or retention rewrote it),
every version file still there (no gc removed it), and every new snapshot newer than the newest
built one of its company. Anything else makes a full build, and :class:`BuildPlan` says why.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from qbo_pipeline.lake.fs import is_remote
from qbo_pipeline.models.runner import ModelError, Project, project_hash
from qbo_pipeline.models.sources import (
    MANIFEST_COLUMNS,
    REPORT_COLUMNS,
    VERSION_COLUMNS,
    entities_table,
    references_table,
)

STATE_FORMAT = "1"
"""Bumped when the runner's incremental rules change: a warehouse of another format builds full."""


@dataclass(frozen=True)
class LakeState:
    """The committed snapshots of a local lake (or a remote lake's mirror) and their version files.

    Attributes:
        commits: ``(realm_id, snapshot_id)`` -> sha256 of the commit record.
        files: A version file's absolute POSIX path -> ``(realm_id, snapshot_id, bytes)``, for
            committed snapshots only.
    """

    commits: dict[tuple[str, str], str]
    files: dict[str, tuple[str, str, int]]


@dataclass(frozen=True)
class BuildPlan:
    """How the next build runs.

    Attributes:
        kind: ``full``, ``incremental`` or ``selected``.
        reason: Why, in one sentence.
        new_snapshots: The committed snapshots the published warehouse does not hold yet
            (every one for a full build).
        new_files: The version files an incremental build reads (None for other builds: they
            read every file).
    """

    kind: str
    reason: str
    new_snapshots: tuple[tuple[str, str], ...] = ()
    new_files: tuple[str, ...] | None = None


def build_hash(project: Project) -> str:
    """The project's hash with what else shapes every relation: catalogue seeds, lake columns."""
    digest = hashlib.sha256(f"{STATE_FORMAT}\0{project_hash(project)}".encode())
    for table in (entities_table(), references_table()):
        digest.update(json.dumps(table.to_pylist(), sort_keys=True, default=str).encode())
    for columns in (VERSION_COLUMNS, MANIFEST_COLUMNS, REPORT_COLUMNS):
        digest.update(json.dumps(columns).encode())
    return digest.hexdigest()


def scan_lake(root: str) -> LakeState:
    """The committed snapshots and their version files under a local lake folder."""
    base = Path(root)
    commits: dict[tuple[str, str], str] = {}
    files: dict[str, tuple[str, str, int]] = {}
    for realm_dir in sorted(base.glob("realm=*")):
        realm_id = realm_dir.name[len("realm=") :]
        for record in sorted((realm_dir / "commits").glob("[!.]*.json")):
            commits[(realm_id, record.stem)] = hashlib.sha256(record.read_bytes()).hexdigest()
        for snap_dir in sorted((realm_dir / "versions").glob("snapshot=*")):
            sid = snap_dir.name[len("snapshot=") :]
            if (realm_id, sid) not in commits:
                continue  # an orphan or a backup still writing: lake.versions does not show it
            for path in sorted(snap_dir.glob("[!.]*.parquet")):
                files[path.as_posix()] = (realm_id, sid, os.path.getsize(path))
    return LakeState(commits=commits, files=files)


def plan_build(
    root: str,
    warehouse: Path,
    project: Project,
    *,
    full: bool = False,
    selected: bool = False,
    mirror: Path | None = None,
) -> tuple[BuildPlan, LakeState | None]:
    """Decide between a full and an incremental build of ``warehouse`` over the lake at ``root``.

    A remote lake's state is read from its local ``mirror``, synced just before
    (:mod:`.lake_mirror`); the warehouse still records ``root`` as the lake it was built from.

    Returns:
        The plan, and the lake's state.

    Raises:
        ModelError: For a remote lake without a mirror.
    """
    if is_remote(root) and mirror is None:
        raise ModelError(f"the remote lake {root} is planned over its local mirror: give one")
    state = scan_lake(str(mirror) if mirror is not None else root)
    everything = tuple(sorted(state.commits))
    if selected:
        return BuildPlan("selected", "selected models are rebuilt whole", everything), state
    if full:
        return BuildPlan("full", "--full was asked for", everything), state
    reason = _why_not_incremental(root, warehouse, project, state)
    if reason:
        return BuildPlan("full", reason, everything), state
    built = _built_state(warehouse)
    assert built is not None
    old_commits, old_files = built
    new_snapshots = tuple(sorted(set(state.commits) - set(old_commits)))
    new_files = tuple(sorted(p for p in state.files if p not in old_files))
    return (
        BuildPlan(
            "incremental",
            f"the lake gained {len(new_snapshots)} snapshot(s) and {len(new_files)} version "
            "file(s) since the last build; nothing was removed and the SQL is unchanged",
            new_snapshots,
            new_files,
        ),
        state,
    )


def _built_state(
    warehouse: Path,
) -> tuple[dict[tuple[str, str], str], dict[str, int]] | None:
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error:
        return None
    try:
        commits = {
            (r, s): h
            for r, s, h in con.execute(
                "select realm_id, snapshot_id, commit_sha256 from main.build_snapshots"
            ).fetchall()
        }
        files = dict(con.execute("select path, bytes from main.build_version_files").fetchall())
    except duckdb.Error:
        return None
    finally:
        con.close()
    return commits, files


def _build_info(warehouse: Path) -> dict[str, object] | None:
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error:
        return None
    try:
        cursor = con.execute("select * from main.build_info")
        names = [d[0] for d in cursor.description or ()]
        row = cursor.fetchone()
    except duckdb.Error:
        return None
    finally:
        con.close()
    return dict(zip(names, row, strict=True)) if row else None


def _why_not_incremental(
    root: str, warehouse: Path, project: Project, state: LakeState
) -> str | None:
    """Why the next build must be full, or None when it may be incremental."""
    if not warehouse.exists():
        return "there is no published warehouse yet"
    info = _build_info(warehouse)
    if info is None or not info.get("build_hash"):
        if info is not None and info.get("build_kind") == "selected":
            return "the last build rebuilt selected models only"
        return "the published warehouse records no build state (built by an older version)"
    if info.get("lake_root") != root:
        return f"the published warehouse was built from another lake ({info.get('lake_root')})"
    if info["build_hash"] != build_hash(project):
        return "the SQL project (models, macros or entity catalogue) changed since the last build"
    built = _built_state(warehouse)
    if built is None:
        return "the published warehouse records no build state (built by an older version)"
    old_commits, old_files = built
    if not old_commits and state.commits:
        return "the published warehouse records no snapshot it was built from"
    for key, digest in sorted(old_commits.items()):
        now = state.commits.get(key)
        if now is None:
            return f"snapshot {key[1]} of realm {key[0]} is no longer committed (prune or gc)"
        if now != digest:
            return f"the commit record of snapshot {key[1]} of realm {key[0]} was rewritten (prune)"
    for path, size in sorted(old_files.items()):
        now_file = state.files.get(path)
        if now_file is None or now_file[2] != size:
            return f"the version file {path} was removed or changed (gc)"
    newest: dict[str, str] = {}
    for realm_id, sid in old_commits:
        newest[realm_id] = max(newest.get(realm_id, sid), sid)
    for realm_id, sid in sorted(set(state.commits) - set(old_commits)):
        if realm_id in newest and sid <= newest[realm_id]:
            return (
                f"snapshot {sid} of realm {realm_id} is not newer than the newest one built "
                f"({newest[realm_id]})"
            )
    old_snapshots = set(old_commits)
    for path, (realm_id, sid, _size) in sorted(state.files.items()):
        if path not in old_files and (realm_id, sid) in old_snapshots:
            return f"a snapshot already built gained the version file {path}"
    return None
