"""Pure arithmetic of the benchmark: QBO's ceiling, ratios, targets and their verdicts.

Nothing here measures anything; it turns measured figures into the metrics the table and the
JSON results show, so it can be tested fast and exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from qbo_pipeline.entities import MAX_CONCURRENT_REQUESTS, MAX_PAGE_SIZE, RATE_LIMIT_PER_MINUTE

REQUESTS_PER_SECOND = RATE_LIMIT_PER_MINUTE / 60
"""QBO's per-realm request ceiling: 500 a minute."""

RECORDS_PER_SECOND_CEILING = MAX_PAGE_SIZE * REQUESTS_PER_SECOND
"""What QBO's limits allow one realm: 1000 records a page x 500 pages a minute (8333/s)."""

WRITES_PER_SECOND_CEILING = REQUESTS_PER_SECOND
"""One record per write request, so writes are capped by the request rate (8.33/s)."""

GIB = 1024**3
MIB = 1024**2

# Targets of issue #10.
TARGET_CEILING_RATIO = 0.80
TARGET_CPU_PER_1000 = 0.5
TARGET_PEAK_BYTES_1M = 1 * GIB
TARGET_MEMORY_GROWTH = 1.25
"""'Not growing with size': the largest size's peak at most 25% above the smallest size's."""
TARGET_INCREMENTAL_CALLS_RATIO = 0.05
TARGET_STORAGE_RATIO_30 = 2.0
TARGET_DIFF_SECONDS_1M = 10.0
TARGET_S3_RATIO = 2.0
TARGET_INCREMENTAL_BUILD_SECONDS_1M = 30.0
TARGET_INCREMENTAL_BUILD_PEAK_1M = 2 * GIB
"""Issue #19: a lake on S3 within 2x of a local folder (full backup, warehouse build)."""
TARGET_WAREHOUSE_FILE_RATIO = 2.0
"""Issue #19: the warehouse file, built incrementally night after night, within 2x a full one."""
ONE_MILLION = 1_000_000
NIGHTLIES_FOR_STORAGE_TARGET = 30


class BenchError(RuntimeError):
    """A benchmark step failed; the message says which and why."""


@dataclass(frozen=True)
class Metric:
    """One measured figure, with the target it is judged against.

    Attributes:
        key: Stable machine name (``extract_records_per_s``).
        label: What the table shows.
        size: Transactions of the company it was measured on (None for cross-size metrics).
        value: The measured value (None when it could not be measured).
        unit: Unit of ``value``.
        target: The target in words (empty when the issue sets none).
        met: True or False against the target; None when there is no target at this size.
        note: How it was measured or why it is missing.
    """

    key: str
    label: str
    size: int | None
    value: float | None
    unit: str
    target: str = ""
    met: bool | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @property
    def verdict(self) -> str:
        """``met``, ``NOT met`` or ``-`` (no target here)."""
        if self.met is None:
            return "-"
        return "met" if self.met else "NOT met"


def safe_ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def per_second(count: float | None, seconds: float | None) -> float | None:
    """A rate, or None when it cannot be computed."""
    return safe_ratio(count, seconds)


def cpu_per_1000(cpu_seconds: float | None, records: int | None) -> float | None:
    """CPU seconds per 1000 records."""
    ratio = safe_ratio(cpu_seconds, records)
    return None if ratio is None else ratio * 1000


def min_pages(counts: Mapping[str, int]) -> int:
    """The fewest query pages that can read these record counts (1000 a page, 1 for empty)."""
    return sum(max(1, math.ceil(n / MAX_PAGE_SIZE)) for n in counts.values())


def latency_floor_seconds(requests: int, latency_s: float) -> float:
    """The least time ``requests`` calls of ``latency_s`` each can take within QBO's limits.

    Bounded both by the in-flight cap (10 at a time) and by the sliding minute window (the
    first 500 go at once, then 500 a minute).
    """
    if requests <= 0:
        return 0.0
    by_concurrency = math.ceil(requests / MAX_CONCURRENT_REQUESTS) * latency_s
    beyond_window = max(0, requests - RATE_LIMIT_PER_MINUTE)
    by_rate = beyond_window / REQUESTS_PER_SECOND + (latency_s if beyond_window else 0.0)
    return max(by_concurrency, by_rate)


def check(value: float | None, target: float, *, higher_is_better: bool) -> bool | None:
    """Whether ``value`` meets ``target`` (None when not measured)."""
    if value is None:
        return None
    return value >= target if higher_is_better else value < target


