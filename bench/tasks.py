"""The benchmark's tasks; each runs inside a ``bench.child`` process and returns plain JSON.

Every task times its core step itself (``wall_s``, ``cpu_s``), so interpreter start-up and imports
are not charged to the records it processed. The pipeline is driven through its public
functions, exactly as the CLI and Dagster drive it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.child import cpu_seconds, peak_rss_bytes
from bench.metrics import BenchError, latency_floor_seconds, min_pages, pick_range
from bench.sandbox_proc import admin

log = logging.getLogger("bench")


class _Clock:
    """Wall and CPU seconds of a ``with`` block."""

    wall_s: float = 0.0
    cpu_s: float = 0.0


@contextmanager
def _measure() -> Iterator[_Clock]:
    clock = _Clock()
    cpu, wall = cpu_seconds(), time.monotonic()
    try:
        yield clock
    finally:
        clock.wall_s = time.monotonic() - wall
        clock.cpu_s = cpu_seconds() - cpu


def _settings(data_dir: str) -> Any:
    from qbo_pipeline.config import Settings

    return Settings.from_env({"QBO_DATA_DIR": data_dir, "QBO_ENVIRONMENT": "embedded"})


def _realm(data_dir: str, realm_id: str) -> Any:
    from qbo_pipeline.lake.lake import Lake

    return Lake(_settings(data_dir).lake_url).realm(realm_id)


def lake_bytes(data_dir: str, realm_id: str) -> int:
    """Bytes the company's folder of the lake holds (versions, manifests, reports, blobs)."""
    realm = _realm(data_dir, realm_id)
    fs = realm.fs.fs  # the fsspec filesystem under the lake's LakeFS
    if not fs.exists(realm.root):
        return 0
    return int(fs.du(realm.root, total=True))


class _Stages:
    """A BackupProgress that notes when each stage of the run started."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}

    def planned(self, kind: str, expected: dict[str, int | None]) -> None:
        self.started.setdefault("planned", time.monotonic())

    def fetched(self, entity: str, count: int) -> None:
        """Nothing to note per batch."""

    def stage(self, message: str) -> None:
        self.started.setdefault(message.split(" (")[0], time.monotonic())

    def offsets(self) -> dict[str, float]:
        """Seconds from the first stage to each stage's start."""
        origin = min(self.started.values(), default=0.0)
        return {name: round(at - origin, 3) for name, at in self.started.items()}

    def between(self, first: str, second: str) -> float | None:
        if first in self.started and second in self.started:
            return self.started[second] - self.started[first]
        return None


# --- tasks ----------------------------------------------------------------------------------


def generate(state: str, transactions: int, seed: int = 42) -> dict[str, Any]:
    """Generate a sandbox company into a state file (what ``sandbox serve`` does when new)."""
    from qbo_pipeline import entities
    from qbo_pipeline.sandbox.server import ensure_companies
    from qbo_pipeline.sandbox.store import SandboxStore

    store = SandboxStore(Path(state))
    try:
        with _measure() as clock:
            realms = ensure_companies(store, 1, seed=seed, transactions=transactions)
        counts = {
            e.name: store.count(realms[0], e.name)
            for e in entities.CATALOGUE
            if store.count(realms[0], e.name)
        }
    finally:
        store.close()
    return {
        "realm_id": realms[0],
        "records": sum(counts.values()),
        "counts": counts,
        "wall_s": clock.wall_s,
        "cpu_s": clock.cpu_s,
    }


def login(data_dir: str, base_url: str) -> dict[str, Any]:
    """Connect the sandbox's companies through its OAuth flow (tokens land in the data dir)."""
    from qbo_pipeline.qbo.connect import login_embedded

    return {"realm_ids": login_embedded(_settings(data_dir), base_url)}


