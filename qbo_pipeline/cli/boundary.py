"""The CLI's one error boundary: an error becomes one line on stderr and an exit code.

Every ``qbo-backup`` command runs inside :class:`ErrorBoundary` (the app's click group). An
error that reaches it is printed as ``error: <message>`` on one line, with secrets masked, and the
process exits with the error's code (:mod:`qbo_pipeline.errors`): 2 for usage and configuration
errors (a bad argument too), 1 for failures, 130 when interrupted. The traceback is printed
too, before the line, only with ``--debug`` (or ``QBO_DEBUG=1``). Commands refuse with
:func:`fail`.
"""

from __future__ import annotations

import sys
import traceback
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

if TYPE_CHECKING:  # the click typer carries; its Context is what TyperGroup.invoke takes
    from typer._click.core import Context as ClickContext
    from typer._click.exceptions import UsageError

from qbo_pipeline import config
from qbo_pipeline.errors import EXIT_CANCELLED, EXIT_FAILURE, QboPipelineError

_DEBUG_KEY = "qbo_pipeline.debug"
_USAGE_ERROR: type[UsageError] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"
)
"""The command line's usage error (click's, or the copy typer carries)."""


class CommandError(QboPipelineError):
    """A command's own refusal: its message and exit code, printed by the boundary."""


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """End the command with ``error: <message>`` and exit code ``code``."""
    raise CommandError(message, exit_code=code)


def failed(what: str, exc: BaseException) -> NoReturn:
    """End the command with ``<what>: <the error's message>`` and the error's exit code."""
    raise CommandError(f"{what}: {exc}", exit_code=exit_code_of(exc)) from exc


def set_debug(ctx: typer.Context, debug: bool) -> None:
    """Remember the global ``--debug`` flag for the boundary (called by the app's callback)."""
    ctx.meta[_DEBUG_KEY] = debug


def _debug(ctx: ClickContext) -> bool:
    if ctx.meta.get(_DEBUG_KEY):
        return True
    return config.debug()


def exit_code_of(exc: BaseException) -> int:
    """The exit code for an error: its own (:mod:`qbo_pipeline.errors`), else 1."""
    if isinstance(exc, QboPipelineError):
        return int(exc.exit_code)
    return EXIT_FAILURE


def message_of(exc: BaseException) -> str:
    """One line naming the problem, secrets masked.

    Errors of this project and of the operating system (a file that cannot be read or written)
    carry their own message; anything else is a bug, said to be one.
    """
    from qbo_pipeline.config import ConfigError
    from qbo_pipeline.qbo.redact import redact, register_secret

    text = str(exc).strip()
    if isinstance(exc, ConfigError):
        text = f"configuration: {text}"
    elif not isinstance(exc, QboPipelineError | OSError):
        text = (
            f"unexpected {type(exc).__name__}: {text or 'no message'} "
            "(a bug: rerun with --debug for the traceback, and please report it)"
        )
    for value in config.secret_values():
        register_secret(value)
    return " ".join(redact(text or type(exc).__name__).split())


def report(exc: BaseException, *, debug: bool = False) -> int:
    """Print an error (its traceback first when debugging); returns its exit code."""
    if debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    sys.stderr.write(f"error: {message_of(exc)}\n")
    sys.stderr.flush()
    return exit_code_of(exc)


def _usage_error(exc: UsageError) -> NoReturn:
    """End with a usage error on one line and its exit code (2), pointing at the right help."""
    if type(exc).__name__ == "NoArgsIsHelpError":
        raise exc  # a group called bare shows its help
    where = getattr(exc, "ctx", None)
    hint = f" (see `{where.command_path} --help`)" if where is not None else ""
    sys.stderr.write(f"error: {' '.join(exc.format_message().split())}{hint}\n")
    raise typer.Exit(exc.exit_code) from None


class ErrorBoundary(TyperGroup):
    """The app's click group: runs the command, and turns what it raises into one line."""

    def parse_args(self, ctx: ClickContext, args: list[str]) -> list[str]:
        """Parse the top-level options (``--debug``); a bad one is one line, like a command's."""
        try:
            return super().parse_args(ctx, args)
        except _USAGE_ERROR as exc:
            _usage_error(exc)

    def invoke(self, ctx: ClickContext) -> Any:
        """Run the command; an error ends it with its message and exit code."""
        try:
            return super().invoke(ctx)
        except _USAGE_ERROR as exc:
            _usage_error(exc)
        except (typer.Exit, typer.Abort, TyperException):
            raise  # the command's own exit, or a usage error the command line reports itself
        except KeyboardInterrupt:
            sys.stderr.write("cancelled\n")
            raise typer.Exit(EXIT_CANCELLED) from None
        except Exception as exc:
            raise typer.Exit(report(exc, debug=_debug(ctx))) from None


__all__ = [
    "CommandError",
    "ErrorBoundary",
    "exit_code_of",
    "fail",
    "failed",
    "message_of",
    "report",
]