def memory_growth(peaks: Mapping[int, float]) -> float | None:
    """Peak at the largest size over peak at the smallest (None with fewer than two sizes)."""
    measured = {size: peak for size, peak in peaks.items() if peak}
    if len(measured) < 2:
        return None
    sizes = sorted(measured)
    return measured[sizes[-1]] / measured[sizes[0]]


def human_size(size: int) -> str:
    """``10000`` -> ``10k``, ``1000000`` -> ``1M``."""
    if size >= ONE_MILLION and size % ONE_MILLION == 0:
        return f"{size // ONE_MILLION}M"
    if size >= 1000 and size % 1000 == 0:
        return f"{size // 1000}k"
    return str(size)


def format_value(value: float | None, unit: str) -> str:
    """A compact rendering for the table."""
    if value is None:
        return "not measured"
    if unit == "ratio":
        return f"{value:.1%}" if value < 10 else f"{value:.1f}x"
    if unit == "x":
        return f"{value:.2f}x"
    if unit in ("MiB", "s", "s/1000 records"):
        return f"{value:,.3g} {unit}" if value < 100 else f"{value:,.0f} {unit}"
    if abs(value) >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:,.2f} {unit}"


def size_metrics(size: int, run: Mapping[str, Any]) -> list[Metric]:
    """The metrics of one company size from its raw measurements (see ``bench.scenario``)."""
    full = run.get("full") or {}
    metrics: list[Metric] = []
    add = metrics.append
    fetched = full.get("fetched")
    extract_rate = per_second(fetched, full.get("extract_s"))
    ratio = safe_ratio(extract_rate, RECORDS_PER_SECOND_CEILING)
    add(
        Metric(
            "generate_s",
            "Sandbox company generation",
            size,
            (run.get("generate") or {}).get("wall_s"),
            "s",
            note="in the sandbox's own process, not part of the pipeline",
        )
    )
    add(
        Metric(
            "extract_records_per_s",
            "Extraction throughput (full snapshot)",
            size,
            extract_rate,
            "records/s",
            note=f"{fetched} records; extraction stage only (fetch, parse, hash, stage)",
        )
    )
    add(
        Metric(
            "extract_ceiling_ratio",
            "  as a share of QBO's ceiling (8,333 records/s)",
            size,
            ratio,
            "ratio",
            target=f">= {TARGET_CEILING_RATIO:.0%}",
            met=check(ratio, TARGET_CEILING_RATIO, higher_is_better=True),
        )
    )
    pages = full.get("min_pages")
    floor = full.get("floor_s")
    add(
        Metric(
            "extract_floor_ratio",
            "  as a share of what this company's pages allow",
            size,
            safe_ratio(floor, full.get("extract_s")),
            "ratio",
            note=(
                f"{pages} pages of 1000 at 300 ms, 10 in flight, 500/min: at best {floor:.1f} s"
                if pages is not None and floor is not None
                else ""
            ),
        )
    )
    add(
        Metric(
            "sandbox_cpu_share",
            "  sandbox CPU during the full / its wall time",
            size,
            safe_ratio(full.get("sandbox_cpu_s"), full.get("duration_s")),
            "ratio",
            note="the stand-in for QBO's servers shares this machine's cores",
        )
    )
    end_to_end = per_second(fetched, full.get("duration_s"))
    add(
        Metric(
            "backup_records_per_s",
            "Full snapshot end to end",
            size,
            end_to_end,
            "records/s",
            note=(
                f"{full.get('api_calls')} API calls in {full.get('duration_s', 0):.1f} s "
                "(plan, counts, extract, reconcile, land, reports, commit)"
            ),
        )
    )
    cpu = cpu_per_1000(full.get("cpu_s"), fetched)
    add(
        Metric(
            "cpu_s_per_1000",
            "CPU per 1000 records, end to end",
            size,
            cpu,
            "s/1000 records",
            target=f"< {TARGET_CPU_PER_1000}",
            met=check(cpu, TARGET_CPU_PER_1000, higher_is_better=False),
            note="backup process only (user + system), sandbox excluded",
        )
    )
    peak = full.get("peak_rss_bytes")
    add(
        Metric(
            "peak_rss_mib",
            "Peak memory of the backup process",
            size,
            peak / MIB if peak else None,
            "MiB",
            target="< 1 GiB at 1M" if size >= ONE_MILLION else "",
            met=(
                check(peak, TARGET_PEAK_BYTES_1M, higher_is_better=False)
                if size >= ONE_MILLION
                else None
            ),
            note="ru_maxrss of the child process (Python, dlt and pyarrow included)",
        )
    )
    incremental = run.get("incremental") or {}
    calls_ratio = safe_ratio(incremental.get("api_calls"), full.get("api_calls"))
    add(
        Metric(
            "incremental_calls_ratio",
            "Nightly incremental API calls / full's (1% churn)",
            size,
            calls_ratio,
            "ratio",
            target=f"< {TARGET_INCREMENTAL_CALLS_RATIO:.0%}",
            met=check(calls_ratio, TARGET_INCREMENTAL_CALLS_RATIO, higher_is_better=False),
            note=(
                f"{incremental.get('api_calls')} vs {full.get('api_calls')} calls after "
                f"{incremental.get('changes')} changes"
                if incremental
                else ""
            ),
        )
    )
    metrics.extend(_storage_metrics(size, run))
    metrics.extend(_model_metrics(size, run))
    metrics.extend(_export_and_restore_metrics(size, run))
    metrics.extend(_s3_metrics(size, run))
    return metrics


