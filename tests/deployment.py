"""Many companies in one Dagster deployment: the harness of the deployment test and its bench.

It stands up what a firm runs on one machine, every part real:

- the embedded sandbox serving ``N`` companies of mixed sizes, every one logged in into one
  token store (``QBO_DATA_DIR``);
- the lake on an S3-compatible server on loopback (moto's server mode, :mod:`tests.s3server`);
- a ``DAGSTER_HOME`` holding the project's ``dagster.yaml`` (the queued run coordinator, its
  ``max_concurrent_runs``, the tag concurrency limits and the backup pool);
- a ``dagster-daemon run`` subprocess loading ``workspace.yaml``'s code location, with no
  webserver: its sensor daemon runs the realm discovery sensor (which registers the companies
  as dynamic partitions), its scheduler ticks the nightly schedule (``QBO_BACKUP_CRON`` set to
  the next minute), its run queue launches the runs in subprocesses within the limits.

:func:`run_nightly` waits until every company has a committed snapshot in the S3 lake and the
queue is empty, stops the daemon (its whole process group, always) and returns the run records
with the peak memory of the daemon's process tree.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
DAGSTER_YAML = REPO / "qbo_pipeline" / "defs" / "dagster.yaml"
WORKSPACE_YAML = REPO / "workspace.yaml"
SNAPSHOT_JOBS = ("qbo_snapshot_job", "qbo_full_backup_job")
FIRST_REALM = 9_130_300_000_000_000
SIZES = (40, 120, 400)
"""Transactions of the companies, in turn: mixed sizes (the default company has about 1,100)."""


class DeploymentError(RuntimeError):
    """The deployment did not finish its nightly; the message names what was missing."""


@dataclass
class RunSpan:
    """One run of the deployment, from its record."""

    run_id: str
    job_name: str
    status: str
    realm_id: str | None
    start: float | None
    end: float | None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class NightlyResult:
    """What one nightly of the deployment did."""

    realm_ids: list[str]
    runs: list[RunSpan]
    seconds: float
    peak_rss_bytes: int
    peak_processes: int
    daemon_log: Path
    max_concurrent_runs: int
    phases: dict[str, float] = field(default_factory=dict)
    """Median seconds of each phase of the snapshot runs (:func:`snapshot_phases`)."""


def companies(count: int, sizes: Sequence[int] = SIZES) -> list[tuple[str, int]]:
    """``(realm id, transactions)`` of ``count`` companies cycling through ``sizes``."""
    return [(str(FIRST_REALM + i), sizes[i % len(sizes)]) for i in range(count)]


def build_sandbox_state(path: Path, plan: Sequence[tuple[str, int]]) -> Path:
    """A sandbox state file holding the planned companies (generated, pinned in time)."""
    from qbo_pipeline.sandbox.generator import generate_company
    from qbo_pipeline.sandbox.store import SandboxStore
    from tests.conftest import PINNED_NOW

    store = SandboxStore(path)
    try:
        for index, (realm_id, transactions) in enumerate(plan):
            generate_company(
                store,
                realm_id,
                seed=100 + index,
                transactions=transactions,
                company_name=f"Client {index + 1}",
                anchor=PINNED_NOW,
            )
    finally:
        store.close()
    return path


START_LEAD_SECONDS = 90.0
"""At least this long between the daemon's start and the nightly's tick."""


def next_minute_cron(lead_seconds: float = 25.0) -> tuple[str, datetime]:
    """A daily cron that fires at the first whole minute at least ``lead_seconds`` away (UTC)."""
    now = datetime.now(UTC)
    due = (now + timedelta(seconds=lead_seconds)).replace(second=0, microsecond=0)
    due += timedelta(minutes=1)
    return f"{due.minute} {due.hour} * * *", due


def _tree_rss(root: psutil.Process) -> tuple[int, int]:
    total, count = 0, 0
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
            count += 1
        except psutil.NoSuchProcess:
            continue
    return total, count


class _TreeSampler:
    """Samples the resident memory of a process and all its descendants, keeping the peak."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        self.root = psutil.Process(pid)
        self.every = every
        self.peak_rss = 0
        self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, count = _tree_rss(self.root)
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_processes = max(self.peak_processes, count)
            self._stop.wait(self.every)

    def __enter__(self) -> _TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def daemon_process(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``dagster-daemon run -w workspace.yaml`` in its own process group, always stopped."""
    daemon = Path(sys.executable).with_name("dagster-daemon")
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [str(daemon), "run", "-w", str(WORKSPACE_YAML)],
            cwd=REPO,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            _stop_group(proc)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the daemon's process group (it and its code server and runs), then SIGKILL."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        proc.wait()
        return
    for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        # The daemon is gone; make sure nothing of its group outlives it.
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        break
    proc.wait()


def _spans(instance: object) -> list[RunSpan]:
    records = instance.get_run_records()  # type: ignore[attr-defined]
    return [
        RunSpan(
            run_id=r.dagster_run.run_id,
            job_name=r.dagster_run.job_name,
            status=r.dagster_run.status.value,
            realm_id=r.dagster_run.tags.get("qbo/realm")
            or r.dagster_run.tags.get("dagster/partition"),
            start=r.start_time,
            end=r.end_time,
            tags=dict(r.dagster_run.tags),
        )
        for r in records
    ]


FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
TICK_GRACE_SECONDS = 180.0
"""The nightly's tick must have created a run this long after its minute."""


def run_nightly(
    work: Path,
    s3_endpoint: str,
    lake_url: str,
    plan: Sequence[tuple[str, int]],
    *,
    timeout: float = 600.0,
    dagster_home: Path | None = None,
) -> NightlyResult:
    """Run one nightly of ``plan``'s companies through a real dagster-daemon; see the module.

    The calling process reads the lake too: its environment must hold the lake's credentials
    and endpoint (:func:`tests.s3server.lake_env`), as the ``s3_lake_url`` fixture sets them.
    ``dagster_home`` (a new folder) holds the instance, by default ``work/dagster_home``: every
    event of every run is a SQLite commit there, so its disk weighs on the whole nightly.

    Raises:
        DeploymentError: If the nightly did not finish within ``timeout`` seconds (naming the
            companies without a snapshot and the runs not finished), or a run failed.
    """
    import dagster as dg

    from qbo_pipeline.config import Settings
    from qbo_pipeline.lake.lake import Lake
    from qbo_pipeline.qbo.connect import login_embedded
    from qbo_pipeline.sandbox.server import SandboxServer
    from tests.s3server import lake_env

    data = work / "data"
    home = dagster_home or work / "dagster_home"
    home.mkdir(parents=True)
    shutil.copyfile(DAGSTER_YAML, home / "dagster.yaml")
    state = build_sandbox_state(work / "sandbox.sqlite3", plan)
    sandbox = SandboxServer(state, realms=len(plan))
    sandbox.start()
    try:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("QBO_", "DAGSTER_", "AWS_"))
        }
        env.update(lake_env(s3_endpoint))
        env.update(
            {
                "DAGSTER_HOME": str(home),
                "DAGSTER_DISABLE_TELEMETRY": "1",
                "QBO_ENVIRONMENT": "embedded",
                "QBO_DATA_DIR": str(data),
                "QBO_LAKE_URL": lake_url,
            }
        )
        settings = Settings.from_env(env)
        connected = login_embedded(settings, sandbox.base_url)
        if sorted(connected) != sorted(r for r, _ in plan):
            raise DeploymentError(f"logged in {sorted(connected)}, not every planned company")
        lake = Lake(lake_url)
        saved = {k: os.environ.get(k) for k in ("DAGSTER_HOME", "DAGSTER_DISABLE_TELEMETRY")}
        os.environ["DAGSTER_HOME"] = str(home)
        os.environ["DAGSTER_DISABLE_TELEMETRY"] = "1"
        try:
            instance = dg.DagsterInstance.get()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        with instance:
            max_runs = int(instance.get_concurrency_config().run_queue_config.max_concurrent_runs)
            log_path = work / "dagster-daemon.log"
            # The daemon must load the code and its discovery sensor register every company
            # before the tick (a tick with no company is skipped): 25 s was too little for 24
            # companies on the busy machine.
            cron, due = next_minute_cron(lead_seconds=START_LEAD_SECONDS)
            env["QBO_BACKUP_CRON"] = cron
            started = time.monotonic()
            with daemon_process(env, log_path) as proc, _TreeSampler(proc.pid) as sampler:
                _wait(instance, lake, [r for r, _ in plan], proc, log_path, due, timeout)
                seconds = time.monotonic() - started
            runs = _spans(instance)
            return NightlyResult(
                realm_ids=[r for r, _ in plan],
                runs=runs,
                seconds=seconds,
                peak_rss_bytes=sampler.peak_rss,
                peak_processes=sampler.peak_processes,
                daemon_log=log_path,
                max_concurrent_runs=max_runs,
                phases=snapshot_phases(instance, runs),
            )
    finally:
        sandbox.stop()


