"""Runtime configuration: where data lives and which QBO to talk to.

Everything comes from environment variables (``QBO_*``) with sane defaults, so that the CLI, the
Dagster code location and the tests read the same settings. Secrets are wrapped in
:class:`Secret`, whose repr and str never show the value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class Secret:
    """A secret string that never shows itself in logs, reprs, exceptions or events."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    def __str__(self) -> str:
        return "********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")


class Environment(StrEnum):
    """Which QBO the pipeline talks to."""

    EMBEDDED = "embedded"
    """The embedded QBO-compatible sandbox on loopback (the default with no credentials)."""
    SANDBOX = "sandbox"
    """Intuit's developer sandbox companies."""
    PRODUCTION = "production"
    """Real companies."""


@dataclass(frozen=True)
class Endpoints:
    """The URLs of one QBO environment."""

    api_base: str
    authorize: str
    token: str
    revoke: str

    @classmethod
    def for_environment(cls, environment: Environment, base_url: str | None = None) -> Endpoints:
        """The endpoints of an environment; the embedded sandbox serves all of them itself.

        Args:
            environment: Which QBO.
            base_url: The embedded sandbox's base URL (``http://127.0.0.1:PORT``), or an
                override of the API host for the other environments.

        Raises:
            ValueError: If the embedded environment is asked for without a base URL.
        """
        if environment is Environment.EMBEDDED:
            if not base_url:
                raise ValueError("the embedded sandbox needs its base URL (http://127.0.0.1:PORT)")
            base = base_url.rstrip("/")
            return cls(
                api_base=base,
                authorize=f"{base}/connect/oauth2",
                token=f"{base}/oauth2/v1/tokens/bearer",
                revoke=f"{base}/v2/oauth2/tokens/revoke",
            )
        default_api = (
            "https://sandbox-quickbooks.api.intuit.com"
            if environment is Environment.SANDBOX
            else "https://quickbooks.api.intuit.com"
        )
        return cls(
            api_base=(base_url or default_api).rstrip("/"),
            authorize="https://appcenter.intuit.com/connect/oauth2",
            token="https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
            revoke="https://developer.api.intuit.com/v2/oauth2/tokens/revoke",
        )


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Where data lives and which QBO to use."""

    data_dir: Path
    lake_url: str
    warehouse_path: Path
    exports_dir: Path
    token_store_path: Path
    sandbox_state_path: Path
    environment: Environment
    client_id: str | None = None
    client_secret: Secret | None = field(default=None, repr=False)
    redirect_uri: str = "http://127.0.0.1:8725/callback"
    api_base_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``QBO_*`` environment variables.

        ``QBO_ENVIRONMENT`` defaults to ``embedded`` when no ``QBO_CLIENT_ID`` is set and to
        ``production`` when one is.

        Raises:
            ConfigError: If a variable holds a value that cannot be used.
        """
        env = os.environ if env is None else env
        data_dir = Path(env.get("QBO_DATA_DIR", "data")).expanduser()
        client_id = env.get("QBO_CLIENT_ID") or None
        raw_secret = env.get("QBO_CLIENT_SECRET") or None
        default_env = Environment.PRODUCTION if client_id else Environment.EMBEDDED
        raw_env = env.get("QBO_ENVIRONMENT", default_env.value).strip().lower()
        try:
            environment = Environment(raw_env)
        except ValueError:
            choices = ", ".join(e.value for e in Environment)
            raise ConfigError(f"QBO_ENVIRONMENT={raw_env!r} is not one of: {choices}") from None
        if environment is not Environment.EMBEDDED and not (client_id and raw_secret):
            raise ConfigError(
                f"QBO_ENVIRONMENT={environment.value} needs QBO_CLIENT_ID and QBO_CLIENT_SECRET "
                "(the keys of your Intuit developer app)"
            )
        return cls(
            data_dir=data_dir,
            lake_url=env.get("QBO_LAKE_URL", str(data_dir / "lake")),
            warehouse_path=Path(env.get("QBO_WAREHOUSE", str(data_dir / "warehouse.duckdb"))),
            exports_dir=Path(env.get("QBO_EXPORTS_DIR", str(data_dir / "exports"))),
            token_store_path=Path(
                env.get("QBO_TOKEN_STORE", str(data_dir / "secrets" / "tokens.enc"))
            ),
            sandbox_state_path=Path(
                env.get("QBO_SANDBOX_STATE", str(data_dir / "sandbox" / "sandbox.sqlite3"))
            ),
            environment=environment,
            client_id=client_id,
            client_secret=Secret(raw_secret) if raw_secret else None,
            redirect_uri=env.get("QBO_REDIRECT_URI", "http://127.0.0.1:8725/callback"),
            api_base_url=env.get("QBO_API_BASE_URL") or None,
        )
