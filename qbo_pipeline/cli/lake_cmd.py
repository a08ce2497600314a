"""``qbo-backup prune``, ``verify`` and ``gc``: look after the lake."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the lake's maintenance commands to the CLI."""
