"""``qbo-backup sandbox ...``: run the embedded QBO-compatible sandbox."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``sandbox`` command group."""
    sandbox = typer.Typer(help="The embedded QBO-compatible sandbox.", no_args_is_help=True)
    app.add_typer(sandbox, name="sandbox")

    @sandbox.command("serve")
    def serve(
        host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
        port: int = typer.Option(0, help="Port (0 picks a free one)."),
    ) -> None:
        """Serve the sandbox until interrupted."""
        raise typer.Exit(code=1)
