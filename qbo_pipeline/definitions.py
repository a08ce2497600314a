"""The Dagster code location: every definition under ``qbo_pipeline/defs``.

``dagster dev -w workspace.yaml`` (``make ui``) loads this module. Each domain folder of
``defs/`` (ingest, warehouse, exports, restore) holds its assets, checks, jobs, schedules and
sensors; ``defs/resources.py`` binds the shared resources.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    """Load every definition of the ``defs`` folder."""
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