def _wait(
    instance: object,
    lake: object,
    realm_ids: list[str],
    proc: subprocess.Popen[bytes],
    log_path: Path,
    due: datetime,
    timeout: float,
) -> None:
    """Until every company has a snapshot, a warehouse build ran after them and nothing is left."""
    deadline = time.monotonic() + timeout + max(0.0, (due - datetime.now(UTC)).total_seconds())
    missing: list[str] = list(realm_ids)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DeploymentError(
                f"dagster-daemon exited with {proc.returncode}; see {log_path}:\n"
                + log_path.read_text(errors="replace")[-3000:]
            )
        spans = _spans(instance)
        if not spans and datetime.now(UTC) > due + timedelta(seconds=TICK_GRACE_SECONDS):
            raise DeploymentError(
                f"the nightly's tick at {due:%H:%M} UTC created no run (were the companies "
                f"registered in time?); see {log_path}"
            )
        failed = [s for s in spans if s.status == "FAILURE"]
        if failed:
            raise DeploymentError(
                "runs failed: "
                + ", ".join(f"{s.job_name} {s.realm_id or ''} {s.run_id}" for s in failed)
            )
        snapshots_left = any(
            s.job_name in SNAPSHOT_JOBS and s.status not in FINISHED for s in spans
        )
        if not snapshots_left and spans:
            # The lake is listed only once the queue holds no snapshot run (it costs requests).
            missing = [r for r in realm_ids if lake.realm(r).latest() is None]  # type: ignore[attr-defined]
        warehouse_done = any(s.job_name == "warehouse_job" and s.status == "SUCCESS" for s in spans)
        if (
            spans
            and not snapshots_left
            and not missing
            and warehouse_done
            and all(s.status in FINISHED for s in spans)
        ):
            return
        time.sleep(3.0)
    unfinished = [f"{s.job_name} {s.realm_id or ''} {s.status}" for s in _spans(instance)]
    unfinished = [u for u in unfinished if not u.endswith(tuple(FINISHED))]
    raise DeploymentError(
        f"the nightly did not finish in {timeout:.0f} s: companies without a snapshot "
        f"{missing or 'none'}; runs not finished {unfinished or 'none'}; see {log_path}"
    )


