"""The ``qbo-backup`` command line.

Each domain registers its commands from its own module, so that the CLI stays a thin layer over
the same functions Dagster calls. Errors end at one boundary (:mod:`.boundary`): one line on
stderr and a documented exit code, the traceback only with ``--debug``.
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
from qbo_pipeline.cli.boundary import ErrorBoundary, set_debug
from qbo_pipeline.shutdown import exit_code, leave

app = typer.Typer(
    name="qbo-backup",
    help="QuickBooks Online backup and recovery: snapshots, diffs, exports and restores.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    cls=ErrorBoundary,
    epilog="Exit codes: 0 done; 1 failed (QBO, a damaged lake or token store, differences "
    "found); 2 a usage or configuration error; 130 interrupted.",
)


@app.callback()
def _options(
    ctx: typer.Context,
    debug: bool = typer.Option(
        False,
        "--debug",
        help="Print the traceback of an error (errors are otherwise one line); QBO_DEBUG=1 "
        "does too.",
    ),
) -> None:
    """Options of every command: ``--debug``."""
    set_debug(ctx, debug)


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
