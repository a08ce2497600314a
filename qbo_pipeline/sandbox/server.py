"""SandboxServer: the sandbox on a free loopback port, in a background thread.

The first start with a new state file generates the companies
(:func:`~qbo_pipeline.sandbox.generator.generate_company`); later starts reuse them. Use it as a
context manager::

    with SandboxServer("data/sandbox/sandbox.sqlite3") as sandbox:
        print(sandbox.base_url, sandbox.realm_ids, sandbox.client_id)

The virtual clock (one per realm, persisted in the state file):

- By default it follows real time: a generated company's history ends at the host's "now" and
  the clock reads the host's clock (plus a per-realm offset that simulations and
  ``POST /_sandbox/clock`` move), so time flows while the sandbox serves, and
  every stamp QBO would write (``MetaData`` times, CDC deletion times, the envelope ``time``,
  report headers, default ``TxnDate`` in the company's Pacific time zone) comes from it.
- It is monotonic: it never reads earlier than a time it already gave, nor than the latest
  stamp on any record or tombstone of the realm, also after a restart or when the host's clock
  steps back. Only an explicit ``POST /_sandbox/clock {"set": ...}`` (or a negative
  ``advance_*``) moves it back; a restart after that resumes from the latest stamp again.
- ``POST /_sandbox/clock {"advance_days": n}`` (or ``advance_seconds``) moves it forward.
- A simulation is deterministic: :func:`~qbo_pipeline.sandbox.simulate.simulate_days` sets and
  freezes the clock for each change (day ``d`` at ``start + d days``, one change every 30
  simulated seconds), so the same seed, state and start give byte-identical payloads; the clock
  then reads the last change's time and flows on.
- ``fixed_clock`` (``qbo-backup sandbox serve --clock TIME``, ``POST /_sandbox/clock {"mode":
  "fixed"}``) pins it instead: it reads exactly the time it was last set to, and a company
  generated under it ends its history there, the same company byte for byte every day. Tests
  that rely on dates pin it. ``--clock real`` (``{"mode": "real"}``) makes it follow the host's
  clock again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from qbo_pipeline.sandbox import generator, simulate
from qbo_pipeline.sandbox.app import SandboxApp, run_incident
from qbo_pipeline.sandbox.oauth import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, OAuthService
from qbo_pipeline.sandbox.realism import Realism, RealismConfig
from qbo_pipeline.sandbox.store import SandboxStore

FIRST_REALM_ID = 9341450000000001
"""The realm id of the first generated company; the next ones count up from it."""

log = logging.getLogger(__name__)


class _QuietHandler(WSGIRequestHandler):
    """Request handler that keeps request lines out of the logs."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Do not log every request."""

    def log_error(self, format: str, *args: Any) -> None:
        """Log protocol errors at debug level only."""
        log.debug(format, *args)


def realm_id_for(index: int) -> str:
    """The realm id of the ``index``-th (0-based) generated company."""
    return str(FIRST_REALM_ID + index)


def ensure_companies(
    store: SandboxStore,
    realms: int,
    *,
    seed: int = 42,
    transactions: int | None = None,
    fixed_clock: datetime | None = None,
) -> list[str]:
    """Generate the companies the store lacks (up to ``realms``); returns every realm id.

    A company's history ends at the host's time and its clock follows the host's, or, with
    ``fixed_clock``, ends there and its clock stands at ``fixed_clock``.
    """
    existing = store.realm_ids()
    if len(existing) < realms:
        for index in range(realms):
            realm_id = realm_id_for(index)
            if realm_id in existing:
                continue
            generator.generate_company(
                store, realm_id, seed=seed + index, transactions=transactions, anchor=fixed_clock
            )
            if fixed_clock is not None:
                store.fix_clock(realm_id, fixed_clock)
    return store.realm_ids()


