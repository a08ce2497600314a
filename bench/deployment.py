"""``python -m bench.deployment [--companies 50]``: many companies' nightly through Dagster.

The deployment of ``tests/defs/test_defs_deployment.py`` at scale (its harness,
:mod:`tests.deployment`): the embedded sandbox serves the companies (mixed sizes), the lake is
on moto's S3 server on loopback, and a real ``dagster-daemon`` evaluates the nightly schedule,
queues one run per company under ``dagster.yaml``'s limits (its snapshot, then its exports),
then one warehouse build. Prints the total wall time (daemon start to the last run finished,
the wait for the schedule's minute included), the peak memory of the daemon's process tree (the
daemon, its code server, every run process, sampled), and companies per hour per core; saves the
JSON under ``bench/results/deployment-*.json`` with the median seconds of each phase of a
snapshot run (:data:`tests.deployment.PHASES`). The sandbox and the S3 server run in this
process and share the machine's cores: they stand in for QBO and S3. The Dagster instance
(SQLite, an event = a commit) lives in memory (``/dev/shm``) by default, as in the tests, the
stand-in for a production instance database; ``--instance-dir`` puts it elsewhere.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import psutil

from bench import machine, report


def main(argv: list[str] | None = None) -> int:
    """Run one nightly of many companies through Dagster; print and save the measurements."""
    from tests.deployment import (
        SIZES,
        companies,
        overlapping_pairs,
        peak_concurrency,
        run_nightly,
    )
    from tests.s3server import SERVED, lake_env, new_lake_url, running_s3

    parser = argparse.ArgumentParser(prog="python -m bench.deployment", description=__doc__)
    parser.add_argument("--companies", type=int, default=50, help="companies (default 50)")
    parser.add_argument("--timeout", type=float, default=7200.0, help="seconds to wait at most")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/qbo-bench/deployment"))
    parser.add_argument("--results-dir", type=Path, default=report.RESULTS_DIR)
    parser.add_argument(
        "--instance-dir",
        type=Path,
        default=_default_instance_dir(),
        help="DAGSTER_HOME (replaced; default in /dev/shm when it exists)",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.companies < 1:
        parser.error("--companies must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for folder in (args.work_dir, args.instance_dir):
        if folder.exists():
            shutil.rmtree(folder)
    args.work_dir.mkdir(parents=True)
    started = datetime.now(UTC)
    plan = companies(args.companies)
    with running_s3() as endpoint, _LoadSampler() as load:
        os.environ.update(lake_env(endpoint))
        SERVED.clear()
        result = run_nightly(
            args.work_dir,
            endpoint,
            new_lake_url(),
            plan,
            timeout=args.timeout,
            dagster_home=args.instance_dir,
        )
    cores = psutil.cpu_count() or 1
    jobs: dict[str, int] = {}
    for span in result.runs:
        jobs[span.job_name] = jobs.get(span.job_name, 0) + 1
    spans = [s for s in result.runs if s.start is not None and s.end is not None]
    busy = sorted(s.end - s.start for s in spans if s.job_name == "qbo_snapshot_job")
    document = {
        "started_at": started.isoformat(),
        "machine": machine.describe(),
        "companies": args.companies,
        "sizes_transactions": list(SIZES),
        "max_concurrent_runs": result.max_concurrent_runs,
        "wall_s": result.seconds,
        "first_run_to_last_end_s": max(s.end for s in spans) - min(s.start for s in spans),
        "peak_rss_bytes_daemon_tree": result.peak_rss_bytes,
        "peak_processes_daemon_tree": result.peak_processes,
        "peak_rss_bytes_sandbox_and_s3_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        * 1024,
        "cores": cores,
        "companies_per_hour_per_core": args.companies / (result.seconds / 3600) / cores,
        "runs_per_job": jobs,
        "snapshot_run_seconds_median": busy[len(busy) // 2] if busy else None,
        "overlapping_runs_of_one_company": len(overlapping_pairs(result.runs)),
        "peak_concurrent_runs": peak_concurrency(result.runs),
        "snapshot_run_phases_median_s": result.phases,
        "s3_requests_by_method": dict(SERVED),
        "s3_requests_per_company": sum(SERVED.values()) / args.companies,
        "instance_dir": str(args.instance_dir),
        "load_average_1min_mean_max": [load.mean, load.peak],
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"deployment-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    host = machine.one_line(document["machine"])
    print(f"{args.companies} companies' nightly through dagster-daemon on {host}")
    print(f"  total wall time          {result.seconds:9.1f} s")
    print(f"  first run start to end  {document['first_run_to_last_end_s']:9.1f} s")
    print(
        f"  peak memory (daemon tree){result.peak_rss_bytes / 2**30:9.2f} GiB "
        f"({result.peak_processes} processes at most)"
    )
    print(
        f"  companies/hour/core      {document['companies_per_hour_per_core']:9.1f} ({cores} cores)"
    )
    print(f"  runs                     {jobs}")
    peak, limit = document["peak_concurrent_runs"], result.max_concurrent_runs
    print(f"  peak concurrent runs     {peak:9d} (limit {limit})")
    print(
        f"  S3 requests per company  {document['s3_requests_per_company']:9.0f} "
        f"({', '.join(f'{m} {n}' for m, n in sorted(SERVED.items()))}; the build's included)"
    )
    print(f"  overlapping runs of one company: {document['overlapping_runs_of_one_company']}")
    phases = ", ".join(f"{k} {v:.1f}" for k, v in result.phases.items())
    print(f"  snapshot run phases (median s): {phases}")
    print(
        f"  instance in {args.instance_dir}; 1-minute load average mean {load.mean:.1f}, "
        f"max {load.peak:.1f} (the machine's other users included)"
    )
    print(f"results: {path}")
    return 0


class _LoadSampler:
    """The machine's 1-minute load average every 10 s while the nightly runs (all its users)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(10.0):
            self.samples.append(os.getloadavg()[0])

    @property
    def mean(self) -> float:
        return sum(self.samples) / len(self.samples) if self.samples else os.getloadavg()[0]

    @property
    def peak(self) -> float:
        return max(self.samples, default=os.getloadavg()[0])

    def __enter__(self) -> _LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _default_instance_dir() -> Path:
    memory = Path("/dev/shm")
    parent = memory if memory.is_dir() and os.access(memory, os.W_OK) else Path("/tmp")
    return parent / "qbo-bench-deployment-dagster"


if __name__ == "__main__":
    sys.exit(main())