def _s3_metrics(size: int, run: Mapping[str, Any]) -> list[Metric]:
    """The lake on S3 (moto's server on loopback) against the local folder, in the same run."""
    s3 = run.get("s3") or {}
    # Into a local folder in the same step; older runs compared with the run's full snapshot.
    full_local = s3.get("local_full_duration_s") or (run.get("full") or {}).get("duration_s")
    backup_ratio = safe_ratio(s3.get("full_duration_s"), full_local)
    build_ratio = safe_ratio(s3.get("s3_build_s"), s3.get("local_build_s"))
    nightly_ratio = safe_ratio(s3.get("s3_nightly_build_s"), s3.get("local_nightly_build_s"))
    target = f"<= {TARGET_S3_RATIO:g}x"
    absent = _absent(run, "s3")
    return [
        Metric(
            "s3_full_backup_ratio",
            "Full snapshot into an S3 lake / into a local folder",
            size,
            backup_ratio,
            "x",
            target=target,
            met=check(backup_ratio, TARGET_S3_RATIO + 1e-9, higher_is_better=False),
            note=(
                f"{format_value(s3.get('full_duration_s'), 's')} vs "
                f"{format_value(full_local, 's')}; moto's S3 server on loopback"
                if s3
                else absent
            ),
        ),
        Metric(
            "s3_warehouse_build_ratio",
            "Warehouse build over the S3 lake / over the local one",
            size,
            build_ratio,
            "x",
            target=target,
            met=check(build_ratio, TARGET_S3_RATIO + 1e-9, higher_is_better=False),
            note=(
                f"{format_value(s3.get('s3_build_s'), 's')} vs "
                f"{format_value(s3.get('local_build_s'), 's')}; one full snapshot each"
                if s3
                else ""
            ),
        ),
        Metric(
            "s3_nightly_build_ratio",
            "Warehouse build after a nightly, S3 lake / local one",
            size,
            nightly_ratio,
            "x",
            target=target,
            met=check(nightly_ratio, TARGET_S3_RATIO + 1e-9, higher_is_better=False),
            note=(
                f"{format_value(s3.get('s3_nightly_build_s'), 's')} vs "
                f"{format_value(s3.get('local_nightly_build_s'), 's')}; "
                f"{s3.get('s3_nightly_build_kind', '?')}, "
                f"{s3.get('s3_nightly_build_downloaded', '?')} file(s) downloaded"
                if s3.get("s3_nightly_build_s") is not None
                else ""
            ),
        ),
    ]


def _absent(run: Mapping[str, Any], step: str) -> str:
    error = (run.get("errors") or {}).get(step)
    if error:
        return f"FAILED: {error.splitlines()[-1][:200]}"
    return "skipped at this size" if step in (run.get("skipped") or ()) else "not run at this size"


def _storage_metrics(size: int, run: Mapping[str, Any]) -> list[Metric]:
    nightly = run.get("nightlies") or {}
    count = int(nightly.get("count") or 0)
    ratio = safe_ratio(nightly.get("lake_bytes_after"), nightly.get("lake_bytes_full"))
    evaluated = count >= NIGHTLIES_FOR_STORAGE_TARGET
    note = (
        f"{count} nightly snapshots at 1% churn; lake {nightly.get('lake_bytes_after')} bytes "
        f"vs {nightly.get('lake_bytes_full')} after the full"
        if nightly
        else _absent(run, "nightlies")
    )
    if nightly and not evaluated:
        note += f" (target needs {NIGHTLIES_FOR_STORAGE_TARGET})"
    return [
        Metric(
            "storage_ratio",
            f"Lake bytes after {count or 'N'} nightlies / one full",
            size,
            ratio,
            "x",
            target=f"< {TARGET_STORAGE_RATIO_30:g}x after 30",
            met=(
                check(ratio, TARGET_STORAGE_RATIO_30, higher_is_better=False) if evaluated else None
            ),
            note=note,
        )
    ]


