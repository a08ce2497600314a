"""How the CLI reaches QBO: the environment the settings name, never one by default.

Product code never imports the sandbox; this module (CLI only) starts it when the environment is
``embedded`` and no company is connected at a running server, connects to it through the same
OAuth2 flow as real QBO (it consents by itself), and hands out clients. Companies connected at a
running sandbox or QBO-compatible server (``QBO_BASE_URL``, ``auth login --base-url``) are read
there, and no sandbox is started. Otherwise it only opens clients from the token store.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from qbo_pipeline.config import Environment, Settings
from qbo_pipeline.errors import NotConnected
from qbo_pipeline.qbo.connect import (
    connected_realms,
    login_embedded,
    open_client,
    served_companies,
)
from qbo_pipeline.qbo.http import QBOClient

log = logging.getLogger(__name__)


@dataclass
class Connection:
    """An open way to QBO for one CLI command."""

    settings: Settings
    realm_ids: list[str]
    api_base: str | None = None
    sandbox: Any = None
    _clients: dict[str, QBOClient] = field(default_factory=dict)

    def client(self, realm_id: str) -> QBOClient:
        """A client for one connected company (one per realm for the whole command)."""
        if realm_id not in self._clients:
            self._clients[realm_id] = open_client(self.settings, realm_id, api_base=self.api_base)
        return self._clients[realm_id]

    def realms(self, wanted: str | None) -> list[str]:
        """The realms a command acts on: the one asked for, or every connected one.

        Raises:
            NotConnected: If the realm asked for is not connected, naming the connected ones
                (a usage error: exit code 2).
        """
        if wanted is None:
            return list(self.realm_ids)
        if wanted not in self.realm_ids:
            known = ", ".join(self.realm_ids) or "none"
            raise NotConnected(
                f"company {wanted} is not connected (connected: {known}); "
                "run `qbo-backup auth login` to connect it"
            )
        return [wanted]


@contextmanager
def connect(settings: Settings, *, announce: bool = True) -> Iterator[Connection]:
    """Open the way to QBO for the duration of a command.

    For the embedded environment this reads the companies connected at a running server there
    (:func:`served_companies`); only when there are none does it start the sandbox on a free
    loopback port, on its state file under the data folder (so the company persists between
    commands), and log in to it.
    """
    if settings.environment is not Environment.EMBEDDED:
        yield Connection(settings, realm_ids=connected_realms(settings))
        return
    served = served_companies(settings)
    if served is not None:
        if announce:
            log.info("using the QBO sandbox running at %s", ", ".join(served.servers))
        yield Connection(settings, realm_ids=served.realm_ids, api_base=served.base_url)
        return
    from qbo_pipeline.sandbox.server import SandboxServer

    settings.sandbox_state_path.parent.mkdir(parents=True, exist_ok=True)
    server = SandboxServer(settings.sandbox_state_path)
    server.start()
    try:
        if announce:
            log.info("using the embedded QBO sandbox at %s", server.base_url)
        realm_ids = login_embedded(settings, server.base_url, managed=True)
        yield Connection(settings, realm_ids=realm_ids, api_base=server.base_url, sandbox=server)
    finally:
        server.stop()
