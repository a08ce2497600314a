"""The benchmark's pure arithmetic: ceiling, ratios, verdicts, banner parsing, result naming."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import metrics, report
from bench.metrics import BenchError, Metric
from bench.sandbox_proc import parse_banner
from bench.scenario import SizePlan


def test_ceiling_is_a_thousand_records_times_500_requests_a_minute() -> None:
    assert metrics.RECORDS_PER_SECOND_CEILING == pytest.approx(1000 * 500 / 60)
    assert metrics.WRITES_PER_SECOND_CEILING == pytest.approx(500 / 60)


@pytest.mark.parametrize(
    ("num", "den", "expected"),
    [(1.0, 2.0, 0.5), (None, 2.0, None), (1.0, None, None), (1.0, 0, None)],
)
def test_safe_ratio(num: float | None, den: float | None, expected: float | None) -> None:
    assert metrics.safe_ratio(num, den) == expected


def test_cpu_per_1000_records() -> None:
    assert metrics.cpu_per_1000(2.0, 10_000) == pytest.approx(0.2)
    assert metrics.cpu_per_1000(2.0, 0) is None


def test_min_pages_counts_one_page_for_small_and_empty_entities() -> None:
    assert metrics.min_pages({"Invoice": 2500, "Term": 3, "Class": 0}) == 3 + 1 + 1


def test_latency_floor_is_bound_by_concurrency_then_by_the_minute_window() -> None:
    # 20 requests, 10 in flight, 0.3 s each: two rounds.
    assert metrics.latency_floor_seconds(20, 0.3) == pytest.approx(0.6)
    # 1000 requests: 500 go in the first window, the other 500 at 500 a minute.
    assert metrics.latency_floor_seconds(1000, 0.3) == pytest.approx(60.3)
    assert metrics.latency_floor_seconds(0, 0.3) == 0.0


def test_check_direction_and_missing_values() -> None:
    assert metrics.check(0.9, 0.8, higher_is_better=True) is True
    assert metrics.check(0.7, 0.8, higher_is_better=True) is False
    assert metrics.check(0.4, 0.5, higher_is_better=False) is True
    assert metrics.check(0.5, 0.5, higher_is_better=False) is False
    assert metrics.check(None, 0.5, higher_is_better=False) is None


def test_memory_growth_compares_largest_with_smallest_size() -> None:
    assert metrics.memory_growth({10_000: 200.0, 1_000_000: 300.0, 100_000: 250.0}) == 1.5
    assert metrics.memory_growth({10_000: 200.0}) is None
    assert metrics.memory_growth({10_000: 200.0, 100_000: 0.0}) is None


def test_human_size() -> None:
    assert [metrics.human_size(n) for n in (10_000, 1_000_000, 1500)] == ["10k", "1M", "1500"]


def test_pick_range_covers_about_the_wanted_items_from_the_middle() -> None:
    dates = [f"2024-01-{d:02d}" for d in range(1, 31) for _ in range(2)]
    first, last, items = metrics.pick_range(dates, 10)
    assert first <= last
    assert items == sum(1 for d in dates if first <= d <= last)
    assert 10 <= items <= 12
    with pytest.raises(BenchError, match="no dates"):
        metrics.pick_range([], 5)


def _run(**overrides: object) -> dict[str, object]:
    run: dict[str, object] = {
        "generate": {"wall_s": 3.0},
        "full": {
            "fetched": 10_000,
            "extract_s": 2.0,
            "duration_s": 4.0,
            "api_calls": 100,
            "cpu_s": 3.0,
            "peak_rss_bytes": 300 * metrics.MIB,
            "min_pages": 30,
            "floor_s": 0.9,
            "sandbox_cpu_s": 2.0,
        },
        "incremental": {"api_calls": 4, "changes": 100},
        "nightlies": {"count": 30, "lake_bytes_after": 150, "lake_bytes_full": 100},
        "models": {"build_s": 5.0, "diff_s": 0.5, "diff_changes": 90, "snapshots": 31},
        "export": {
            "rows": 5000,
            "seconds": 2.0,
            "records": 1000,
            "files": 7,
            "peak_rss_bytes": 200 * metrics.MIB,
        },
        "restore": {"writes": 30, "apply_s": 10.0, "invoices_deleted": 10, "verified": True},
    }
    run.update(overrides)
    return run


def _by_key(found: list[Metric]) -> dict[str, Metric]:
    return {m.key: m for m in found}


def test_size_metrics_compute_values_and_verdicts() -> None:
    found = _by_key(metrics.size_metrics(10_000, _run()))
    assert found["extract_records_per_s"].value == 5000
    assert found["extract_ceiling_ratio"].value == pytest.approx(5000 / (1000 * 500 / 60))
    assert found["extract_ceiling_ratio"].met is False
    assert found["sandbox_cpu_share"].value == pytest.approx(0.5)
    assert found["cpu_s_per_1000"].value == pytest.approx(0.3)
    assert found["cpu_s_per_1000"].met is True
    assert found["incremental_calls_ratio"].value == pytest.approx(0.04)
    assert found["incremental_calls_ratio"].met is True
    assert found["storage_ratio"].value == pytest.approx(1.5)
    assert found["storage_ratio"].met is True
    assert found["export_rows_per_s"].value == 2500
    assert found["export_peak_rss_mib"].value == 200
    assert found["restore_writes_per_s"].value == 3
    assert found["restore_ceiling_ratio"].value == pytest.approx(3 / (500 / 60))
    # Targets set for 1M only are not judged at 10k.
    assert found["peak_rss_mib"].met is None and found["diff_s"].met is None


def test_million_size_judges_memory_and_diff_time() -> None:
    run = _run(models={"build_s": 50.0, "diff_s": 12.0, "diff_changes": 1})
    found = _by_key(metrics.size_metrics(1_000_000, run))
    assert found["diff_s"].met is False
    assert found["peak_rss_mib"].met is True


def test_storage_target_needs_thirty_nightlies() -> None:
    run = _run(nightlies={"count": 3, "lake_bytes_after": 110, "lake_bytes_full": 100})
    storage = _by_key(metrics.size_metrics(10_000, run))["storage_ratio"]
    assert storage.value == pytest.approx(1.1)
    assert storage.met is None and "needs 30" in storage.note


def test_missing_steps_are_not_measured_not_crashes() -> None:
    found = _by_key(metrics.size_metrics(10_000, {"full": {}}))
    assert found["extract_records_per_s"].value is None
    assert found["restore_writes_per_s"].value is None
    assert found["restore_writes_per_s"].note == "not run at this size"
    assert metrics.format_value(None, "s") == "not measured"
    failed = _by_key(
        metrics.size_metrics(
            10_000, {"full": {}, "errors": {"restore": "task restore failed\nincident 610"}}
        )
    )
    assert failed["restore_writes_per_s"].note == "FAILED: incident 610"
    skipped = _by_key(metrics.size_metrics(10_000, {"full": {}, "skipped": ["export"]}))
    assert skipped["export_rows_per_s"].note == "skipped at this size"


def test_all_metrics_adds_memory_growth_across_sizes_and_summary_counts() -> None:
    small = _run()
    large = _run(full={**small["full"], "peak_rss_bytes": 600 * metrics.MIB})  # type: ignore[dict-item]
    found = metrics.all_metrics({100_000: large, 10_000: small})
    growth = _by_key(found)["peak_rss_growth"]
    assert growth.value == pytest.approx(2.0) and growth.met is False
    export_growth = _by_key(found)["export_peak_rss_growth"]
    assert export_growth.value == pytest.approx(1.0) and export_growth.met is True
    alone = _by_key(metrics.all_metrics({10_000: small}))["export_peak_rss_growth"]
    assert alone.value is None and alone.note == "needs two sizes"
    counts = metrics.summary(found)
    assert counts["met"] + counts["not_met"] + counts["no_target"] == len(found)
    assert counts["not_met"] >= 1


def test_parse_banner_reads_url_and_realms() -> None:
    lines = [
        "Generating 1 sandbox company ...\n",
        "QBO sandbox serving at http://127.0.0.1:38169\n",
        "  realm ids:     9341450000000001, 9341450000000002\n",
    ]
    assert parse_banner(lines) == (
        "http://127.0.0.1:38169",
        ["9341450000000001", "9341450000000002"],
    )
    assert parse_banner(["Generating ...\n"]) == (None, [])


def test_changes_per_day_is_one_percent_and_at_least_one() -> None:
    assert SizePlan(transactions=10_000).changes_per_day == 100
    assert SizePlan(transactions=20).changes_per_day == 1


def test_results_are_written_timestamped_and_as_latest(tmp_path: Path) -> None:
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    path = report.write({"summary": {"met": 1}}, started, tmp_path)
    assert path.name == "bench-20260102T030405Z.json"
    assert json.loads(path.read_text()) == json.loads((tmp_path / "latest.json").read_text())


def test_table_has_a_row_per_metric() -> None:
    found = metrics.size_metrics(10_000, _run())
    grid = report.table(found, title="t")
    assert grid.row_count == len(found)


def test_machine_is_named() -> None:
    from bench import machine

    described = machine.describe()
    assert described["cpu_model"] and described["logical_cores"] >= 1
    assert described["ram_bytes"] > 0 and described["python"].count(".") == 2
    assert (
        str(described["logical_cores"]) in machine.one_line(described) or described["usable_cores"]
    )


def test_s3_lake_is_judged_against_the_local_folder_of_the_same_run() -> None:
    run = {
        "full": {"duration_s": 10.0},
        "s3": {"full_duration_s": 15.0, "s3_build_s": 9.0, "local_build_s": 4.0},
    }
    found = _by_key(metrics.size_metrics(10_000, run))
    backup, build = found["s3_full_backup_ratio"], found["s3_warehouse_build_ratio"]
    assert backup.value == pytest.approx(1.5) and backup.met is True
    assert build.value == pytest.approx(2.25) and build.met is False
    assert backup.target == build.target == "<= 2x"
    assert "15" in backup.note and "10" in backup.note
    assert found["s3_nightly_build_ratio"].value is None  # a run of the first version
    skipped = _by_key(metrics.size_metrics(10_000, {"full": {}, "skipped": ["s3"]}))
    assert skipped["s3_full_backup_ratio"].value is None
    assert skipped["s3_full_backup_ratio"].note == "skipped at this size"


def test_s3_step_compares_its_own_local_folder_and_the_build_after_a_nightly() -> None:
    run = {
        "full": {"duration_s": 10.0},
        "s3": {
            "full_duration_s": 15.0,
            "local_full_duration_s": 12.0,
            "s3_build_s": 9.0,
            "local_build_s": 6.0,
            "s3_nightly_build_s": 5.0,
            "local_nightly_build_s": 2.0,
            "s3_nightly_build_kind": "incremental",
            "s3_nightly_build_downloaded": 7,
        },
    }
    found = _by_key(metrics.size_metrics(10_000, run))
    assert found["s3_full_backup_ratio"].value == pytest.approx(1.25)
    nightly = found["s3_nightly_build_ratio"]
    assert nightly.value == pytest.approx(2.5) and nightly.met is False
    assert "incremental, 7 file(s) downloaded" in nightly.note


def test_the_build_after_a_nightly_is_judged_at_1m_against_30_s_and_2_gib() -> None:
    inc = {
        "build_s": 25.0,
        "peak_rss_bytes": 3 * 1024 * metrics.MIB,
        "kind": "incremental",
        "snapshots": 32,
        "version_files_read": 9,
        "rows_inserted": 20_000,
        "appended_models": 44,
        "appended_s": 5.0,
        "full_tables_s": 15.0,
    }
    found = _by_key(metrics.size_metrics(1_000_000, _run(warehouse_incremental=inc)))
    assert found["warehouse_incremental_build_s"].met is True
    assert found["warehouse_incremental_peak_mib"].value == 3 * 1024
    assert found["warehouse_incremental_peak_mib"].met is False
    assert "9 version files read" in found["warehouse_incremental_build_s"].note
    small = _by_key(metrics.size_metrics(10_000, _run()))
    assert small["warehouse_incremental_build_s"].value is None
    assert small["warehouse_incremental_build_s"].met is None


def test_the_warehouse_file_growth_is_judged_with_the_policy_against_2x_a_full_build() -> None:
    def replay(final: int, largest: int, compactions: int) -> dict[str, object]:
        return {
            "snapshots": 32,
            "first_full_bytes": 40 * metrics.MIB,
            "final_bytes": final * metrics.MIB,
            "full_bytes": 42 * metrics.MIB,
            "full_build_s": 30.0,
            "final_over_full": final / 42,
            "max_over_full": largest / 42,
            "compactions": compactions,
            "incremental_build_s_median": 20.0,
            "compact_s_max": 2.5 if compactions else 0.0,
        }

    growth = {"off": replay(230, 230, 0), "policy": replay(50, 63, 6)}
    found = _by_key(metrics.size_metrics(10_000, _run(warehouse_growth=growth)))
    off, policy = found["warehouse_file_ratio_uncompacted"], found["warehouse_file_ratio_policy"]
    assert off.value == pytest.approx(230 / 42)
    assert off.met is None
    assert "31 incremental builds" in off.note
    assert "230 MiB after the last" in off.note
    assert policy.value == pytest.approx(1.5)
    assert policy.met is True
    assert "6 compaction(s), longest 2.5 s" in policy.note
    worse = {"off": growth["off"], "policy": replay(90, 90, 0)}
    assert (
        _by_key(metrics.size_metrics(10_000, _run(warehouse_growth=worse)))[
            "warehouse_file_ratio_policy"
        ].met
        is False
    )
    missing = _by_key(metrics.size_metrics(10_000, _run(skipped=["warehouse_growth"])))
    assert missing["warehouse_file_ratio_policy"].value is None
    assert missing["warehouse_file_ratio_policy"].note == "skipped at this size"