def backup(
    data_dir: str, base_url: str, realm_id: str, mode: str, latency_ms: float = 300.0
) -> dict[str, Any]:
    """One snapshot through ``run_backup``; CPU and wall of the run itself."""
    from qbo_pipeline import entities
    from qbo_pipeline.backup import run_backup
    from qbo_pipeline.qbo.connect import open_client

    settings = _settings(data_dir)
    realm = _realm(data_dir, realm_id)
    stages = _Stages()
    with open_client(settings, realm_id, api_base=base_url) as client, _measure() as clock:
        try:
            result = run_backup(client, realm, mode=mode, progress=stages)  # type: ignore[arg-type]
        except Exception:
            # What was reached before the failure, for the report (the task still fails).
            log.error(
                "backup failed after %d API calls; stage offsets %s; cpu %.1f s; peak rss %d",
                client.api_calls,
                stages.offsets(),
                cpu_seconds(),
                peak_rss_bytes(),
            )
            raise
    counts = {
        name: int(s.get("qbo_count") or 0)
        for name, s in result.snapshot.entities.items()
        if not entities.get(name).is_singleton
    }
    pages = min_pages(counts)
    return {
        "kind": result.kind,
        "snapshot_id": result.snapshot.snapshot_id,
        "fetched": result.fetched,
        "live": result.live_records,
        "versions_written": result.versions_written,
        "deletions": result.deletions,
        "api_calls": result.api_calls,
        "duration_s": result.duration_s,
        "extract_s": stages.between("extracting", "reconciling with QBO's counts"),
        "stages": stages.offsets(),
        "bytes_written": result.bytes_written,
        "lake_bytes": lake_bytes(data_dir, realm_id),
        "attachments": result.attachments_downloaded,
        "min_pages": pages if result.kind == "full" else None,
        "floor_s": latency_floor_seconds(pages, latency_ms / 1000)
        if result.kind == "full"
        else None,
        "wall_s": clock.wall_s,
        "cpu_s": clock.cpu_s,
    }


def export_csv(data_dir: str, realm_id: str, snapshot_id: str, out_dir: str) -> dict[str, Any]:
    """Export one snapshot as CSV; rows are CSV data rows over every table file."""
    from qbo_pipeline.exports import export_snapshot

    realm = _realm(data_dir, realm_id)
    with _measure() as clock:
        result = export_snapshot(realm, snapshot_id, formats="csv", out_dir=Path(out_dir))
    return {
        "records": sum(result.records.values()),
        "rows": sum(f.rows for f in result.files),
        "files": len(result.files),
        "bytes": result.bytes,
        "seconds": clock.wall_s,
        "wall_s": clock.wall_s,
        "cpu_s": clock.cpu_s,
    }


def models(data_dir: str, realm_id: str, old: str, new: str, latest: str) -> dict[str, Any]:
    """Build the warehouse, then diff ``old``->``new`` (one night) and ``old``->``latest``."""
    from qbo_pipeline.models.diff import compute_diff
    from qbo_pipeline.models.warehouse import build_warehouse, connect

    settings = _settings(data_dir)
    warehouse = Path(data_dir) / "bench-warehouse.duckdb"
    with _measure() as build:
        built = build_warehouse(settings.lake_url, warehouse, full=True)
    out: dict[str, Any] = {
        "build_s": build.wall_s,
        "build_cpu_s": build.cpu_s,
        "models": len(built.models),
        "snapshots": len(_realm(data_dir, realm_id).snapshots()),
    }
    with connect(warehouse, read_only=True) as con:
        with _measure() as one:
            diff = compute_diff(con, old, new, realm_id=realm_id)
        out.update(diff_s=one.wall_s, diff_changes=len(diff.changes))
        out["diff_fields"] = sum(len(c.fields) for c in diff.changes)
        if latest != new:
            with _measure() as span:
                wide = compute_diff(con, old, latest, realm_id=realm_id)
            out.update(diff_span_s=span.wall_s, diff_span_changes=len(wide.changes))
    out["wall_s"] = build.wall_s + out["diff_s"] + out.get("diff_span_s", 0.0)
    return out


def warehouse_incremental(data_dir: str, realm_id: str) -> dict[str, Any]:
    """Build the warehouse the ``models`` task published again, after one more nightly.

    Run in its own process right after that nightly, so its peak memory is the build's.
    """
    from qbo_pipeline.models.warehouse import build_warehouse

    settings = _settings(data_dir)
    warehouse = Path(data_dir) / "bench-warehouse.duckdb"
    if not warehouse.exists():
        raise BenchError("no warehouse to build incrementally: the models step did not run")
    with _measure() as build:
        built = build_warehouse(settings.lake_url, warehouse)
    appended = [m for m in built.models if m.appended]
    return {
        "build_s": build.wall_s,
        "build_cpu_s": build.cpu_s,
        "kind": built.kind,
        "reason": built.reason,
        "new_snapshots": built.new_snapshots,
        "version_files_read": built.version_files_read,
        "appended_models": len(appended),
        "appended_s": sum(m.seconds for m in appended),
        "full_tables_s": sum(
            m.seconds for m in built.models if not m.appended and m.materialized != "view"
        ),
        "rows_inserted": sum(m.rows_inserted for m in appended),
        "slowest": sorted(
            ((m.key, round(m.seconds, 2)) for m in built.models), key=lambda kv: -kv[1]
        )[:8],
        "snapshots": len(_realm(data_dir, realm_id).snapshots()),
        "wall_s": build.wall_s,
        "cpu_s": build.cpu_s,
    }


