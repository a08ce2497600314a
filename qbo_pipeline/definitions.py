"""The Dagster code location: every definition under ``qbo_pipeline/defs``.

``dagster dev -w workspace.yaml`` (``make ui``) loads this module. Each domain folder of
``defs/`` (ingest, warehouse, exports, restore) holds its assets, checks, jobs, schedules and
sensors; ``defs/resources.py`` binds the shared resources.

Every job runs its ops in the run's own process (:data:`EXECUTOR`): a snapshot run is two ops
(the snapshot with its checks, then the exports), a warehouse build one op and its two checks,
all one after the other; Dagster's default multiprocess executor would start a step process per
op, each importing this code location again. A deployment that spreads ops over machines (the
Celery executor of ``deploy/README.md``) replaces :data:`EXECUTOR` here, in one place.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

EXECUTOR = dg.in_process_executor
"""The executor of every job of the code location."""


@dg.definitions
def defs() -> dg.Definitions:
    """Load every definition of the ``defs`` folder, with the code location's executor."""
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(executor=EXECUTOR),
    )
