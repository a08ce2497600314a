"""The nightly snapshot of every company, and the hourly freshness check.

Cron expressions are evaluated in UTC. ``QBO_BACKUP_CRON`` overrides the nightly time (default
``0 2 * * *``: 02:00 UTC), ``QBO_FRESHNESS_CRON`` the freshness check's (default hourly).
"""

import dagster as dg

from qbo_pipeline import config
from qbo_pipeline.defs.ingest.jobs import REALM_TAG, freshness_job, snapshot_job
from qbo_pipeline.defs.partitions import REALMS

DEFAULT_BACKUP_CRON = "0 2 * * *"
DEFAULT_FRESHNESS_CRON = "15 * * * *"


def snapshot_requests(
    realm_ids: list[str], *, trigger: str, key_prefix: str
) -> list[dg.RunRequest]:
    """One snapshot run request per company, tagged so that one company never runs twice."""
    return [
        dg.RunRequest(
            run_key=f"{key_prefix}:{realm_id}",
            partition_key=realm_id,
            tags={REALM_TAG: realm_id, "qbo/trigger": trigger},
        )
        for realm_id in sorted(realm_ids)
    ]


@dg.schedule(
    name="qbo_nightly_snapshot",
    job=snapshot_job,
    cron_schedule=config.cron(config.BACKUP_CRON_VAR, DEFAULT_BACKUP_CRON),
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every night (02:00 UTC by default), an incremental snapshot of every company.",
)
def nightly_snapshot(
    context: dg.ScheduleEvaluationContext,
) -> list[dg.RunRequest] | dg.SkipReason:
    """Request a snapshot of every registered company."""
    realm_ids = context.instance.get_dynamic_partitions(REALMS)
    if not realm_ids:
        return dg.SkipReason(
            "no company registered yet: the realm discovery sensor registers the connected ones"
        )
    tick = context.scheduled_execution_time.strftime("%Y%m%dT%H%M")
    return snapshot_requests(list(realm_ids), trigger="nightly", key_prefix=f"nightly:{tick}")


freshness_schedule = dg.ScheduleDefinition(
    name="qbo_freshness_check",
    job=freshness_job,
    cron_schedule=config.cron(config.FRESHNESS_CRON_VAR, DEFAULT_FRESHNESS_CRON),
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every hour, check that every company's latest snapshot is recent enough.",
)