def warehouse_growth(
    data_dir: str, realm_id: str, compact: bool | None = None, sql_dir: str | None = None
) -> dict[str, Any]:
    """The warehouse built after every snapshot of the run's lake in turn, then in full.

    The lake is copied with every commit record but the first set aside, so a snapshot is
    invisible until its record is put back (lake/FORMAT.md): a full build over the first
    snapshot, then one record put back and an incremental build per snapshot, as a nightly
    schedule would have run them. Each build's wall time and published file size are kept, and
    at the end a full build of the same lake into a file of its own gives the size the
    incremental file is compared with. ``compact`` is ``build_warehouse``'s: None is the growth
    policy, False never compacts (how the file grows without it). The SQL project (``sql_dir``,
    the packaged one by default) is copied first, so that an edit made meanwhile does not turn
    the builds full.
    """
    import os
    import shutil

    from qbo_pipeline.models.runner import load_project
    from qbo_pipeline.models.warehouse import build_warehouse

    source = _realm(data_dir, realm_id).root
    work = Path(data_dir) / f"bench-growth-{'policy' if compact is None else compact}"
    shutil.rmtree(work, ignore_errors=True)
    project = work / "dbt_like_sql"
    shutil.copytree(load_project(Path(sql_dir) if sql_dir else None).root, project)
    lake = work / "lake"
    realm_dir = lake / Path(source).name
    shutil.copytree(source, realm_dir, ignore=shutil.ignore_patterns("_staging", "restore"))
    held = work / "held-commits"
    held.mkdir()
    records = sorted((realm_dir / "commits").glob("[!.]*.json"))
    if len(records) < 2:
        raise BenchError(f"the lake holds {len(records)} snapshot(s); growth needs at least 2")
    for record in records[1:]:
        record.rename(held / record.name)
    warehouse = work / "warehouse.duckdb"
    builds: list[dict[str, Any]] = []
    wall = cpu = 0.0
    for number, record in enumerate(records):
        if number:
            (held / record.name).rename(record)
        with _measure() as clock:
            built = build_warehouse(lake, warehouse, sql_dir=project, compact=compact)
        wall, cpu = wall + clock.wall_s, cpu + clock.cpu_s
        builds.append(
            {
                "snapshot_id": record.stem,
                "kind": built.kind,
                "build_s": round(clock.wall_s, 3),
                "file_bytes": built.file_bytes,
                "growth": round(built.growth, 3),
                "compacted": built.compacted,
                "compact_s": round(built.compact_seconds, 3),
            }
        )
        log.info("build %d: %s", number, builds[-1])
    incremental = [b for b in builds if b["kind"] == "incremental"]
    if len(incremental) != len(builds) - 1:
        raise BenchError(f"not every build after the first was incremental: {builds}")
    full_path = work / "full.duckdb"
    with _measure() as full:
        build_warehouse(lake, full_path, sql_dir=project, full=True)
    full_bytes = os.path.getsize(full_path)
    out = {
        "compact": "policy" if compact is None else compact,
        "snapshots": len(records),
        "builds": builds,
        "first_full_bytes": builds[0]["file_bytes"],
        "full_bytes": full_bytes,
        "full_build_s": full.wall_s,
        "final_bytes": builds[-1]["file_bytes"],
        "final_over_full": builds[-1]["file_bytes"] / full_bytes,
        "max_over_full": max(b["file_bytes"] for b in builds) / full_bytes,
        "compactions": sum(b["compacted"] for b in builds),
        "incremental_build_s_median": sorted(b["build_s"] for b in incremental)[
            len(incremental) // 2
        ],
        "compact_s_max": max(b["compact_s"] for b in builds),
        "wall_s": wall + full.wall_s,
        "cpu_s": cpu + full.cpu_s,
    }
    shutil.rmtree(work, ignore_errors=True)
    return out


