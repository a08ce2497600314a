"""Runtime configuration: where data lives and which QBO to talk to.

Everything comes from environment variables (``QBO_*``) with sane defaults, so that the CLI, the
Dagster code location and the tests read the same settings, and this module is the only one that
reads them: :class:`Settings` (where data lives, which QBO) and, for the settings that do not
depend on which QBO is used, one small reader each (:func:`passphrase`, :func:`debug`,
:func:`sql_dir`, :func:`warehouse_memory_limit`, :func:`warehouse_compact_growth`,
:func:`freshness_hours`, :func:`cron`, :func:`lake_storage_options`), called where the setting
is used, so that a bad value stops only what uses it. Secrets are wrapped in :class:`Secret`,
whose repr and str never show the value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from qbo_pipeline.errors import UsageError


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
    """The embedded QBO-compatible sandbox on loopback (chosen explicitly, never a default)."""
    SANDBOX = "sandbox"
    """Intuit's developer sandbox companies."""
    PRODUCTION = "production"
    """Real companies."""


INTUIT_API_HOSTS: dict[Environment, str] = {
    Environment.SANDBOX: "https://sandbox-quickbooks.api.intuit.com",
    Environment.PRODUCTION: "https://quickbooks.api.intuit.com",
}
"""Intuit's API host of each of its environments."""

NO_ENVIRONMENT = (
    "no QBO environment is configured: set QBO_ENVIRONMENT=embedded to use the embedded "
    "sandbox (as `qbo-backup demo` does), or QBO_CLIENT_ID and QBO_CLIENT_SECRET (your Intuit "
    "app's keys) with QBO_ENVIRONMENT=production or sandbox to use QuickBooks Online"
)
"""Why a command with no configuration at all refuses, and what to set."""


@dataclass(frozen=True)
class Endpoints:
    """The URLs of one QBO environment."""

    api_base: str
    authorize: str
    token: str
    revoke: str

    @classmethod
    def for_environment(cls, environment: Environment, base_url: str | None = None) -> Endpoints:
        """The endpoints of an environment.

        Args:
            environment: Which QBO.
            base_url: The base of a QBO-compatible server (``http://127.0.0.1:PORT`` for a
                sandbox) that serves both the API and OAuth2 under QBO's paths. For ``sandbox``
                and ``production``, Intuit's own API host of the environment is no override:
                OAuth2 stays with Intuit.

        Raises:
            ValueError: If the embedded environment is asked for without a base URL.
        """
        intuit_api = INTUIT_API_HOSTS.get(environment)
        base = base_url.rstrip("/") if base_url else None
        if base is None or base == intuit_api:
            if intuit_api is None:
                raise ValueError("the embedded sandbox needs its base URL (http://127.0.0.1:PORT)")
            return cls(
                api_base=intuit_api,
                authorize="https://appcenter.intuit.com/connect/oauth2",
                token="https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
                revoke="https://developer.api.intuit.com/v2/oauth2/tokens/revoke",
            )
        return cls(
            api_base=base,
            authorize=f"{base}/connect/oauth2",
            token=f"{base}/oauth2/v1/tokens/bearer",
            revoke=f"{base}/v2/oauth2/tokens/revoke",
        )


class ConfigError(UsageError, ValueError):
    """A setting is missing or malformed; the message names the variable (exit code 2)."""


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
    base_url: str | None = None
    """``QBO_BASE_URL``: a running sandbox or QBO-compatible server (API and OAuth2)."""
    sandbox_client_id: str | None = None
    sandbox_client_secret: Secret | None = field(default=None, repr=False)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, environment: Environment | None = None
    ) -> Settings:
        """Read the settings from ``QBO_*`` environment variables.

        Which QBO is used is never a default: ``QBO_ENVIRONMENT`` names it, or, when it is
        unset, ``QBO_CLIENT_ID`` means ``production``. With neither, the settings refuse, so a
        scheduled run that lost its environment cannot back up the embedded sandbox's company
        into the real lake.

        Args:
            env: The variables (``os.environ`` by default).
            environment: Choose the environment instead of reading ``QBO_ENVIRONMENT``: for the
                commands that are the embedded sandbox by definition (``demo``, ``sandbox``).

        Raises:
            ConfigError: If no environment is configured, or a variable holds a value that
                cannot be used; the message names what to set.
        """
        env = os.environ if env is None else env
        data_dir = Path(env.get("QBO_DATA_DIR", "data")).expanduser()
        client_id = env.get("QBO_CLIENT_ID") or None
        raw_secret = env.get("QBO_CLIENT_SECRET") or None
        if environment is None:
            environment = _environment(env, client_id)
        if environment is not Environment.EMBEDDED and not (client_id and raw_secret):
            raise ConfigError(
                f"QBO_ENVIRONMENT={environment.value} needs QBO_CLIENT_ID and QBO_CLIENT_SECRET "
                "(the keys of your Intuit developer app)"
            )
        if env.get("QBO_API_BASE_URL"):
            raise ConfigError(
                "QBO_API_BASE_URL is no longer read: set QBO_BASE_URL, the one base URL of the "
                "API and of OAuth2 (a running sandbox or QBO-compatible server)"
            )
        sandbox_secret = env.get("QBO_SANDBOX_CLIENT_SECRET") or None
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
            base_url=_base_url(env.get("QBO_BASE_URL")),
            sandbox_client_id=env.get("QBO_SANDBOX_CLIENT_ID") or None,
            sandbox_client_secret=Secret(sandbox_secret) if sandbox_secret else None,
        )


