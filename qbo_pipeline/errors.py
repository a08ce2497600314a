"""The project's one exception base, and the exit codes of ``qbo-backup``.

Every error a user can act on derives from :class:`QboPipelineError`; its message names what is
wrong (the file, the company, the snapshot) and what to do, and never holds a secret. Its
``exit_code`` is what the command line exits with when it reaches the CLI's error boundary
(:mod:`qbo_pipeline.cli.boundary`), which prints the message on one line:

- :data:`EXIT_OK` (0): done.
- :data:`EXIT_FAILURE` (1): the work itself failed: QBO refused or failed, the lake or the token
  store is damaged, a verification found differences, a restore is incomplete.
- :data:`EXIT_USAGE` (2): the command line or the configuration is wrong: a bad argument, a
  company, snapshot or plan that is not there or cannot be named so, a company not connected,
  a missing or wrong setting or passphrase, a refused query, a plan not approved.
- :data:`EXIT_CANCELLED` (130): interrupted (Ctrl-C).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130


class QboPipelineError(Exception):
    """Base of every error qbo_pipeline raises for a user to act on.

    Attributes:
        exit_code: What ``qbo-backup`` exits with for it (a class default, or per instance).
    """

    exit_code: int = EXIT_FAILURE

    def __init__(self, *args: object, exit_code: int | None = None) -> None:
        super().__init__(*args)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(QboPipelineError):
    """The command line or the configuration asks for something wrong: exit code 2."""

    exit_code = EXIT_USAGE


class NotConnected(UsageError):
    """A company asked for is not connected (nor in the lake, for commands that read it)."""


__all__ = [
    "EXIT_CANCELLED",
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "NotConnected",
    "QboPipelineError",
    "UsageError",
]