def nightlies(
    data_dir: str,
    base_url: str,
    realm_id: str,
    count: int,
    changes_per_day: int,
    seed: int = 1000,
    latency_ms: float = 300.0,
) -> dict[str, Any]:
    """``count`` nights: a simulated day of ``changes_per_day`` changes, then an incremental."""
    nights: list[dict[str, Any]] = []
    before = lake_bytes(data_dir, realm_id)
    for night in range(count):
        simulated = admin(
            base_url,
            "simulate",
            {
                "realmId": realm_id,
                "days": 1,
                "changes_per_day": changes_per_day,
                "seed": seed + night,
            },
        )
        changes = sum(int(n) for n in (simulated.get("changes") or {}).values())
        result = backup(data_dir, base_url, realm_id, "incremental", latency_ms)
        if result["kind"] != "incremental":
            raise BenchError(f"night {night + 1} took a {result['kind']} snapshot, not incremental")
        nights.append(
            {
                "changes": changes,
                "api_calls": result["api_calls"],
                "versions_written": result["versions_written"],
                "duration_s": result["duration_s"],
                "cpu_s": result["cpu_s"],
                "lake_bytes": result["lake_bytes"],
                "snapshot_id": result["snapshot_id"],
            }
        )
        log.info("night %d: %s", night + 1, nights[-1])
    return {
        "count": count,
        "lake_bytes_before": before,
        "lake_bytes_after": lake_bytes(data_dir, realm_id),
        "nights": nights,
        "wall_s": sum(n["duration_s"] for n in nights),
        "cpu_s": sum(n["cpu_s"] for n in nights),
    }


def restore(
    data_dir: str, base_url: str, realm_id: str, snapshot_id: str, invoices: int
) -> dict[str, Any]:
    """Bulk-delete about ``invoices`` invoices, then plan, approve, apply and verify a restore."""
    from qbo_pipeline.qbo.connect import open_client
    from qbo_pipeline.restore.apply import approve
    from qbo_pipeline.restore.run import apply_restore, plan_restore, verify_plan
    from qbo_pipeline.restore.scope import Scope
    from qbo_pipeline.restore.store import PlanStore

    realm = _realm(data_dir, realm_id)
    dates = [str(p.get("TxnDate", "")) for p in realm.iter_payloads(snapshot_id, "Invoice")]
    first, last, expected = pick_range([d for d in dates if d], invoices)
    incident = admin(
        base_url,
        "incident",
        {
            "realmId": realm_id,
            "kind": "bulk_delete_invoices",
            "params": {"start": first, "end": last},
        },
    )
    changes = incident.get("changes") or {}
    scope = Scope.parse(entity_names=["Invoice", "Payment", "Deposit"])
    out: dict[str, Any] = {
        "invoices_deleted": int(changes.get("Invoice.deleted", 0)),
        "incident": changes,
        "date_range": [first, last],
        "expected_invoices": expected,
    }
    with open_client(_settings(data_dir), realm_id, api_base=base_url) as client:
        with _measure() as planning:
            planned = plan_restore(client, realm, snapshot=snapshot_id, scope=scope)
        plan_id = planned.plan.plan_id
        approve(PlanStore.for_realm(realm), plan_id, name="bench")
        calls = client.api_calls
        with _measure() as applying:
            result, _ = apply_restore(client, realm, plan_id, verify=False)
        apply_calls = client.api_calls - calls
        with _measure() as verifying:
            report = verify_plan(client, realm, plan_id)
    done = [s for s in result.steps if s.state == "done"]
    out.update(
        plan_s=planning.wall_s,
        steps=len(planned.plan.steps),
        states=result.counts,
        writes=len(done),
        apply_s=applying.wall_s,
        apply_cpu_s=applying.cpu_s,
        apply_api_calls=apply_calls,
        verify_s=verifying.wall_s,
        verified=bool(report.get("ok")),
        wall_s=planning.wall_s + applying.wall_s + verifying.wall_s,
        cpu_s=planning.cpu_s + applying.cpu_s + verifying.cpu_s,
    )
    return out