class SandboxServer:
    """The embedded QBO sandbox, served from a background thread."""

    def __init__(
        self,
        state_path: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        realms: int = 1,
        seed: int = 42,
        transactions: int | None = None,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        auto_consent: bool = True,
        access_token_ttl: int = 3600,
        refresh_grace: int = 86400,
        realism: RealismConfig | Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
        realism_clock: Callable[[], float] = time.monotonic,
        fixed_clock: datetime | Literal["real"] | None = None,
    ) -> None:
        """Configure the server (nothing starts until :meth:`start`).

        Args:
            state_path: The SQLite state file (created and generated when new).
            host: Interface to listen on.
            port: Port; 0 picks a free one.
            realms: How many companies to serve (missing ones are generated).
            seed: Generation seed of the first company.
            transactions: Transactions per generated company (None: the sample's counts).
            client_id: The OAuth client id accepted.
            client_secret: The OAuth client secret accepted.
            auto_consent: Redirect at once from the authorize page instead of asking.
            access_token_ttl: Seconds an access token lives.
            refresh_grace: Seconds a rotated refresh token keeps working.
            realism: Realism switches (see :mod:`qbo_pipeline.sandbox.realism`).
            clock: Wall clock of token expiry (tests pass a fake one).
            realism_clock: Monotonic clock of the rate-limit windows.
            fixed_clock: Pin every company's virtual clock at this time (new companies' histories
                end there); ``"real"`` makes every clock follow the host's; None keeps each
                company's clock as the state file has it.
        """
        self.state_path = Path(state_path) if str(state_path) != ":memory:" else state_path
        self.host = host
        self.port = port
        self.realms = realms
        self.seed = seed
        self.transactions = transactions
        self.client_id = client_id
        self.client_secret = client_secret
        self.auto_consent = auto_consent
        self.access_token_ttl = access_token_ttl
        self.refresh_grace = refresh_grace
        if isinstance(realism, Mapping):
            realism = RealismConfig().updated(realism)
        self._realism_config = realism or RealismConfig()
        self._clock = clock
        self._realism_clock = realism_clock
        if isinstance(fixed_clock, datetime) and fixed_clock.tzinfo is None:
            raise ValueError("fixed_clock must be time-zone aware")
        if isinstance(fixed_clock, str) and fixed_clock != "real":
            raise ValueError(f"fixed_clock must be a time or 'real', not {fixed_clock!r}")
        self.fixed_clock = fixed_clock
        self.store: SandboxStore | None = None
        self.app: SandboxApp | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.realm_ids: list[str] = []

    def __repr__(self) -> str:
        state = f"serving {self.base_url}" if self._server else "stopped"
        return f"SandboxServer({str(self.state_path)!r}, {state})"

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> SandboxServer:
        """Open the state (generating companies when needed) and start serving."""
        if self._server is not None:
            return self
        store = SandboxStore(self.state_path)
        try:
            pinned = self.fixed_clock if isinstance(self.fixed_clock, datetime) else None
            self.realm_ids = ensure_companies(
                store,
                self.realms,
                seed=self.seed,
                transactions=self.transactions,
                fixed_clock=pinned,
            )
            for realm_id in self.realm_ids:
                if pinned is not None:
                    store.fix_clock(realm_id, pinned)
                elif self.fixed_clock == "real":
                    store.follow_real_clock(realm_id)
            oauth = OAuthService(
                store,
                client_id=self.client_id,
                client_secret=self.client_secret,
                access_token_ttl=self.access_token_ttl,
                refresh_grace=self.refresh_grace,
                clock=self._clock,
            )
            realism = Realism(self._realism_config, clock=self._realism_clock)
            self.app = SandboxApp(store, oauth, realism, auto_consent=self.auto_consent)
            server = make_server(
                self.host,
                self.port,
                self.app,
                threaded=True,
                request_handler=_QuietHandler,
            )
        except BaseException:
            store.close()
            raise
        server.daemon_threads = True  # type: ignore[attr-defined]
        self.store = store
        self._server = server
        self.port = server.server_port
        self._thread = threading.Thread(
            target=server.serve_forever, name=f"qbo-sandbox:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the state file."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self.store is not None:
            self.store.close()
            self.store = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- facts and controls -----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (every QBO path and the admin endpoints hang off it)."""
        return f"http://{self.host}:{self.port}"

    def _running_app(self) -> SandboxApp:
        if self.app is None or self.store is None:
            raise RuntimeError("the sandbox server is not started")
        return self.app

    def configure(self, **realism: Any) -> RealismConfig:
        """Change realism switches at run time (``rate_limits=True``, ``faults=[...]`` ...).

        Raises:
            ValueError: If a switch is unknown or its value unusable.
        """
        if self.app is None:
            self._realism_config = self._realism_config.updated(realism)
            return self._realism_config
        return self.app.realism.configure(**realism)

    def stats(self) -> dict[str, Any]:
        """Request counters per realm and the realism switches in force."""
        return self._running_app().realism.stats()

    def simulate(self, days: int, *, realm_id: str | None = None, **kwargs: Any) -> Any:
        """Simulate ``days`` of activity in a realm (the first by default)."""
        app = self._running_app()
        realm = realm_id or self.realm_ids[0]
        return simulate.simulate_days(app.store, realm, days, **kwargs)

    def incident(self, kind: str, *, realm_id: str | None = None, **params: Any) -> Any:
        """Stage an incident (``bulk_delete_invoices``, ``bad_import_customers``, ...)."""
        app = self._running_app()
        return run_incident(app.store, realm_id or self.realm_ids[0], kind, dict(params))
