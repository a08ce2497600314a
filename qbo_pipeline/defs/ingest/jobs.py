"""Snapshot jobs: the incremental one that automation runs, and the on-demand full backup."""

import dagster as dg

from qbo_pipeline.defs.ingest.assets import GROUP, qbo_snapshot
from qbo_pipeline.defs.ingest.checks import snapshot_fresh

REALM_TAG = "qbo/realm"
"""Run tag naming the company; dagster.yaml limits runs to one per value of it."""


def _mode(mode: str) -> dict[str, object]:
    return {"ops": {qbo_snapshot.op.name: {"config": {"mode": mode}}}}


snapshot_job = dg.define_asset_job(
    "qbo_snapshot_job",
    selection=dg.AssetSelection.groups(GROUP),
    config=_mode("auto"),
    description=(
        "Take a snapshot of one company (partition): incremental through CDC when a recent "
        "snapshot exists, full otherwise. Run by the nightly schedule and the CDC sensor."
    ),
)

full_backup_job = dg.define_asset_job(
    "qbo_full_backup_job",
    selection=dg.AssetSelection.groups(GROUP),
    config=_mode("full"),
    description="Read every record of one company (partition) again: an on-demand full snapshot.",
)

freshness_job = dg.define_asset_job(
    "qbo_freshness_job",
    selection=dg.AssetSelection.checks(snapshot_fresh),
    description="Check that every company has a recent committed snapshot.",
)
