"""The warehouse is requested once per batch of snapshot runs, by the last one to end (#19)."""

from __future__ import annotations

import dagster as dg

from qbo_pipeline.defs.warehouse.sensors import warehouse_request


def _run(
    instance: dg.DagsterInstance, job: str, status: dg.DagsterRunStatus, **tags: str
) -> dg.DagsterRun:
    return instance.add_run(dg.DagsterRun(job_name=job, status=status, tags=tags))


def test_only_the_last_snapshot_run_of_a_batch_requests_the_warehouse(
    instance: dg.DagsterInstance,
) -> None:
    done = dg.DagsterRunStatus.SUCCESS
    first = _run(instance, "qbo_snapshot_job", done)
    left = _run(instance, "qbo_snapshot_job", dg.DagsterRunStatus.NOT_STARTED)
    _run(instance, "exports_job", dg.DagsterRunStatus.STARTED)  # not a snapshot run
    assert warehouse_request(instance, first) is None  # another company's run is still to run

    instance.report_run_canceled(left)  # the batch's last run ends (here: canceled)
    request = warehouse_request(instance, first)
    assert request is not None
    assert request.job_name == "warehouse_job"
    assert request.run_key == f"warehouse:{first.run_id}"

    last = _run(instance, "qbo_full_backup_job", done)
    both = warehouse_request(instance, first), warehouse_request(instance, last)
    # Two runs ending in one tick name the newest: one build, whatever job took the snapshot.
    assert {r.run_key for r in both if r} == {f"warehouse:{last.run_id}"}

    _run(
        instance, "warehouse_job", dg.DagsterRunStatus.NOT_STARTED, **{"qbo/after_run": last.run_id}
    )
    assert warehouse_request(instance, last) is None  # already requested (by either sensor)


def test_no_successful_snapshot_no_build(instance: dg.DagsterInstance) -> None:
    failed = _run(instance, "qbo_snapshot_job", dg.DagsterRunStatus.FAILURE)
    assert warehouse_request(instance, failed) is None