def _incremental_build_metrics(size: int, run: Mapping[str, Any]) -> list[Metric]:
    """Issue #19: the warehouse build after one 1% nightly, beside the full build."""
    inc = run.get("warehouse_incremental") or {}
    at_1m = size >= ONE_MILLION
    peak = inc.get("peak_rss_bytes")
    note = (
        f"{inc.get('kind')} build over {inc.get('snapshots')} snapshots: "
        f"{inc.get('version_files_read')} version files read, "
        f"{inc.get('rows_inserted')} rows appended to {inc.get('appended_models')} models "
        f"({format_value(inc.get('appended_s'), 's')}), full tables "
        f"{format_value(inc.get('full_tables_s'), 's')}"
        if inc
        else _absent(run, "warehouse_incremental")
    )
    return [
        Metric(
            "warehouse_incremental_build_s",
            "Warehouse build after a 1% nightly",
            size,
            inc.get("build_s"),
            "s",
            target="< 30 s at 1M" if at_1m else "",
            met=(
                check(
                    inc.get("build_s"), TARGET_INCREMENTAL_BUILD_SECONDS_1M, higher_is_better=False
                )
                if at_1m
                else None
            ),
            note=note,
        ),
        Metric(
            "warehouse_incremental_peak_mib",
            "Peak memory, build after a 1% nightly",
            size,
            peak / MIB if peak else None,
            "MiB",
            target="< 2 GiB at 1M" if at_1m else "",
            met=(
                check(peak, TARGET_INCREMENTAL_BUILD_PEAK_1M, higher_is_better=False)
                if at_1m
                else None
            ),
            note="ru_maxrss of the build's own process (DuckDB included)" if inc else "",
        ),
    ]


def _warehouse_growth_metrics(size: int, run: Mapping[str, Any]) -> list[Metric]:
    """Issue #19: the warehouse file after an incremental build per snapshot, against a full
    build's, without compaction and with the growth policy (``bench.tasks.warehouse_growth``)."""
    growth = run.get("warehouse_growth") or {}
    off, policy = growth.get("off") or {}, growth.get("policy") or {}
    absent = _absent(run, "warehouse_growth")

    def note(measured: Mapping[str, Any]) -> str:
        if not measured:
            return absent
        first, final, full = (
            format_value(measured[k] / MIB, "MiB")
            for k in ("first_full_bytes", "final_bytes", "full_bytes")
        )
        return (
            f"{measured['snapshots'] - 1} incremental builds: file {first} after the first full "
            f"build, {final} after the last; a full build of the same lake {full} "
            f"({format_value(measured['full_build_s'], 's')}); incremental builds "
            f"{format_value(measured['incremental_build_s_median'], 's')} (median), "
            f"{measured['compactions']} compaction(s), longest "
            f"{format_value(measured['compact_s_max'], 's')}"
        )

    return [
        Metric(
            "warehouse_file_ratio_uncompacted",
            "Warehouse file after nightly incremental builds / full, no compaction",
            size,
            off.get("final_over_full"),
            "x",
            note=note(off),
        ),
        Metric(
            "warehouse_file_ratio_policy",
            "Warehouse file at its largest over nightly builds / full, compaction policy",
            size,
            policy.get("max_over_full"),
            "x",
            target=f"< {TARGET_WAREHOUSE_FILE_RATIO:g}x",
            met=check(
                policy.get("max_over_full"), TARGET_WAREHOUSE_FILE_RATIO, higher_is_better=False
            ),
            note=note(policy),
        ),
    ]


def _model_metrics(size: int, run: Mapping[str, Any]) -> list[Metric]:
    models = run.get("models") or {}
    diff_s = models.get("diff_s")
    return [
        *_incremental_build_metrics(size, run),
        *_warehouse_growth_metrics(size, run),
        Metric(
            "warehouse_build_s",
            "Warehouse build (all models)",
            size,
            models.get("build_s"),
            "s",
            note=(
                f"{models.get('snapshots')} snapshots in the lake"
                if models
                else _absent(run, "models")
            ),
        ),
        Metric(
            "diff_s",
            "Diff of two snapshots",
            size,
            diff_s,
            "s",
            target="< 10 s at 1M" if size >= ONE_MILLION else "",
            met=(
                check(diff_s, TARGET_DIFF_SECONDS_1M, higher_is_better=False)
                if size >= ONE_MILLION
                else None
            ),
            note=(
                f"full -> first nightly: {models.get('diff_changes')} record changes"
                if models
                else ""
            ),
        ),
        Metric(
            "diff_30_days_s",
            "Diff of the full and the latest nightly",
            size,
            models.get("diff_span_s"),
            "s",
            note=(
                f"{models.get('diff_span_changes')} record changes"
                if models.get("diff_span_s")
                else ""
            ),
        ),
    ]


