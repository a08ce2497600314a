"""``python -m bench [--quick]``: measure the pipeline against the sandbox, print, save JSON.

Every size runs against its own sandbox process with QBO's rate limits (500 requests a minute,
10 in flight) and 300 ms of latency per request; every pipeline step runs in its own child
process whose CPU time and peak memory are read from the operating system. Ratios are measured
within one run; nothing here is a timed test.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import machine, report
from bench.metrics import BenchError, Metric, all_metrics, human_size, summary
from bench.scenario import SizePlan, run_size

FULL_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000,)
SKIPPABLE = ("export", "models", "warehouse_nightly", "warehouse_growth", "restore", "s3")
NIGHTLIES = {10_000: 30, 100_000: 30, 1_000_000: 3}
"""Nightlies per size by default: 30 where time allows, fewer at 1M (reported as such)."""


def _sizes(text: str) -> list[int]:
    sizes: list[int] = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        scale = 1
        if part.endswith("k"):
            part, scale = part[:-1], 1000
        elif part.endswith("m"):
            part, scale = part[:-1], 1_000_000
        try:
            value = int(float(part) * scale)
        except ValueError:
            raise argparse.ArgumentTypeError(f"size {part!r} is not a number like 10k") from None
        if value < 100:
            raise argparse.ArgumentTypeError(f"size {value} is too small (at least 100)")
        sizes.append(value)
    if not sizes:
        raise argparse.ArgumentTypeError("give at least one size")
    return sizes


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10k transactions only")
    parser.add_argument("--sizes", type=_sizes, help="comma-separated sizes, e.g. 10k,100k")
    parser.add_argument("--nightlies", type=int, help="nightly snapshots per size (default 30)")
    parser.add_argument(
        "--restore-invoices", type=int, default=60, help="invoices bulk-deleted then restored"
    )
    parser.add_argument(
        "--skip",
        default="",
        help="steps to leave out, comma-separated: " + ", ".join(SKIPPABLE),
    )
    parser.add_argument("--latency-ms", type=float, default=300.0, help="sandbox latency")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path("/tmp/qbo-bench"),
        help="scratch space; generated companies are cached under cache/",
    )
    parser.add_argument(
        "--results-dir", type=Path, default=report.RESULTS_DIR, help="where JSON results go"
    )
    args = parser.parse_args(argv)
    if args.nightlies is not None and args.nightlies < 1:
        parser.error("--nightlies must be at least 1")
    args.skip = tuple(sorted({s.strip() for s in args.skip.split(",") if s.strip()}))
    unknown = set(args.skip) - set(SKIPPABLE)
    if unknown:
        parser.error(f"--skip {', '.join(sorted(unknown))}: not one of {', '.join(SKIPPABLE)}")
    return args


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def _source_state() -> dict[str, Any]:
    """The commit measured, and the package files that differed from it (a shared work tree)."""
    changed = _git("status", "--porcelain", "--", "qbo_pipeline", "dbt_like_sql")
    return {
        "git_commit": _git("rev-parse", "HEAD") or None,
        "uncommitted_changes": sorted(line[3:] for line in (changed or "").splitlines()),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code (1 when a size could not be measured)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    sizes = args.sizes or list(QUICK_SIZES if args.quick else FULL_SIZES)
    started = datetime.now(UTC)
    clock = time.monotonic()
    host = machine.describe()
    plans = [
        SizePlan(
            transactions=size,
            nightlies=args.nightlies or NIGHTLIES.get(size, 30 if size <= 100_000 else 3),
            restore_invoices=args.restore_invoices,
            latency_ms=args.latency_ms,
            skip=args.skip,
        )
        for size in sizes
    ]
    results = args.results_dir
    runs: dict[int, dict[str, Any]] = {}
    failed: dict[int, str] = {}
    for plan in plans:
        size_clock = time.monotonic()
        try:
            runs[plan.transactions] = run_size(plan, args.work_dir, args.work_dir / "cache")
        except BenchError as exc:
            logging.error("size %s could not be measured: %s", human_size(plan.transactions), exc)
            failed[plan.transactions] = str(exc)
            continue
        runs[plan.transactions]["seconds"] = time.monotonic() - size_clock
        # Saved after every size, so a long run that is stopped keeps what it measured.
        report.write(_document(args, plans, started, clock, host, runs, failed), started, results)
    document = _document(args, plans, started, clock, host, runs, failed, complete=True)
    path = report.write(document, started, results)
    report.show(
        [Metric(**m) for m in document["metrics"]],
        title=f"qbo_pipeline benchmark ({document['mode']}) on {machine.one_line(host)}",
    )
    print(f"results: {path} (and latest.json beside it)")
    return 1 if failed else 0


def _document(
    args: argparse.Namespace,
    plans: list[SizePlan],
    started: datetime,
    clock: float,
    host: dict[str, Any],
    runs: dict[int, dict[str, Any]],
    failed: dict[int, str],
    *,
    complete: bool = False,
) -> dict[str, Any]:
    metrics = all_metrics(runs)
    return {
        "started_at": started.isoformat(),
        "seconds": time.monotonic() - clock,
        "mode": "quick" if args.quick else ("custom" if args.sizes else "full"),
        **_source_state(),
        "machine": host,
        "parameters": {
            "sizes": [p.transactions for p in plans],
            "plans": [p.__dict__ for p in plans],
            "rate_limits": {"requests_per_minute": 500, "max_in_flight": 10},
            "latency_ms": args.latency_ms,
        },
        "summary": summary(metrics),
        "metrics": [m.to_dict() for m in metrics],
        "failed_sizes": {str(k): v for k, v in failed.items()},
        "runs": {str(size): run for size, run in runs.items()},
        "complete": complete,
    }


if __name__ == "__main__":
    sys.exit(main())
