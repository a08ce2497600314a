"""The project's dagster.yaml as the instance reads it (issue #19).

The run queue's limits, the backup pool and the daemon's threads.
"""

from __future__ import annotations

import dagster as dg


def test_the_run_queue_limits_runs_per_company_and_builds(instance: dg.DagsterInstance) -> None:
    queue = instance.get_concurrency_config().run_queue_config
    assert queue.max_concurrent_runs == 4
    limits = {limit["key"]: limit for limit in queue.tag_concurrency_limits}
    for key in ("qbo/realm", "dagster/partition"):
        assert limits[key]["limit"] == 1
        assert limits[key]["value"] == {"applyLimitPerUniqueValue": True}
    assert limits["qbo/warehouse"]["limit"] == 1
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 2


def test_a_tick_creates_its_runs_and_sensors_tick_in_threads(
    instance: dg.DagsterInstance,
) -> None:
    # The nightly asks for a run per company: they are created side by side, not one by one.
    schedules = instance.get_scheduler_settings()
    assert schedules["use_threads"] is True
    assert schedules["num_submit_workers"] >= 2
    sensors = instance.get_sensor_settings()
    assert sensors["use_threads"] is True
    assert sensors["num_workers"] >= 2
