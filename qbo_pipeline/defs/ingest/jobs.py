"""Snapshot jobs: the incremental one that automation runs, and the on-demand full backup.

A snapshot run also exports the company's new snapshot (the ``exports`` group, downstream of
every entity): one run per company and night instead of two, and the exports only run when the
snapshot's blocking count checks passed. Both ops run in the run's own process (the code
location's executor, :data:`qbo_pipeline.definitions.EXECUTOR`); the ``qbo_backup`` pool still
holds per op: the in-process executor claims the op's pool slot as the multiprocess one does.
"""

import dagster as dg

from qbo_pipeline.defs.exports.assets import GROUP as EXPORTS_GROUP
from qbo_pipeline.defs.ingest.assets import GROUP, qbo_snapshot
from qbo_pipeline.defs.ingest.checks import snapshot_fresh

REALM_TAG = "qbo/realm"
"""Run tag naming the company; dagster.yaml limits runs to one per value of it."""

SNAPSHOT_SELECTION = dg.AssetSelection.groups(GROUP, EXPORTS_GROUP) - dg.AssetSelection.checks(
    snapshot_fresh
)
"""The snapshot's entity assets (their checks included) and, after them, the company's exports.

Not the freshness check: it reads every company's latest snapshot, so in each company's run it
would cost a lake listing per company (N x N a night); ``qbo_freshness_job`` runs it hourly."""


def _mode(mode: str) -> dict[str, object]:
    return {"ops": {qbo_snapshot.op.name: {"config": {"mode": mode}}}}


snapshot_job = dg.define_asset_job(
    "qbo_snapshot_job",
    selection=SNAPSHOT_SELECTION,
    config=_mode("auto"),
    description=(
        "Take a snapshot of one company (partition): incremental through CDC when a recent "
        "snapshot exists, full otherwise; then export it as CSV, JSON and XML. Run by the "
        "nightly schedule and the CDC sensor."
    ),
)

full_backup_job = dg.define_asset_job(
    "qbo_full_backup_job",
    selection=SNAPSHOT_SELECTION,
    config=_mode("full"),
    description=(
        "Read every record of one company (partition) again: an on-demand full snapshot, "
        "then its exports."
    ),
)

freshness_job = dg.define_asset_job(
    "qbo_freshness_job",
    selection=dg.AssetSelection.checks(snapshot_fresh),
    description="Check that every company has a recent committed snapshot.",
)
