"""The ``qbo-backup`` command line.

Each domain registers its commands from its own module, so that the CLI stays a thin layer over
the same functions Dagster calls.
"""

from __future__ import annotations

import typer

from qbo_pipeline.cli import (
    auth_cmd,
    backup_cmd,
    demo_cmd,
    export_cmd,
    lake_cmd,
    restore_cmd,
    sandbox_cmd,
    warehouse_cmd,
)
from qbo_pipeline.shutdown import exit_code, leave

app = typer.Typer(
    name="qbo-backup",
    help="QuickBooks Online backup and recovery: snapshots, diffs, exports and restores.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

for module in (
    sandbox_cmd,
    auth_cmd,
    backup_cmd,
    lake_cmd,
    warehouse_cmd,
    export_cmd,
    restore_cmd,
    demo_cmd,
):
    module.register(app)


def main() -> None:
    """Run the CLI, then leave without the native exit-time teardown (:mod:`.shutdown`)."""
    try:
        app()
    except SystemExit as done:
        leave(exit_code(done.code))
    leave(0)