def _environment(env: Mapping[str, str], client_id: str | None) -> Environment:
    raw = env.get("QBO_ENVIRONMENT", "").strip().lower()
    if not raw:
        if client_id:
            return Environment.PRODUCTION
        raise ConfigError(NO_ENVIRONMENT)
    try:
        return Environment(raw)
    except ValueError:
        choices = ", ".join(e.value for e in Environment)
        raise ConfigError(f"QBO_ENVIRONMENT={raw!r} is not one of: {choices}") from None


def _base_url(raw: str | None) -> str | None:
    if not raw or not raw.strip():
        return None
    base = raw.strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ConfigError(f"QBO_BASE_URL={raw!r} is not an http(s) URL (http://127.0.0.1:PORT)")
    return base


EMBEDDED_CLIENT_ID = "qbo-sandbox-client"
"""The OAuth client id the embedded sandbox accepts unless told otherwise
(``QBO_SANDBOX_CLIENT_ID``): documented, it protects nothing real."""
EMBEDDED_CLIENT_SECRET = "qbo-sandbox-secret"
"""The embedded sandbox's default OAuth client secret (``QBO_SANDBOX_CLIENT_SECRET``)."""

PASSPHRASE_VAR = "QBO_PIPELINE_PASSPHRASE"
"""The token store passphrase, for unattended runs."""
NEW_PASSPHRASE_VAR = "QBO_PIPELINE_NEW_PASSPHRASE"
"""The new passphrase ``qbo-backup auth passphrase`` re-encrypts the token store with."""
DEBUG_VAR = "QBO_DEBUG"
"""Set to 1 to print the traceback of an error (as ``--debug`` does)."""
SQL_DIR_VAR = "QBO_SQL_DIR"
"""Another models folder for the warehouse runner."""
WAREHOUSE_MEMORY_LIMIT_VAR = "QBO_WAREHOUSE_MEMORY_LIMIT"
"""What DuckDB may hold in memory while building the warehouse (``2GB``, ``512MB``...)."""
WAREHOUSE_COMPACT_GROWTH_VAR = "QBO_WAREHOUSE_COMPACT_GROWTH"
"""How far the warehouse file may grow over its last full build or compaction before a build
compacts it (a number above 1), or ``off``/``0``: never by itself."""
DEFAULT_COMPACT_GROWTH = 1.5
"""``QBO_WAREHOUSE_COMPACT_GROWTH`` when unset (see :mod:`qbo_pipeline.models.compaction`)."""
FRESHNESS_HOURS_VAR = "QBO_FRESHNESS_HOURS"
"""The age in hours beyond which a company's latest snapshot is stale (26 by default)."""
BACKUP_CRON_VAR = "QBO_BACKUP_CRON"
"""The nightly snapshot's cron expression (UTC)."""
FRESHNESS_CRON_VAR = "QBO_FRESHNESS_CRON"
"""The freshness check's cron expression (UTC)."""
LAKE_STORAGE_OPTIONS_VAR = "QBO_LAKE_STORAGE_OPTIONS"
"""fsspec options of a lake on object storage, as a JSON object (``{"endpoint_url": ...}``)."""
SECRET_VARS = (
    PASSPHRASE_VAR,
    NEW_PASSPHRASE_VAR,
    "QBO_CLIENT_SECRET",
    "QBO_SANDBOX_CLIENT_SECRET",
)
"""The variables that hold secrets (their values are masked wherever they might be shown)."""


def _value(name: str, env: Mapping[str, str] | None) -> str:
    return (os.environ if env is None else env).get(name, "").strip()