def _export_and_restore_metrics(size: int, run: Mapping[str, Any]) -> list[Metric]:
    export = run.get("export") or {}
    restore = run.get("restore") or {}
    writes_rate = per_second(restore.get("writes"), restore.get("apply_s"))
    return [
        Metric(
            "export_rows_per_s",
            "CSV export throughput",
            size,
            per_second(export.get("rows"), export.get("seconds")),
            "rows/s",
            note=(
                f"{export.get('rows')} rows ({export.get('records')} records) in "
                f"{export.get('files')} files"
                if export
                else _absent(run, "export")
            ),
        ),
        Metric(
            "export_peak_rss_mib",
            "Peak memory of the CSV export",
            size,
            export["peak_rss_bytes"] / MIB if export.get("peak_rss_bytes") else None,
            "MiB",
            note="ru_maxrss of the export's child process (its growth across sizes is below)",
        ),
        Metric(
            "restore_writes_per_s",
            "Restore apply throughput",
            size,
            writes_rate,
            "writes/s",
            note=(
                f"{restore.get('writes')} writes after a bulk delete of "
                f"{restore.get('invoices_deleted')} invoices; verified: {restore.get('verified')}"
                if restore
                else _absent(run, "restore")
            ),
        ),
        Metric(
            "restore_ceiling_ratio",
            "  as a share of the write ceiling (8.33/s)",
            size,
            safe_ratio(writes_rate, WRITES_PER_SECOND_CEILING),
            "ratio",
        ),
    ]


def _growth(key: str, label: str, peaks: Mapping[int, float]) -> Metric:
    """Peak memory at the largest size over the smallest, against the flat target."""
    growth = memory_growth(peaks)
    sizes = sorted(s for s, p in peaks.items() if p)
    return Metric(
        key,
        label,
        None,
        growth,
        "x",
        target=f"<= {TARGET_MEMORY_GROWTH:g}x (flat)",
        met=None if growth is None else growth <= TARGET_MEMORY_GROWTH,
        note=(
            " vs ".join(human_size(s) for s in (sizes[-1], sizes[0]))
            if growth is not None
            else "needs two sizes"
        ),
    )


def cross_size_metrics(runs: Mapping[int, Mapping[str, Any]]) -> list[Metric]:
    """Metrics that compare sizes: peak memory of the backup and of the export."""

    def peaks(step: str) -> dict[int, float]:
        return {
            size: float((run.get(step) or {}).get("peak_rss_bytes") or 0)
            for size, run in runs.items()
        }

    return [
        _growth("peak_rss_growth", "Peak memory, largest size / smallest", peaks("full")),
        _growth(
            "export_peak_rss_growth", "Export peak memory, largest size / smallest", peaks("export")
        ),
    ]


def all_metrics(runs: Mapping[int, Mapping[str, Any]]) -> list[Metric]:
    """Every metric of a bench run, size by size, then across sizes."""
    out: list[Metric] = []
    for size in sorted(runs):
        out.extend(size_metrics(size, runs[size]))
    out.extend(cross_size_metrics(runs))
    return out


def summary(metrics: Iterable[Metric]) -> dict[str, int]:
    """How many targets were met, not met, and metrics without a target here."""
    counts = {"met": 0, "not_met": 0, "no_target": 0}
    for metric in metrics:
        if metric.met is None:
            counts["no_target"] += 1
        elif metric.met:
            counts["met"] += 1
        else:
            counts["not_met"] += 1
    return counts


def pick_range(dates: Sequence[str], wanted: int) -> tuple[str, str, int]:
    """A contiguous range of (sorted) dates covering about ``wanted`` items from the middle.

    Returns:
        ``(first, last, items)``: the first and last date of the range and how many of
        ``dates`` fall in it.

    Raises:
        BenchError: If there are no dates.
    """
    if not dates:
        raise BenchError("no dates to pick a range from")
    ordered = sorted(dates)
    start_index = max(0, len(ordered) // 2 - wanted // 2)
    end_index = min(len(ordered) - 1, start_index + max(wanted, 1) - 1)
    first, last = ordered[start_index], ordered[end_index]
    items = sum(1 for d in ordered if first <= d <= last)
    return first, last, items
