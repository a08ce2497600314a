"""The settings every command starts from, with a clean exit when they are wrong."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from qbo_pipeline.config import ConfigError, Settings

_console = Console(stderr=True)

CONFIG_EXIT_CODE = 2
"""The exit code of a command whose configuration is wrong."""


def load_settings() -> Settings:
    """Read the ``QBO_*`` settings; a wrong one ends the command naming the variable.

    Raises:
        typer.Exit: With :data:`CONFIG_EXIT_CODE` when a setting cannot be used.
    """
    try:
        return Settings.from_env()
    except ConfigError as exc:
        _console.print(f"[red]configuration:[/red] {escape(str(exc))}")
        raise typer.Exit(CONFIG_EXIT_CODE) from None
