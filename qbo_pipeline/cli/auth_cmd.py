"""``qbo-backup`` commands of the auth domain (filled in by that domain)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this domain's commands to the CLI."""