def passphrase(env: Mapping[str, str] | None = None, *, new: bool = False) -> Secret | None:
    """``QBO_PIPELINE_PASSPHRASE`` (or, ``new``, ``QBO_PIPELINE_NEW_PASSPHRASE``); None if unset."""
    raw = (os.environ if env is None else env).get(NEW_PASSPHRASE_VAR if new else PASSPHRASE_VAR)
    return Secret(raw) if raw else None


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """The values of the set :data:`SECRET_VARS`, to mask."""
    values = os.environ if env is None else env
    return [value for name in SECRET_VARS if (value := values.get(name))]


def subset(names: Iterable[str], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables among ``names`` that are set, for a :meth:`Settings.from_env` to read."""
    values = os.environ if env is None else env
    return {name: values[name] for name in names if name in values}


def is_set(name: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether the ``QBO_*`` variable ``name`` holds anything."""
    return bool((os.environ if env is None else env).get(name))


def debug(env: Mapping[str, str] | None = None) -> bool:
    """``QBO_DEBUG``: 1, true, yes or on print an error's traceback."""
    return _value(DEBUG_VAR, env).lower() in ("1", "true", "yes", "on")


def sql_dir(env: Mapping[str, str] | None = None) -> str | None:
    """``QBO_SQL_DIR`` as set (None when unset); the runner checks that it is a folder."""
    return _value(SQL_DIR_VAR, env) or None


def warehouse_memory_limit(env: Mapping[str, str] | None = None) -> str | None:
    """``QBO_WAREHOUSE_MEMORY_LIMIT`` as set (None when unset); the build checks the size."""
    return _value(WAREHOUSE_MEMORY_LIMIT_VAR, env) or None


def warehouse_compact_growth(env: Mapping[str, str] | None = None) -> float | None:
    """``QBO_WAREHOUSE_COMPACT_GROWTH``: the growth past which a build compacts the warehouse.

    :data:`DEFAULT_COMPACT_GROWTH` when unset or empty; None for ``off`` or ``0`` (a build then
    compacts only when asked to, ``warehouse build --compact``).

    Raises:
        ConfigError: If the variable is neither a number above 1 nor ``off``/``0``.
    """
    raw = _value(WAREHOUSE_COMPACT_GROWTH_VAR, env)
    if not raw:
        return DEFAULT_COMPACT_GROWTH
    if raw.lower() == "off":
        return None
    try:
        growth = float(raw)
    except ValueError:
        growth = -1.0
    if growth == 0:
        return None
    if not 1 < growth < float("inf"):
        raise ConfigError(
            f"{WAREHOUSE_COMPACT_GROWTH_VAR}={raw!r} must be a number above 1 (the growth of the "
            f"warehouse file past which a build compacts it, {DEFAULT_COMPACT_GROWTH:g} by "
            "default) or off (compact only on `warehouse build --compact`)"
        )
    return growth


def freshness_hours(env: Mapping[str, str] | None = None) -> float:
    """``QBO_FRESHNESS_HOURS``: the age beyond which a latest snapshot is stale (26 by default).

    Raises:
        ConfigError: If the variable is not a positive number.
    """
    raw = (os.environ if env is None else env).get(FRESHNESS_HOURS_VAR, "26")
    try:
        hours = float(raw)
    except ValueError:
        hours = -1.0
    if not hours > 0 or hours == float("inf"):
        raise ConfigError(f"{FRESHNESS_HOURS_VAR}={raw!r} must be a positive number of hours")
    return hours


def lake_storage_options(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``QBO_LAKE_STORAGE_OPTIONS``: the fsspec options of a remote lake (empty when unset).

    A JSON object passed to the lake URL's filesystem, for an S3-compatible store for example
    ``{"endpoint_url": "http://127.0.0.1:9000", "client_kwargs": {"region_name": "eu-west-1"}}``.
    Credentials are best left to the store's own chain (``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``,
    an instance role); the value is never shown in an error, since it may hold them.

    Raises:
        ConfigError: If the variable is not a JSON object.
    """
    raw = _value(LAKE_STORAGE_OPTIONS_VAR, env)
    if not raw:
        return {}
    try:
        options = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(
            f"{LAKE_STORAGE_OPTIONS_VAR} is not valid JSON ({exc.__class__.__name__} at "
            f"character {getattr(exc, 'pos', '?')}); give a JSON object of fsspec options"
        ) from None
    if not isinstance(options, dict):
        raise ConfigError(
            f"{LAKE_STORAGE_OPTIONS_VAR} must be a JSON object of fsspec options such as "
            '{"endpoint_url": "https://s3.example.com"}, not a JSON ' + type(options).__name__
        )
    return options


def cron(name: str, default: str, env: Mapping[str, str] | None = None) -> str:
    """A schedule's cron expression from ``name`` (``QBO_BACKUP_CRON``...), else ``default``."""
    return _value(name, env) or default