PHASES = (
    "submit",
    "queued",
    "launch",
    "setup",
    "backup",
    "checks",
    "exports",
    "teardown",
    "run",
)
"""The phases of a snapshot run, in order:

- submit: the scheduler creating and enqueuing it (the gap since the previous run's creation);
- queued: waiting in the run queue for the concurrency limits;
- launch: the run worker process starting and loading the code location;
- setup: from the run's start to the snapshot op's start (a step process under a multiprocess
  executor, the resources);
- backup: the snapshot op until its commit; checks: the commit to the op's end (the snapshot's
  checks, every materialisation and check event stored);
- exports: the exports op (in the run) or the exports run (the older layout);
- teardown: the last op's end to the run's end;
- run: the whole run, from its launch to its end (the exports run not included)."""


def _run_times(instance: object, run_id: str) -> dict[str, float]:
    """The timestamps of a run's milestones, from its event log."""
    times: dict[str, float] = {}
    for entry in instance.all_logs(run_id):  # type: ignore[attr-defined]
        event = entry.dagster_event
        if event is None:
            if "committed" in (entry.user_message or "") and "commit" not in times:
                times["commit"] = entry.timestamp
            continue
        name = event.event_type_value
        key = f"{name}:{event.step_key}" if event.step_key else name
        times.setdefault(key, entry.timestamp)
        if name == "STEP_SUCCESS":
            times["last_step_end"] = entry.timestamp
    return times


