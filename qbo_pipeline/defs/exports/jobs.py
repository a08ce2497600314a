"""The exports job: one company's latest snapshot in every format, on demand.

Snapshot runs export their own snapshot; this job re-exports one.
"""

import dagster as dg

from qbo_pipeline.defs.exports.assets import GROUP

exports_job = dg.define_asset_job(
    "exports_job",
    selection=dg.AssetSelection.groups(GROUP),
    description=(
        "Export one company's latest snapshot as CSV, JSON and XML (on demand: every snapshot "
        "run exports its own snapshot)."
    ),
)