@contextmanager
def _s3_server(log_path: Path) -> Iterator[str]:
    """moto's S3 server on a free loopback port, in its own process; yields its URL."""
    import socket
    import subprocess
    import sys

    import requests

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with open(log_path, "ab") as server_log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=server_log,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(endpoint, timeout=2)
                break
            except requests.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(f"moto's S3 server did not start (see {log_path})") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def s3_compare(
    data_dir: str, base_url: str, realm_id: str, changes_per_day: int, seed: int = 7000
) -> dict[str, Any]:
    """The lake on S3 against a local folder, both new, in one process on the same company.

    The store is moto's S3 server on loopback, in its own process (a stand-in for S3: no
    network latency, and its CPU shares this machine). The company is backed up in full into a
    local folder of its own (the run's lake is left alone) and into an ``s3://`` lake, the
    warehouse is built over each (full), then the sandbox lives one day at ``changes_per_day``
    changes, an incremental snapshot goes into each lake and each warehouse is built again
    (incremental: over S3 it downloads only the new files into its mirror).
    """
    import json
    import os
    import shutil

    from qbo_pipeline.lake.lake import Lake
    from qbo_pipeline.models.warehouse import build_warehouse

    bucket = "qbo-bench"
    local_lake = Path(data_dir) / "bench-compare-lake"
    shutil.rmtree(local_lake, ignore_errors=True)
    with _s3_server(Path(data_dir) / "s3-server.log") as endpoint:
        # Settings as a user sets them (the bench's child process owns its environment).
        os.environ.update(
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_DEFAULT_REGION="us-east-1",
            QBO_LAKE_STORAGE_OPTIONS=json.dumps({"endpoint_url": endpoint}),
        )
        lakes = {"local": str(local_lake), "s3": f"s3://{bucket}/lake"}
        Lake(lakes["s3"]).fs.fs.mkdir(bucket)
        out: dict[str, Any] = {}
        wall = cpu = 0.0

        def snapshots(mode: str) -> None:
            nonlocal wall, cpu
            for name, url in lakes.items():
                taken = _backup_into(data_dir, base_url, realm_id, Lake(url).realm(realm_id), mode)
                out[f"{name}_{mode}_s"] = taken["duration_s"]
                out.setdefault("records", taken["live"])
                wall, cpu = wall + taken["wall_s"], cpu + taken["cpu_s"]

        def builds(step: str) -> None:
            nonlocal wall, cpu
            for name, url in lakes.items():
                with _measure() as clock:
                    built = build_warehouse(url, Path(data_dir) / f"bench-{name}.duckdb")
                out[f"{name}_{step}_s"] = clock.wall_s
                out[f"{name}_{step}_kind"] = built.kind
                if built.files_downloaded is not None:
                    out[f"{name}_{step}_downloaded"] = built.files_downloaded
                wall, cpu = wall + clock.wall_s, cpu + clock.cpu_s

        snapshots("full")
        builds("build")
        simulated = admin(
            base_url,
            "simulate",
            {"realmId": realm_id, "days": 1, "changes_per_day": changes_per_day, "seed": seed},
        )
        out["changes"] = sum(int(n) for n in (simulated.get("changes") or {}).values())
        snapshots("incremental")
        builds("nightly_build")
    shutil.rmtree(local_lake, ignore_errors=True)
    # The names the metrics read (kept from the first version of this step).
    out.update(
        full_duration_s=out["s3_full_s"],
        local_full_duration_s=out["local_full_s"],
        s3_build_s=out["s3_build_s"],
        local_build_s=out["local_build_s"],
        wall_s=wall,
        cpu_s=cpu,
    )
    return out


def _backup_into(
    data_dir: str, base_url: str, realm_id: str, realm: Any, mode: str = "full"
) -> dict[str, Any]:
    """A snapshot of the company (``full`` or ``incremental``) into ``realm`` (of any lake)."""
    from qbo_pipeline.backup import run_backup
    from qbo_pipeline.qbo.connect import open_client

    with (
        open_client(_settings(data_dir), realm_id, api_base=base_url) as client,
        _measure() as clock,
    ):
        result = run_backup(client, realm, mode=mode)  # type: ignore[arg-type]
    if result.kind != mode:
        raise BenchError(f"a {mode} snapshot was asked for; the backup took a {result.kind} one")
    return {
        "duration_s": result.duration_s,
        "live": result.live_records,
        "wall_s": clock.wall_s,
        "cpu_s": clock.cpu_s,
    }


TASKS: dict[str, Callable[..., dict[str, Any]]] = {
    "generate": generate,
    "login": login,
    "backup": backup,
    "export_csv": export_csv,
    "models": models,
    "nightlies": nightlies,
    "warehouse_incremental": warehouse_incremental,
    "warehouse_growth": warehouse_growth,
    "restore": restore,
    "s3_compare": s3_compare,
}
"""Every task a ``bench.child`` process can run."""