def snapshot_phases(instance: object, spans: Sequence[RunSpan]) -> dict[str, float]:
    """Median seconds of each of :data:`PHASES` over the successful snapshot runs."""
    records = {
        r.dagster_run.run_id: r
        for r in instance.get_run_records()  # type: ignore[attr-defined]
    }
    snapshots = sorted(
        (s for s in spans if s.job_name in SNAPSHOT_JOBS and s.status == "SUCCESS"),
        key=lambda s: records[s.run_id].create_timestamp,
    )
    exports_runs = {s.tags.get("qbo/after_run"): s for s in spans if s.job_name == "exports_job"}
    samples: dict[str, list[float]] = {phase: [] for phase in PHASES}
    previous: float | None = None
    for span in snapshots:
        created = records[span.run_id].create_timestamp.timestamp()
        t = _run_times(instance, span.run_id)
        if previous is not None:
            samples["submit"].append(created - previous)
        previous = created
        pairs = {
            "queued": ("PIPELINE_ENQUEUED", "PIPELINE_STARTING"),
            "launch": ("PIPELINE_STARTING", "PIPELINE_START"),
            "setup": ("PIPELINE_START", "STEP_START:qbo_snapshot"),
            "backup": ("STEP_START:qbo_snapshot", "commit"),
            "checks": ("commit", "STEP_SUCCESS:qbo_snapshot"),
            "exports": ("STEP_START:qbo_exports", "STEP_SUCCESS:qbo_exports"),
            "teardown": ("last_step_end", "PIPELINE_SUCCESS"),
            "run": ("PIPELINE_STARTING", "PIPELINE_SUCCESS"),
        }
        for phase, (start, end) in pairs.items():
            if start in t and end in t:
                samples[phase].append(t[end] - t[start])
        run = exports_runs.get(span.run_id)
        if "STEP_START:qbo_exports" not in t and run and run.start and run.end:
            samples["exports"].append(run.end - run.start)
    return {phase: statistics.median(v) for phase, v in samples.items() if v}


def overlapping_pairs(spans: Sequence[RunSpan]) -> list[tuple[RunSpan, RunSpan]]:
    """Pairs of runs of one company (``qbo/realm`` or partition tag) whose times overlapped."""
    by_realm: dict[str, list[RunSpan]] = {}
    for span in spans:
        if span.realm_id and span.start is not None:
            by_realm.setdefault(span.realm_id, []).append(span)
    pairs: list[tuple[RunSpan, RunSpan]] = []
    for runs in by_realm.values():
        runs.sort(key=lambda s: s.start or 0.0)
        for i, before in enumerate(runs):
            pairs.extend(
                (before, after)
                for after in runs[i + 1 :]
                if before.end is None or (after.start or 0.0) < before.end
            )
    return pairs


def peak_concurrency(spans: Sequence[RunSpan]) -> int:
    """The most runs that were running at one moment (from their start and end times)."""
    edges = sorted(
        [(s.start, 1) for s in spans if s.start is not None]
        + [(s.end, -1) for s in spans if s.start is not None and s.end is not None]
    )
    # An end at the same moment as a start counts first (sorted: -1 before 1).
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak
