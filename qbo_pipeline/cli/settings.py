"""The settings every command starts from."""

from __future__ import annotations

from qbo_pipeline.config import Settings
from qbo_pipeline.errors import EXIT_USAGE

CONFIG_EXIT_CODE = EXIT_USAGE
"""The exit code of a command whose configuration is wrong."""


def load_settings() -> Settings:
    """Read the ``QBO_*`` settings.

    Raises:
        ConfigError: Naming the variable, when a setting cannot be used; the CLI's error
            boundary prints it as ``error: configuration: ...`` and exits with
            :data:`CONFIG_EXIT_CODE`.
    """
    return Settings.from_env()
