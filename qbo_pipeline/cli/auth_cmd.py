"""``qbo-backup auth login|list|logout|passphrase``: connect companies and manage their tokens."""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import typer
from rich.console import Console

from qbo_pipeline import config
from qbo_pipeline.cli import listing
from qbo_pipeline.cli.boundary import fail
from qbo_pipeline.cli.listing import Column, ListFormat, emit, format_option
from qbo_pipeline.config import ConfigError, Environment, Secret, Settings
from qbo_pipeline.errors import QboPipelineError, UsageError

console = Console(stderr=True, soft_wrap=True)  # the terminal wraps: commands stay pasteable
out = Console(soft_wrap=True)


@contextmanager
def _friendly_errors() -> Iterator[None]:
    """Leave errors to the CLI's boundary; a plain ``ValueError`` becomes a failure.

    The boundary prints one line and exits 2 for a configuration error (a setting, the
    passphrase, a company not connected), 1 for a failure (QBO, a damaged token store).
    """
    try:
        yield
    except (QboPipelineError, ConfigError):
        raise
    except ValueError as exc:
        fail(str(exc))


def _settings(environment: Environment | None) -> Settings:
    """The settings, for ``environment`` when given (a wrong setting is a usage error)."""
    return Settings.from_env(environment=environment)


def _prompt(label: str) -> str:
    return getpass.getpass(label)


def _passphrase(settings: Settings) -> Secret:
    from qbo_pipeline.qbo.tokens import resolve_passphrase

    interactive: Callable[[str], str] | None = _prompt if os.isatty(0) else None
    return resolve_passphrase(settings, prompt=interactive)


def _when(moment: datetime) -> str:
    left = moment - datetime.now(UTC)
    days = left.days
    stamp = moment.astimezone().strftime("%Y-%m-%d %H:%M")
    if left.total_seconds() <= 0:
        return f"[red]{stamp} (expired)[/red]"
    return f"{stamp} ({days} days left)" if days >= 1 else f"[yellow]{stamp} (today)[/yellow]"


def register(app: typer.Typer) -> None:
    """Add the ``auth`` command group."""
    auth = typer.Typer(
        help="Connect QuickBooks companies and manage their tokens.", no_args_is_help=True
    )
    app.add_typer(auth, name="auth")

    @auth.command("login")
    def login(
        environment: Environment | None = typer.Option(
            None, "--environment", "-e", help="embedded, sandbox or production (default: config)."
        ),
        no_browser: bool = typer.Option(
            False, "--no-browser", help="Print the URL and paste the redirect URL back."
        ),
        redirect_url: str | None = typer.Option(
            None, "--redirect-url", help="A redirect URL from an earlier consent (no prompt)."
        ),
        base_url: str | None = typer.Option(
            None,
            "--base-url",
            help=(
                "A running sandbox or QBO-compatible server (http://127.0.0.1:PORT) serving the "
                "API and OAuth2; later commands read the company there (default: QBO_BASE_URL)."
            ),
        ),
        realm: str | None = typer.Option(
            None, "--realm", help="Embedded only: connect just this company."
        ),
    ) -> None:
        """Connect a company (run again to connect more)."""
        from qbo_pipeline.qbo import connect

        settings = _settings(environment)
        base_url = base_url.rstrip("/") if base_url else settings.base_url
        with _friendly_errors():
            passphrase = _passphrase(settings)
            if settings.environment is Environment.EMBEDDED:
                if not base_url:
                    raise ConfigError(
                        "the embedded environment needs the sandbox's address: start "
                        "`qbo-backup sandbox serve` and pass --base-url http://127.0.0.1:PORT "
                        "(or set QBO_BASE_URL)"
                    )
                realms = connect.login_embedded(
                    settings, base_url, passphrase=passphrase, realm_hint=realm
                )
                for realm_id in realms:
                    out.print(f"connected realm {realm_id} (embedded sandbox at {base_url})")
                return
            done = connect.login(
                settings,
                open_browser=not no_browser,
                redirect_url=redirect_url,
                base_url=base_url,
                passphrase=passphrase,
                show=lambda line: console.print(line, highlight=False, soft_wrap=True),
                ask=input,
            )
            out.print(
                f"connected {done.company_name or 'the company'} "
                f"(realm {done.realm_id}, {done.environment.value})",
                highlight=False,
            )

    @auth.command("list")
    def list_(fmt: ListFormat = format_option()) -> None:
        """Show the connected companies and when their refresh tokens expire (never a token)."""
        from qbo_pipeline.qbo.connect import open_store

        settings = _settings(None)
        with _friendly_errors():
            records = open_store(settings, _passphrase(settings)).list()
        if not records:
            console.print("no companies connected; run `qbo-backup auth login`")
            if fmt is not ListFormat.TABLE:
                emit(out, fmt, [])
            return
        rows = [
            {
                "company": rec.company_name,
                "realm_id": rec.realm_id,
                "environment": rec.environment,
                "refresh_expires_at": rec.refresh_expires_at.isoformat(),
                "expires": _when(rec.refresh_expires_at),
            }
            for rec in records
        ]
        table = listing.table(
            f"Connected companies ({settings.token_store_path})",
            (
                Column("company", "Company"),
                Column("realm_id", "Realm id", identifier=True),
                Column("environment", "Environment"),
                Column("expires", "Refresh token expires"),
            ),
            [r | {"company": r["company"] or "?"} for r in rows],
        )
        emit(
            out, fmt, [{k: v for k, v in r.items() if k != "expires"} for r in rows], tables=[table]
        )

    @auth.command("logout")
    def logout(realm: str = typer.Argument(..., help="The realm id to disconnect.")) -> None:
        """Revoke a company's grant and forget its tokens."""
        from qbo_pipeline.qbo import connect

        settings = _settings(None)
        with _friendly_errors():
            revoked = connect.logout(settings, realm, passphrase=_passphrase(settings))
        note = "revoked and forgotten" if revoked else "forgotten (the revoke was not confirmed)"
        out.print(f"realm {realm}: {note}")

    @auth.command("passphrase")
    def passphrase() -> None:
        """Re-encrypt the token store with a new passphrase.

        The current passphrase comes from QBO_PIPELINE_PASSPHRASE (or a prompt); the new one
        from QBO_PIPELINE_NEW_PASSPHRASE (or a prompt, asked twice).
        """
        from qbo_pipeline.qbo.connect import open_store

        settings = _settings(None)
        with _friendly_errors():
            store = open_store(settings, _passphrase(settings))
            store.load()  # check the current passphrase before asking for a new one
            new = config.passphrase(new=True)
            if not new:
                if not os.isatty(0):
                    raise ConfigError(f"set {config.NEW_PASSPHRASE_VAR} to the new passphrase")
                entered = _prompt("New passphrase: ")
                if entered != _prompt("New passphrase again: "):
                    raise UsageError("the two new passphrases differ; nothing was changed")
                new = Secret(entered)
            count = store.change_passphrase(new)
        out.print(
            f"re-encrypted {count} connected companies; set QBO_PIPELINE_PASSPHRASE to the new "
            "passphrase for unattended runs"
        )
