"""The warehouse build job."""

import dagster as dg

from qbo_pipeline.defs.warehouse.assets import GROUP

WAREHOUSE_TAG = "qbo/warehouse"
"""Run tag of warehouse builds; dagster.yaml allows one at a time (one DuckDB file)."""

warehouse_job = dg.define_asset_job(
    "warehouse_job",
    selection=dg.AssetSelection.groups(GROUP),
    tags={WAREHOUSE_TAG: "build"},
    description="Rebuild every SQL model from the lake and publish them in one transaction.",
)
