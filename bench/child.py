"""Run one benchmark task in a fresh process and measure it: ``python -m bench.child``.

The parent starts ``python -m bench.child TASK PARAMS.json OUT.json``; this process runs the task
(see :mod:`bench.tasks`) and writes its result to ``OUT.json`` with the task's CPU seconds (user +
system, of this process and any it waited for; the task itself reports ``cpu_s`` and ``wall_s``
of its core step, without interpreter start-up and imports) and the process's peak resident
memory. Running each task in its own process keeps the sandbox's CPU and the benchmark's own
bookkeeping out of the figures, and makes peak memory a per-task fact.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.metrics import BenchError


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and the children it waited for."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def peak_rss_bytes() -> int:
    """This process's peak resident memory in bytes (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def main(argv: list[str]) -> int:
    """Run the task named in ``argv`` and write its measured result."""
    if len(argv) != 3:
        sys.stderr.write("usage: python -m bench.child TASK PARAMS.json OUT.json\n")
        return 2
    task, params_path, out_path = argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    params = json.loads(Path(params_path).read_text())
    rss_before = peak_rss_bytes()
    started_cpu, started = cpu_seconds(), time.monotonic()

    from bench.tasks import TASKS

    if task not in TASKS:
        sys.stderr.write(f"unknown task {task!r}; known: {', '.join(sorted(TASKS))}\n")
        return 2
    result: dict[str, Any] = TASKS[task](**params)
    result["process_cpu_s"] = cpu_seconds() - started_cpu
    result["process_wall_s"] = time.monotonic() - started
    result["peak_rss_bytes"] = peak_rss_bytes()
    result["rss_at_start_bytes"] = rss_before
    Path(out_path).write_text(json.dumps(result, indent=2, default=str))
    return 0


def run_task(
    task: str, params: dict[str, Any], workdir: Path, *, timeout: float = 6 * 3600
) -> dict[str, Any]:
    """Run ``task`` in a child process and return its measured result.

    Raises:
        BenchError: If the child fails or times out (the message ends with its log's tail).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    stem = f"{task}-{time.strftime('%H%M%S')}-{os.getpid()}-{time.monotonic_ns()}"
    params_path = workdir / f"{stem}.params.json"
    out_path = workdir / f"{stem}.out.json"
    log_path = workdir / f"{stem}.log"
    params_path.write_text(json.dumps(params, indent=2))
    cmd = [sys.executable, "-m", "bench.child", task, str(params_path), str(out_path)]
    with log_path.open("w") as log:
        try:
            proc = subprocess.run(
                cmd, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise BenchError(
                f"task {task} timed out after {timeout:.0f} s; log: {log_path}"
            ) from None
    if proc.returncode != 0 or not out_path.exists():
        tail = "".join(log_path.read_text(errors="replace").splitlines(keepends=True)[-25:])
        raise BenchError(f"task {task} failed ({proc.returncode}); log {log_path}:\n{tail}")
    return json.loads(out_path.read_text())


if __name__ == "__main__":
    from qbo_pipeline.shutdown import leave

    try:
        code = main(sys.argv[1:])
    except BenchError as exc:
        sys.stderr.write(f"bench task failed: {exc}\n")
        code = 1
    # The result is written: pyarrow's rare abort at interpreter exit must not fail the task.
    leave(code)
