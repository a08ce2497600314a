"""Shared resources: how runs reach QBO, and where the lake, warehouse and exports live.

Both resources read the same ``QBO_*`` settings as the CLI (:meth:`Settings.from_env`); their
fields override those variables. Secrets are configured with ``dg.EnvVar`` so their values never
appear in the UI or in run configuration: ``QBO_CLIENT_ID``, ``QBO_CLIENT_SECRET`` and
``QBO_PIPELINE_PASSPHRASE`` (the token store's passphrase). Which QBO is used is never a default:
``QBO_ENVIRONMENT`` names it (``QBO_CLIENT_ID`` alone means production), and with neither the
resources refuse, saying what to set. The environment is shown in every asset's
``qbo_environment`` metadata and in the run log.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

from qbo_pipeline import config
from qbo_pipeline.config import Environment, Secret, Settings

if TYPE_CHECKING:
    from qbo_pipeline.lake.lake import Lake, RealmLake
    from qbo_pipeline.qbo.http import QBOClient

log = logging.getLogger(__name__)

ENVIRONMENT_LABELS: dict[Environment, str] = {
    Environment.EMBEDDED: "embedded sandbox",
    Environment.SANDBOX: "Intuit developer sandbox",
    Environment.PRODUCTION: "QuickBooks Online (production)",
}
"""How each environment is named in the UI (``qbo_environment`` metadata)."""

_PATH_VARS = ("QBO_DATA_DIR", "QBO_LAKE_URL", "QBO_WAREHOUSE", "QBO_EXPORTS_DIR")
_CHOICE_VARS = ("QBO_ENVIRONMENT", "QBO_CLIENT_ID", "QBO_CLIENT_SECRET", "QBO_API_BASE_URL")
"""The variables that say which QBO is used (the lake's settings refuse without them too)."""


def environment_label(settings: Settings) -> str:
    """The environment's name as shown in the UI (``"embedded sandbox"`` and so on)."""
    return ENVIRONMENT_LABELS[settings.environment]


def _overlay(base: Mapping[str, str], overrides: Mapping[str, str | None]) -> dict[str, str]:
    env = dict(base)
    env.update({k: v for k, v in overrides.items() if v})
    return env


@dataclass
class QBOConnection:
    """An open way to QBO for one run or one sensor tick.

    Attributes:
        settings: The settings the connection was opened with.
        realm_ids: The connected companies.
        label: The environment as shown in the UI.
        api_base: The base URL every company is read at (the sandbox this connection started,
            or ``QBO_BASE_URL``); None: each at the base it was connected at.
    """

    settings: Settings
    realm_ids: list[str]
    label: str
    api_base: str | None = None
    passphrase: Secret | None = field(default=None, repr=False)
    _clients: dict[str, QBOClient] = field(default_factory=dict, repr=False)

    def client(self, realm_id: str) -> QBOClient:
        """A client for one connected company (one per realm for the whole connection).

        Raises:
            dagster.Failure: If the company is not connected, naming the connected ones.
        """
        if realm_id not in self._clients:
            if realm_id not in self.realm_ids:
                known = ", ".join(self.realm_ids) or "none"
                raise dg.Failure(
                    description=(
                        f"company {realm_id} is not connected to this deployment "
                        f"(connected: {known}); run `qbo-backup auth login` to connect it"
                    )
                )
            from qbo_pipeline.qbo.connect import open_client

            self._clients[realm_id] = open_client(
                self.settings, realm_id, passphrase=self.passphrase, api_base=self.api_base
            )
        return self._clients[realm_id]


class QBOResource(dg.ConfigurableResource):
    """QuickBooks Online, in the environment QBO_ENVIRONMENT names: never by default.

    With ``QBO_ENVIRONMENT=embedded`` a run reads the companies connected at a running sandbox
    (``QBO_BASE_URL``, or ``qbo-backup auth login --base-url``) there; with none connected so,
    it starts the embedded sandbox, QBO-compatible, on loopback (its company persists in
    ``data/sandbox/``) and connects to it; nothing leaves the machine. With ``sandbox`` or
    ``production`` (``QBO_CLIENT_ID`` and ``QBO_CLIENT_SECRET`` set) it opens clients from the
    encrypted token store that ``qbo-backup auth login`` fills, unlocked by
    ``QBO_PIPELINE_PASSPHRASE``. With no configuration at all it refuses, saying what to set.
    """

    environment: str | None = Field(
        default=None,
        description=(
            "embedded, sandbox or production (QBO_ENVIRONMENT); production when only a "
            "client id is set; refused when neither is"
        ),
    )
    client_id: str | None = Field(default=None, description="The Intuit app's client id")
    client_secret: str | None = Field(
        default=None, repr=False, description="The Intuit app's client secret (an EnvVar)"
    )
    passphrase: str | None = Field(
        default=None, repr=False, description="Unlocks the token store (an EnvVar)"
    )
    data_dir: str | None = Field(
        default=None, description="Folder of the token store and sandbox state (QBO_DATA_DIR)"
    )
    base_url: str | None = Field(
        default=None,
        description=(
            "QBO_BASE_URL: a running sandbox or QBO-compatible server serving the API and "
            "OAuth2 (nothing is started then)"
        ),
    )

    def settings(self) -> Settings:
        """The settings this resource stands for (environment variables plus its fields)."""
        base = dict(os.environ)
        if self.data_dir:  # an explicit data_dir owns the token store and the sandbox state
            for name in ("QBO_TOKEN_STORE", "QBO_SANDBOX_STATE", *_PATH_VARS):
                base.pop(name, None)
        env = _overlay(
            base,
            {
                "QBO_ENVIRONMENT": self.environment,
                "QBO_CLIENT_ID": self.client_id,
                "QBO_CLIENT_SECRET": self.client_secret,
                "QBO_DATA_DIR": self.data_dir,
                "QBO_BASE_URL": self.base_url,
            },
        )
        return Settings.from_env(env)

    def label(self) -> str:
        """The environment as shown in the UI (``"embedded sandbox"`` and so on)."""
        return environment_label(self.settings())

    def _passphrase(self) -> Secret | None:
        return Secret(self.passphrase) if self.passphrase else config.passphrase()

    def connected_realms(self) -> list[str]:
        """The companies connected in the token store, without opening any connection."""
        from qbo_pipeline.qbo.connect import connected_realms

        return list(connected_realms(self.settings(), passphrase=self._passphrase()))

    @contextmanager
    def connect(self, logger: Any = None) -> Iterator[QBOConnection]:
        """Open the way to QBO.

        For the embedded environment: the companies connected at a running sandbox, read
        there; with none, start the sandbox on its state file and log in to it.

        Args:
            logger: Where to say which QBO is used (a run's ``context.log``); the module logger
                by default.
        """
        logger = logger or log
        settings = self.settings()
        label = environment_label(settings)
        passphrase = self._passphrase()
        if settings.environment is not Environment.EMBEDDED:
            logger.info(f"using {label}")
            yield QBOConnection(settings, self.connected_realms(), label, passphrase=passphrase)
            return
        from qbo_pipeline.qbo.connect import login_embedded, served_companies

        served = served_companies(settings, passphrase=passphrase)
        if served is not None:
            logger.info(f"using the {label} running at {', '.join(served.servers)}")
            yield QBOConnection(
                settings, served.realm_ids, label, api_base=served.base_url, passphrase=passphrase
            )
            return
        from qbo_pipeline.sandbox.server import SandboxServer

        settings.sandbox_state_path.parent.mkdir(parents=True, exist_ok=True)
        server = SandboxServer(settings.sandbox_state_path)
        server.start()
        try:
            logger.info(
                f"QBO_ENVIRONMENT=embedded: using the {label} at {server.base_url} "
                f"(state in {settings.sandbox_state_path})"
            )
            realm_ids = login_embedded(
                settings, server.base_url, passphrase=passphrase, managed=True
            )
            yield QBOConnection(
                settings, realm_ids, label, api_base=server.base_url, passphrase=passphrase
            )
        finally:
            server.stop()


class LakeResource(dg.ConfigurableResource):
    """Where the snapshots (lake), the DuckDB warehouse and the exports live.

    Defaults come from ``QBO_DATA_DIR`` (``data/``), ``QBO_LAKE_URL``, ``QBO_WAREHOUSE`` and
    ``QBO_EXPORTS_DIR``; the lake may be any fsspec URL (``s3://bucket/prefix``).
    """

    data_dir: str | None = Field(default=None, description="Base folder (QBO_DATA_DIR)")
    lake_url: str | None = Field(default=None, description="The lake's folder or fsspec URL")
    warehouse_path: str | None = Field(default=None, description="The DuckDB warehouse file")
    exports_dir: str | None = Field(default=None, description="Where exports are written")

    def settings(self) -> Settings:
        """Settings holding these paths, in the environment ``QBO_ENVIRONMENT`` names.

        Raises:
            ConfigError: If no environment is configured (the lake is one environment's).
        """
        # An explicit data_dir owns every path not given explicitly.
        names = _CHOICE_VARS if self.data_dir else (*_CHOICE_VARS, *_PATH_VARS)
        base = config.subset(names)
        env = _overlay(
            base,
            {
                "QBO_DATA_DIR": self.data_dir,
                "QBO_LAKE_URL": self.lake_url,
                "QBO_WAREHOUSE": self.warehouse_path,
                "QBO_EXPORTS_DIR": self.exports_dir,
            },
        )
        return Settings.from_env(env)

    def lake(self) -> Lake:
        """The lake."""
        from qbo_pipeline.lake.lake import Lake

        return Lake(self.settings().lake_url)

    def realm(self, realm_id: str) -> RealmLake:
        """One company's part of the lake."""
        return self.lake().realm(realm_id)

    @property
    def warehouse(self) -> Path:
        """The DuckDB warehouse file."""
        return self.settings().warehouse_path

    @property
    def exports(self) -> Path:
        """The exports folder."""
        return self.settings().exports_dir


def _env_var_or_none(name: str) -> dg.EnvVar | None:
    """``dg.EnvVar(name)`` when the variable is set (unset ones stay unset: nothing defaults)."""
    return dg.EnvVar(name) if config.is_set(name) else None


def default_qbo_resource() -> QBOResource:
    """The QBO resource of the deployment: secrets through ``dg.EnvVar``, never by value."""
    return QBOResource(
        environment=_env_var_or_none("QBO_ENVIRONMENT"),
        client_id=_env_var_or_none("QBO_CLIENT_ID"),
        client_secret=_env_var_or_none("QBO_CLIENT_SECRET"),
        passphrase=_env_var_or_none("QBO_PIPELINE_PASSPHRASE"),
    )


@dg.definitions
def resources() -> dg.Definitions:
    """Bind the shared resources ``qbo`` and ``lake``."""
    return dg.Definitions(resources={"qbo": default_qbo_resource(), "lake": LakeResource()})
