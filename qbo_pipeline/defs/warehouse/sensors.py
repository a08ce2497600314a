"""After every successful snapshot: rebuild the warehouse and export the company."""

import dagster as dg

from qbo_pipeline.defs.exports.jobs import exports_job
from qbo_pipeline.defs.ingest.jobs import REALM_TAG, full_backup_job, snapshot_job
from qbo_pipeline.defs.warehouse.jobs import warehouse_job

PARTITION_TAG = "dagster/partition"


@dg.run_status_sensor(
    name="after_snapshot",
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[snapshot_job, full_backup_job],
    request_jobs=[warehouse_job, exports_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "When a snapshot run succeeds (its blocking checks passed), rebuild the warehouse and "
        "export the company's new snapshot."
    ),
)
def after_snapshot(context: dg.RunStatusSensorContext) -> list[dg.RunRequest] | dg.SkipReason:
    """Request the warehouse build and the company's exports."""
    run = context.dagster_run
    realm_id = run.tags.get(PARTITION_TAG)
    requests = [
        dg.RunRequest(
            run_key=f"warehouse:{run.run_id}",
            job_name=warehouse_job.name,
            tags={"qbo/after_run": run.run_id},
        )
    ]
    if realm_id:
        requests.append(
            dg.RunRequest(
                run_key=f"exports:{run.run_id}",
                job_name=exports_job.name,
                partition_key=realm_id,
                tags={REALM_TAG: realm_id, "qbo/after_run": run.run_id},
            )
        )
    return requests
