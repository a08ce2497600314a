"""After snapshots: build the warehouse once for the batch.

A nightly launches one snapshot run per company (each exports its own snapshot, see
:mod:`qbo_pipeline.defs.ingest.jobs`); the run queue runs a few at a time. Building the
warehouse after each of them would build it as many times as there are companies, each build
reading every company. So the warehouse is requested only when no snapshot run is left queued or
running: the last snapshot run of the batch to finish requests one build, which reads every
company's new snapshot. Its run key names the newest successful snapshot run, so two runs ending
in the same sensor tick still request one build. When the last run of a batch fails,
``after_failed_snapshot`` requests the build for the companies that succeeded.
"""

import dagster as dg

from qbo_pipeline.defs.ingest.jobs import full_backup_job, snapshot_job
from qbo_pipeline.defs.warehouse.jobs import warehouse_job

SNAPSHOT_JOBS = (snapshot_job.name, full_backup_job.name)
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def warehouse_request(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dg.RunRequest | None:
    """The warehouse build after ``run`` finished, or None while other snapshot runs are left.

    Its run key is ``warehouse:<newest successful snapshot run id>``: one build per batch.
    """
    left = instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT))
    if any(r.job_name in SNAPSHOT_JOBS and r.run_id != run.run_id for r in left):
        return None
    newest = [
        record
        for job in SNAPSHOT_JOBS
        for record in instance.get_run_records(
            filters=dg.RunsFilter(job_name=job, statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1
        )
    ]
    if not newest:
        return None
    last = max(newest, key=lambda record: record.storage_id).dagster_run
    # Another sensor (success or failure) may have requested this batch's build already.
    if instance.get_runs(
        filters=dg.RunsFilter(job_name=warehouse_job.name, tags={"qbo/after_run": last.run_id}),
        limit=1,
    ):
        return None
    return dg.RunRequest(
        run_key=f"warehouse:{last.run_id}",
        job_name=warehouse_job.name,
        tags={"qbo/after_run": last.run_id},
    )


@dg.run_status_sensor(
    name="after_snapshot",
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[snapshot_job, full_backup_job],
    request_job=warehouse_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "When a snapshot run succeeds (its blocking checks passed, its exports written) and it "
        "was the last snapshot run left, rebuild the warehouse once for all."
    ),
)
def after_snapshot(context: dg.RunStatusSensorContext) -> dg.RunRequest | dg.SkipReason:
    """Request the warehouse build after the batch's last snapshot run."""
    request = warehouse_request(context.instance, context.dagster_run)
    if request is None:
        return dg.SkipReason("other snapshot runs are left, or this batch's build is requested")
    return request


@dg.run_failure_sensor(
    name="after_failed_snapshot",
    monitored_jobs=[snapshot_job, full_backup_job],
    request_job=warehouse_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "When the last snapshot run of a batch fails, build the warehouse for the companies "
        "whose snapshots succeeded."
    ),
)
def after_failed_snapshot(context: dg.RunFailureSensorContext) -> dg.RunRequest | dg.SkipReason:
    """Request the warehouse build the failed run would otherwise leave undone."""
    request = warehouse_request(context.instance, context.dagster_run)
    if request is None:
        return dg.SkipReason("other snapshot runs are left, or none succeeded")
    return request
